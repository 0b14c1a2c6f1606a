//! `/health` and `/metrics`: what operators and their scrapers read.

use actix_web::{web, HttpResponse};

use super::{compressed, AppState};
use crate::{error::ApiError, gun::RelayState, gun::RelayStatus, monitor};

pub fn configure(cfg: &mut web::ServiceConfig) {
    // `/api/health` is where the old service answered.
    cfg.service(compressed("/health").route(web::get().to(health)))
        .service(compressed("/api/health").route(web::get().to(health)))
        .service(compressed("/metrics").route(web::get().to(metrics)));
}

async fn health(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (relay, breaker) = state.gun.fetcher.send(RelayStatus).await?;
    let serving = relay != RelayState::Unreachable;
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
