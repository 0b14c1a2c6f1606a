//! `Resolver`: a record together with the records it references, to a chosen depth.
//!
//! Resolution runs in two phases. **Gather** (`walk`) walks the reference graph level by level:
//! every reference found at one level is fetched concurrently (bounded by `resolver.concurrency`),
//! each distinct DID once per request, so a depth-N answer costs N + 1 relay round trips in time.
//! **Assemble** (`assembler`) then writes the answer from what arrived, applying the depth,
//! names-only, field and cycle rules; it is pure, so those rules are unit-tested without a relay.
//!
//! One `Resolver` runs on every HTTP worker: assembling is CPU work, and it spreads over the
//! cores that way. Found records are read from the shared record cache first, so a warm
//! resolution sends no message to the fetcher at all.

mod answers;
mod assembler;
pub mod config;
mod error;
mod walk;

use std::{
    collections::{BTreeMap, HashMap},
    rc::Rc,
    sync::Arc,
    time::{Duration, Instant},
};

use actix::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{
    access::{crypt::Decryptor, Caller},
    config::ResolverConfig,
    did::Did,
    gun::{
        fetcher::{List, Reader},
        FetchError, FoundRecord,
    },
    metrics::Metrics,
};
pub use answers::AnswerCache;
pub use error::ResolveError;
use walk::Walk;

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

/// Which fields' references are resolved (`resolveFieldNames`); `None` means all of them.
#[derive(Debug, Clone, Default)]
pub struct FieldFilter(Option<Vec<String>>);

impl FieldFilter {
    pub fn only(entries: Vec<String>) -> Self {
        Self(Some(entries))
    }

    /// An entry selects field `c.k` when it equals `c.k` or `data.c.k`, or is a dotted prefix of
    /// either (`workout` selects the whole category, `data` everything).
    pub fn selects(&self, category: &str, key: &str) -> bool {
        let Some(entries) = &self.0 else {
            return true;
        };
        entries.iter().any(|e| {
            dotted_prefix(e, &[category, key]) || dotted_prefix(e, &["data", category, key])
        })
    }
}

/// Whether `entry` equals `parts` joined with dots, or is a prefix of that ending at a dot.
/// Called for every field of every record while resolving: it compares without building the
/// joined name.
fn dotted_prefix(entry: &str, parts: &[&str]) -> bool {
    let mut joined = parts
        .iter()
        .enumerate()
        .flat_map(|(i, p)| (if i == 0 { "" } else { "." }).bytes().chain(p.bytes()));
    entry.bytes().all(|b| joined.next() == Some(b)) && matches!(joined.next(), None | Some(b'.'))
}

#[derive(Debug, Clone)]
pub struct Options {
    pub depth: u32,
    pub names_only: bool,
    pub fields: FieldFilter,
    /// `forceRefresh=true`: every lookup goes past the record and negative caches.
    pub force_refresh: bool,
    /// `includeSigs=false` drops `signature` from every `oip` block.
    pub include_sigs: bool,
    /// `includePubKeys=false` drops `creator.publicKey` from every `oip` block.
    pub include_pub_keys: bool,
}

#[derive(Message)]
#[rtype(result = "Result<Resolution, ResolveError>")]
pub struct Resolve {
    pub dids: Vec<Did>,
    pub options: Options,
    pub caller: Caller,
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

/// A listing: `GET /api/records` without `did`, passed to the indexer with this query (its own
/// `resolveDepth` replaced by 0); the records it lists are resolved here.
#[derive(Message)]
#[rtype(result = "Result<Resolution, ResolveError>")]
pub struct ResolveListing {
    pub query: String,
    pub options: Options,
    pub caller: Caller,
    /// The caller's `Authorization`, passed on so that the indexer's own access rules apply.
    pub authorization: Option<String>,
}

/// A resolved answer: `Resolution::into_body` writes it as the response body.
#[derive(Debug)]
pub struct Resolution {
    /// The records, already serialised as one JSON array.
    records: bytes::Bytes,
    /// How many records the array holds.
    count: usize,
    summary: Summary,
    /// For a listing, the indexer's answer around its records, kept as it sent them.
    envelope: Option<Map<String, Value>>,
    /// Until when every record in it stays fresh in the record cache; `None` when one of them
    /// is not there (or for a listing): then it is not kept whole.
    fresh_until: Option<Instant>,
    /// Answered from the answer cache.
    answered_whole: bool,
}

/// What a listing's answer is made of: the envelope, the records it lists by their DIDs, and how
/// many it listed that could not be kept.
type Listed = (Map<String, Value>, Vec<(Did, Arc<FoundRecord>)>, usize);

/// Splits the indexer's answer into its envelope and its records, each by the DID it names
/// (`oip.did`, or the old `oip.didTx`). Only the first `max_records` are read (a 6 MB listing
/// parsed whole took 180 MB); a record past them, or one that names no DID, is left out and
/// counted so that the answer says so.
fn listed(answer: &[u8], max_records: usize) -> Result<Listed, FetchError> {
    use serde_json::value::RawValue;
    let bad = |why: &str| FetchError::Malformed(format!("the indexer's listing {why}"));
    let Ok(mut top) = serde_json::from_slice::<BTreeMap<String, &RawValue>>(answer) else {
        return Err(bad("is not a JSON object"));
    };
    let records = top
        .remove("records")
        .and_then(|r| serde_json::from_str::<Vec<&RawValue>>(r.get()).ok())
        .ok_or_else(|| bad("has no `records` array"))?;
    // The old indexer echoes the request in it, the caller's bearer token included.
    top.remove("queryParams");
    let envelope: Map<String, Value> = top
        .into_iter()
        .map(|(key, raw)| {
            let value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
            (key, value)
        })
        .collect();
    let mut roots = Vec::with_capacity(records.len().min(max_records));
    let mut left_out = records.len().saturating_sub(max_records);
    for raw in records.into_iter().take(max_records) {
        let Ok(record) = serde_json::from_str::<Value>(raw.get()) else {
            left_out += 1;
            continue;
        };
        let named = ["did", "didTx"]
            .iter()
            .find_map(|k| record.get("oip")?.get(*k)?.as_str())
            .and_then(|d| Did::parse(d).ok());
        let raw = bytes::Bytes::copy_from_slice(raw.get().as_bytes());
        match (named, FoundRecord::from_listed(raw, record)) {
            (Some(did), Ok(found)) => roots.push((did, Arc::new(found))),
            _ => left_out += 1,
        }
    }
    Ok((envelope, roots, left_out))
}

/// What the gather phase learnt about one DID, as the caller may see it.
#[derive(Debug, Clone)]
enum State {
    Found(Arc<FoundRecord>),
    /// The caller's own record, still encrypted: returned as stored, its references unread.
    Sealed(Arc<FoundRecord>),
    Missing(Reason),
    Failed(FetchError),
}

impl State {
    fn reason(&self) -> Option<Reason> {
        match self {
            State::Found(_) => None,
            State::Sealed(_) => Some(Reason::Encrypted),
            State::Missing(r) => Some(*r),
            State::Failed(FetchError::Timeout) => Some(Reason::Timeout),
            State::Failed(FetchError::Unsupported) => Some(Reason::Unsupported),
            State::Failed(_) => Some(Reason::Error),
        }
    }
}

pub struct Resolver {
    walk: Rc<Walk>,
    answers: Arc<AnswerCache>,
    metrics: Arc<Metrics>,
}

impl Resolver {
    /// `answers` and `crypt` are shared by the resolvers of every worker.
    pub fn new(
        reader: Reader,
        config: ResolverConfig,
        answers: Arc<AnswerCache>,
        crypt: Arc<Decryptor>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            walk: Rc::new(Walk {
                reader,
                config,
                crypt,
            }),
            answers,
            metrics,
        }
    }
}

impl Actor for Resolver {
    type Context = Context<Self>;
}

impl Walk {
    fn limits(&self) -> assembler::Limits {
        assembler::Limits {
            records: self.config.max_records,
            bytes: self.config.max_answer_bytes,
        }
    }

    /// Gathers and assembles `roots`, of which `known` are known already.
    async fn resolve(
        &self,
        roots: &[Did],
        known: HashMap<Did, State>,
        options: &Options,
        caller: &Caller,
        started: Instant,
    ) -> Result<Resolution, ResolveError> {
        let deadline = started + Duration::from_millis(self.config.deadline_ms);
        let known_found: Vec<Did> = known.keys().cloned().collect();
        let gathered = self.gather(roots, known, options, caller, deadline).await;
        let mut resolution = assembler::assemble(roots, options, &gathered.states, self.limits())?;
        let records = &self.reader.records;
        resolution.fresh_until = known_found
            .iter()
            .chain(&gathered.read)
            .try_fold(None, |earliest: Option<Instant>, did| {
                let expiry = records.expiry(did)?;
                Some(Some(earliest.map_or(expiry, |e| e.min(expiry))))
            })
            .flatten();
        let figures = gathered.figures();
        resolution.summary.fetched = figures.fetched;
        resolution.summary.from_cache = figures.from_cache;
        resolution.summary.stale = figures.stale;
        resolution.summary.elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(resolution)
    }
}

impl Handler<Resolve> for Resolver {
    type Result = ResponseFuture<Result<Resolution, ResolveError>>;

    fn handle(&mut self, msg: Resolve, _: &mut Self::Context) -> Self::Result {
        self.metrics.resolve_requested();
        let started = Instant::now();
        let key = AnswerCache::key(&msg.dids, &msg.options, &msg.caller);
        // Read before the walk: a record removed while it runs makes its answer stale at once.
        let epoch = self.walk.reader.records.epoch();
        if let Some(kept) = key
            .as_deref()
            .and_then(|k| self.answers.get(k, epoch, started))
        {
            self.metrics.answer_cache_hit();
            return Box::pin(futures::future::ready(Ok(kept)));
        }
        let (walk, answers) = (self.walk.clone(), self.answers.clone());
        Box::pin(async move {
            let resolution = walk
                .resolve(
                    &msg.dids,
                    HashMap::new(),
                    &msg.options,
                    &msg.caller,
                    started,
                )
                .await?;
            if let (Some(key), Some(until)) = (key, resolution.fresh_until) {
                answers.keep(key, &resolution, until, epoch);
            }
            Ok(resolution)
        })
    }
}

impl Handler<ResolveListing> for Resolver {
    type Result = ResponseFuture<Result<Resolution, ResolveError>>;

    fn handle(&mut self, msg: ResolveListing, _: &mut Self::Context) -> Self::Result {
        self.metrics.resolve_requested();
        let started = Instant::now();
        let walk = self.walk.clone();
        Box::pin(async move {
            let failed = |e| ResolveError::Upstream("the indexer's listing".into(), e);
            let answer = walk
                .reader
                .fetcher
                .send(List {
                    query: msg.query,
                    authorization: msg.authorization,
                })
                .await
                .unwrap_or(Err(FetchError::Cancelled))
                .map_err(failed)?;
            let (envelope, listed, left_out) =
                listed(&answer, walk.config.max_records).map_err(failed)?;
            let roots: Vec<Did> = listed.iter().map(|(did, _)| did.clone()).collect();
            let known = listed
                .into_iter()
                .map(|(did, found)| (did, State::Found(found)))
                .collect();
            let mut resolution = if roots.is_empty() {
                Resolution::empty(msg.options.depth)
            } else {
                walk.resolve(&roots, known, &msg.options, &msg.caller, started)
                    .await?
            };
            resolution.envelope = Some(envelope);
            resolution.summary.left_out = left_out;
            Ok(resolution)
        })
    }
}

/// A reference: a string that starts with `did:` (as a field's value, or an element of one).
fn as_reference(value: &Value) -> Option<&str> {
    value.as_str().filter(|s| s.starts_with("did:"))
}

/// Calls `f` with every reference in the selected fields of `data`.
fn for_each_reference(data: &Map<String, Value>, fields: &FieldFilter, mut f: impl FnMut(&str)) {
    for (category, value) in data {
        let Value::Object(entries) = value else {
            continue;
        };
        for (key, value) in entries {
            if !fields.selects(category, key) {
                continue;
            }
            match value {
                Value::Array(items) => items.iter().filter_map(as_reference).for_each(&mut f),
                other => as_reference(other).into_iter().for_each(&mut f),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_names_match_without_allocating_the_same_way() {
        assert!(dotted_prefix("a.b", &["a", "b"]));
        assert!(dotted_prefix("a", &["a", "b"]));
        assert!(dotted_prefix("data.a", &["data", "a", "b"]));
        assert!(!dotted_prefix("a.", &["a", "b"]));
        assert!(!dotted_prefix("a.bc", &["a", "b"]));
        assert!(!dotted_prefix("ab", &["a", "b"]));
        assert!(!dotted_prefix("a.b.c", &["a", "b"]));
        // A key holding a dot still matches by prefix, as a plain string comparison would.
        assert!(dotted_prefix("c.a", &["c", "a.b"]));
    }

    #[test]
    fn references_are_found_in_strings_and_arrays_of_selected_fields() {
        let data = json!({"a": {"x": "did:gun:1", "y": ["did:gun:2", 3, "plain"], "z": "no"}, "b": "did:gun:9"});
        let mut seen = Vec::new();
        for_each_reference(data.as_object().unwrap(), &FieldFilter::default(), |r| {
            seen.push(r.to_string())
        });
        assert_eq!(seen, ["did:gun:1", "did:gun:2"]);
    }
}
