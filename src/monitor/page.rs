//! `/`: one page that shows the demo working and the service's health at a glance, and
//! `/status.json`, the figures it draws (a stable shape others may script against). The page
//! is self-contained (its style and script inline, nothing fetched from elsewhere) and carries a
//! strict CSP of its own: only its own style and script, by hash, may run. With `ui.enabled`
//! off, neither route exists. The README is served at `/README.md` for the page's API link.

use std::sync::LazyLock;

use actix_web::{http::header, web, HttpResponse};
use base64::{engine::general_purpose::STANDARD, Engine};
use sha2::{Digest, Sha256};

use super::{
    actor::MemoryView,
    client::Monitor,
    process::ProcessFigures,
    trend::{Reading, Shape},
};
use crate::{error::ApiError, gun, http::request::compressed};

const HTML: &str = include_str!("page/page.html");
const STYLE: &str = include_str!("page/page.css");
const SCRIPT: &str = include_str!("page/page.js");
const README: &str = include_str!("../../README.md");

/// The page with its style and script in place, and the CSP that lets exactly those run.
struct Page {
    html: String,
    csp: String,
}

static PAGE: LazyLock<Page> = LazyLock::new(|| {
    let hash = |text: &str| format!("'sha256-{}'", STANDARD.encode(Sha256::digest(text)));
    Page {
        html: HTML
            .replace("/*STYLE*/", STYLE)
            .replace("/*SCRIPT*/", SCRIPT),
        csp: format!(
            "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; media-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            hash(SCRIPT),
            hash(STYLE)
        ),
    }
});

pub fn configure(cfg: &mut web::ServiceConfig, enabled: bool) {
    if !enabled {
        return;
    }
    cfg.service(compressed("/").route(web::get().to(page)))
        .service(compressed("/status.json").route(web::get().to(status)))
        .service(compressed("/README.md").route(web::get().to(readme)));
}

async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE.csp.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(PAGE.html.as_str())
}

async fn readme() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/markdown; charset=utf-8")
        .body(README)
}

/// What the page draws: relays and their circuits, the caches, streams, requests so far, and
/// memory over the monitor's window. No secrets and no paths: relay URLs are shown without
/// credentials, as `/health` shows them.
async fn status(
    gun: web::Data<gun::Client>,
    monitor: web::Data<Monitor>,
) -> Result<HttpResponse, ApiError> {
    let health = gun.health().await?;
    let memory = monitor.readings().await?;
    let caches = gun.figures();
    let watched = monitor.watched();
    let now = monitor.sample();
    let relays: Vec<serde_json::Value> = health
        .relays
        .iter()
        .map(|r| {
            serde_json::json!({
                "url": r.url,
                "state": r.state.as_str(),
                "circuit": r.circuit.as_str(),
                "watch": r.watch.as_str(),
            })
        })
        .collect();
    let hit_rate = if caches.negative_lookups == 0 {
        serde_json::Value::Null
    } else {
        (caches.negative_hits as f64 / caches.negative_lookups as f64).into()
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptimeSecs": monitor.uptime().as_secs(),
            "source": if health.relays.is_empty() { "file" } else { "relay" },
            "relay": health.state.as_str(),
            "watch": health.watch.as_str(),
            "relays": relays,
            "negativeCache": {
                "entries": caches.negative_entries,
                "lookups": caches.negative_lookups,
                "hits": caches.negative_hits,
                "hitRate": hit_rate,
            },
            "recordCache": {"bytes": caches.record_bytes, "hits": caches.record_hits},
            "media": {
                "activeStreams": watched.media.active_streams(),
                "bytesSent": watched.media.total_bytes_sent(),
            },
            "requests": {"total": watched.http.requests()},
            "memory": memory_json(&memory, &now),
        })))
}

/// The memory part of `/status.json`: the latest sample, the window and the trend over it.
fn memory_json(memory: &MemoryView, now: &ProcessFigures) -> serde_json::Value {
    let samples: Vec<serde_json::Value> = memory
        .samples
        .iter()
        .map(|(ago, rss, heap)| {
            serde_json::json!({"ageSecs": (ago * 10.0).round() / 10.0, "rssBytes": rss, "heapBytes": heap})
        })
        .collect();
    let bytes = |mb: f64| (mb * 1024.0 * 1024.0).round();
    // No slope and no shape until the readings span enough; a flat trend has a bound in bytes,
    // not a slope, so that no "flat" sits beside a rate that would be a ramp if it held.
    let trend = match memory.trend {
        Reading::Gathering {
            span_secs,
            needed_secs,
        } => serde_json::json!({
            "shape": "gathering", "spanSecs": span_secs.round(), "neededSecs": needed_secs.round(),
        }),
        Reading::Known(t) if t.shape == Shape::Flat => serde_json::json!({
            "shape": "flat", "withinBytes": bytes(t.tolerance_mb), "spanSecs": t.span_secs.round(),
        }),
        Reading::Known(t) => serde_json::json!({
            "shape": t.shape.to_string(), "bytesPerHour": bytes(t.mb_per_hour),
            "spanSecs": t.span_secs.round(),
        }),
    };
    serde_json::json!({
        "rssBytes": now.rss_bytes,
        "heapBytes": now.heap_bytes,
        "windowSecs": memory.window_secs,
        "intervalSecs": memory.interval_secs,
        "samples": samples,
        "trend": trend,
    })
}
