//! `GunFetcher`: the one way to read or write a soul. It answers from the record cache, else makes
//! sure that at most one request per soul is on its way to the relay at any time: every caller
//! that asks for a soul while it is being fetched waits for that same request and shares its
//! outcome, a failure included. A soul the negative cache knows missing never reaches the relay.

use std::{
    collections::{hash_map::Entry, HashMap},
    rc::Rc,
    sync::{atomic::Ordering::Relaxed, Arc},
    time::Duration,
};

use actix::prelude::*;
use bytes::Bytes;
use futures::channel::oneshot;
use serde_json::Value;

use super::{
    negative_cache::{Forget, IsMissing, NegativeCache, RecordMissing},
    record_cache::RecordCache,
    resilience::BreakerState,
    upstream::{FileStore, GetResult, Relay, Upstream},
    CacheSource, FetchError, FetchResult, Fetched, Lookup,
};
use crate::{
    config::{Config, GunConfig},
    metrics::Metrics,
};

/// What the fetcher reads from; built on the fetcher's own thread, since the relay client is not
/// `Send`.
pub enum Source {
    File(FileStore),
    Relay(GunConfig),
}

struct InFlight {
    waiters: Vec<oneshot::Sender<FetchResult>>,
    /// Cleared when the soul is written while this fetch is on its way: its answer predates the
    /// write and must not be cached.
    cacheable: bool,
}

pub struct GunFetcher {
    upstream: Rc<Upstream>,
    negative: Addr<NegativeCache>,
    records: RecordCache,
    in_flight: HashMap<String, InFlight>,
    metrics: Arc<Metrics>,
}

/// Read one soul.
#[derive(Message)]
#[rtype(result = "FetchResult")]
pub struct Fetch(pub String);

/// Write one node; on success the soul leaves both caches.
#[derive(Message)]
#[rtype(result = "Result<Bytes, FetchError>")]
pub struct Put {
    pub soul: String,
    pub node: Value,
    /// The request body as the client sent it, forwarded unchanged.
    pub body: Bytes,
}

/// How the relay looks from here, from the breaker: asking never sends a request.
#[derive(Message)]
#[rtype(result = "RelayState")]
pub struct RelayStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayState {
    File,
    Reachable,
    /// The breaker is open or probing.
    Unreachable,
}

impl RelayState {
    pub fn as_str(self) -> &'static str {
        match self {
            RelayState::File => "file",
            RelayState::Reachable => "reachable",
            RelayState::Unreachable => "unreachable",
        }
    }
}

impl GunFetcher {
    pub fn new(
        source: Source,
        config: &Config,
        negative: Addr<NegativeCache>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let upstream = match source {
            Source::File(store) => Upstream::File(store.into()),
            Source::Relay(gun) => Upstream::Relay(Box::new(Relay::new(&gun, metrics.clone()))),
        };
        let records = RecordCache::new(
            Duration::from_secs(config.record_cache.ttl_secs),
            config.record_cache.capacity_bytes,
            metrics.clone(),
        );
        Self {
            upstream: Rc::new(upstream),
            negative,
            records,
            in_flight: HashMap::new(),
            metrics,
        }
    }

    /// Starts the one fetch for `soul` that every waiter shares.
    fn lead(&mut self, soul: String, ctx: &mut Context<Self>) {
        let negative = self.negative.clone();
        let upstream = self.upstream.clone();
        let key = soul.clone();
        let work = async move {
            // Mailbox order makes this safe: a 404 recorded by an earlier fetch of this soul was
            // sent to the negative cache before this lookup could be.
            if negative.send(IsMissing(key.clone())).await.unwrap_or(false) {
                return (Ok(None), CacheSource::Negative);
            }
            (upstream.get(&key).await, CacheSource::Miss)
        };
        ctx.spawn(
            work.into_actor(self)
                .map(move |(result, source), this, _| this.complete(soul, result, source)),
        );
    }

    fn complete(&mut self, soul: String, result: GetResult, source: CacheSource) {
        let Some(flight) = self.in_flight.remove(&soul) else {
            return;
        };
        let outcome = match result {
            Ok(Some(found)) => {
                if flight.cacheable {
                    self.records.insert(&soul, found.clone());
                }
                // No need to tell the negative cache: it was asked just now and did not hold
                // the soul, and only this fetch could have added it since.
                Ok(Fetched {
                    lookup: Lookup::Found(found),
                    source,
                })
            }
            Ok(None) => {
                if source == CacheSource::Miss && flight.cacheable {
                    self.negative.do_send(RecordMissing(soul));
                }
                Ok(Fetched {
                    lookup: Lookup::NotFound,
                    source,
                })
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
    }
}

impl Handler<Fetch> for GunFetcher {
    type Result = ResponseFuture<FetchResult>;

    fn handle(&mut self, Fetch(soul): Fetch, ctx: &mut Self::Context) -> Self::Result {
        if let Some(found) = self.records.get(&soul) {
            self.metrics.record_cache_hits.fetch_add(1, Relaxed);
            let hit = Ok(Fetched {
                lookup: Lookup::Found(found),
                source: CacheSource::Hit,
            });
            return Box::pin(futures::future::ready(hit));
        }
        let (tx, rx) = oneshot::channel();
        match self.in_flight.entry(soul) {
            Entry::Occupied(mut flight) => {
                flight.get_mut().waiters.push(tx);
                self.metrics.gun_coalesced.fetch_add(1, Relaxed);
            }
            Entry::Vacant(slot) => {
                let soul = slot.key().clone();
                slot.insert(InFlight {
                    waiters: vec![tx],
                    cacheable: true,
                });
                self.lead(soul, ctx);
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
        let write = async move { upstream.put(&put.soul, put.node, put.body).await };
        Box::pin(write.into_actor(self).map(move |result, this, _| {
            let answer = result?;
            this.records.remove(&soul);
            if let Some(flight) = this.in_flight.get_mut(&soul) {
                flight.cacheable = false;
            }
            this.negative.do_send(Forget(soul));
            Ok(answer)
        }))
    }
}

impl Handler<RelayStatus> for GunFetcher {
    type Result = MessageResult<RelayStatus>;

    fn handle(&mut self, _: RelayStatus, _: &mut Self::Context) -> Self::Result {
        MessageResult(match self.upstream.breaker_state() {
            None => RelayState::File,
            Some(BreakerState::Closed) => RelayState::Reachable,
            Some(BreakerState::Open | BreakerState::HalfOpen) => RelayState::Unreachable,
        })
    }
}
