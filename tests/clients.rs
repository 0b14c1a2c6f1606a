//! The Node API's existing clients, unchanged: web apps on other origins (CORS), the old media
//! URLs, the old query forms, listings through the indexer, compressed JSON.

mod common;

use common::*;

const APP: &str = "http://localhost:5173";

fn preflight(service: &impl Served, target: &str, origin: &str, headers: &str) -> Raw {
    raw_request(
        service.addr(),
        "OPTIONS",
        target,
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", headers),
        ],
    )
}

#[test]
fn pages_of_allowed_origins_may_call_every_route() {
    let service = TestApp::start(test_config());
    for target in [
        "/api/records?did=did:gun:f3a9c2e1b7d4:workout-legs",
        "/api/media/demo-clip",
        "/gun-relay/get?soul=f3a9c2e1b7d4:workout-legs",
        "/health",
    ] {
        let r = preflight(&service, target, APP, "authorization,range,if-none-match");
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some(APP),
            "{target}"
        );
        assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
        assert_eq!(r.header("access-control-max-age"), Some("86400"));
        let allowed = r
            .header("access-control-allow-headers")
            .unwrap()
            .to_lowercase();
        for h in ["authorization", "range", "if-none-match"] {
            assert!(allowed.contains(h), "{target}: {allowed}");
        }
    }
    let r = raw_request(
        service.addr,
        "GET",
        "/api/media/demo-clip",
        &[("Origin", APP), ("Range", "bytes=0-1")],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    let exposed = r
        .header("access-control-expose-headers")
        .unwrap()
        .to_lowercase();
    for h in [
        "content-range",
        "accept-ranges",
        "content-length",
        "etag",
        "x-cache",
    ] {
        assert!(exposed.contains(h), "{exposed}");
    }
    assert!(r
        .header("vary")
        .is_some_and(|v| v.to_lowercase().contains("origin")));
}

#[test]
fn other_origins_get_their_answer_without_cors_headers() {
    let service = TestApp::start(test_config());
    let evil = "http://evil.example";
    let r = raw_request(service.addr, "GET", "/health", &[("Origin", evil)]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
    let p = preflight(&service, "/api/records", evil, "authorization");
    assert!(p.status < 500, "{}", p.status);
    assert_eq!(p.header("access-control-allow-origin"), None);
    // A port pattern is no prefix match.
    let lookalike = raw_request(
        service.addr,
        "GET",
        "/health",
        &[("Origin", "http://localhost.evil.example")],
    );
    assert_eq!(lookalike.header("access-control-allow-origin"), None);
}

#[test]
fn any_origin_when_configured() {
    let any = TestApp::start(test_config().with(|c| {
        c.cors.allowed_origins = vec!["*".into()];
        c.cors.allow_credentials = false;
    }));
    let r = raw_request(
        any.addr,
        "GET",
        "/health",
        &[("Origin", "https://x.example")],
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let with_credentials = TestApp::start(test_config().with(|c| {
        c.cors.allowed_origins = vec!["*".into()];
    }));
    let r = raw_request(
        with_credentials.addr,
        "GET",
        "/health",
        &[("Origin", "https://x.example")],
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://x.example"),
        "with credentials the origin is echoed, never *"
    );
}
