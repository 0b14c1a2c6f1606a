//! A resolved answer, and the summary a client reads of how it was made.

use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{filters::AfterResolution, in_flight::Reservation};

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
    /// A listed record the query's `recordType` or `source` excludes.
    Filtered,
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
    /// What this answer holds of `resolver.answers_in_flight_bytes`: kept with its body until
    /// it is sent. `None` when answered from the answer cache.
    pub(super) reservation: Option<Reservation>,
    /// The records listed before the old API's filters after resolution (`totalPages` counts
    /// these, as it did).
    pub(super) listed: usize,
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
            listed: count,
            reservation: None,
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

    /// The answer with the old API's filters after resolution applied to its records (parsed
    /// back for it: such queries are few and their answers small).
    pub fn filtered(mut self, after: &AfterResolution) -> Self {
        let records: Vec<Value> = serde_json::from_slice(&self.records).unwrap_or_default();
        let listed: Vec<Value> = records.into_iter().filter(|r| after.listed(r)).collect();
        self.listed = listed.len();
        let kept = after.apply(listed);
        self.count = kept.len();
        self.records = serde_json::to_vec(&kept)
            .expect("writing JSON to a Vec cannot fail")
            .into();
        self
    }

    /// Whether this answer was kept whole from an earlier request (`X-Cache: HIT`).
    pub fn answered_whole(&self) -> bool {
        self.answered_whole
    }

    /// The response body: the records, how many there are, and the resolution summary. The
    /// records are already serialised; the envelope is written around them, as pieces, so that
    /// the records (shared with the answer cache) are never copied into a body of their own. A
    /// listing keeps the indexer's envelope as it sent it (`searchResults` and the pages counted
    /// by the indexer), with the resolved records in place of its own; a query by DID has the
    /// old API's envelope, its pages counted over the records listed.
    pub fn into_body(
        mut self,
        auth: &Value,
        page: Page,
    ) -> ([bytes::Bytes; 3], Option<Reservation>) {
        let reservation = self.reservation.take();
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
                use std::io::Write;
                write!(
                    head,
                    "\"message\":\"Records retrieved successfully\",\"pageSize\":{},\"currentPage\":{},\"searchResults\":{},\"totalPages\":{},",
                    page.size,
                    page.current,
                    self.count,
                    self.listed.div_ceil(page.size)
                )
                .expect("writing to a Vec cannot fail");
            }
        }
        head.extend_from_slice(b"\"records\":");
        let mut tail = Vec::with_capacity(256);
        tail.extend_from_slice(b",\"auth\":");
        serde_json::to_writer(&mut tail, auth).expect("writing JSON to a Vec cannot fail");
        tail.extend_from_slice(b",\"resolution\":");
        serde_json::to_writer(&mut tail, &self.summary).expect("writing JSON to a Vec cannot fail");
        tail.push(b'}');
        ([head.into(), self.records, tail.into()], reservation)
    }
}

/// Which page of the DIDs asked for an answer is (`limit`, `page`, as the old API read them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub size: usize,
    pub current: usize,
}

impl Page {
    /// `Math.max(1, parseInt(limit) || 20)` and `Math.max(1, parseInt(page) || 1)`.
    pub fn from_query(limit: Option<&str>, page: Option<&str>) -> Self {
        let read = |v: Option<&str>, default: i64| {
            let n = v
                .and_then(js_parse_int)
                .filter(|n| *n != 0)
                .unwrap_or(default);
            n.max(1) as usize
        };
        Self {
            size: read(limit, 20),
            current: read(page, 1),
        }
    }

    /// The part of `items` this page holds.
    pub fn of<T>(&self, items: Vec<T>) -> Vec<T> {
        let start = (self.current - 1).saturating_mul(self.size);
        items.into_iter().skip(start).take(self.size).collect()
    }
}

/// JavaScript's `parseInt(text, 10)`: leading blanks, a sign, then as many digits as there are;
/// `None` for NaN. Saturates where JavaScript would lose precision.
fn js_parse_int(text: &str) -> Option<i64> {
    let t = text.trim_start();
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits.bytes().take_while(u8::is_ascii_digit).count();
    if end == 0 {
        return None;
    }
    let n = digits[..end].bytes().fold(0i64, |n, d| {
        n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    });
    Some(if negative { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_read_as_the_old_api_read_them() {
        let page = |l, p| Page::from_query(l, p);
        assert_eq!(
            page(None, None),
            Page {
                size: 20,
                current: 1
            }
        );
        assert_eq!(
            page(Some("abc"), Some("0")),
            Page {
                size: 20,
                current: 1
            }
        );
        assert_eq!(
            page(Some("0"), Some("-3")),
            Page {
                size: 20,
                current: 1
            }
        );
        assert_eq!(
            page(Some("-5"), Some("2")),
            Page {
                size: 1,
                current: 2
            }
        );
        assert_eq!(
            page(Some(" 5abc"), Some("+2x")),
            Page {
                size: 5,
                current: 2
            }
        );
        assert_eq!(
            page(Some("99999999999999999999"), None).size,
            i64::MAX as usize
        );
        let p = Page {
            size: 2,
            current: 2,
        };
        assert_eq!(p.of(vec![1, 2, 3, 4, 5]), [3, 4]);
        assert!(Page {
            size: 5,
            current: 2
        }
        .of(vec![1])
        .is_empty());
    }
}
