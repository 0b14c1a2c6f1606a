//! oip-resolver: resolves OIP records from a GUN relay to a chosen depth, and streams media.
//!
//! One actor per concern (see DESIGN.md): `GunFetcher` talks to the relay, `NegativeCache` holds
//! the souls known missing, `RecordCache` (shared, not an actor) the records found, `Resolver`
//! walks references, `MediaActor` opens files and keeps the stream registry, `MemoryMonitor`
//! reports memory. Handlers in `http` stay thin: they validate, send one message, and map the
//! reply.
//!
//! The composition root is here: `start` starts the actors from a `Config`, `app` builds the
//! application from what `start` returned, and `serve` runs it. The binary and the tests use
//! the same three.

#![forbid(unsafe_code)]

pub mod access;
pub mod auth;
pub mod config;
pub mod did;
pub mod error;
pub mod gun;
pub mod http;
#[cfg(feature = "leak-injection")]
mod leak;
pub mod media;
pub mod metrics;
pub mod monitor;
pub mod resolver;
pub mod server;
pub mod soul;

use std::{sync::Arc, time::Instant};

use actix::{Actor, Arbiter, SyncArbiter};
use actix_web::{
    body::MessageBody,
    dev::{ServiceFactory, ServiceRequest, ServiceResponse},
    middleware, web, App,
};

use crate::{
    access::{crypt::Decryptor, Callers},
    config::{Config, GunSource},
    gun::{
        feed::FeedStates,
        fetcher::Reader,
        record_cache::RecordCache,
        tls,
        upstream::{Endpoint, FileStore, HttpKind, Pool, Source, Upstream},
        watch::{Watch, WatchSetup},
        GunFetcher, NegativeCache,
    },
    http::AppState,
    media::{Media, MediaActor},
    metrics::Metrics,
    monitor::MemoryMonitor,
    resolver::{AnswerCache, Resolver},
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Source(#[from] gun::upstream::FileSourceError),
    #[error("cannot listen on {addr}: {}", bind_reason(source))]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server stopped with an error: {0}")]
    Serve(std::io::Error),
    #[error("{0}")]
    Descriptors(String),
}

/// Starts the actors from `config` and returns what every worker's application shares. Must run
/// inside an actix system.
pub fn start(config: Config) -> Result<web::Data<AppState>, StartError> {
    let store = match config.gun.source {
        GunSource::File => Some(FileStore::load(
            &config.gun.file,
            config.gun.file_write_limit_bytes,
        )?),
        GunSource::Relay => None,
    };
    log_summary(&config, store.as_ref());

    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::default());

    // The relay client is not `Send`: the fetcher lives on a thread of its own, with the cache it
    // consults on every miss beside it so that their messages stay cheap and ordered.
    let gun_thread = Arbiter::new();
    let watching = config.gun.watching();
    let feeds = Arc::new(FeedStates::new(config.gun.relays().len(), watching));
    let negative = {
        let (c, m) = (config.negative_cache.clone(), metrics.clone());
        NegativeCache::start_in_arbiter(&gun_thread.handle(), move |_| {
            NegativeCache::new(&c, watching, m)
        })
    };
    let records = Arc::new(RecordCache::from_config(
        &config.record_cache,
        metrics.clone(),
    ));
    // Read here, not on the fetcher's thread, so that a CA file gone since validation stops
    // start-up instead of a thread.
    let tls_for = |key: &str, file: Option<&std::path::Path>| {
        tls::client_config(file).map_err(|e| {
            StartError::Config(config::ConfigError::Invalid {
                key: key.into(),
                message: e.to_string(),
            })
        })
    };
    // Built only for what is used: the roots are a few hundred KB, given back right away.
    let (source, relay_tls) = match store {
        Some(store) => (Source::File(store), None),
        None => {
            let tls = tls_for("gun.ca_file", config.gun.ca_file.as_deref())?;
            (Source::Relay(tls.clone()), Some(tls))
        }
    };
    let indexer = match &config.resolver.oip_api {
        Some(base) => Some((
            base.clone(),
            tls_for("resolver.ca_file", config.resolver.ca_file.as_deref())?,
        )),
        None => None,
    };
    let fetcher = {
        let gun = config.gun.clone();
        let (m, n, r, f) = (
            metrics.clone(),
            negative.clone(),
            records.clone(),
            feeds.clone(),
        );
        GunFetcher::start_in_arbiter(&gun_thread.handle(), move |_| {
            let upstream = Upstream::open(&gun, source, m.clone());
            let indexer = indexer
                .map(|(base, tls)| Pool::new(HttpKind::Indexer, &[&base], &gun, tls, m.clone()));
            GunFetcher::new(upstream, indexer, n, r, &gun, f, m)
        })
    };
    // The feeds on a thread of their own: reading a frame of 100,000 souls must not hold up
    // the fetcher (or `/health`, which asks it).
    let feed_thread = Arbiter::new();
    if let Some(relay_tls) = relay_tls.filter(|_| watching) {
        for (slot, url) in config.gun.relays().into_iter().enumerate() {
            let (url, gun, tls) = (url.to_string(), config.gun.clone(), relay_tls.clone());
            let (fetcher, negative) = (fetcher.clone(), negative.clone());
            let (feeds, metrics) = (feeds.clone(), metrics.clone());
            Watch::start_in_arbiter(&feed_thread.handle(), move |_| {
                Watch::new(WatchSetup {
                    slot,
                    url,
                    gun,
                    tls,
                    fetcher,
                    negative,
                    feeds,
                    metrics,
                })
            });
        }
    }
    let monitor = MemoryMonitor::new(config.memory_monitor.clone(), metrics.clone()).start();
    let media_files = Arc::new(Media::new(
        &config.media,
        config.auth.jwt_secret.clone(),
        metrics.clone(),
    ));
    let media = {
        let shared = media_files.clone();
        // Enough threads that a slow disk on one file does not queue every other open.
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
        SyncArbiter::start(threads.max(4), move || MediaActor::new(shared.clone()))
    };

    let indexer = config.resolver.oip_api.is_some();
    let answers = Arc::new(AnswerCache::new(config.resolver.answer_cache_bytes));
    let crypt = Arc::new(Decryptor::default());
    let compressor = http::Compressor::new(config.server.compress_max_bytes);
    let trusted_proxies =
        http::client::Networks::parse(&config.server.trusted_proxies).map_err(|message| {
            config::ConfigError::Invalid {
                key: "server.trusted_proxies".into(),
                message,
            }
        })?;
    let callers = Arc::new(Callers::new(config.auth.jwt_secret.clone()));
    Ok(web::Data::new(AppState {
        config,
        gun: Reader {
            fetcher,
            records,
            indexer,
        },
        negative,
        media,
        media_files,
        answers,
        crypt,
        callers,
        trusted_proxies,
        compressor,
        monitor,
        metrics,
        started: Instant::now(),
        threads: vec![gun_thread.handle(), feed_thread.handle()],
    }))
}

/// The application of one worker, over the shared state `start` returned.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    // One resolver per worker: assembling answers is CPU work, spread over the cores.
    let resolver = web::Data::new(
        Resolver::new(
            state.gun.clone(),
            state.config.resolver.clone(),
            state.answers.clone(),
            state.crypt.clone(),
            state.metrics.clone(),
        )
        .start(),
    );
    let app = App::new()
        .wrap(http::cors::middleware(&state.config.cors))
        // Every answer, media and JSON alike (preflights too), is read as the type it says it is.
        .wrap(middleware::DefaultHeaders::new().add(("X-Content-Type-Options", "nosniff")))
        .wrap(middleware::Condition::new(
            state.config.log.access,
            http::access_log::logger(),
        ))
        .wrap_fn(http::observe);
    #[cfg(feature = "leak-injection")]
    let app = app.wrap_fn(leak::hold_every_nth);
    app.configure(move |cfg| http::configure_app(cfg, state, resolver))
}

/// Binds the port, starts the actors and the HTTP server, and runs until the server stops. The
/// port comes first: a taken one stops start-up before anything else has started.
pub async fn serve(config: Config) -> Result<(), StartError> {
    let addr = config.bind_addr()?;
    let bind_error = |source| StartError::Bind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
    let limit = server::descriptors::raise();
    server::descriptors::check(&config, limit.soft).map_err(StartError::Descriptors)?;
    if let Some(before) = limit.raised_from {
        log::info!(
            "file descriptors: soft limit raised from {before} to {}",
            limit.soft
        );
    }
    let state = start(config)?;
    let server::Running {
        addr: bound,
        server,
    } = server::start(listener, server::Settings::new(&state.config), {
        let state = state.clone();
        move || app(state.clone())
    })
    .map_err(bind_error)?;
    log::info!("oip-resolver listening on http://{bound}");
    server.await.map_err(StartError::Serve)?;
    for thread in &state.threads {
        thread.stop();
    }
    log::info!("oip-resolver stopped");
    Ok(())
}

/// The common reasons in plain words; anything else as the system says it.
fn bind_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => "address in use".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied (a port under 1024?)".into(),
        std::io::ErrorKind::AddrNotAvailable => "no such address on this machine".into(),
        _ => e.to_string(),
    }
}

fn log_summary(config: &Config, store: Option<&FileStore>) {
    let source = match store {
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
    };
    let set = |v: &Option<String>| if v.is_some() { "set" } else { "not set" };
    let auth = &config.auth;
    let writes = match (auth.open_writes, &auth.admin_token, &auth.jwt_secret) {
        (true, _, _) => "open to anyone",
        (false, None, None) => "off",
        (false, Some(_), None) => "admin token",
        (false, None, Some(_)) => "publisher tokens",
        (false, Some(_), Some(_)) => "admin token or publisher tokens",
    };
    if auth.open_writes {
        log::warn!(
            "auth.open_writes is on: anyone who reaches this port can write any record through /gun-relay/put; keep it to a trusted network"
        );
    }
    let from: Vec<String> = config
        .origins
        .iter()
        .map(|(key, origin)| format!("{key} from {origin}"))
        .collect();
    if !from.is_empty() {
        log::info!("settings not at their defaults: {}", from.join(", "));
    }
    log::info!(
        "oip-resolver {} starting: bind {}, source {source}, 404 cache {} souls for {}s, record cache {} bytes for {}s, media {} (legacy {}), JWT secret {}, admin token {}, writes {writes}",
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
