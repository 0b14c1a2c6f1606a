//! `Resolver`: a record together with the records it references, to a chosen depth.
//!
//! Resolution runs in two phases. **Gather** walks the reference graph level by level: every
//! reference found at one level is fetched concurrently (bounded by `resolver.concurrency`), each
//! distinct DID once per request, so a depth-N answer costs N + 1 relay round trips in time.
//! **Assemble** then builds the answer from what arrived, applying the depth, names-only, field
//! and cycle rules; it is pure, so those rules are unit-tested here without a relay.
//!
//! One `Resolver` runs on every HTTP worker: assembling is CPU work, and it spreads over the
//! cores that way. Found records are read from the shared record cache first, so a warm
//! resolution sends no message to the fetcher at all.

use std::{
    collections::{HashMap, HashSet},
    rc::Rc,
    sync::{atomic::Ordering::Relaxed, Arc},
    time::{Duration, Instant},
};

use actix::prelude::*;
use futures::{stream, StreamExt};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{
    config::ResolverConfig,
    did::Did,
    gun::{
        record_cache::RecordCache, CacheSource, Fetch, FetchError, FoundRecord, GunFetcher, Lookup,
    },
    metrics::Metrics,
};

/// Why a reference stayed a DID string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    NotFound,
    Unsupported,
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
}

#[derive(Message)]
#[rtype(result = "Result<Resolution, ResolveError>")]
pub struct Resolve {
    pub dids: Vec<Did>,
    pub options: Options,
}

#[derive(Debug, Serialize)]
pub struct Unresolved {
    pub did: String,
    pub reason: Reason,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub depth: u32,
    pub fetched: usize,
    pub from_cache: usize,
    pub unresolved: Vec<Unresolved>,
    pub circular: usize,
    pub elapsed_ms: u64,
}

#[derive(Debug)]
pub struct Resolution {
    /// The records, already serialised as one JSON array.
    pub records: Vec<u8>,
    /// How many records the array holds.
    pub count: usize,
    pub summary: Summary,
}

/// No root could be returned.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no record found for {0}")]
    NotFound(String),
    #[error("{0} uses a DID method this server cannot fetch (set resolver.oip_api)")]
    Unsupported(String),
    #[error("resolving {0} would exceed resolver.max_records")]
    Budget(String),
    #[error("{1} (while fetching {0})")]
    Upstream(String, FetchError),
}

/// What the gather phase learnt about one DID.
#[derive(Debug, Clone)]
enum State {
    Found(Arc<FoundRecord>),
    Missing(Reason),
    Failed(FetchError),
}

impl State {
    fn reason(&self) -> Option<Reason> {
        match self {
            State::Found(_) => None,
            State::Missing(r) => Some(*r),
            State::Failed(FetchError::Timeout) => Some(Reason::Timeout),
            State::Failed(FetchError::Unsupported) => Some(Reason::Unsupported),
            State::Failed(_) => Some(Reason::Error),
        }
    }
}

/// What looking up one DID cost, for the `fetched` and `fromCache` figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cost {
    /// Not looked up at all (no source for its method).
    NotAsked,
    /// Answered by the record or negative cache.
    Cached,
    /// Went to (or shared a request to) the relay or indexer.
    Upstream,
}

#[derive(Default)]
struct Gathered {
    states: HashMap<Did, State>,
    fetched: usize,
    from_cache: usize,
}

pub struct Resolver {
    walk: Rc<Walk>,
    metrics: Arc<Metrics>,
}

impl Resolver {
    pub fn new(
        fetcher: Addr<GunFetcher>,
        records: Arc<RecordCache>,
        config: ResolverConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            walk: Rc::new(Walk {
                fetcher,
                records,
                config,
            }),
            metrics,
        }
    }
}

impl Actor for Resolver {
    type Context = Context<Self>;
}

impl Handler<Resolve> for Resolver {
    type Result = ResponseFuture<Result<Resolution, ResolveError>>;

    fn handle(&mut self, msg: Resolve, _: &mut Self::Context) -> Self::Result {
        self.metrics.resolve_requests.fetch_add(1, Relaxed);
        let started = Instant::now();
        let walk = self.walk.clone();
        let deadline = started + Duration::from_millis(walk.config.deadline_ms);
        Box::pin(async move {
            let gathered = walk.gather(&msg.dids, &msg.options, deadline).await;
            let mut resolution = assemble(
                &msg.dids,
                &msg.options,
                &gathered.states,
                walk.config.max_records,
            )?;
            resolution.summary.fetched = gathered.fetched;
            resolution.summary.from_cache = gathered.from_cache;
            resolution.summary.elapsed_ms = started.elapsed().as_millis() as u64;
            Ok(resolution)
        })
    }
}

/// The gather phase of one request.
struct Walk {
    fetcher: Addr<GunFetcher>,
    records: Arc<RecordCache>,
    config: ResolverConfig,
}

impl Walk {
    async fn gather(&self, roots: &[Did], options: &Options, deadline: Instant) -> Gathered {
        let mut out = Gathered::default();
        let mut expanded: HashSet<Did> = HashSet::new();
        let mut level: Vec<(Did, u32)> = roots.iter().map(|d| (d.clone(), options.depth)).collect();
        while !level.is_empty() {
            let mut wanted: Vec<Did> = Vec::new();
            let mut seen: HashSet<&Did> = HashSet::new();
            for (did, _) in &level {
                if !out.states.contains_key(did) && seen.insert(did) {
                    wanted.push(did.clone());
                }
            }
            let room = self.config.max_records.saturating_sub(out.fetched);
            for over in wanted.split_off(room.min(wanted.len())) {
                out.states.insert(over, State::Missing(Reason::Budget));
            }
            let finished = self.fetch_level(wanted, deadline, &mut out).await;
            if !finished {
                break;
            }
            let mut next = Vec::new();
            for (did, remaining) in level {
                if remaining == 0 || !expanded.insert(did.clone()) {
                    continue;
                }
                if let Some(State::Found(found)) = out.states.get(&did) {
                    for_each_reference(&found.record.data, &options.fields, |reference| {
                        if let Ok(child) = Did::parse(reference) {
                            next.push((child, remaining - 1));
                        }
                    });
                }
            }
            level = next;
        }
        out
    }

    /// Fetches one level concurrently. Returns false when the deadline came first: whatever had
    /// not arrived is marked `timeout`, and no deeper level is fetched.
    async fn fetch_level(&self, wanted: Vec<Did>, deadline: Instant, out: &mut Gathered) -> bool {
        let pending: Vec<Did> = wanted.clone();
        let mut arrivals = stream::iter(wanted)
            .map(|did| self.fetch_one(did))
            .buffer_unordered(self.config.concurrency);
        let timer = actix_web::rt::time::sleep_until(deadline.into());
        futures::pin_mut!(timer);
        loop {
            match futures::future::select(arrivals.next(), timer.as_mut()).await {
                futures::future::Either::Left((Some((did, state, cost)), _)) => {
                    out.fetched += usize::from(cost != Cost::NotAsked);
                    out.from_cache += usize::from(cost == Cost::Cached);
                    out.states.insert(did, state);
                }
                futures::future::Either::Left((None, _)) => return true,
                futures::future::Either::Right(_) => {
                    for did in pending {
                        out.states
                            .entry(did)
                            .or_insert(State::Missing(Reason::Timeout));
                    }
                    return false;
                }
            }
        }
    }

    /// One DID: the shared record cache first, then the fetcher.
    async fn fetch_one(&self, did: Did) -> (Did, State, Cost) {
        if matches!(did, Did::Other(_)) && self.config.oip_api.is_none() {
            return (did, State::Missing(Reason::Unsupported), Cost::NotAsked);
        }
        if let Some(found) = self.records.get(&did) {
            return (did, State::Found(found), Cost::Cached);
        }
        let (state, cost) = match self.fetcher.send(Fetch(did.clone())).await {
            Ok(Ok(fetched)) => {
                let cost = if fetched.source == CacheSource::Miss {
                    Cost::Upstream
                } else {
                    Cost::Cached
                };
                let state = match fetched.lookup {
                    Lookup::Found(found) => State::Found(found),
                    Lookup::NotFound => State::Missing(Reason::NotFound),
                };
                (state, cost)
            }
            Ok(Err(e)) => (State::Failed(e), Cost::Upstream),
            Err(_) => (State::Failed(FetchError::Cancelled), Cost::Upstream),
        };
        (did, state, cost)
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

/// Builds the answer from what was gathered, writing JSON straight into one buffer: going
/// through `serde_json::Value` would copy every record twice more and dominated the CPU profile.
fn assemble(
    roots: &[Did],
    options: &Options,
    states: &HashMap<Did, State>,
    max_records: usize,
) -> Result<Resolution, ResolveError> {
    let mut asm = Assembler {
        states,
        options,
        max_records,
        placed: 0,
        circular: 0,
        unresolved: Vec::new(),
        listed: HashSet::new(),
        out: Vec::with_capacity(4096),
    };
    let mut count = 0;
    let mut missing: Vec<(&Did, &State)> = Vec::new();
    asm.out.push(b'[');
    for root in roots {
        match states.get(root) {
            Some(State::Found(found)) => {
                if count > 0 {
                    asm.out.push(b',');
                }
                count += 1;
                asm.placed += 1;
                let mut path = vec![root.clone()];
                asm.record(root, found, options.depth, &mut path);
            }
            other => {
                let state = other.unwrap_or(&State::Missing(Reason::Timeout));
                asm.list(root.to_string(), state.reason().unwrap_or(Reason::Error));
                missing.push((root, state));
            }
        }
    }
    asm.out.push(b']');
    if count == 0 {
        // The answer names the gravest reason nothing came back (the first root among equals):
        // a relay failure says more than a deadline, a deadline more than a plain miss.
        let gravity = |state: &State| match state {
            State::Failed(_) => 4,
            State::Missing(Reason::Timeout) => 3,
            State::Missing(Reason::Budget) => 2,
            State::Missing(Reason::Unsupported) => 1,
            _ => 0,
        };
        let (root, state) = missing
            .into_iter()
            .rev()
            .max_by_key(|(_, state)| gravity(state))
            .expect("at least one root was asked");
        let did = root.to_string();
        return Err(match state {
            State::Failed(e) => ResolveError::Upstream(did, e.clone()),
            State::Missing(Reason::Timeout) => ResolveError::Upstream(did, FetchError::Timeout),
            State::Missing(Reason::Unsupported) => ResolveError::Unsupported(did),
            State::Missing(Reason::Budget) => ResolveError::Budget(did),
            _ => ResolveError::NotFound(did),
        });
    }
    Ok(Resolution {
        records: asm.out,
        count,
        summary: Summary {
            depth: options.depth,
            fetched: 0,
            from_cache: 0,
            unresolved: asm.unresolved,
            circular: asm.circular,
            elapsed_ms: 0,
        },
    })
}

struct Assembler<'a> {
    states: &'a HashMap<Did, State>,
    options: &'a Options,
    max_records: usize,
    placed: usize,
    circular: usize,
    unresolved: Vec<Unresolved>,
    listed: HashSet<String>,
    out: Vec<u8>,
}

impl<'a> Assembler<'a> {
    fn list(&mut self, did: String, reason: Reason) {
        if self.listed.insert(did.clone()) {
            self.unresolved.push(Unresolved { did, reason });
        }
    }

    fn value(&mut self, value: &impl Serialize) {
        serde_json::to_writer(&mut self.out, value).expect("writing JSON to a Vec cannot fail");
    }

    /// `found` reached by `did`, with `remaining` levels of references still to resolve. Keys
    /// are written in sorted order, as serde_json's maps hold them.
    fn record(&mut self, did: &Did, found: &'a FoundRecord, remaining: u32, path: &mut Vec<Did>) {
        let record = &found.record;
        self.out.extend_from_slice(b"{\"data\":");
        if remaining == 0 {
            self.value(&record.data);
        } else {
            self.data(&record.data, remaining, path);
        }
        self.out.extend_from_slice(b",\"meta\":");
        self.value(&record.meta);
        self.out.extend_from_slice(b",\"oip\":");
        self.oip(&record.oip, did);
        self.out.push(b'}');
    }

    fn data(&mut self, data: &'a Map<String, Value>, remaining: u32, path: &mut Vec<Did>) {
        self.out.push(b'{');
        for (i, (category, value)) in data.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.value(category);
            self.out.push(b':');
            let Value::Object(entries) = value else {
                self.value(value);
                continue;
            };
            self.out.push(b'{');
            for (j, (key, value)) in entries.iter().enumerate() {
                if j > 0 {
                    self.out.push(b',');
                }
                self.value(key);
                self.out.push(b':');
                match value {
                    _ if !self.options.fields.selects(category, key) => self.value(value),
                    Value::Array(items) => {
                        self.out.push(b'[');
                        for (k, item) in items.iter().enumerate() {
                            if k > 0 {
                                self.out.push(b',');
                            }
                            self.item(item, remaining, path);
                        }
                        self.out.push(b']');
                    }
                    other => self.item(other, remaining, path),
                }
            }
            self.out.push(b'}');
        }
        self.out.push(b'}');
    }

    /// A field's value or an array element: resolved when it is a reference, else as stored.
    fn item(&mut self, value: &Value, remaining: u32, path: &mut Vec<Did>) {
        match as_reference(value) {
            Some(reference) => self.reference(reference, remaining, path),
            None => self.value(value),
        }
    }

    /// What a reference found in a record with `remaining` levels becomes.
    fn reference(&mut self, reference: &str, remaining: u32, path: &mut Vec<Did>) {
        let Ok(did) = Did::parse(reference) else {
            self.list(reference.to_string(), Reason::Error);
            return self.value(&reference);
        };
        let states = self.states;
        let found = match states.get(&did) {
            Some(State::Found(found)) => found,
            Some(state) => {
                self.list(
                    reference.to_string(),
                    state.reason().unwrap_or(Reason::Error),
                );
                return self.value(&reference);
            }
            None => {
                // Every reference of a record with levels left was asked for; only a deadline
                // stops the walk before its answer is in.
                self.list(reference.to_string(), Reason::Timeout);
                return self.value(&reference);
            }
        };
        let child_remaining = remaining - 1;
        let basic = found.record.data.get("basic");
        if self.options.names_only && child_remaining == 0 {
            return match basic.and_then(|b| b.get("name")) {
                Some(name @ Value::String(_)) => self.value(name),
                _ => self.value(&reference),
            };
        }
        if path.contains(&did) {
            self.circular += 1;
            self.out
                .extend_from_slice(b"{\"_circular\":true,\"data\":{\"basic\":");
            match basic {
                Some(basic) => self.value(basic),
                None => self.out.extend_from_slice(b"{}"),
            }
            self.out.extend_from_slice(b"},\"oip\":");
            self.oip(&found.record.oip, &did);
            self.out.push(b'}');
            return;
        }
        if self.placed >= self.max_records {
            self.list(reference.to_string(), Reason::Budget);
            return self.value(&reference);
        }
        self.placed += 1;
        path.push(did.clone());
        self.record(&did, found, child_remaining, path);
        path.pop();
    }

    /// `oip` with `did` set to the DID the record was reached by, when the stored record lacks it.
    fn oip(&mut self, oip: &Value, did: &Did) {
        match oip {
            Value::Object(fields) if !fields.contains_key("did") => {
                let mut fields = fields.clone();
                fields.insert("did".into(), Value::String(did.to_string()));
                self.value(&fields);
            }
            other => self.value(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The records of an answer, parsed back.
    fn parsed(r: &Resolution) -> Vec<Value> {
        serde_json::from_slice(&r.records).expect("the assembler writes valid JSON")
    }

    fn gun(s: &str) -> Did {
        Did::Gun(s.to_string())
    }

    fn found(name: &str, data: Value) -> State {
        let mut data = data;
        data["basic"] = json!({"name": name});
        let node = json!({"data": data, "oip": {"recordType": "x"}});
        State::Found(Arc::new(FoundRecord::from_stored_node(node).unwrap()))
    }

    /// W -> [E1, E2]; E1 -> [Q]; E2 -> [Q, E1]; Q -> W (a cycle back to the root); E2 also
    /// references a missing record.
    fn graph() -> HashMap<Did, State> {
        HashMap::from([
            (
                gun("w"),
                found(
                    "Workout",
                    json!({"workout": {"exercise": ["did:gun:e1", "did:gun:e2"], "count": 2}}),
                ),
            ),
            (
                gun("e1"),
                found("Squat", json!({"exercise": {"equipment": ["did:gun:q"]}})),
            ),
            (
                gun("e2"),
                found(
                    "Lunge",
                    json!({"exercise": {"equipment": ["did:gun:q"], "variationOf": "did:gun:e1", "gone": "did:gun:nope"}}),
                ),
            ),
            (
                gun("q"),
                found("Barbell", json!({"equipment": {"usedIn": "did:gun:w"}})),
            ),
            (gun("nope"), State::Missing(Reason::NotFound)),
        ])
    }

    fn opts(depth: u32) -> Options {
        Options {
            depth,
            names_only: false,
            fields: FieldFilter::default(),
        }
    }

    fn resolve(options: Options) -> Resolution {
        assemble(&[gun("w")], &options, &graph(), 1000).unwrap()
    }

    #[test]
    fn depth_zero_returns_the_record_as_stored_with_its_did() {
        let r = resolve(opts(0));
        let w = &parsed(&r)[0];
        assert_eq!(
            w["data"]["workout"]["exercise"],
            json!(["did:gun:e1", "did:gun:e2"])
        );
        assert_eq!(w["oip"]["did"], "did:gun:w");
        assert!(r.summary.unresolved.is_empty());
    }

    #[test]
    fn depth_one_replaces_the_roots_references_only() {
        let r = resolve(opts(1));
        let ex = &parsed(&r)[0]["data"]["workout"]["exercise"];
        assert_eq!(ex[0]["data"]["basic"]["name"], "Squat");
        assert_eq!(ex[0]["data"]["exercise"]["equipment"], json!(["did:gun:q"]));
        assert_eq!(ex[1]["oip"]["did"], "did:gun:e2");
        assert_eq!(parsed(&r)[0]["data"]["workout"]["count"], 2);
    }

    #[test]
    fn depth_two_resolves_grandchildren_and_lists_the_missing_once() {
        let r = resolve(opts(2));
        let ex = &parsed(&r)[0]["data"]["workout"]["exercise"];
        assert_eq!(
            ex[0]["data"]["exercise"]["equipment"][0]["data"]["basic"]["name"],
            "Barbell"
        );
        assert_eq!(
            ex[1]["data"]["exercise"]["variationOf"]["data"]["basic"]["name"],
            "Squat"
        );
        assert_eq!(ex[1]["data"]["exercise"]["gone"], "did:gun:nope");
        assert_eq!(r.summary.unresolved.len(), 1);
        assert_eq!(r.summary.unresolved[0].did, "did:gun:nope");
        assert_eq!(r.summary.unresolved[0].reason, Reason::NotFound);
    }

    #[test]
    fn a_reference_back_onto_the_path_is_a_circular_marker() {
        let r = resolve(opts(3));
        let barbell =
            &parsed(&r)[0]["data"]["workout"]["exercise"][0]["data"]["exercise"]["equipment"][0];
        let back = &barbell["data"]["equipment"]["usedIn"];
        assert_eq!(back["_circular"], true);
        assert_eq!(back["oip"]["did"], "did:gun:w");
        assert_eq!(back["data"]["basic"]["name"], "Workout");
        assert!(back["data"].get("workout").is_none(), "only oip and basic");
        assert!(r.summary.circular >= 1);
    }

    #[test]
    fn a_cycle_stops_whatever_depth_remains() {
        for depth in [3, 4, 5] {
            let r = resolve(opts(depth));
            let text = parsed(&r)[0].to_string();
            assert!(text.contains("\"_circular\":true"), "depth {depth}");
            assert!(text.len() < 20_000, "depth {depth}: {} bytes", text.len());
        }
    }

    #[test]
    fn names_only_applies_at_the_deepest_level() {
        let mut o = opts(1);
        o.names_only = true;
        let r = resolve(o);
        assert_eq!(
            parsed(&r)[0]["data"]["workout"]["exercise"],
            json!(["Squat", "Lunge"])
        );

        let mut o = opts(2);
        o.names_only = true;
        let r = resolve(o);
        let ex = &parsed(&r)[0]["data"]["workout"]["exercise"];
        assert_eq!(ex[0]["data"]["exercise"]["equipment"], json!(["Barbell"]));
        assert_eq!(ex[1]["data"]["exercise"]["variationOf"], "Squat");
        assert_eq!(ex[1]["data"]["exercise"]["gone"], "did:gun:nope");
    }

    #[test]
    fn names_only_comes_before_the_circular_marker() {
        // At depth 3 the barbell's back-reference to the workout is at the deepest level.
        let mut o = opts(3);
        o.names_only = true;
        let r = resolve(o);
        let barbell =
            &parsed(&r)[0]["data"]["workout"]["exercise"][0]["data"]["exercise"]["equipment"][0];
        assert_eq!(barbell["data"]["equipment"]["usedIn"], "Workout");
    }

    #[test]
    fn field_filter_selects_by_name_and_prefix() {
        let f = FieldFilter::only(vec!["workout".into(), "data.exercise.equipment".into()]);
        assert!(f.selects("workout", "exercise"));
        assert!(f.selects("exercise", "equipment"));
        assert!(!f.selects("exercise", "variationOf"));
        assert!(!f.selects("workouts", "x"), "a prefix must end at a dot");
        assert!(FieldFilter::only(vec!["data".into()]).selects("any", "thing"));
        assert!(FieldFilter::only(vec!["workout.exercise".into()]).selects("workout", "exercise"));
        assert!(!FieldFilter::only(vec!["workout.ex".into()]).selects("workout", "exercise"));

        let mut o = opts(2);
        o.fields = FieldFilter::only(vec!["workout.exercise".into()]);
        let r = resolve(o);
        let ex = &parsed(&r)[0]["data"]["workout"]["exercise"];
        assert_eq!(ex[0]["data"]["basic"]["name"], "Squat");
        assert_eq!(ex[0]["data"]["exercise"]["equipment"], json!(["did:gun:q"]));
    }

    #[test]
    fn the_budget_keeps_the_rest_as_dids() {
        let r = assemble(&[gun("w")], &opts(2), &graph(), 2).unwrap();
        let ex = &parsed(&r)[0]["data"]["workout"]["exercise"];
        assert_eq!(ex[0]["data"]["basic"]["name"], "Squat");
        assert_eq!(ex[1], "did:gun:e2");
        assert!(r
            .summary
            .unresolved
            .iter()
            .any(|u| u.reason == Reason::Budget));
    }

    #[test]
    fn several_roots_keep_order_and_skip_the_missing() {
        let states = graph();
        let r = assemble(&[gun("q"), gun("nope"), gun("e1")], &opts(0), &states, 100).unwrap();
        assert_eq!(r.count, 2);
        assert_eq!(parsed(&r).len(), 2);
        assert_eq!(parsed(&r)[0]["data"]["basic"]["name"], "Barbell");
        assert_eq!(parsed(&r)[1]["data"]["basic"]["name"], "Squat");
        assert_eq!(r.summary.unresolved[0].did, "did:gun:nope");
    }

    #[test]
    fn no_root_found_is_an_error_that_says_why() {
        let mut states = graph();
        assert!(matches!(
            assemble(&[gun("nope")], &opts(0), &states, 10),
            Err(ResolveError::NotFound(_))
        ));
        states.insert(gun("down"), State::Failed(FetchError::CircuitOpen));
        assert!(matches!(
            assemble(&[gun("nope"), gun("down")], &opts(0), &states, 10),
            Err(ResolveError::Upstream(_, FetchError::CircuitOpen))
        ));
        assert!(matches!(
            assemble(&[gun("late")], &opts(0), &states, 10),
            Err(ResolveError::Upstream(_, FetchError::Timeout))
        ));
    }

    #[test]
    fn the_gravest_reason_names_the_error_whatever_the_order() {
        let mut states = graph();
        states.insert(gun("late"), State::Missing(Reason::Timeout));
        states.insert(gun("over"), State::Missing(Reason::Budget));
        assert!(matches!(
            assemble(&[gun("nope"), gun("over")], &opts(0), &states, 10),
            Err(ResolveError::Budget(d)) if d == "did:gun:over"
        ));
        assert!(matches!(
            assemble(&[gun("over"), gun("late"), gun("nope")], &opts(0), &states, 10),
            Err(ResolveError::Upstream(d, FetchError::Timeout)) if d == "did:gun:late"
        ));
        assert!(matches!(
            assemble(&[gun("nope"), gun("nope")], &opts(0), &states, 10),
            Err(ResolveError::NotFound(d)) if d == "did:gun:nope"
        ));
    }

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
