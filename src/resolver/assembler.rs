//! The assembly phase: the answer written from what was gathered, straight into one buffer.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};

use super::{
    error::ResolveError,
    in_flight::Reservation,
    old_rules::{date_readable, merged_ingredient, truthy, NoNulls},
    options::Options,
    references::as_reference,
    resolution::{Reason, Resolution, Summary, Unresolved},
    state::State,
};
use crate::{did::Did, gun::FetchError, gun::FoundRecord};

/// Builds the answer from what was gathered, writing JSON straight into one buffer: going
/// through `serde_json::Value` would copy every record twice more and dominated the CPU profile.
pub(super) fn assemble(
    roots: &[Did],
    options: &Options,
    states: &HashMap<Did, State>,
    limits: Limits,
) -> Result<Resolution, ResolveError> {
    let mut asm = Assembler {
        states,
        options,
        limits,
        placed: 0,
        circular: 0,
        unresolved: Vec::new(),
        listed: HashSet::new(),
        out: Vec::with_capacity(4096),
        written: HashMap::new(),
    };
    let mut count = 0;
    let mut missing: Vec<(&Did, &State)> = Vec::new();
    asm.out.push(b'[');
    for root in roots {
        match asm.root(root, count) {
            Ok(true) => count += 1,
            Ok(false) => {}
            Err(state) => missing.push((root, state)),
        }
    }
    asm.out.push(b']');
    // What was written past the last check (one record at most) is reserved too, as far as
    // the budget allows; the slack of the buffer's growth is given back first.
    asm.out.shrink_to_fit();
    asm.limits.in_flight.cover(asm.out.len());
    if count == 0 {
        if let Some(error) = gravest_failure(missing) {
            return Err(error);
        }
    }
    let summary = Summary {
        depth: options.depth,
        unresolved: asm.unresolved,
        circular: asm.circular,
        ..Summary::default()
    };
    let mut resolution = Resolution::new(asm.out.into(), count, summary);
    resolution.reservation = Some(asm.limits.in_flight);
    Ok(resolution)
}

/// Why nothing came back, when a root failed rather than was simply absent: the gravest reason
/// (the first root among equals): a relay failure says more than a deadline, a deadline more
/// than a plain miss. Roots that are not there (or not the caller's to read) are an empty
/// answer, as the old API gave.
fn gravest_failure(missing: Vec<(&Did, &State)>) -> Option<ResolveError> {
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
        .filter(|(_, state)| gravity(state) > 0)?;
    let did = root.to_string();
    Some(match state {
        State::Failed(e) => ResolveError::Upstream(did, e.clone()),
        State::Missing(Reason::Timeout) => ResolveError::Upstream(did, FetchError::Timeout),
        State::Missing(Reason::Unsupported) => ResolveError::Unsupported(did),
        _ => ResolveError::Budget(did),
    })
}

/// How large one answer may grow: records placed, and bytes, its own and those of every answer
/// in flight (past any, references stay DIDs with reason `budget`).
pub(super) struct Limits {
    pub records: usize,
    pub bytes: usize,
    pub in_flight: Reservation,
}

struct Assembler<'a> {
    states: &'a HashMap<Did, State>,
    options: &'a Options,
    limits: Limits,
    placed: usize,
    circular: usize,
    unresolved: Vec<Unresolved>,
    listed: HashSet<String>,
    out: Vec<u8>,
    /// Where in `out` a record written as stored (no references resolved in it) lies: written
    /// once, copied wherever else it appears. Such a record reads the same on any path.
    written: HashMap<Did, std::ops::Range<usize>>,
}

impl<'a> Assembler<'a> {
    /// Whether `extra` more bytes fit this answer and the budget of answers in flight.
    fn room(&mut self, extra: usize) -> bool {
        let len = self.out.len() + extra;
        len < self.limits.bytes && self.limits.in_flight.cover(len)
    }

    fn list(&mut self, did: String, reason: Reason) {
        if self.listed.insert(did.clone()) {
            self.unresolved.push(Unresolved { did, reason });
        }
    }

    fn value(&mut self, value: &impl Serialize) {
        serde_json::to_writer(&mut self.out, value).expect("writing JSON to a Vec cannot fail");
    }

    /// A stored value, without its nulls when the request said `hideNullValues=true`.
    fn json(&mut self, value: &Value) {
        match self.options.hide_nulls {
            true => self.value(&NoNulls(value)),
            false => self.value(value),
        }
    }

    /// `found` reached by `did`, with `remaining` levels of references still to resolve; a
    /// `root` is one the request listed. Keys are written in sorted order, as serde_json's maps
    /// hold them. GUN's `meta` is the relay's bookkeeping, never part of an answered record.
    fn record(
        &mut self,
        did: &Did,
        found: &'a FoundRecord,
        remaining: u32,
        path: &mut Vec<Did>,
        root: bool,
    ) {
        let record = &found.record;
        self.out.extend_from_slice(b"{\"data\":");
        self.data(&record.data, remaining, path, root);
        self.out.extend_from_slice(b",\"oip\":");
        self.oip(&record.oip, did, root);
        if root {
            for (key, value) in &record.extra {
                self.out.push(b',');
                self.value(key);
                self.out.push(b':');
                self.json(value);
            }
        }
        self.out.push(b'}');
    }

    /// `data` with the references of its selected fields resolved, and on a listed record the
    /// old API's `basic.dateReadable`.
    fn data(&mut self, data: &Map<String, Value>, remaining: u32, path: &mut Vec<Did>, root: bool) {
        let mut readable = match root && self.options.date_readable {
            true => date_readable(data),
            false => None,
        };
        if remaining == 0 && readable.is_none() {
            return self.json(&Value::Object(data.clone()));
        }
        self.object(data, |asm, category, value| match value {
            Value::Object(fields) => match readable.take_if(|_| category == "basic") {
                Some(date) => {
                    let mut basic = fields.clone();
                    basic.insert("dateReadable".into(), Value::String(date));
                    asm.fields(category, &basic, remaining, path);
                }
                None => asm.fields(category, fields, remaining, path),
            },
            other => asm.json(other),
        });
    }

    /// One category's fields, the selected ones resolved. Where names are the last level, a
    /// recipe's ingredient names take their comments, as the old API's names-only answers did.
    fn fields(
        &mut self,
        category: &str,
        fields: &Map<String, Value>,
        remaining: u32,
        path: &mut Vec<Did>,
    ) {
        if remaining == 0 {
            return self.json(&Value::Object(fields.clone()));
        }
        let comments = match fields.get("ingredient_comment") {
            Some(Value::Array(c))
                if category == "recipe"
                    && self.options.names_only
                    && remaining == 1
                    && fields.get("ingredient").is_some_and(Value::is_array) =>
            {
                Some(c)
            }
            _ => None,
        };
        self.object(fields, |asm, key, value| {
            let selected = asm.options.fields.selects(category, key);
            match (key, comments) {
                ("ingredient", Some(comments)) => {
                    asm.ingredients(value, comments, selected, remaining, path)
                }
                _ if selected => asm.field(value, remaining, path),
                _ => asm.json(value),
            }
        });
    }

    /// Writes `map` as an object, each value written by `entry` (null members left out when
    /// the request said `hideNullValues=true`).
    fn object<'m>(
        &mut self,
        map: &'m Map<String, Value>,
        mut entry: impl FnMut(&mut Self, &'m str, &'m Value),
    ) {
        self.out.push(b'{');
        let mut first = true;
        for (key, value) in map {
            if self.options.hide_nulls && value.is_null() {
                continue;
            }
            if !first {
                self.out.push(b',');
            }
            first = false;
            self.value(key);
            self.out.push(b':');
            entry(self, key, value);
        }
        self.out.push(b'}');
    }

    /// Writes `items`, each by `item` (null elements left out on `hideNullValues=true`).
    fn array(&mut self, items: &[Value], mut item: impl FnMut(&mut Self, usize, &Value)) {
        self.out.push(b'[');
        let mut first = true;
        for (i, value) in items.iter().enumerate() {
            if self.options.hide_nulls && value.is_null() {
                continue;
            }
            if !first {
                self.out.push(b',');
            }
            first = false;
            item(self, i, value);
        }
        self.out.push(b']');
    }

    /// A recipe's `ingredient` at names-only's last level: each name (or the DID left in its
    /// place) merged with the comment at the same index by the old rules (`merged_ingredient`).
    fn ingredients(
        &mut self,
        value: &Value,
        comments: &[Value],
        selected: bool,
        remaining: u32,
        path: &mut Vec<Did>,
    ) {
        let Value::Array(items) = value else {
            return self.json(value);
        };
        self.array(items, |asm, i, item| {
            let start = asm.out.len();
            match selected {
                true => asm.item(item, remaining, path),
                false => asm.json(item),
            }
            let comment = comments.get(i).and_then(Value::as_str).unwrap_or_default();
            let written: Option<String> = serde_json::from_slice(&asm.out[start..]).ok();
            if let Some(merged) = written.and_then(|name| merged_ingredient(&name, comment)) {
                asm.out.truncate(start);
                asm.value(&merged);
            }
        });
    }

    /// A selected field: a reference, or an array whose references are resolved one by one.
    fn field(&mut self, value: &Value, remaining: u32, path: &mut Vec<Did>) {
        match value {
            Value::Array(items) => {
                self.array(items, |asm, _, item| asm.item(item, remaining, path))
            }
            _ => self.item(value, remaining, path),
        }
    }

    /// A field's value or an array element: resolved when it is a reference, else as stored.
    fn item(&mut self, value: &Value, remaining: u32, path: &mut Vec<Did>) {
        match as_reference(value) {
            Some(reference) => self.reference(reference, remaining, path),
            None => self.json(value),
        }
    }

    /// Writes `root` after the `placed` roots before it: `true` when its record went in, the
    /// state that kept it out when the caller gets nothing of it.
    fn root(&mut self, root: &Did, placed: usize) -> Result<bool, &'a State> {
        let states = self.states;
        let (found, remaining) = match states.get(root) {
            Some(State::Found(found)) => (found, self.options.depth),
            Some(State::Sealed(found)) => {
                self.list(root.to_string(), Reason::Encrypted);
                (found, 0)
            }
            other => {
                let state = other.unwrap_or(&State::Missing(Reason::Timeout));
                // A root the caller may not read is as good as absent: saying `forbidden` would
                // tell an anonymous client that it exists.
                let reason = match state.reason() {
                    Some(Reason::Forbidden) => Reason::NotFound,
                    reason => reason.unwrap_or(Reason::Error),
                };
                self.list(root.to_string(), reason);
                return Err(state);
            }
        };
        if !self
            .options
            .roots
            .admits(&root.to_string(), &found.record.oip)
        {
            self.list(root.to_string(), Reason::Filtered);
            return Ok(false);
        }
        if placed > 0 && !self.room(0) {
            self.list(root.to_string(), Reason::Budget);
            return Ok(false);
        }
        if placed > 0 {
            self.out.push(b',');
        }
        self.placed += 1;
        let mut path = vec![root.clone()];
        self.record(root, found, remaining, &mut path, true);
        Ok(true)
    }

    /// The record `reference` names when the caller gets it whole; otherwise writes what stands
    /// in for it (the DID, or the caller's own sealed record as stored) and answers `None`.
    fn readable(
        &mut self,
        reference: &str,
        did: &Did,
        remaining: u32,
        path: &mut Vec<Did>,
    ) -> Option<&'a std::sync::Arc<FoundRecord>> {
        let states = self.states;
        match states.get(did) {
            Some(State::Found(found)) => return Some(found),
            Some(State::Sealed(found)) if !(self.options.names_only && remaining == 1) => {
                // The caller's own, sealed with a key that cannot be derived here: as stored.
                self.list(reference.to_string(), Reason::Encrypted);
                if self.placed >= self.limits.records || !self.room(0) {
                    self.value(&reference);
                } else {
                    self.placed += 1;
                    self.record(did, found, 0, path, false);
                }
            }
            Some(state) => {
                self.list(
                    reference.to_string(),
                    state.reason().unwrap_or(Reason::Error),
                );
                self.value(&reference);
            }
            None => {
                // Every reference of a record with levels left was asked for; only a deadline
                // stops the walk before its answer is in.
                self.list(reference.to_string(), Reason::Timeout);
                self.value(&reference);
            }
        }
        None
    }

    /// A record already on the path from the root: its name and `oip` only, marked.
    fn circular(&mut self, did: &Did, found: &FoundRecord) {
        self.circular += 1;
        self.out
            .extend_from_slice(b"{\"_circular\":true,\"data\":{\"basic\":");
        match found.record.data.get("basic") {
            Some(basic) => self.json(basic),
            None => self.out.extend_from_slice(b"{}"),
        }
        self.out.extend_from_slice(b"},\"oip\":");
        self.oip(&found.record.oip, did, false);
        self.out.push(b'}');
    }

    /// What a reference found in a record with `remaining` levels becomes.
    fn reference(&mut self, reference: &str, remaining: u32, path: &mut Vec<Did>) {
        let Ok(did) = Did::parse(reference) else {
            self.list(reference.to_string(), Reason::Error);
            return self.value(&reference);
        };
        let Some(found) = self.readable(reference, &did, remaining, path) else {
            return;
        };
        let child_remaining = remaining - 1;
        if self.options.names_only && child_remaining == 0 {
            // As the old API: a name that is missing or empty leaves the DID.
            return match found.record.data.get("basic").and_then(|b| b.get("name")) {
                Some(Value::String(name)) if !name.is_empty() => self.value(name),
                _ => self.value(&reference),
            };
        }
        if path.contains(&did) {
            return self.circular(&did, found);
        }
        let copy = self
            .written
            .get(&did)
            .filter(|_| child_remaining == 0)
            .cloned();
        let size = copy.as_ref().map_or(0, |range| range.len());
        if self.placed >= self.limits.records || !self.room(size) {
            self.list(reference.to_string(), Reason::Budget);
            return self.value(&reference);
        }
        self.placed += 1;
        if let Some(range) = copy {
            return self.out.extend_from_within(range);
        }
        let start = self.out.len();
        path.push(did.clone());
        self.record(&did, found, child_remaining, path, false);
        path.pop();
        if child_remaining == 0 {
            self.written.insert(did, start..self.out.len());
        }
    }

    /// `oip` with `did` set to the DID the record was reached by, when the stored record lacks it.
    /// Drops the signature and the publisher's key when the request said so. A record reached
    /// by reference has its `creator` in the shape the old API's record cache gave every
    /// referenced record: `creatorHandle`, `didAddress`, `didTx` and `publicKey`, `""` when unset.
    fn oip(&mut self, oip: &Value, did: &Did, root: bool) {
        let Value::Object(stored) = oip else {
            return self.json(oip);
        };
        let mut fields = stored.clone();
        fields
            .entry("did")
            .or_insert_with(|| Value::String(did.to_string()));
        if !self.options.include_sigs {
            fields.remove("signature");
        }
        if let Some(Value::Object(creator)) = fields.get_mut("creator") {
            if !root {
                *creator = ["creatorHandle", "didAddress", "didTx", "publicKey"]
                    .into_iter()
                    .map(|k| {
                        let value = creator.get(k).filter(|v| truthy(v)).cloned();
                        (
                            k.to_string(),
                            value.unwrap_or_else(|| Value::String(String::new())),
                        )
                    })
                    .collect();
            }
            if !self.options.include_pub_keys {
                creator.remove("publicKey");
            }
        }
        self.json(&Value::Object(fields));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::resolver::in_flight::InFlight;
    use crate::resolver::FieldFilter;

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
        let node = json!({"data": data, "oip": {"recordType": "x", "signature": "sig", "creator": {"publicKey": "02k", "didAddress": "d"}}});
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
        Options::plain(depth)
    }

    fn limits(records: usize) -> Limits {
        Limits {
            records,
            bytes: 1 << 20,
            in_flight: InFlight::new(1 << 30).reservation(),
        }
    }

    fn resolve(options: Options) -> Resolution {
        assemble(&[gun("w")], &options, &graph(), limits(1000)).unwrap()
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
        let r = assemble(&[gun("w")], &opts(2), &graph(), limits(2)).unwrap();
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
    fn an_answer_stops_growing_at_its_byte_limit_and_repeats_cost_a_copy() {
        let big = "x".repeat(10_000);
        let refs: Vec<String> = (0..1000).map(|_| "did:gun:big".to_string()).collect();
        let states = HashMap::from([
            (gun("fan"), found("Fan", json!({"post": {"image": refs}}))),
            (gun("big"), found("Big", json!({"blob": {"text": big}}))),
        ]);
        let bounded = Limits {
            records: 10_000,
            bytes: 100_000,
            ..limits(0)
        };
        let r = assemble(&[gun("fan")], &opts(1), &states, bounded).unwrap();
        assert!(
            r.records.len() < 100_000 + 11_000,
            "{} bytes",
            r.records.len()
        );
        let images = parsed(&r)[0]["data"]["post"]["image"].clone();
        let placed: Vec<&Value> = images
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i.is_object())
            .collect();
        assert!((8..=10).contains(&placed.len()), "{}", placed.len());
        assert!(
            placed.windows(2).all(|w| w[0] == w[1]),
            "every copy the same record"
        );
        assert_eq!(images[999], "did:gun:big");
        assert_eq!(
            r.summary
                .unresolved
                .iter()
                .map(|u| (u.did.as_str(), u.reason))
                .collect::<Vec<_>>(),
            [("did:gun:big", Reason::Budget)]
        );
        let roots = assemble(
            &[gun("big"), gun("big"), gun("fan")],
            &opts(0),
            &states,
            Limits {
                records: 10,
                bytes: 15_000,
                ..limits(0)
            },
        )
        .unwrap();
        assert_eq!(roots.count, 2, "roots past the limit are left out too");
    }

    #[test]
    fn answers_in_flight_share_one_budget_until_their_bodies_go() {
        let big = "x".repeat(60_000);
        let refs: Vec<String> = (0..100).map(|i| format!("did:gun:big-{i}")).collect();
        let mut states =
            HashMap::from([(gun("fan"), found("Fan", json!({"post": {"image": refs}})))]);
        for i in 0..100 {
            states.insert(
                gun(&format!("big-{i}")),
                found("Big", json!({"blob": {"text": big}})),
            );
        }
        let budget = InFlight::new(1 << 20);
        let with_budget = || Limits {
            records: 10_000,
            bytes: 8 << 20,
            in_flight: budget.reservation(),
        };
        let placed = |r: &Resolution| {
            parsed(r)[0]["data"]["post"]["image"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i.is_object())
                .count()
        };
        let first = assemble(&[gun("fan")], &opts(1), &states, with_budget()).unwrap();
        assert!(
            (15..=18).contains(&placed(&first)),
            "1 MB holds 17 of 60 kB, one past the last check at most: {}",
            placed(&first)
        );
        assert!(first
            .summary
            .unresolved
            .iter()
            .all(|u| u.reason == Reason::Budget));
        let second = assemble(&[gun("fan")], &opts(1), &states, with_budget()).unwrap();
        assert_eq!(placed(&second), 0, "the budget is held by the first answer");
        drop((first, second));
        let third = assemble(&[gun("fan")], &opts(1), &states, with_budget()).unwrap();
        assert!(placed(&third) >= 14, "given back with the first answer");
    }

    #[test]
    fn several_roots_keep_order_and_skip_the_missing() {
        let states = graph();
        let r = assemble(
            &[gun("q"), gun("nope"), gun("e1")],
            &opts(0),
            &states,
            limits(100),
        )
        .unwrap();
        assert_eq!(r.count, 2);
        assert_eq!(parsed(&r).len(), 2);
        assert_eq!(parsed(&r)[0]["data"]["basic"]["name"], "Barbell");
        assert_eq!(parsed(&r)[1]["data"]["basic"]["name"], "Squat");
        assert_eq!(r.summary.unresolved[0].did, "did:gun:nope");
    }

    #[test]
    fn no_root_found_is_an_empty_answer_or_an_error_that_says_why() {
        let mut states = graph();
        states.insert(gun("private"), State::Missing(Reason::Forbidden));
        let empty = assemble(
            &[gun("nope"), gun("private")],
            &opts(0),
            &states,
            limits(10),
        )
        .unwrap();
        assert_eq!((empty.count, parsed(&empty).len()), (0, 0));
        let reasons: Vec<_> = empty.summary.unresolved.iter().map(|u| u.reason).collect();
        assert_eq!(
            reasons,
            [Reason::NotFound, Reason::NotFound],
            "a root the caller may not read reads like a missing one"
        );
        states.insert(gun("down"), State::Failed(FetchError::CircuitOpen));
        assert!(matches!(
            assemble(&[gun("nope"), gun("down")], &opts(0), &states, limits(10)),
            Err(ResolveError::Upstream(_, FetchError::CircuitOpen))
        ));
        assert!(matches!(
            assemble(&[gun("late")], &opts(0), &states, limits(10)),
            Err(ResolveError::Upstream(_, FetchError::Timeout))
        ));
    }

    #[test]
    fn the_gravest_reason_names_the_error_whatever_the_order() {
        let mut states = graph();
        states.insert(gun("late"), State::Missing(Reason::Timeout));
        states.insert(gun("over"), State::Missing(Reason::Budget));
        assert!(matches!(
            assemble(&[gun("nope"), gun("over")], &opts(0), &states, limits(10)),
            Err(ResolveError::Budget(d)) if d == "did:gun:over"
        ));
        assert!(matches!(
            assemble(&[gun("over"), gun("late"), gun("nope")], &opts(0), &states, limits(10)),
            Err(ResolveError::Upstream(d, FetchError::Timeout)) if d == "did:gun:late"
        ));
        assert!(assemble(&[gun("nope"), gun("nope")], &opts(0), &states, limits(10)).is_ok());
    }

    /// The caller may not read E1's equipment Q, and E2 is their own record, sealed with a key
    /// that cannot be derived here.
    fn judged() -> HashMap<Did, State> {
        let mut states = graph();
        states.insert(gun("q"), State::Missing(Reason::Forbidden));
        let Some(State::Found(e2)) = states.get(&gun("e2")).cloned() else {
            unreachable!()
        };
        states.insert(gun("e2"), State::Sealed(e2));
        states
    }

    #[test]
    fn a_reference_the_caller_may_not_read_stays_its_did_at_every_depth() {
        for names_only in [false, true] {
            let mut o = opts(3);
            o.names_only = names_only;
            let r = assemble(&[gun("w")], &o, &judged(), limits(100)).unwrap();
            let text = parsed(&r)[0].to_string();
            assert!(!text.contains("Barbell"), "{text}");
            assert_eq!(
                parsed(&r)[0]["data"]["workout"]["exercise"][0]["data"]["exercise"]["equipment"],
                json!(["did:gun:q"])
            );
            assert!(r
                .summary
                .unresolved
                .iter()
                .any(|u| u.did == "did:gun:q" && u.reason == Reason::Forbidden));
        }
        let root = assemble(&[gun("q")], &opts(1), &judged(), limits(100)).unwrap();
        assert_eq!(root.count, 0);
        assert_eq!(root.summary.unresolved[0].reason, Reason::NotFound);
    }

    #[test]
    fn the_callers_sealed_record_comes_as_stored_with_its_references_unread() {
        let r = assemble(&[gun("w")], &opts(2), &judged(), limits(100)).unwrap();
        let e2 = &parsed(&r)[0]["data"]["workout"]["exercise"][1];
        assert_eq!(e2["data"]["exercise"]["variationOf"], "did:gun:e1", "{e2}");
        assert!(r
            .summary
            .unresolved
            .iter()
            .any(|u| u.did == "did:gun:e2" && u.reason == Reason::Encrypted));
        let root = assemble(&[gun("e2")], &opts(2), &judged(), limits(100)).unwrap();
        assert_eq!(root.count, 1);
        assert_eq!(parsed(&root)[0]["data"]["exercise"]["gone"], "did:gun:nope");
        assert_eq!(root.summary.unresolved[0].reason, Reason::Encrypted);
    }

    #[test]
    fn signatures_and_public_keys_leave_every_oip_block_on_request() {
        let r = resolve(opts(1));
        let w = &parsed(&r)[0];
        assert_eq!(w["oip"]["signature"], "sig");
        assert_eq!(w["oip"]["creator"]["publicKey"], "02k");
        let mut o = opts(1);
        o.include_sigs = false;
        o.include_pub_keys = false;
        let r = resolve(o);
        for record in [
            &parsed(&r)[0],
            &parsed(&r)[0]["data"]["workout"]["exercise"][0],
        ] {
            assert!(record["oip"].get("signature").is_none(), "{record}");
            assert!(
                record["oip"]["creator"].get("publicKey").is_none(),
                "{record}"
            );
            assert_eq!(record["oip"]["creator"]["didAddress"], "d");
            assert!(record["oip"]["did"].is_string());
        }
    }
}
