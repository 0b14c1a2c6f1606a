//! The gather phase: fetches a request's records level by level, each distinct DID once.

use std::{
    collections::{HashMap, HashSet},
    time::Instant,
};

use futures::{stream, StreamExt};

use super::{for_each_reference, Options, Reason, State};
use crate::{
    config::ResolverConfig,
    did::Did,
    gun::{fetcher::Reader, CacheSource, FetchError, Lookup, UpstreamBudget},
};

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
    pub fetched: usize,
    pub from_cache: usize,
    /// Records answered stale because the relay could not answer.
    pub stale: usize,
}

/// What every request of one resolver gathers with.
pub(super) struct Walk {
    pub reader: Reader,
    pub config: ResolverConfig,
}

impl Walk {
    /// `known` holds what is known already (a listing's records): those are not fetched.
    pub async fn gather(
        &self,
        roots: &[Did],
        known: HashMap<Did, State>,
        options: &Options,
        deadline: Instant,
    ) -> Gathered {
        let budget = UpstreamBudget::new(self.config.max_upstream_per_request);
        let mut out = Gathered {
            states: known,
            ..Gathered::default()
        };
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
            let finished = self
                .fetch_level(wanted, options, &budget, deadline, &mut out)
                .await;
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
                    out.from_cache += usize::from(cost == Cost::Cached);
                    out.stale += usize::from(cost == Cost::Stale);
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
            .reader
            .fetch(did.clone(), Some(budget), options.force_refresh)
            .await
        {
            Ok(fetched) => {
                let cost = match fetched.source {
                    CacheSource::Miss => Cost::Upstream,
                    CacheSource::Stale => Cost::Stale,
                    CacheSource::Hit | CacheSource::Negative => Cost::Cached,
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
