//! `Client`: what the rest of the service may ask of the gun feature (fetch, list, put, forget,
//! health, figures), and `start`, which builds the feature: the fetcher and the negative cache
//! on a thread of their own, the record cache beside them, and a write feed per relay.

use std::sync::Arc;

use actix::{Actor, Addr, Arbiter, ArbiterHandle, MailboxError};
use bytes::Bytes;
use serde_json::{Map, Value};

use super::{
    error::FetchError,
    feed::FeedStates,
    fetcher::GunFetcher,
    fetcher::{Fetch, ForgetSoul, List, Put, RelayHealth, RelayStatus},
    file_store::{FileStore, FileStoreError},
    http_upstream::{Endpoint, HttpKind},
    lookup::{CacheStatus, FetchResult, Fetched, Lookup, UpstreamBudget},
    metrics::GunMetrics,
    negative_cache::NegativeCache,
    record_cache::RecordCache,
    tls,
    upstream::{Pool, Upstream, UpstreamSetup},
    watch::{Watch, WatchSetup},
};
use crate::{
    config::{check::ConfigError, Config},
    did::Did,
    metrics::Registry,
};

#[derive(Clone)]
pub struct Client {
    fetcher: Addr<GunFetcher>,
    records: Arc<RecordCache>,
    /// `resolver.oip_api` is set: DIDs of other methods have a source. Without one they are
    /// answered here, not by a message to the fetcher's thread on every resolution.
    indexer: bool,
    metrics: Arc<GunMetrics>,
}

/// What the status page shows of the caches.
pub struct CacheFigures {
    pub negative_entries: u64,
    pub negative_lookups: u64,
    pub negative_hits: u64,
    pub record_bytes: u64,
    pub record_hits: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    FileStore(#[from] FileStoreError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The feature, started.
pub struct Started {
    pub client: Client,
    /// Its threads, to stop with the server.
    pub threads: Vec<ArbiterHandle>,
    /// Where records come from, for the start-up line.
    pub source: String,
}

impl Client {
    /// Starts the feature from `config`. Must run inside an actix system.
    pub fn start(config: &Config, registry: &mut Registry) -> Result<Started, StartError> {
        let metrics = GunMetrics::register(registry);
        let store = FileStore::configured(&config.gun)?;
        let source = describe(config, store.as_ref());
        let watching = config.gun.watching();
        let feeds = Arc::new(FeedStates::new(config.gun.relays().len(), watching));
        let records = Arc::new(RecordCache::from_config(
            &config.record_cache,
            metrics.clone(),
        ));
        // The relay client is not `Send`: the fetcher lives on a thread of its own, with the
        // cache it consults on every miss beside it so that their messages stay cheap and
        // ordered.
        let gun_thread = Arbiter::new();
        let negative = start_negative(&gun_thread, config, watching, metrics.clone());
        let upstreams = Upstreams::from_config(config, store)?;
        let relay_tls = upstreams.relay_tls.clone();
        let fetcher = upstreams.start_fetcher(
            config,
            &gun_thread.handle(),
            (
                negative.clone(),
                records.clone(),
                feeds.clone(),
                metrics.clone(),
            ),
        );
        // The feeds on a thread of their own: reading a frame of 100,000 souls must not hold up
        // the fetcher (or `/health`, which asks it).
        let feed_thread = Arbiter::new();
        if let Some(tls) = relay_tls.filter(|_| watching) {
            let base = WatchSetup {
                slot: 0,
                url: String::new(),
                gun: config.gun.clone(),
                tls,
                fetcher: fetcher.clone(),
                negative,
                feeds,
                metrics: metrics.clone(),
            };
            start_watches(&feed_thread, base, &config.gun.relays());
        }
        let client = Client {
            fetcher,
            records,
            indexer: config.resolver.oip_api.is_some(),
            metrics,
        };
        Ok(Started {
            client,
            threads: vec![gun_thread.handle(), feed_thread.handle()],
            source,
        })
    }

    /// One record: from the record cache, else through the fetcher (coalesced, remembered
    /// missing). `fresh` goes past the record and negative caches (`forceRefresh`), except for
    /// what was fetched too lately for that (`record_cache.refresh_after_secs`,
    /// `negative_cache.refresh_after_secs`).
    pub async fn fetch(
        &self,
        did: Did,
        budget: Option<UpstreamBudget>,
        fresh: bool,
    ) -> FetchResult {
        if matches!(did, Did::Other(_)) && !self.indexer {
            return Err(FetchError::Unsupported);
        }
        let cached = match fresh {
            false => self.records.get(&did),
            true => self.records.refreshed_lately(&did),
        };
        if let Some(found) = cached {
            return Ok(Fetched {
                lookup: Lookup::Found(found),
                cache: CacheStatus::Hit,
            });
        }
        self.fetcher
            .send(Fetch { did, budget, fresh })
            .await
            .unwrap_or(Err(FetchError::Cancelled))
    }

    /// The indexer's answer at `target` (`/api/records?...`, `/api/records/recordTypes`),
    /// asked with the caller's `Authorization`; the same asked at once is asked once.
    pub async fn list(
        &self,
        target: String,
        authorization: Option<String>,
    ) -> Result<Bytes, FetchError> {
        self.fetcher
            .send(List {
                target,
                authorization,
            })
            .await
            .unwrap_or(Err(FetchError::Cancelled))
    }

    /// Writes one node (already checked by `write::check_node`); the relay's answer.
    pub async fn put(&self, soul: String, node: Map<String, Value>) -> Result<Bytes, FetchError> {
        self.fetcher
            .send(Put { soul, node })
            .await
            .unwrap_or(Err(FetchError::Cancelled))
    }

    /// Out of every cache and of the fetcher's memory of malformed records; true when any held
    /// it.
    pub async fn forget(&self, did: Did) -> Result<bool, MailboxError> {
        self.fetcher.send(ForgetSoul(did)).await
    }

    /// How the relays look from here; never sends a request.
    pub async fn health(&self) -> Result<RelayHealth, MailboxError> {
        self.fetcher.send(RelayStatus).await
    }

    /// Changes whenever a record leaves the record cache: an answer made from records read
    /// before a change is stale.
    pub fn epoch(&self) -> u64 {
        self.records.epoch()
    }

    /// Until when `did`'s record stays fresh in the record cache, if it is there.
    pub fn expiry(&self, did: &Did) -> Option<std::time::Instant> {
        self.records.expiry(did)
    }

    pub fn figures(&self) -> CacheFigures {
        let (negative_lookups, negative_hits) = self.metrics.negative_lookups();
        CacheFigures {
            negative_entries: self.metrics.negative_entries(),
            negative_lookups,
            negative_hits,
            record_bytes: self.metrics.record_cache_bytes(),
            record_hits: self.metrics.record_cache_hits(),
        }
    }

    pub fn metrics(&self) -> &Arc<GunMetrics> {
        &self.metrics
    }
}

/// Where fetches go: the relays (or the file), and the indexer if one is configured, with the
/// TLS settings each was given.
struct Upstreams {
    setup: UpstreamSetup,
    relay_tls: Option<Arc<rustls::ClientConfig>>,
    indexer: Option<(String, Arc<rustls::ClientConfig>)>,
}

impl Upstreams {
    /// Reads the CA files here, not on the fetcher's thread, so that one gone since validation
    /// stops start-up instead of a thread. The roots are built only for what is used: they are
    /// a few hundred KB.
    fn from_config(config: &Config, store: Option<FileStore>) -> Result<Self, ConfigError> {
        let tls_for = |key: &str, file: Option<&std::path::Path>| {
            tls::client_config(file).map_err(|e| ConfigError::Invalid {
                key: key.into(),
                message: e.to_string(),
            })
        };
        let (setup, relay_tls) = match store {
            Some(store) => (UpstreamSetup::File(store), None),
            None => {
                let tls = tls_for("gun.ca_file", config.gun.ca_file.as_deref())?;
                (UpstreamSetup::Relay(tls.clone()), Some(tls))
            }
        };
        let indexer = match &config.resolver.oip_api {
            Some(base) => Some((
                base.clone(),
                tls_for("resolver.ca_file", config.resolver.ca_file.as_deref())?,
            )),
            None => None,
        };
        Ok(Self {
            setup,
            relay_tls,
            indexer,
        })
    }

    /// The clients are built on the fetcher's own thread: awc clients are not `Send`.
    fn start_fetcher(
        self,
        config: &Config,
        thread: &ArbiterHandle,
        (negative, records, feeds, metrics): (
            Addr<NegativeCache>,
            Arc<RecordCache>,
            Arc<FeedStates>,
            Arc<GunMetrics>,
        ),
    ) -> Addr<GunFetcher> {
        let gun = config.gun.clone();
        let Upstreams { setup, indexer, .. } = self;
        GunFetcher::start_in_arbiter(thread, move |_| {
            let upstream = Upstream::open(&gun, setup, metrics.clone());
            let indexer = indexer.map(|(base, tls)| {
                Pool::new(HttpKind::Indexer, &[&base], &gun, tls, metrics.clone())
            });
            GunFetcher::new(upstream, indexer, negative, records, &gun, feeds, metrics)
        })
    }
}

/// The negative cache on `thread`, beside the fetcher that consults it on every miss.
fn start_negative(
    thread: &Arbiter,
    config: &Config,
    watching: bool,
    metrics: Arc<GunMetrics>,
) -> Addr<NegativeCache> {
    let settings = config.negative_cache.clone();
    NegativeCache::start_in_arbiter(&thread.handle(), move |_| {
        NegativeCache::new(&settings, watching, metrics)
    })
}

/// One write feed per relay, each on `thread`, each with `base` pointed at its relay.
fn start_watches(thread: &Arbiter, base: WatchSetup, relays: &[&str]) {
    for (slot, url) in relays.iter().enumerate() {
        let setup = WatchSetup {
            slot,
            url: url.to_string(),
            ..base.clone()
        };
        Watch::start_in_arbiter(&thread.handle(), move |_| Watch::new(setup));
    }
}

/// The source as the start-up line names it.
fn describe(config: &Config, store: Option<&FileStore>) -> String {
    match store {
        Some(store) => format!(
            "file {} ({} records)",
            config.gun.file.display(),
            store.len()
        ),
        None => {
            let relays: Vec<String> = config
                .gun
                .relays()
                .into_iter()
                .map(|url| Endpoint::new(url).shown)
                .collect();
            format!("relays {}", relays.join(", "))
        }
    }
}
