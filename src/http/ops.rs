//! `/health` and `/metrics`: what operators and their scrapers read.

use actix_web::{web, HttpResponse};

use super::{compressed, AppState};
use crate::{error::ApiError, gun::RelayState, gun::RelayStatus, monitor};

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

/// Readiness: a relay can be used (or the file source serves). 503 while the breaker is open
/// or the relay URL is not a relay's, so a balancer sends traffic elsewhere meanwhile.
async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (relay, _) = state.gun.fetcher.send(RelayStatus).await?;
    let reason = match relay {
        RelayState::File | RelayState::Reachable => None,
        RelayState::Unreachable => Some("the relay's circuit breaker is open"),
        RelayState::Misconfigured => Some("the relay URL answers 404s that are not the relay's"),
    };
    Ok(match reason {
        None => {
            HttpResponse::Ok().json(serde_json::json!({"status": "ready", "relay": relay.as_str()}))
        }
        Some(reason) => HttpResponse::ServiceUnavailable().json(
            serde_json::json!({"status": "not_ready", "relay": relay.as_str(), "reason": reason}),
        ),
    })
}

async fn health(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (relay, breaker) = state.gun.fetcher.send(RelayStatus).await?;
    let serving = matches!(relay, RelayState::File | RelayState::Reachable);
    let mut body = serde_json::json!({
        "status": if serving { "ok" } else { "degraded" },
        "relay": relay.as_str(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSecs": state.started.elapsed().as_secs(),
    });
    if let Some(breaker) = breaker {
        body["circuit"] = breaker.as_str().into();
    }
    Ok(if serving {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    })
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let text = state.metrics.render(&monitor::sample());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text)
}
