//! `Resolver`, the actor: one per HTTP worker, answering `Resolve` (records by DID) and
//! `ResolveListing` (an indexer's listing, its records resolved here), with the answer cache in
//! front of the walk. `Resolvers` holds what the workers' resolvers share.

use std::{collections::HashMap, rc::Rc, sync::Arc, time::Instant};

use actix::prelude::*;

use super::{
    answers::AnswerCache, config::ResolverConfig, error::ResolveError, in_flight::InFlight,
    listing::listed, metrics::ResolverMetrics, options::Options, resolution::Resolution,
    state::State, walk::Walk,
};
use crate::{
    access::{crypt::Decryptor, rules, Caller},
    did::Did,
    gun,
    metrics::Registry,
};

#[derive(Message)]
#[rtype(result = "Result<Resolution, ResolveError>")]
pub struct Resolve {
    pub dids: Vec<Did>,
    pub options: Options,
    pub caller: Caller,
}

/// A listing: `GET /api/records` without `did`, passed to the indexer with this query; the
/// records it lists are resolved here, or (`whole`) as the indexer resolved them.
#[derive(Message)]
#[rtype(result = "Result<Resolution, ResolveError>")]
pub struct ResolveListing {
    pub query: String,
    /// The indexer resolved the records itself (`resolveDepth` as asked), for filters that read
    /// what resolution put in place: what it resolved that the caller may not read is taken
    /// out again, and nothing more is resolved here.
    pub whole: bool,
    pub options: Options,
    pub caller: Caller,
    /// The caller's `Authorization`, passed on so that the indexer's own access rules apply.
    pub authorization: Option<String>,
}

/// What the resolvers of every worker share: warm answers kept whole, owners' keys derived once,
/// the settings and the counts.
#[derive(Clone)]
pub struct Resolvers {
    gun: gun::Client,
    config: ResolverConfig,
    answers: Arc<AnswerCache>,
    crypt: Arc<Decryptor>,
    in_flight: InFlight,
    metrics: Arc<ResolverMetrics>,
}

impl Resolvers {
    pub fn new(config: &ResolverConfig, gun: gun::Client, registry: &mut Registry) -> Self {
        Self {
            gun,
            config: config.clone(),
            answers: Arc::new(AnswerCache::new(config.answer_cache_bytes)),
            crypt: Arc::new(Decryptor::default()),
            in_flight: InFlight::new(config.answers_in_flight_bytes),
            metrics: ResolverMetrics::register(registry),
        }
    }

    /// A resolver for the calling worker: assembling answers is CPU work, spread over the
    /// cores that way.
    pub fn start_for_worker(&self) -> Addr<Resolver> {
        Resolver {
            walk: Rc::new(Walk {
                gun: self.gun.clone(),
                config: self.config.clone(),
                crypt: self.crypt.clone(),
                in_flight: self.in_flight.clone(),
            }),
            answers: self.answers.clone(),
            metrics: self.metrics.clone(),
        }
        .start()
    }
}

pub struct Resolver {
    walk: Rc<Walk>,
    answers: Arc<AnswerCache>,
    metrics: Arc<ResolverMetrics>,
}

impl Actor for Resolver {
    type Context = Context<Self>;
}

impl Handler<Resolve> for Resolver {
    type Result = ResponseFuture<Result<Resolution, ResolveError>>;

    fn handle(&mut self, msg: Resolve, _: &mut Self::Context) -> Self::Result {
        self.metrics.resolve_requested();
        let started = Instant::now();
        let key = AnswerCache::key(&msg.dids, &msg.options, &msg.caller);
        // Read before the walk: a record removed while it runs makes its answer stale at once.
        let epoch = self.walk.gun.epoch();
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
                .gun
                .list(format!("/api/records?{}", msg.query), msg.authorization)
                .await
                .map_err(failed)?;
            let caller = msg.caller.clone();
            let prepare = |record: &mut serde_json::Value| {
                if msg.whole {
                    rules::redact_embedded(record, caller.key());
                }
            };
            let (envelope, listed, left_out) =
                listed(&answer, walk.config.max_records, prepare).map_err(failed)?;
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
