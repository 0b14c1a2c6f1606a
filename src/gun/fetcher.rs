//! `GunFetcher`: the one way to read or write a soul past the record cache. It makes sure that at
//! most one request per soul is on its way to the relay at any time: every caller that asks for a
//! soul while it is being fetched waits for that same request and shares its outcome, a failure
//! included. A soul the negative cache knows missing never reaches the relay. Callers look in the
//! record cache first, through `gun::Client`, so a cached record costs no message.

use std::{
    collections::{hash_map::Entry, HashMap},
    rc::Rc,
    sync::Arc,
    time::{Duration, Instant},
};

use actix::prelude::*;
use bytes::Bytes;
use futures::channel::oneshot;
use serde_json::{Map, Value};

use super::metrics::GunMetrics;
use super::{
    error::FetchError,
    feed::{FeedState, FeedStates},
    http_upstream::UpstreamReport,
    lookup::GetResult,
    lookup::{CacheStatus, FetchResult, Fetched, Lookup, UpstreamBudget},
    negative_cache::{Forget, ForgetAll, IsMissing, NegativeCache, RecordMissing},
    record_cache::RecordCache,
    resilience::BreakerState,
    upstream::{Pool, Upstream},
};
use crate::{config::GunConfig, did::Did};

/// Unreadable records remembered at once; past this the oldest are asked again sooner.
const MALFORMED_CAPACITY: usize = 1024;
/// Writes seen on a feed to one soul within this long invalidate it once when the first comes
/// and once more when the window ends: 100 writes a second to a hot soul otherwise left every
/// read of it a miss (6,859 answers/s fell to 10). A write is seen within this, at worst.
const COALESCE_WRITES: Duration = Duration::from_secs(1);
/// Souls whose writes are being coalesced at most; past it a write invalidates at once.
const COALESCING_MAX: usize = 16_384;

struct InFlight {
    waiters: Vec<oneshot::Sender<FetchResult>>,
    /// Cleared when the soul is written while this fetch is on its way: its answer predates the
    /// write and must not be cached.
    cacheable: bool,
    /// Led past the negative cache (`forceRefresh`): a record found must leave it.
    fresh: bool,
}

pub struct GunFetcher {
    upstream: Rc<Upstream>,
    /// `resolver.oip_api`, for DIDs of other methods; they share the coalescing and caches.
    indexer: Option<Rc<Pool>>,
    negative: Addr<NegativeCache>,
    records: Arc<RecordCache>,
    in_flight: HashMap<Did, InFlight>,
    /// Listings on their way, by query and `Authorization`.
    listings: HashMap<(String, Option<String>), ListingWaiters>,
    /// Records the relay answered in a form that does not decode, until when, and why: asked
    /// again only after `malformed_ttl`, so a poisoned record costs the relay little.
    malformed: quick_cache::unsync::Cache<Did, (Instant, String)>,
    malformed_ttl: Duration,
    /// Souls written on a feed in the last `COALESCE_WRITES`, and whether again since.
    coalescing: HashMap<Did, bool>,
    failure_log_interval: Duration,
    feeds: Arc<FeedStates>,
    metrics: Arc<GunMetrics>,
}

/// Read one record past the record cache: a soul from the relay (`Did::Gun`), or another
/// method's DID from the indexer. `Client::fetch` is how callers send it.
#[derive(Message)]
#[rtype(result = "FetchResult")]
pub struct Fetch {
    pub did: Did,
    /// A resolution's budget of relay requests; `None` for the relay proxy's single reads.
    pub budget: Option<UpstreamBudget>,
    /// Past the caches (`forceRefresh`): a fetch already on its way is still shared, and what
    /// this one finds refreshes the caches.
    pub fresh: bool,
}

/// A listing from the indexer (`resolver.oip_api`): its answer to `GET /api/records?{query}`,
/// asked with the caller's `Authorization` so that the indexer's own access rules apply.
#[derive(Message)]
#[rtype(result = "Result<Bytes, FetchError>")]
pub struct List {
    /// The path and query asked of the indexer: `/api/records?...`.
    pub target: String,
    pub authorization: Option<String>,
}

/// Souls written elsewhere (a relay's write feed): each leaves both caches, and a fetch of it on
/// its way must not cache what it finds, since its answer may predate the write.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Invalidate(pub Vec<String>);

/// Write one node; on success the soul leaves both caches.
#[derive(Message)]
#[rtype(result = "Result<Bytes, FetchError>")]
pub struct Put {
    pub soul: String,
    pub node: Map<String, Value>,
}

/// How the relays look from here, from their breakers and last answers: asking never sends a
/// request.
#[derive(Message)]
#[rtype(result = "RelayHealth")]
pub struct RelayStatus;

pub struct RelayHealth {
    /// The service's view: reachable while any relay is.
    pub state: RelayState,
    /// The best breaker among the relays (`None` for the file source).
    pub circuit: Option<BreakerState>,
    /// The write feeds: live while any relay's is.
    pub watch: FeedState,
    pub relays: Vec<RelayReport>,
}

pub struct RelayReport {
    pub url: String,
    pub state: RelayState,
    pub circuit: BreakerState,
    pub watch: FeedState,
    /// What makes this relay misconfigured, while it is.
    pub problem: Option<String>,
}

impl RelayHealth {
    fn from_reports(reports: Vec<UpstreamReport>, feeds: &FeedStates) -> Self {
        let relays: Vec<RelayReport> = reports
            .into_iter()
            .enumerate()
            .map(|(slot, r)| RelayReport {
                watch: feeds.get(slot),
                state: match (&r.misconfigured, r.circuit) {
                    (Some(_), _) => RelayState::Misconfigured,
                    (None, BreakerState::Closed) => RelayState::Reachable,
                    (None, BreakerState::Open | BreakerState::HalfOpen) => RelayState::Unreachable,
                },
                url: r.url,
                circuit: r.circuit,
                problem: r.misconfigured,
            })
            .collect();
        let any = |state| relays.iter().any(|r| r.state == state);
        let state = if relays.is_empty() {
            RelayState::File
        } else if any(RelayState::Reachable) {
            RelayState::Reachable
        } else if relays.iter().all(|r| r.state == RelayState::Misconfigured) {
            RelayState::Misconfigured
        } else {
            RelayState::Unreachable
        };
        let rank = |c: BreakerState| match c {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        };
        let circuit = relays.iter().map(|r| r.circuit).min_by_key(|c| rank(*c));
        Self {
            state,
            circuit,
            watch: feeds.overall(),
            relays,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayState {
    File,
    Reachable,
    /// The breaker is open or probing.
    Unreachable,
    /// The relay URL answers 404s that are not the relay's (a wrong path, another service).
    Misconfigured,
}

impl RelayState {
    pub fn as_str(self) -> &'static str {
        match self {
            RelayState::File => "file",
            RelayState::Reachable => "reachable",
            RelayState::Unreachable => "unreachable",
            RelayState::Misconfigured => "misconfigured",
        }
    }
}

/// Where one fetch goes, with the key it asks for there: a soul of the relay (or file) for
/// `did:gun:`, the whole DID of the indexer for other methods.
enum Route {
    Upstream(Rc<Upstream>, String),
    Indexer(Rc<Pool>, String),
}

impl GunFetcher {
    /// `upstream` and `indexer` are built on the fetcher's own thread: awc clients are not `Send`.
    pub fn new(
        upstream: Upstream,
        indexer: Option<Pool>,
        negative: Addr<NegativeCache>,
        records: Arc<RecordCache>,
        gun: &GunConfig,
        feeds: Arc<FeedStates>,
        metrics: Arc<GunMetrics>,
    ) -> Self {
        Self {
            upstream: Rc::new(upstream),
            indexer: indexer.map(Rc::new),
            negative,
            records,
            in_flight: HashMap::new(),
            listings: HashMap::new(),
            malformed: quick_cache::unsync::Cache::new(MALFORMED_CAPACITY),
            malformed_ttl: Duration::from_secs(gun.malformed_ttl_secs),
            coalescing: HashMap::new(),
            failure_log_interval: Duration::from_secs(gun.failure_log_interval_secs),
            feeds,
            metrics,
        }
    }

    /// `key` was written: out of every cache, and a fetch of it on its way caches nothing.
    fn forget(&mut self, key: Did) {
        self.records.remove(&key);
        self.malformed.remove(&key);
        if let Some(flight) = self.in_flight.get_mut(&key) {
            flight.cacheable = false;
        }
        self.negative.do_send(Forget(key));
    }

    /// Why `key` is remembered as unreadable, while it is.
    fn remembered_malformed(&mut self, key: &Did) -> Option<String> {
        match self.malformed.get(key) {
            Some((until, reason)) if *until > Instant::now() => Some(reason.clone()),
            Some(_) => {
                self.malformed.remove(key);
                None
            }
            None => None,
        }
    }

    /// Starts the one fetch for `key` that every waiter shares.
    fn lead(&mut self, key: Did, route: Route, fresh: bool, ctx: &mut Context<Self>) {
        let negative = self.negative.clone();
        let asked = key.clone();
        let work = async move {
            // Mailbox order makes this safe: a 404 recorded by an earlier fetch of this key was
            // sent to the negative cache before this lookup could be.
            let asking = IsMissing {
                soul: asked.clone(),
                refresh: fresh,
            };
            if negative.send(asking).await.unwrap_or(false) {
                return (Ok(None), CacheStatus::Negative);
            }
            let result = match route {
                Route::Upstream(upstream, soul) => upstream.get(&soul).await,
                Route::Indexer(indexer, did) => indexer.get(&did).await,
            };
            (result, CacheStatus::Miss)
        };
        ctx.spawn(
            work.into_actor(self)
                .map(move |(result, cache), this, _| this.complete(key, result, cache)),
        );
    }

    fn complete(&mut self, key: Did, result: GetResult, cache: CacheStatus) {
        let Some(flight) = self.in_flight.remove(&key) else {
            return;
        };
        let outcome = match result {
            Ok(Some(found)) => {
                // A record answered before its links were written is read again next time.
                if flight.cacheable && !found.record.partial {
                    // A forced refresh may bring a changed record before the old one expired:
                    // only then does what was built from the old one go (any client may ask for
                    // a refresh, so an unchanged record must not empty the answer cache).
                    let changed = self
                        .records
                        .get_stale(&key)
                        .is_some_and(|old| old.record != found.record);
                    if flight.fresh && changed {
                        self.records.remove(&key);
                    }
                    self.records.insert(key.clone(), found.clone());
                }
                // A fetch that asked the negative cache found it without the soul, and only this
                // fetch could have added it since; one that went past it must clear it.
                if flight.fresh {
                    self.negative.do_send(Forget(key));
                }
                Ok(Fetched {
                    lookup: Lookup::Found(found),
                    cache,
                })
            }
            Ok(None) => {
                if cache == CacheStatus::Miss && flight.cacheable {
                    self.negative.do_send(RecordMissing(key));
                }
                Ok(Fetched {
                    lookup: Lookup::NotFound,
                    cache,
                })
            }
            Err(e) if e.relay_unavailable() => match self.records.get_stale(&key) {
                Some(found) => Ok(Fetched {
                    lookup: Lookup::Found(found),
                    cache: CacheStatus::Stale,
                }),
                None => Err(e),
            },
            Err(FetchError::RecordMalformed(reason)) => {
                if flight.cacheable {
                    let until = Instant::now() + self.malformed_ttl;
                    self.malformed.insert(key, (until, reason.clone()));
                }
                Err(FetchError::RecordMalformed(reason))
            }
            Err(e) => Err(e),
        };
        for waiter in flight.waiters {
            let _ = waiter.send(outcome.clone());
        }
    }
}

impl Actor for GunFetcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Callers of a hot soul pile up here while the relay is slow; let the mailbox hold them.
        ctx.set_mailbox_capacity(65_536);
        ctx.run_interval(self.failure_log_interval, |this, _| {
            this.upstream.log_failures();
            if let Some(indexer) = &this.indexer {
                indexer.log_failures();
            }
        });
    }
}

impl Handler<Fetch> for GunFetcher {
    type Result = ResponseFuture<FetchResult>;

    fn handle(
        &mut self,
        Fetch {
            did: key,
            budget,
            fresh,
        }: Fetch,
        ctx: &mut Self::Context,
    ) -> Self::Result {
        if let Some(reason) = self.remembered_malformed(&key) {
            return Box::pin(futures::future::ready(Err(FetchError::RecordMalformed(
                reason,
            ))));
        }
        // Asked again here, where records are stored: a refresh that was on its way when the
        // caller looked may have brought it since.
        if let Some(found) = fresh.then(|| self.records.refreshed_lately(&key)).flatten() {
            let hit = Fetched {
                lookup: Lookup::Found(found),
                cache: CacheStatus::Hit,
            };
            return Box::pin(futures::future::ready(Ok(hit)));
        }
        let route = match (&key, &self.indexer) {
            (Did::Gun(soul), _) => Route::Upstream(self.upstream.clone(), soul.clone()),
            (Did::Other(did), Some(indexer)) => Route::Indexer(indexer.clone(), did.clone()),
            (Did::Other(_), None) => {
                return Box::pin(futures::future::ready(Err(FetchError::Unsupported)))
            }
        };
        let (tx, rx) = oneshot::channel();
        match self.in_flight.entry(key) {
            Entry::Occupied(mut flight) => {
                flight.get_mut().waiters.push(tx);
                self.metrics.coalesced();
            }
            Entry::Vacant(slot) => {
                // Joining a fetch on its way is free; leading one may cost a relay request (the
                // negative cache may still answer it), so it takes one from the budget.
                if budget.is_some_and(|b| !b.take()) {
                    return Box::pin(futures::future::ready(Err(FetchError::OverBudget)));
                }
                let key = slot.key().clone();
                slot.insert(InFlight {
                    waiters: vec![tx],
                    cacheable: true,
                    fresh,
                });
                self.lead(key, route, fresh, ctx);
            }
        }
        Box::pin(async move { rx.await.unwrap_or(Err(FetchError::Cancelled)) })
    }
}

/// Those waiting for one listing: the same query with the same `Authorization`.
type ListingWaiters = Vec<oneshot::Sender<Result<Bytes, FetchError>>>;

impl Handler<List> for GunFetcher {
    type Result = ResponseFuture<Result<Bytes, FetchError>>;

    /// Identical listings asked at once share one request to the indexer, as reads of one soul
    /// share one to the relay.
    fn handle(&mut self, list: List, ctx: &mut Self::Context) -> Self::Result {
        let Some(indexer) = self.indexer.clone() else {
            return Box::pin(futures::future::ready(Err(FetchError::Unsupported)));
        };
        let (tx, rx) = oneshot::channel();
        let key = (list.target, list.authorization);
        match self.listings.entry(key.clone()) {
            Entry::Occupied(mut waiting) => {
                waiting.get_mut().push(tx);
                self.metrics.coalesced();
            }
            Entry::Vacant(slot) => {
                slot.insert(vec![tx]);
                let (target, authorization) = key.clone();
                let work = async move { indexer.list(&target, authorization).await };
                ctx.spawn(work.into_actor(self).map(move |answer, this, _| {
                    for waiter in this.listings.remove(&key).unwrap_or_default() {
                        let _ = waiter.send(answer.clone());
                    }
                }));
            }
        }
        Box::pin(async move { rx.await.unwrap_or(Err(FetchError::Cancelled)) })
    }
}

impl Handler<Put> for GunFetcher {
    type Result = ResponseActFuture<Self, Result<Bytes, FetchError>>;

    fn handle(&mut self, put: Put, _: &mut Self::Context) -> Self::Result {
        let upstream = self.upstream.clone();
        let soul = put.soul.clone();
        let write = async move { upstream.put(&put.soul, put.node).await };
        Box::pin(write.into_actor(self).map(move |result, this, _| {
            let answer = result?;
            this.forget(Did::Gun(soul));
            Ok(answer)
        }))
    }
}

impl GunFetcher {
    /// `key` was written on a relay's feed: forgotten now, unless it was lately, in which case
    /// once more when that window ends.
    fn written(&mut self, key: Did, ctx: &mut Context<Self>) {
        if let Some(again) = self.coalescing.get_mut(&key) {
            *again = true;
            return;
        }
        self.forget(key.clone());
        if self.coalescing.len() < COALESCING_MAX {
            self.coalescing.insert(key.clone(), false);
            ctx.run_later(COALESCE_WRITES, move |this, ctx| {
                if this.coalescing.remove(&key) == Some(true) {
                    this.written(key, ctx);
                }
            });
        }
    }

    /// Everything anyone may have written: out of every cache.
    fn forget_all(&mut self) {
        self.records.clear();
        self.malformed.clear();
        for flight in self.in_flight.values_mut() {
            flight.cacheable = false;
        }
        self.negative.do_send(ForgetAll);
    }
}

impl Handler<Invalidate> for GunFetcher {
    type Result = ();

    fn handle(&mut self, Invalidate(souls): Invalidate, ctx: &mut Self::Context) {
        for soul in souls {
            self.written(Did::Gun(soul), ctx);
        }
    }
}

/// An operator's forget (`DELETE /api/cache/negative/{soul}`): the soul leaves every cache and
/// memory, as a write would. Answers whether it was known missing.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct ForgetSoul(pub Did);

impl Handler<ForgetSoul> for GunFetcher {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, ForgetSoul(key): ForgetSoul, _: &mut Self::Context) -> Self::Result {
        self.records.remove(&key);
        self.malformed.remove(&key);
        if let Some(flight) = self.in_flight.get_mut(&key) {
            flight.cacheable = false;
        }
        let negative = self.negative.send(Forget(key));
        Box::pin(async move { negative.await.unwrap_or(false) })
    }
}

/// A relay's feed said more was written than is worth forgetting one by one (a frame past
/// `gun.watch_max_souls_per_frame`): every cache is dropped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct InvalidateAll;

impl Handler<InvalidateAll> for GunFetcher {
    type Result = ();

    fn handle(&mut self, _: InvalidateAll, _: &mut Self::Context) {
        self.forget_all();
    }
}

impl Handler<RelayStatus> for GunFetcher {
    type Result = MessageResult<RelayStatus>;

    fn handle(&mut self, _: RelayStatus, _: &mut Self::Context) -> Self::Result {
        MessageResult(RelayHealth::from_reports(
            self.upstream.reports(),
            &self.feeds,
        ))
    }
}
