//! The HTTP face of the service: one `configure_app` entry registers every route group. `lib::app`
//! wraps it with the middleware, and the binary and the in-process tests both serve that.

pub mod access_log;
mod admin;
pub mod client;
mod compress;
pub mod config;
pub mod cors;
pub mod error;
mod media;
mod ops;
mod query;
mod records;
mod relay;
mod ui;

pub use compress::Compressor;
pub use query::StrictQuery;

use std::{sync::Arc, time::Instant};

use actix::{Addr, ArbiterHandle};
use actix_web::{
    dev::{Service, ServiceResponse},
    web::{self, ServiceConfig},
    HttpRequest, HttpResponse,
};
use futures::{FutureExt, StreamExt};

use crate::{
    access::{crypt::Decryptor, Callers},
    config::Config,
    error::ApiError,
    gun::{fetcher::Reader, NegativeCache},
    http::error::RequestError,
    media::{Media, MediaActor},
    metrics::Metrics,
    monitor::MemoryMonitor,
    resolver::AnswerCache,
    resolver::Resolver,
};

/// What every handler may reach: the actors' addresses and the shared, read-only settings.
pub struct AppState {
    pub config: Arc<Config>,
    /// Reads records through the record cache and the fetcher.
    pub gun: Reader,
    pub negative: Addr<NegativeCache>,
    pub media: Addr<MediaActor>,
    /// What the media actor's threads share, for answers from the open-file cache on the
    /// worker's own thread.
    pub media_files: Arc<Media>,
    /// Warm resolutions kept whole, shared by every worker's resolver.
    pub answers: Arc<AnswerCache>,
    /// Owners' keys for their encrypted records, derived once and shared by every worker.
    pub crypt: Arc<Decryptor>,
    /// Who bearer tokens speak for, kept verified until they expire.
    pub callers: Arc<Callers>,
    /// Compressed JSON answers, made at most one per core at a time and kept.
    pub compressor: compress::Compressor,
    /// `server.trusted_proxies`, parsed.
    pub trusted_proxies: client::Networks,
    pub monitor: Addr<MemoryMonitor>,
    pub metrics: Arc<Metrics>,
    pub started: Instant,
    /// The threads of the fetcher and the negative cache, and of the write feeds, stopped with
    /// the server.
    pub threads: Vec<ArbiterHandle>,
}

/// `resolver` is this worker's own resolver.
pub fn configure_app(
    cfg: &mut ServiceConfig,
    state: web::Data<AppState>,
    resolver: web::Data<Addr<Resolver>>,
) {
    let ui = state.config.ui.enabled;
    cfg.app_data(state)
        .app_data(resolver)
        .configure(records::configure)
        .configure(media::configure)
        .configure(relay::configure)
        .configure(admin::configure)
        .configure(ops::configure)
        .configure(|cfg| ui::configure(cfg, ui))
        .default_service(web::to(route_not_found));
}

/// Records each request's duration under its route template (never the raw path, so ids cannot
/// explode the label set) and status class.
pub fn observe<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>>
where
    S: Service<
        actix_web::dev::ServiceRequest,
        Response = ServiceResponse<B>,
        Error = actix_web::Error,
    >,
{
    let started = Instant::now();
    // This request has left the connection's queue: one more may be read behind it.
    if let Some(pipeline) = req.conn_data::<std::rc::Rc<crate::server::Pipeline>>() {
        pipeline.taken();
    }
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    srv.call(req).map(move |res| {
        if let (Ok(res), Some(metrics)) = (&res, metrics) {
            metrics.observe_request(&route, res.status().as_u16(), started.elapsed());
        }
        res
    })
}

async fn route_not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(RequestError::RouteNotFound {
        method: req.method().to_string(),
        path: req.path().chars().take(200).collect(),
    }
    .into())
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(RequestError::MethodNotAllowed(req.method().to_string()).into())
}

/// The token of an `Authorization: Bearer` header; the scheme is case-insensitive (RFC 9110).
fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A resource whose other methods answer a JSON 405 rather than actix's empty 404.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// A JSON (or text) resource: its answers, errors included, are compressed as the client's
/// `Accept-Encoding` asks (brotli or gzip). Media resources are plain `resource`s: a media body
/// is never compressed, so byte ranges keep meaning bytes of the file.
fn compressed(
    path: &str,
) -> actix_web::Resource<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    resource(path).wrap_fn(compress::compress)
}

/// Reads a request body up to `limit` bytes, refusing more before buffering it.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(RequestError::PayloadTooLarge(limit).into());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| RequestError::InvalidBody(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(RequestError::PayloadTooLarge(limit).into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
