//! `/health` and `/metrics`: what operators and their scrapers read.

use actix_web::{web, HttpResponse};

use super::client::Monitor;
use crate::{
    error::ApiError,
    gun::{self, fetcher::RelayHealth, RelayState},
    http::request::compressed,
    metrics::CONTENT_TYPE,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    // `/api/health` is where the old service answered.
    cfg.service(compressed("/health").route(web::get().to(health)))
        .service(compressed("/api/health").route(web::get().to(health)))
        .service(compressed("/health/live").route(web::get().to(live)))
        .service(compressed("/health/ready").route(web::get().to(ready)))
        .service(compressed("/metrics").route(web::get().to(metrics)));
}

/// Liveness: the process serves. A relay outage must not get a healthy process restarted.
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "live"}))
}

/// Readiness: a relay can be used (or the file source serves). 503 while every relay's breaker
/// is open or every relay URL is misconfigured, so a balancer sends traffic elsewhere meanwhile.
async fn ready(gun: web::Data<gun::Client>) -> Result<HttpResponse, ApiError> {
    let health = gun.health().await?;
    let reason = match health.state {
        RelayState::File | RelayState::Reachable => None,
        RelayState::Unreachable => Some("no relay can be asked: every circuit breaker is open"),
        RelayState::Misconfigured => Some("every relay URL is misconfigured (see relays)"),
    };
    let mut body = serde_json::json!({
        "status": if reason.is_some() { "not_ready" } else { "ready" },
        "relay": health.state.as_str(),
        "relays": relays(&health),
    });
    Ok(match reason {
        None => HttpResponse::Ok().json(body),
        Some(reason) => {
            body["reason"] = reason.into();
            HttpResponse::ServiceUnavailable().json(body)
        }
    })
}

async fn health(
    gun: web::Data<gun::Client>,
    monitor: web::Data<Monitor>,
) -> Result<HttpResponse, ApiError> {
    let health = gun.health().await?;
    let serving = matches!(health.state, RelayState::File | RelayState::Reachable);
    let mut body = serde_json::json!({
        "status": if serving { "ok" } else { "degraded" },
        "relay": health.state.as_str(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSecs": monitor.uptime().as_secs(),
    });
    if let Some(circuit) = health.circuit {
        body["circuit"] = circuit.as_str().into();
        body["watch"] = health.watch.as_str().into();
        body["relays"] = relays(&health);
    }
    Ok(if serving {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    })
}

/// Each relay: its URL, state, breaker, and what is misconfigured about it.
fn relays(health: &RelayHealth) -> serde_json::Value {
    health
        .relays
        .iter()
        .map(|r| {
            let mut relay = serde_json::json!({
                "url": r.url,
                "state": r.state.as_str(),
                "circuit": r.circuit.as_str(),
                "watch": r.watch.as_str(),
            });
            if let Some(problem) = &r.problem {
                relay["problem"] = problem.as_str().into();
            }
            relay
        })
        .collect()
}

async fn metrics(monitor: web::Data<Monitor>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(monitor.exposition())
}
