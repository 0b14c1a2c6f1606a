//! oip-resolver: resolves OIP records from a GUN relay to a chosen depth, and streams media.
//!
//! One actor per concern (see DESIGN.md): `GunFetcher` talks to the relay, `NegativeCache` holds
//! the souls known missing, `MemoryMonitor` reports memory. Handlers in `http` stay thin: they
//! validate, send one message, and map the reply.

#![forbid(unsafe_code)]

pub mod config;
pub mod did;
pub mod error;
pub mod gun;
pub mod http;
pub mod media;
pub mod metrics;
pub mod monitor;
pub mod resolver;
pub mod server;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use actix::{Actor, Arbiter, SyncArbiter};
use actix_web::{middleware, web, App};

use crate::{
    config::{Config, GunSource},
    gun::{
        fetcher::Source, record_cache::RecordCache, upstream::FileStore, GunFetcher, NegativeCache,
    },
    http::AppState,
    media::{Media, MediaActor},
    metrics::Metrics,
    monitor::MemoryMonitor,
    resolver::Resolver,
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Source(#[from] gun::upstream::FileSourceError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("server stopped with an error: {0}")]
    Serve(std::io::Error),
}

/// Starts the actors and the HTTP server, and runs until the server stops.
pub async fn serve(config: Config) -> Result<(), StartError> {
    let addr = config.bind_addr()?;
    let source = match config.gun.source {
        GunSource::File => Source::File(FileStore::load(&config.gun.file)?),
        GunSource::Relay => Source::Relay(config.gun.clone()),
    };
    log_summary(&config, &source);

    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::default());

    // The relay client is not `Send`: the fetcher lives on a thread of its own, with the cache it
    // consults on every miss beside it so that their messages stay cheap and ordered.
    let gun_thread = Arbiter::new();
    let negative = {
        let (c, m) = (config.negative_cache.clone(), metrics.clone());
        NegativeCache::start_in_arbiter(&gun_thread.handle(), move |_| NegativeCache::new(&c, m))
    };
    let records = Arc::new(RecordCache::from_config(
        &config.record_cache,
        metrics.clone(),
    ));
    let fetcher = {
        let (c, m, n, r) = (
            config.clone(),
            metrics.clone(),
            negative.clone(),
            records.clone(),
        );
        GunFetcher::start_in_arbiter(&gun_thread.handle(), move |_| {
            GunFetcher::new(source, &c, n, r, m)
        })
    };
    MemoryMonitor::new(config.memory_monitor.clone(), metrics.clone()).start();
    let media = {
        let shared = Arc::new(Media::new(
            &config.media,
            config.auth.jwt_secret.clone(),
            metrics.clone(),
        ));
        // Enough threads that a slow disk on one file does not queue every other open.
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
        SyncArbiter::start(threads.max(4), move || MediaActor::new(shared.clone()))
    };

    let state = web::Data::new(AppState {
        config: config.clone(),
        fetcher,
        negative,
        records,
        media,
        metrics,
        started: Instant::now(),
    });
    let access_log = config.log.access;
    let settings = server::Settings {
        workers: config.server.workers,
        shutdown_timeout: Duration::from_secs(config.server.shutdown_timeout_secs),
        stall_timeout: Duration::from_secs(config.media.stall_timeout_secs),
    };
    let factory = move || {
        let state = state.clone();
        // One resolver per worker: assembling answers is CPU work, spread over the cores.
        let resolver = web::Data::new(
            Resolver::new(
                state.fetcher.clone(),
                state.records.clone(),
                state.config.resolver.clone(),
                state.metrics.clone(),
            )
            .start(),
        );
        App::new()
            .wrap(middleware::Condition::new(
                access_log,
                middleware::Logger::default(),
            ))
            .wrap_fn(http::observe)
            .configure(move |cfg| http::configure_app(cfg, state, resolver))
    };
    let (bound, server) =
        server::start(addr, settings, factory).map_err(|source| StartError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    log::info!("oip-resolver listening on http://{bound}");
    server.await.map_err(StartError::Serve)?;
    gun_thread.stop();
    log::info!("oip-resolver stopped");
    Ok(())
}

fn log_summary(config: &Config, source: &Source) {
    let source = match source {
        Source::File(store) => format!(
            "file {} ({} records)",
            config.gun.file.display(),
            store.len()
        ),
        Source::Relay(gun) => format!("relay {}", gun.relay_url),
    };
    let set = |v: &Option<String>| if v.is_some() { "set" } else { "not set" };
    log::info!(
        "oip-resolver {} starting: bind {}, source {source}, 404 cache {} souls for {}s, record cache {} bytes for {}s, media {} (legacy {}), JWT secret {}, admin token {}",
        env!("CARGO_PKG_VERSION"),
        config.server.bind,
        config.negative_cache.capacity,
        config.negative_cache.ttl_secs,
        config.record_cache.capacity_bytes,
        config.record_cache.ttl_secs,
        config.media.root.display(),
        config.media.legacy_root.display(),
        set(&config.auth.jwt_secret),
        set(&config.auth.admin_token),
    );
}
