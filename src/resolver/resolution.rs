//! A resolved answer, and the summary a client reads of how it was made.

use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value};

/// Why a reference stayed a DID string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    NotFound,
    Unsupported,
    /// The caller may not read it (a reference: a root the caller may not read is `not_found`).
    Forbidden,
    /// The caller's own record, encrypted with a key this service cannot derive: returned as
    /// stored.
    Encrypted,
    Error,
    Timeout,
    Budget,
}

#[derive(Debug, Clone, Serialize)]
pub struct Unresolved {
    pub did: String,
    pub reason: Reason,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub depth: u32,
    pub fetched: usize,
    pub from_cache: usize,
    pub unresolved: Vec<Unresolved>,
    pub circular: usize,
    pub elapsed_ms: u64,
    /// Records answered past their TTL because the relay could not answer: the answer may be
    /// older than it looks. Left out when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub stale: usize,
    /// Records a listing held that name no DID or cannot be read, so are not in `records`.
    /// Left out when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub left_out: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A resolved answer: `Resolution::into_body` writes it as the response body.
#[derive(Debug)]
pub struct Resolution {
    /// The records, already serialised as one JSON array.
    pub(super) records: bytes::Bytes,
    /// How many records the array holds.
    pub(super) count: usize,
    pub(super) summary: Summary,
    /// For a listing, the indexer's answer around its records, kept as it sent them.
    pub(super) envelope: Option<Map<String, Value>>,
    /// Until when every record in it stays fresh in the record cache; `None` when one of them
    /// is not there (or for a listing): then it is not kept whole.
    pub(super) fresh_until: Option<Instant>,
    /// Answered from the answer cache.
    pub(super) answered_whole: bool,
}

impl Resolution {
    /// `count` records, already serialised as one JSON array, with their summary.
    pub(super) fn new(records: bytes::Bytes, count: usize, summary: Summary) -> Self {
        Self {
            records,
            count,
            summary,
            envelope: None,
            fresh_until: None,
            answered_whole: false,
        }
    }

    /// A listing that listed nothing.
    pub(super) fn empty(depth: u32) -> Self {
        let summary = Summary {
            depth,
            ..Summary::default()
        };
        Self::new(bytes::Bytes::from_static(b"[]"), 0, summary)
    }

    /// Whether this answer was kept whole from an earlier request (`X-Cache: HIT`).
    pub fn answered_whole(&self) -> bool {
        self.answered_whole
    }

    /// The response body: the records, how many there are, and the resolution summary. The
    /// records are already serialised; the envelope is written around them, as pieces, so that
    /// the records (shared with the answer cache) are never copied into a body of their own. A
    /// listing keeps the indexer's envelope as it sent it (`searchResults` and the pages counted
    /// by the indexer), with the resolved records in place of its own.
    pub fn into_body(self, auth: &Value) -> [bytes::Bytes; 3] {
        let mut head = Vec::with_capacity(512);
        head.push(b'{');
        match &self.envelope {
            Some(envelope) => {
                for (key, value) in envelope {
                    serde_json::to_writer(&mut head, key).expect("writing to a Vec");
                    head.push(b':');
                    serde_json::to_writer(&mut head, value).expect("writing to a Vec");
                    head.push(b',');
                }
            }
            None => {
                head.extend_from_slice(b"\"searchResults\":");
                head.extend_from_slice(self.count.to_string().as_bytes());
                head.push(b',');
            }
        }
        head.extend_from_slice(b"\"records\":");
        let mut tail = Vec::with_capacity(256);
        tail.extend_from_slice(b",\"auth\":");
        serde_json::to_writer(&mut tail, auth).expect("writing JSON to a Vec cannot fail");
        tail.extend_from_slice(b",\"resolution\":");
        serde_json::to_writer(&mut tail, &self.summary).expect("writing JSON to a Vec cannot fail");
        tail.push(b'}');
        [head.into(), self.records, tail.into()]
    }
}
