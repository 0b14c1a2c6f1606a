//! Where records come from: GUN relays over HTTP(S), or a JSON file of nodes loaded at start-up
//! (the embedded demo source). Both answer with the same types, so the caches and the resolver
//! cannot tell them apart. Several relays (and the indexer, a pool of one) are a `Pool`: each
//! relay has its own breaker, and a request that fails on one goes on to the next.

use std::{
    cell::RefCell,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use serde_json::{Map, Value};

use super::{
    error::FetchError,
    file_store::FileStore,
    http_upstream::{HttpKind, HttpUpstream, UpstreamReport},
    lookup::GetResult,
    record::FoundRecord,
    resilience::{backoff, RetryBudget},
};
use crate::{config::GunConfig, gun::metrics::GunMetrics};

/// Where `did:gun:` records come from, as `gun.source` chose: the relays, or the file source
/// loaded at start-up.
pub enum Upstream {
    Relay(Pool),
    File(RefCell<FileStore>),
}

/// What `Upstream::open` needs, made at start-up: the loaded file source, or the TLS roots for
/// the relays.
pub enum UpstreamSetup {
    File(FileStore),
    Relay(Arc<rustls::ClientConfig>),
}

impl Upstream {
    /// Must run on the thread that will use it, like `HttpUpstream::new`.
    pub fn open(gun: &GunConfig, setup: UpstreamSetup, metrics: Arc<GunMetrics>) -> Self {
        match setup {
            UpstreamSetup::File(store) => Upstream::File(store.into()),
            UpstreamSetup::Relay(tls) => {
                Upstream::Relay(Pool::new(HttpKind::Relay, &gun.relays(), gun, tls, metrics))
            }
        }
    }

    pub async fn get(&self, soul: &str) -> GetResult {
        match self {
            Upstream::Relay(relay) => relay.get(soul).await,
            Upstream::File(store) => Ok(store.borrow().get(soul)),
        }
    }

    /// Stores a node; answers with the body the relay (or the file source, in its shape) gave.
    /// The relay gets the validated node re-serialised, never the client's bytes: a body with
    /// duplicate keys must not mean one thing here and another there.
    pub async fn put(&self, soul: &str, mut node: Map<String, Value>) -> Result<Bytes, FetchError> {
        match self {
            Upstream::Relay(relay) => {
                super::write::pin_nested(soul, &mut node);
                let body = serde_json::json!({"soul": soul, "data": node});
                relay
                    .put(
                        soul,
                        Bytes::from(serde_json::to_vec(&body).expect("a Value serialises")),
                    )
                    .await
            }
            Upstream::File(store) => {
                let found = FoundRecord::from_stored_node(Value::Object(node))
                    .map_err(|e| FetchError::RecordMalformed(e.to_string()))?;
                store.borrow_mut().write(soul, found)?;
                let answer = serde_json::json!({"success": true, "soul": soul});
                Ok(Bytes::from(answer.to_string()))
            }
        }
    }

    /// Each relay as it looks now; empty for the file source.
    pub fn reports(&self) -> Vec<UpstreamReport> {
        match self {
            Upstream::Relay(pool) => pool.reports(),
            Upstream::File(_) => Vec::new(),
        }
    }

    pub fn log_failures(&self) {
        if let Upstream::Relay(pool) = self {
            pool.log_failures();
        }
    }
}

/// The relays of `gun.relay_urls` in order of preference, or the indexer alone. The first whose
/// breaker lets a request through takes it; one that fails (no answer, 5xx, a garbled answer, a
/// misconfiguration) hands it to the next, as long as `gun.max_attempts` allows. Only when
/// every relay has been tried does a retry wait its backoff and spend the retry budget: moving
/// to another relay adds no load to the one in trouble.
pub struct Pool {
    kind: HttpKind,
    sources: Vec<HttpUpstream>,
    budget: RefCell<RetryBudget>,
    config: GunConfig,
    metrics: Arc<GunMetrics>,
}

impl Pool {
    /// Must run on the thread that will use it: awc clients are not `Send`. An indexer shares
    /// the relays' timeouts, retry and breaker settings.
    pub fn new(
        kind: HttpKind,
        urls: &[&str],
        config: &GunConfig,
        tls: Arc<rustls::ClientConfig>,
        metrics: Arc<GunMetrics>,
    ) -> Self {
        let sources = urls
            .iter()
            .map(|url| HttpUpstream::new(kind, url, config, tls.clone(), metrics.clone()))
            .collect();
        Self {
            kind,
            sources,
            budget: RefCell::new(RetryBudget::new(config.retry_budget_percent)),
            config: config.clone(),
            metrics,
        }
    }

    /// A relay's soul (`key`), or an indexer's record by whole DID. A 404 from any relay is an
    /// answer (relays sync through GUN), never a reason to ask the next one.
    pub async fn get(&self, key: &str) -> GetResult {
        self.budget.borrow_mut().on_first_attempt();
        let mut attempts = 0;
        loop {
            let result = self
                .pass(Some(key), &mut attempts, |s| Box::pin(s.get(key)))
                .await;
            match result {
                Err(e)
                    if e.is_transient()
                        && attempts < self.config.max_attempts
                        && self.budget.borrow_mut().try_retry() =>
                {
                    log::debug!("get {key}: attempt {attempts} failed ({e}); retrying");
                    self.metrics.retried();
                    let pause = backoff(
                        attempts,
                        Duration::from_millis(self.config.backoff_base_ms),
                        Duration::from_millis(self.config.backoff_max_ms),
                        fastrand::f64(),
                    );
                    actix_web::rt::time::sleep(pause).await;
                }
                other => return other,
            }
        }
    }

    /// A put goes to one relay (they sync); to the next only if that one failed.
    pub async fn put(&self, soul: &str, body: Bytes) -> Result<Bytes, FetchError> {
        let mut attempts = 0;
        self.pass(Some(soul), &mut attempts, |s| {
            Box::pin(s.put(soul, body.clone()))
        })
        .await
    }

    /// An indexer's listing, `GET {base}/api/records?{query}` with the caller's
    /// `authorization`: its answer as it came.
    pub async fn list(
        &self,
        target: &str,
        authorization: Option<String>,
    ) -> Result<Bytes, FetchError> {
        let mut attempts = 0;
        // A listing failing counts against the indexer each time: listings are not one soul
        // whose own trouble could be mistaken for the indexer's.
        self.pass(None, &mut attempts, |s| {
            Box::pin(s.list(target, authorization.as_deref()))
        })
        .await
    }

    /// One request to each usable source in turn, until one answers in a way the next could
    /// not improve on, or `max_attempts` requests have been sent. Sources whose breaker is open
    /// are passed over without a request.
    async fn pass<'a, T>(
        &'a self,
        key: Option<&str>,
        attempts: &mut u32,
        op: impl Fn(&'a HttpUpstream) -> LocalBoxFuture<'a, Result<T, FetchError>>,
    ) -> Result<T, FetchError> {
        let mut outcome = Err(FetchError::CircuitOpen);
        let mut failed = false;
        for source in &self.sources {
            let result = source.guarded(key, op(source)).await;
            if matches!(result, Err(FetchError::CircuitOpen)) {
                continue;
            }
            *attempts += 1;
            if failed {
                self.metrics.failed_over();
            }
            match result {
                Err(e) if e.fails_over() && *attempts < self.config.max_attempts => {
                    failed = true;
                    outcome = Err(e);
                }
                other => {
                    outcome = other;
                    break;
                }
            }
        }
        if self.kind == HttpKind::Relay {
            let now = Instant::now();
            let all_open = self.sources.iter().all(|s| !s.circuit_closed(now));
            self.metrics.set_circuit_open(all_open);
        }
        outcome
    }

    pub fn reports(&self) -> Vec<UpstreamReport> {
        self.sources.iter().map(HttpUpstream::report).collect()
    }

    pub fn log_failures(&self) {
        for source in &self.sources {
            source.log_failures();
        }
    }
}
