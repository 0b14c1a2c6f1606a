//! The gather phase: fetches a request's records level by level, each distinct DID once; reads
//! the parts of a record GUN keeps in nodes of their own; and judges every record it reaches
//! for the caller before looking at its references, so nothing is fetched on behalf of a record
//! the caller may not read.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{stream, StreamExt};

use super::{
    assembler,
    error::ResolveError,
    in_flight::InFlight,
    options::Options,
    references::for_each_reference,
    resolution::{Reason, Resolution},
    state::State,
};
use crate::{
    access::{
        crypt::{self, Decryptor},
        rules::{judge, Verdict},
        Caller,
    },
    config::ResolverConfig,
    did::Did,
    gun::{
        self, record::Unread, CacheStatus, FetchError, FoundRecord, Lookup, Record, UpstreamBudget,
    },
};

/// How deep the parts of a record kept in nodes of their own are followed: `data`, its
/// categories, a value nested in one.
const LINK_ROUNDS: usize = 4;

/// What looking up one DID cost, for the `fetched` and `fromCache` figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cost {
    /// Not looked up at all (no source for its method).
    NotAsked,
    /// Answered by the record or negative cache.
    Cached,
    /// Went to (or shared a request to) the relay or indexer.
    Upstream,
    /// The relay could not answer; a record past its TTL stood in.
    Stale,
}

#[derive(Default)]
pub(super) struct Gathered {
    pub states: HashMap<Did, State>,
    /// Lookups made, whatever the caller may see of them: what the budget counts.
    pub fetched: usize,
    /// What each lookup cost.
    costs: Vec<(Did, Cost)>,
    /// Every DID whose record (or part of one) was read, whatever the caller may see of it: the
    /// answer depends on each.
    pub read: Vec<Did>,
}

/// What every request of one resolver gathers with.
pub(super) struct Walk {
    pub gun: gun::Client,
    pub config: ResolverConfig,
    pub crypt: Arc<Decryptor>,
    pub in_flight: InFlight,
}

impl Walk {
    fn limits(&self) -> assembler::Limits {
        assembler::Limits {
            records: self.config.max_records,
            bytes: self.config.max_answer_bytes,
            in_flight: self.in_flight.reservation(),
        }
    }

    /// Gathers and assembles `roots`, of which `known` are known already.
    pub(super) async fn resolve(
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
        resolution.fresh_until = known_found
            .iter()
            .chain(&gathered.read)
            .try_fold(None, |earliest: Option<Instant>, did| {
                let expiry = self.gun.expiry(did)?;
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

/// What a resolution tells the caller it cost: `fetched`, `fromCache`, `stale`.
pub(super) struct Figures {
    pub fetched: usize,
    pub from_cache: usize,
    pub stale: usize,
}

impl Gathered {
    /// What the lookups cost, as the caller may be told: a record the caller may not read counts
    /// as one lookup, as a missing one would, never with the parts it is kept in.
    pub fn figures(&self) -> Figures {
        let hidden: Vec<&str> = self
            .read
            .iter()
            .filter(|did| {
                !matches!(
                    self.states.get(did),
                    Some(State::Found(_) | State::Sealed(_))
                )
            })
            .filter_map(|did| match did {
                Did::Gun(soul) => Some(soul.as_str()),
                Did::Other(_) => None,
            })
            .collect();
        let part_of_hidden = |did: &Did| match did {
            Did::Gun(soul) => hidden.iter().any(|h| {
                soul.strip_prefix(h)
                    .is_some_and(|rest| rest.starts_with('/'))
            }),
            Did::Other(_) => false,
        };
        let mut figures = Figures {
            fetched: 0,
            from_cache: 0,
            stale: 0,
        };
        for (_, cost) in self.costs.iter().filter(|(did, _)| !part_of_hidden(did)) {
            figures.fetched += usize::from(*cost != Cost::NotAsked);
            figures.from_cache += usize::from(*cost == Cost::Cached);
            figures.stale += usize::from(*cost == Cost::Stale);
        }
        figures
    }
}

impl Walk {
    /// `known` holds what is known already (a listing's records): those are not fetched, but
    /// judged for `caller` like the rest.
    pub async fn gather(
        &self,
        roots: &[Did],
        known: HashMap<Did, State>,
        options: &Options,
        caller: &Caller,
        deadline: Instant,
    ) -> Gathered {
        let budget = UpstreamBudget::new(self.config.max_upstream_per_request);
        let mut out = Gathered {
            states: known,
            ..Gathered::default()
        };
        let mut expanded: HashSet<Did> = HashSet::new();
        let mut judged: HashSet<Did> = HashSet::new();
        let mut level: Vec<(Did, u32)> = roots.iter().map(|d| (d.clone(), options.depth)).collect();
        while !level.is_empty() {
            let mut wanted = unasked(&level, &mut out.states);
            let room = self.config.max_records.saturating_sub(out.fetched);
            for over in wanted.split_off(room.min(wanted.len())) {
                out.states.insert(over, State::Missing(Reason::Budget));
            }
            let finished = self
                .fetch_level(wanted, options, &budget, deadline, &mut out)
                .await;
            if !finished {
                break;
            }
            let found: Vec<Did> = level
                .iter()
                .filter(|(did, _)| judged.insert(did.clone()))
                .map(|(did, _)| did.clone())
                .collect();
            if !self
                .read_parts(&found, options, &budget, deadline, &mut out)
                .await
            {
                break;
            }
            self.judge(&found, caller, &mut out).await;
            let next = next_level(level, &mut expanded, &out.states, options);
            level = next;
        }
        out
    }

    /// Reads the parts of `dids`' records that GUN keeps in nodes of their own (through the
    /// same caches, coalescing and budget, each counted) and puts each record together.
    /// Returns false when the deadline came first.
    async fn read_parts(
        &self,
        dids: &[Did],
        options: &Options,
        budget: &UpstreamBudget,
        deadline: Instant,
        out: &mut Gathered,
    ) -> bool {
        let with_parts: Vec<(Did, String)> = dids
            .iter()
            .filter_map(|did| match (did, out.states.get(did)) {
                (Did::Gun(soul), Some(State::Found(found)))
                    if !found.record.links(soul).is_empty() =>
                {
                    Some((did.clone(), soul.clone()))
                }
                _ => None,
            })
            .collect();
        if with_parts.is_empty() {
            return true;
        }
        let mut finished = true;
        for _ in 0..LINK_ROUNDS {
            let wanted = unread_parts(&with_parts, &out.states);
            if wanted.is_empty() {
                break;
            }
            finished = self
                .fetch_level(wanted, options, budget, deadline, out)
                .await;
            if !finished {
                break;
            }
        }
        for (did, soul) in with_parts {
            if let Some(state) = assembled(&did, &soul, &out.states) {
                out.states.insert(did, state);
            }
        }
        finished
    }

    /// What `caller` may see of each of `dids`' records: as it is, decrypted, as stored (theirs,
    /// but sealed with a key that cannot be derived here), or nothing. A record caught before
    /// its `data` was written is missing.
    async fn judge(&self, dids: &[Did], caller: &Caller, out: &mut Gathered) {
        for did in dids {
            let Some(State::Found(found)) = out.states.get(did) else {
                continue;
            };
            let record = &found.record;
            let judged = if record.partial {
                State::Missing(Reason::NotFound)
            } else {
                match judge(&record.data, &record.meta, caller.key()) {
                    Verdict::Public | Verdict::Owner => continue,
                    Verdict::Forbidden => State::Missing(Reason::Forbidden),
                    Verdict::Decrypt => self.decrypt(found.clone(), caller).await,
                }
            };
            out.states.insert(did.clone(), judged);
        }
    }

    /// The caller's own encrypted record, opened with their key, or as stored when it does not
    /// open (a password-salted or organization key).
    async fn decrypt(&self, found: Arc<FoundRecord>, caller: &Caller) -> State {
        let Some(owner) = caller.key() else {
            return State::Missing(Reason::Forbidden);
        };
        let key = self.crypt.key(owner).await;
        match crypt::open(&key, &found.record.data) {
            Ok(data) => {
                let mut opened = Record {
                    data,
                    ..found.record.clone()
                };
                opened.decode_data();
                State::Found(Arc::new(FoundRecord::made(opened)))
            }
            Err(e) => {
                log::debug!("a record encrypted by its reader stays sealed: {e}");
                State::Sealed(found)
            }
        }
    }

    /// Fetches one level concurrently. Returns false when the deadline came first: whatever had
    /// not arrived is marked `timeout`, and no deeper level is fetched.
    async fn fetch_level(
        &self,
        wanted: Vec<Did>,
        options: &Options,
        budget: &UpstreamBudget,
        deadline: Instant,
        out: &mut Gathered,
    ) -> bool {
        let pending: Vec<Did> = wanted.clone();
        let mut arrivals = stream::iter(wanted)
            .map(|did| self.fetch_one(did, budget.clone(), options))
            .buffer_unordered(self.config.concurrency);
        let timer = actix_web::rt::time::sleep_until(deadline.into());
        futures::pin_mut!(timer);
        loop {
            match futures::future::select(arrivals.next(), timer.as_mut()).await {
                futures::future::Either::Left((Some((did, state, cost)), _)) => {
                    out.fetched += usize::from(cost != Cost::NotAsked);
                    out.costs.push((did.clone(), cost));
                    if matches!(state, State::Found(_)) {
                        out.read.push(did.clone());
                    }
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

    async fn fetch_one(
        &self,
        did: Did,
        budget: UpstreamBudget,
        options: &Options,
    ) -> (Did, State, Cost) {
        let (state, cost) = match self
            .gun
            .fetch(did.clone(), Some(budget), options.force_refresh)
            .await
        {
            Ok(fetched) => {
                let cost = match fetched.cache {
                    CacheStatus::Miss => Cost::Upstream,
                    CacheStatus::Stale => Cost::Stale,
                    CacheStatus::Hit | CacheStatus::Negative => Cost::Cached,
                };
                let state = match fetched.lookup {
                    Lookup::Found(found) => State::Found(found),
                    Lookup::NotFound => State::Missing(Reason::NotFound),
                };
                (state, cost)
            }
            // No source for its method, or no relay requests left for this request: nothing was
            // asked.
            Err(FetchError::Unsupported) => (State::Missing(Reason::Unsupported), Cost::NotAsked),
            Err(FetchError::OverBudget) => (State::Missing(Reason::Budget), Cost::NotAsked),
            Err(e) => (State::Failed(e), Cost::Upstream),
        };
        (did, state, cost)
    }
}

/// The DIDs of `level` not asked for yet, each once. `<soul>/<key>` is where GUN keeps a part of
/// the record at `<soul>`: read as a record of its own it would skip that record's access rules,
/// so it is missing.
fn unasked(level: &[(Did, u32)], states: &mut HashMap<Did, State>) -> Vec<Did> {
    let mut wanted: Vec<Did> = Vec::new();
    let mut seen: HashSet<&Did> = HashSet::new();
    for (did, _) in level {
        if states.contains_key(did) || !seen.insert(did) {
            continue;
        }
        if matches!(did, Did::Gun(soul) if soul.contains('/')) {
            states.insert(did.clone(), State::Missing(Reason::NotFound));
            continue;
        }
        wanted.push(did.clone());
    }
    wanted
}

/// The references of `level`'s readable records with levels left, each record expanded once.
fn next_level(
    level: Vec<(Did, u32)>,
    expanded: &mut HashSet<Did>,
    states: &HashMap<Did, State>,
    options: &Options,
) -> Vec<(Did, u32)> {
    let mut next = Vec::new();
    for (did, remaining) in level {
        if remaining == 0 || !expanded.insert(did.clone()) {
            continue;
        }
        if let Some(State::Found(found)) = states.get(&did) {
            for_each_reference(&found.record.data, &options.fields, |reference| {
                if let Ok(child) = Did::parse(reference) {
                    next.push((child, remaining - 1));
                }
            });
        }
    }
    next
}

fn part_node(states: &HashMap<Did, State>, soul: &str) -> Option<serde_json::Value> {
    match states.get(&Did::Gun(soul.to_string())) {
        Some(State::Found(part)) => part.node(),
        _ => None,
    }
}

/// The linked parts of `with_parts`' records, and of the parts read so far, not yet fetched.
fn unread_parts(with_parts: &[(Did, String)], states: &HashMap<Did, State>) -> Vec<Did> {
    let mut wanted: Vec<Did> = Vec::new();
    for (did, soul) in with_parts {
        let Some(State::Found(found)) = states.get(did) else {
            continue;
        };
        let so_far = found
            .record
            .filled(soul, &|s| part_node(states, s), Unread::Keep);
        let mut pending = found.record.links(soul);
        pending.extend(so_far.links(soul));
        for link in pending {
            let link = Did::Gun(link);
            if !states.contains_key(&link) && !wanted.contains(&link) {
                wanted.push(link);
            }
        }
    }
    wanted
}

/// The record at `did` with its parts filled in, or why it cannot be. A record is judged whole
/// or not at all: a part not read (the budget, the deadline, a failure, a part not on the relay
/// yet) may be the one that makes it private.
fn assembled(did: &Did, soul: &str, states: &HashMap<Did, State>) -> Option<State> {
    let Some(State::Found(found)) = states.get(did) else {
        return None;
    };
    let nodes = |s: &str| part_node(states, s);
    let mut parts = found.record.links(soul);
    parts.extend(found.record.filled(soul, &nodes, Unread::Keep).links(soul));
    let unread = parts
        .into_iter()
        .map(|l| states.get(&Did::Gun(l)))
        .find(|state| !matches!(state, Some(State::Found(_))));
    Some(match unread {
        None => {
            let whole = found.record.filled(soul, &nodes, Unread::Drop);
            State::Found(Arc::new(FoundRecord::made(whole)))
        }
        Some(Some(State::Failed(e))) => State::Failed(e.clone()),
        Some(Some(State::Missing(reason))) => State::Missing(*reason),
        Some(_) => State::Missing(Reason::Timeout),
    })
}
