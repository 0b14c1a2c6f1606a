//! The HTTP edge: what every request passes whatever it asks (CORS, compression, the access
//! log, the request-duration figures, strict query strings, JSON errors), and `configure_app`,
//! which mounts each feature's routes. `lib::app` wraps it with the middleware; the binary and
//! the in-process tests both serve that.
//!
//! - `request`: what the features' routes share (bearer token, resources, bodies);
//! - `query`, `client`: strict query strings; who the client is behind trusted proxies;
//! - `cors`, `compress`, `access_log`: middleware; `metrics`, `error`, `config`: the edge's own.

pub mod access_log;
pub mod client;
mod compress;
pub mod config;
pub mod cors;
pub mod error;
pub mod metrics;
pub mod query;
pub mod request;

pub use compress::Compressor;
pub use query::StrictQuery;

use std::{sync::Arc, time::Instant};

use actix::Addr;
use actix_web::{
    body::MessageBody,
    dev::{Service, ServiceRequest, ServiceResponse},
    web::{self, ServiceConfig},
    HttpRequest, HttpResponse,
};
use futures::FutureExt;

use self::{error::RequestError, metrics::HttpMetrics};
use crate::{
    access::Callers, config::Config, error::ApiError, gun, media, metrics::Registry, monitor,
    resolver,
};

/// Told the size of every answer's body, when it is known: the binary's hook for the leak put
/// in on purpose (`make soak-leak`).
pub type AnsweredHook = fn(Option<u64>);

/// What the edge's middleware shares: the request figures and the binary's hook.
pub struct Edge {
    metrics: Arc<HttpMetrics>,
    answered: Option<AnsweredHook>,
}

impl Edge {
    pub fn new(registry: &mut Registry, answered: Option<AnsweredHook>) -> Self {
        Self {
            metrics: HttpMetrics::register(registry),
            answered,
        }
    }

    pub fn metrics(&self) -> &Arc<HttpMetrics> {
        &self.metrics
    }
}

/// What every worker's application shares, one entry per feature: each handler extracts the
/// one its feature offers.
#[derive(Clone)]
pub struct Shared {
    pub config: web::Data<Config>,
    pub edge: web::Data<Edge>,
    /// Compressed JSON answers, made at most one per core at a time and kept.
    pub compressor: web::Data<Compressor>,
    pub gun: web::Data<gun::Client>,
    pub resolvers: resolver::Resolvers,
    pub media: web::Data<media::Client>,
    pub callers: web::Data<Callers>,
    pub monitor: web::Data<monitor::Monitor>,
}

/// Mounts every feature's routes; `resolver` is this worker's own resolver.
pub fn configure_app(cfg: &mut ServiceConfig, shared: Shared, resolver: Addr<resolver::Resolver>) {
    let ui = shared.config.ui.enabled;
    cfg.app_data(shared.config)
        .app_data(shared.edge)
        .app_data(shared.compressor)
        .app_data(shared.gun)
        .app_data(web::Data::new(resolver))
        .app_data(shared.media)
        .app_data(shared.callers)
        .app_data(shared.monitor)
        .configure(resolver::configure)
        .configure(media::configure)
        .configure(gun::configure)
        .configure(monitor::configure)
        .configure(|cfg| monitor::configure_page(cfg, ui))
        .default_service(web::to(route_not_found));
}

/// Records each request's duration under its route template (never the raw path, so ids cannot
/// explode the label set) and status class.
pub fn observe<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let started = Instant::now();
    // This request has left the connection's queue: one more may be read behind it.
    if let Some(pipeline) = req.conn_data::<std::rc::Rc<crate::server::Pipeline>>() {
        pipeline.taken();
    }
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let edge = req.app_data::<web::Data<Edge>>().cloned();
    srv.call(req).map(move |res| {
        if let (Ok(res), Some(edge)) = (&res, edge) {
            let status = res.status().as_u16();
            edge.metrics
                .observe_request(route, status, started.elapsed());
            if let Some(answered) = edge.answered {
                answered(match res.response().body().size() {
                    actix_web::body::BodySize::Sized(n) => Some(n),
                    _ => None,
                });
            }
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
