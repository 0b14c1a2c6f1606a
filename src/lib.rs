//! oip-resolver: resolves OIP records from a GUN relay to a chosen depth, and streams media.
//!
//! One actor per concern (see docs/DESIGN.md): `GunFetcher` talks to the relay, `NegativeCache`
//! holds the souls known missing, `RecordCache` (shared, not an actor) the records found,
//! `Resolver` walks references, `MediaActor` opens files and keeps the stream registry,
//! `MemoryMonitor` reports memory. Handlers stay thin: they validate, call one feature's client,
//! and map the reply.
//!
//! Each feature lives in its folder with its settings, metrics, errors and routes (`gun`,
//! `resolver`, `media`, `access` and `auth`, `monitor`, and `http`, the edge every request
//! passes). The composition root is here: `start` starts each feature from a `Config`, `app`
//! builds the application from what `start` returned, and `serve` runs it. The binary and the
//! tests use the same three.

#![forbid(unsafe_code)]

pub mod access;
pub mod auth;
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
pub mod soul;

use actix::ArbiterHandle;
use actix_web::{
    body::MessageBody,
    dev::{ServiceFactory, ServiceRequest, ServiceResponse},
    middleware, web, App,
};

use crate::{
    access::Callers,
    config::Config,
    http::{AnsweredHook, Compressor, Edge, Shared},
    metrics::Registry,
    monitor::{HeapReader, Monitor, Watched},
    resolver::Resolvers,
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Gun(#[from] gun::StartError),
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

/// What only the binary provides: it owns the global allocator (so that tests and benches
/// linking the library measure with their own) and the leak put in on purpose.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hooks {
    /// Bytes allocated on the heap now; without it the heap figures read unknown.
    pub heap: Option<HeapReader>,
    /// Told the size of every answer's body.
    pub answered: Option<AnsweredHook>,
}

/// The features, started: what every worker's application shares, and the threads to stop
/// with the server.
pub struct Started {
    pub shared: Shared,
    pub threads: Vec<ArbiterHandle>,
}

/// Starts every feature from `config`, each registering its series in one registry, which the
/// monitor, started last, exports. Must run inside an actix system.
pub fn start(config: Config, hooks: Hooks) -> Result<Started, StartError> {
    let mut registry = Registry::default();
    let gun = gun::Client::start(&config, &mut registry)?;
    log_summary(&config, &gun.source);
    let resolvers = Resolvers::new(&config.resolver, gun.client.clone(), &mut registry);
    let media = media::Client::start(&config, &mut registry)?;
    let edge = Edge::new(&mut registry, hooks.answered);
    let watched = Watched {
        gun: gun.client.metrics().clone(),
        media: media.metrics().clone(),
        http: edge.metrics().clone(),
    };
    let monitor = Monitor::start(&config.memory_monitor, registry, hooks.heap, watched);
    let shared = Shared {
        compressor: web::Data::new(Compressor::new(config.server.compress_max_bytes)),
        callers: web::Data::new(Callers::new(config.auth.jwt_secret.clone())),
        config: web::Data::new(config),
        edge: web::Data::new(edge),
        gun: web::Data::new(gun.client),
        resolvers,
        media: web::Data::new(media),
        monitor: web::Data::new(monitor),
    };
    Ok(Started {
        shared,
        threads: gun.threads,
    })
}

/// The application of one worker, over what `start` returned.
pub fn app(
    shared: Shared,
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
    let resolver = shared.resolvers.start_for_worker();
    let config = shared.config.clone();
    App::new()
        .wrap(http::cors::middleware(&config.cors))
        // Every answer, media and JSON alike (preflights too), is read as the type it says it is.
        .wrap(middleware::DefaultHeaders::new().add(("X-Content-Type-Options", "nosniff")))
        .wrap(middleware::Condition::new(
            config.log.access,
            http::access_log::logger(),
        ))
        .wrap_fn(http::observe)
        .configure(move |cfg| http::configure_app(cfg, shared, resolver))
}

/// Binds the port, starts the actors and the HTTP server, and runs until the server stops. The
/// port comes first: a taken one stops start-up before anything else has started.
pub async fn serve(config: Config, hooks: Hooks) -> Result<(), StartError> {
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
    let started = start(config, hooks)?;
    let settings = server::Settings::new(&started.shared.config);
    let shared = started.shared.clone();
    let server::Running {
        addr: bound,
        server,
    } = server::start(listener, settings, move || app(shared.clone())).map_err(bind_error)?;
    log::info!("oip-resolver listening on http://{bound}");
    server.await.map_err(StartError::Serve)?;
    for thread in &started.threads {
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

fn log_summary(config: &Config, source: &str) {
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
        "oip-resolver {} starting: bind {}, source {source}, 404 cache {} souls for {}s, record cache {} bytes for {}s, media {} (legacy {} and {}), JWT secret {}, admin token {}, writes {writes}",
        env!("CARGO_PKG_VERSION"),
        config.server.bind,
        config.negative_cache.capacity,
        config.negative_cache.ttl_secs,
        config.record_cache.capacity_bytes,
        config.record_cache.ttl_secs,
        config.media.root.display(),
        config.media.legacy_api_root.display(),
        config.media.legacy_static_root.display(),
        set(&config.auth.jwt_secret),
        set(&config.auth.admin_token),
    );
}
