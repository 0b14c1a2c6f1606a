//! The Node API's existing clients, unchanged: web apps on other origins (CORS), the old media
//! URLs, the old query forms, listings through the indexer, compressed JSON.

mod common;

use common::*;
use serde_json::json;

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

/// The old service let its browser-extension clients in; `chrome-extension://*` does, with the
/// same preflight as any allowed origin, and no other scheme or lookalike gets in by it.
#[test]
fn extension_origins_are_allowed_by_their_scheme() {
    let service = TestApp::start(test_config().with(|c| {
        c.cors.allowed_origins = vec!["chrome-extension://*".into()];
    }));
    let extension = "chrome-extension://abcdefghijklmnopabcdefghijklmnop";
    let r = preflight(
        &service,
        "/api/records?did=did:gun:f3a9c2e1b7d4:workout-legs",
        extension,
        "authorization",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some(extension));
    assert!(r
        .header("access-control-allow-headers")
        .unwrap()
        .to_lowercase()
        .contains("authorization"));
    let get = raw_request(service.addr, "GET", "/health", &[("Origin", extension)]);
    assert_eq!(get.header("access-control-allow-origin"), Some(extension));
    for other in [
        "moz-extension://abc",
        "https://chrome-extension.example",
        "http://localhost:5173",
    ] {
        let r = raw_request(service.addr, "GET", "/health", &[("Origin", other)]);
        assert_eq!(r.header("access-control-allow-origin"), None, "{other}");
    }
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
    for origin in ["null", "file://"] {
        let r = raw_request(any.addr, "GET", "/health", &[("Origin", origin)]);
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("*"),
            "{origin}"
        );
        assert_eq!(
            r.header("access-control-allow-credentials"),
            None,
            "{origin}"
        );
    }
    let patterns = TestApp::start(test_config());
    for origin in ["null", "file://", "http://localhost.evil"] {
        let r = raw_request(patterns.addr, "GET", "/health", &[("Origin", origin)]);
        assert_eq!(r.header("access-control-allow-origin"), None, "{origin}");
    }
}

/// The old service's media URLs, as stored in published records: `/api/media?id=` (its API
/// router was mounted at /api) and `/media/<path>` (its static files), both under
/// `media.legacy_root`, with everything `/media?id=` does.
#[test]
fn the_old_media_urls_serve_the_legacy_folder() {
    let service = TestApp::start(test_config());
    let poster = std::fs::read(repo_path("data/media/web/demo-poster.jpg")).unwrap();
    let forms = [
        "/api/media?id=demo-poster.jpg",
        "/media/demo-poster.jpg",
        "/media?id=demo-poster.jpg",
    ];
    let mut etags = Vec::new();
    for target in forms {
        let r = raw_request(service.addr, "GET", target, &[]);
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(r.body, poster, "{target}");
        assert_eq!(r.header("content-type"), Some("image/jpeg"), "{target}");
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{target}: images get a year, as the old service sent"
        );
        assert!(r.header("last-modified").is_some(), "{target}");
        assert_eq!(r.header("content-encoding"), None, "{target}");
        let etag = r.header("etag").unwrap().to_string();
        let again = raw_request(service.addr, "GET", target, &[("If-None-Match", &etag)]);
        assert_eq!(again.status, 304, "{target}");
        let range = raw_request(service.addr, "GET", target, &[("Range", "bytes=0-1")]);
        assert_eq!(range.status, 206, "{target}");
        assert_eq!(range.body, poster[..2], "{target}");
        let head = raw_request(service.addr, "HEAD", target, &[]);
        assert_eq!(head.status, 200, "{target}");
        assert_eq!(
            head.header("content-length"),
            Some(&*poster.len().to_string())
        );
        etags.push(etag);
    }
    assert!(etags.windows(2).all(|w| w[0] == w[1]), "one file, one ETag");
    let complete = scrape(
        service.addr,
        "oip_media_streams_total{outcome=\"complete\"}",
    );
    assert_eq!(
        complete,
        Some(6.0),
        "every GET went through the stream registry"
    );
}

#[test]
fn the_old_media_urls_never_leave_their_folder() {
    let service = TestApp::start(test_config());
    for target in [
        "/media/../demo-clip/original",
        "/media/%2e%2e/demo-clip/original",
        "/media/..%2fdemo-clip%2foriginal",
        "/media//etc/passwd",
        "/media/.hidden",
        "/media/a%00b",
        "/api/media?id=../demo-clip/original",
        "/api/media?id=/etc/passwd",
        "/api/media?id=",
        "/api/media",
        "/media/no-such-file.gif",
    ] {
        let r = raw_request(service.addr, "GET", target, &[]);
        assert!(matches!(r.status, 400 | 404), "{target}: {}", r.status);
        assert!(r.json()["code"].is_string(), "{target}");
    }
}

const WORKOUT: &str = "did:gun:f3a9c2e1b7d4:workout-legs";

#[actix_web::test]
async fn the_old_query_forms_are_understood() {
    let service = TestApp::start(test_config());
    let records = |q: String| get(service.url(&format!("/api/records?{q}")));
    let by_did = records(format!("did={WORKOUT}&resolveDepth=1")).await;
    let by_did_tx = records(format!("didTx={WORKOUT}&resolveDepth=1")).await;
    assert_eq!(by_did_tx.status, 200);
    assert_eq!(by_did_tx.json()["records"], by_did.json()["records"]);
    // `did` wins over `didTx`, as the old API's query used `did || didTx`.
    let both = records(format!(
        "did={WORKOUT}&didTx=did:gun:f3a9c2e1b7d4:workout-full-body&resolveDepth=1"
    ))
    .await;
    assert_eq!(both.status, 200);
    assert_eq!(both.json()["records"], by_did.json()["records"]);
    // Parameters that did nothing to a query by DID are ignored; `limit` and `page` page it.
    let sorted = records(format!(
        "did={WORKOUT}&resolveDepth=1&limit=10&sortBy=date:desc&page=1"
    ))
    .await;
    assert_eq!(sorted.json()["records"], by_did.json()["records"]);
    let envelope = sorted.json();
    assert_eq!(
        (
            envelope["pageSize"].clone(),
            envelope["currentPage"].clone()
        ),
        (json!(10), json!(1))
    );
    assert_eq!(envelope["totalPages"], 1);
    let past_the_end = records(format!("did={WORKOUT}&limit=10&page=2"))
        .await
        .json();
    assert_eq!(past_the_end["records"], json!([]));
    assert_eq!(
        (
            past_the_end["searchResults"].clone(),
            past_the_end["totalPages"].clone()
        ),
        (json!(0), json!(0))
    );

    let keys = by_did.json().to_string();
    assert!(
        keys.contains("\"publicKey\""),
        "the demo records carry keys"
    );
    let without = records(format!(
        "did={WORKOUT}&resolveDepth=1&includePubKeys=false&includeSigs=false"
    ))
    .await;
    assert_eq!(without.status, 200);
    assert!(!without.json().to_string().contains("\"publicKey\""));
    assert_eq!(
        without.json()["records"][0]["oip"]["creator"]["didAddress"],
        "did:gun:f3a9c2e1b7d4"
    );
    let bad = records(format!("did={WORKOUT}&includeSigs=nope")).await;
    assert_eq!(bad.json()["code"], "invalid_parameter");

    let old_health = get(service.url("/api/health")).await;
    assert_eq!(old_health.status, 200);
    assert_eq!(old_health.json()["status"], "ok");
}

#[actix_web::test]
async fn signatures_leave_every_oip_block_on_request() {
    let relay = MockRelay::start();
    let oip = |did: &str| {
        serde_json::json!({"recordType": "x", "signature": "c2ln", "did": did,
            "creator": {"publicKey": "02key", "didAddress": "did:gun:a1b2c3d4e5f6"}})
    };
    relay.insert(
        "a1b2c3d4e5f6:w",
        node(
            serde_json::json!({"workout": {"exercise": ["did:gun:a1b2c3d4e5f6:e"]}}),
            oip("did:gun:a1b2c3d4e5f6:w"),
        ),
    );
    relay.insert(
        "a1b2c3d4e5f6:e",
        node(
            serde_json::json!({"basic": {"name": "E"}}),
            oip("did:gun:a1b2c3d4e5f6:e"),
        ),
    );
    let service = TestApp::start(relay_config(&relay.url()));
    let url = |extra: &str| {
        service.url(&format!(
            "/api/records?did=did:gun:a1b2c3d4e5f6:w&resolveDepth=1{extra}"
        ))
    };
    let full = get(url("")).await.json().to_string();
    assert_eq!(full.matches("c2ln").count(), 2);
    let bare = get(url("&includeSigs=false")).await.json();
    let text = bare.to_string();
    assert!(
        !text.contains("c2ln") && text.matches("02key").count() == 2,
        "{text}"
    );
}

#[actix_web::test]
async fn force_refresh_goes_past_both_caches_and_refreshes_them() {
    let relay = MockRelay::start();
    relay.set_miss_delay(10);
    let soul = "a1b2c3d4e5f6:fresh";
    // No floor for misses, to see the bypass itself, and a second one for records; the next
    // tests keep the defaults.
    let service = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.negative_cache.refresh_after_secs = 0;
        c.record_cache.refresh_after_secs = 1;
    }));
    let ask = |extra: &'static str| {
        get(service.url(&format!(
            "/api/records?did=did:gun:{soul}&resolveDepth=0{extra}"
        )))
    };
    let found = |r: &Reply| r.json()["records"].as_array().map_or(0, Vec::len);
    let missing = ask("").await;
    assert_eq!((missing.status, found(&missing)), (200, 0));
    relay.insert(
        soul,
        node(
            serde_json::json!({"basic": {"name": "One"}}),
            serde_json::json!({}),
        ),
    );
    assert_eq!(found(&ask("").await), 0, "still known missing");
    assert_eq!(relay.gets(soul), 1);
    let fresh = ask("&forceRefresh=true").await;
    assert_eq!(found(&fresh), 1);
    assert_eq!(relay.gets(soul), 2);
    // What it found refreshed the caches: found now without forceRefresh, from the cache.
    let cached = ask("").await;
    assert_eq!(cached.status, 200);
    assert_eq!(cached.json()["resolution"]["fromCache"], 1);
    assert_eq!(relay.gets(soul), 2);

    relay.insert(
        soul,
        node(
            serde_json::json!({"basic": {"name": "Two"}}),
            serde_json::json!({}),
        ),
    );
    let name = |r: &Reply| r.json()["records"][0]["data"]["basic"]["name"].clone();
    assert_eq!(
        name(&ask("").await),
        "One",
        "the record cache still holds the old one"
    );
    assert_eq!(
        name(&ask("&forceRefresh=true").await),
        "One",
        "fetched under record_cache.refresh_after_secs ago: not again"
    );
    actix_web::rt::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = ask("&forceRefresh=TRUE").await;
    assert_eq!(name(&again), "Two");
    assert_eq!(
        name(&ask("").await),
        "Two",
        "and the cache took the new one"
    );
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut out).unwrap();
    out
}

fn unbrotli(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut brotli::Decompressor::new(body, 4096), &mut out).unwrap();
    out
}

#[test]
fn json_is_compressed_as_asked_and_media_never() {
    let service = TestApp::start(test_config());
    let target = format!("/api/records?did={WORKOUT}&resolveDepth=2");
    let plain = raw_request(service.addr, "GET", &target, &[]);
    assert_eq!(plain.header("content-encoding"), None);
    let gz = raw_request(service.addr, "GET", &target, &[("Accept-Encoding", "gzip")]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert!(
        gz.body.len() < plain.body.len() / 2,
        "{} of {}",
        gz.body.len(),
        plain.body.len()
    );
    let unzipped: serde_json::Value = serde_json::from_slice(&gunzip(&gz.body)).unwrap();
    let original = plain.json();
    assert_eq!(unzipped["records"], original["records"]);
    let br = raw_request(
        service.addr,
        "GET",
        &target,
        &[("Accept-Encoding", "br, gzip")],
    );
    assert_eq!(br.header("content-encoding"), Some("br"));
    let decoded: serde_json::Value = serde_json::from_slice(&unbrotli(&br.body)).unwrap();
    assert_eq!(decoded["records"], original["records"]);
    // Every JSON route; under 1 KB it saves nothing, and goes plain.
    for (json, big) in [
        ("/metrics", true),
        ("/api/records?did=not-a-did", false),
        ("/health", false),
    ] {
        let r = raw_request(service.addr, "GET", json, &[("Accept-Encoding", "gzip")]);
        let encoding = r.header("content-encoding");
        assert_eq!(encoding, big.then_some("gzip"), "{json}");
        assert!(
            r.header("vary")
                .is_some_and(|v| v.contains("accept-encoding")),
            "{json}"
        );
    }
    let limited = TestApp::start(test_config().with(|c| c.server.compress_max_bytes = 2000));
    let r = raw_request(limited.addr, "GET", &target, &[("Accept-Encoding", "gzip")]);
    assert_eq!(
        r.header("content-encoding"),
        None,
        "past server.compress_max_bytes: plain"
    );
    for (media, range) in [
        ("/api/media/demo-clip", None),
        ("/api/media/demo-clip", Some("bytes=0-99")),
        ("/media/demo-poster.jpg", None),
        ("/api/media?id=demo-poster.jpg", Some("bytes=10-")),
    ] {
        let mut headers = vec![("Accept-Encoding", "gzip, br")];
        headers.extend(range.map(|r| ("Range", r)));
        let r = raw_request(service.addr, "GET", media, &headers);
        assert!(matches!(r.status, 200 | 206), "{media}");
        assert_eq!(r.header("content-encoding"), None, "{media} {range:?}");
        assert_eq!(
            r.header("content-length"),
            Some(&*r.body.len().to_string()),
            "{media}"
        );
    }
}

/// A demo node as the indexer lists a record: `data` and `oip` as objects, with `didTx`.
fn listed(local: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(repo_path("data/demo/records.json")).unwrap();
    let nodes: serde_json::Value = serde_json::from_str(&text).unwrap();
    let node = &nodes[format!("f3a9c2e1b7d4:{local}")];
    let parse =
        |k: &str| serde_json::from_str::<serde_json::Value>(node[k].as_str().unwrap()).unwrap();
    let mut oip = parse("oip");
    oip["didTx"] = format!("did:gun:f3a9c2e1b7d4:{local}").into();
    oip.as_object_mut().unwrap().remove("did");
    serde_json::json!({"data": parse("data"), "oip": oip})
}

/// The old API's documented envelope of a listing.
fn envelope(records: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({
        "message": "Records retrieved successfully",
        "latestArweaveBlockInDB": 1_523_000,
        "indexingProgress": "99.97%",
        "totalRecords": 57,
        "pageSize": 2,
        "currentPage": 3,
        "searchResults": 41,
        "queryParams": {"recordType": "workout", "limit": "2", "page": "3"},
        "totalPages": 21,
        "records": records,
    })
}

#[actix_web::test]
async fn listings_go_to_the_indexer_and_come_back_resolved() {
    let relay = MockRelay::start();
    relay.load(&repo_path("data/demo/records.json"));
    let indexer = MockRelay::start();
    let nameless = serde_json::json!({"data": {"basic": {"name": "no DID"}}, "oip": {}});
    indexer.set_listing(
        200,
        envelope(vec![
            listed("workout-legs"),
            nameless,
            listed("workout-upper"),
        ]),
    );
    let service = TestApp::start(
        relay_config(&relay.url()).with(|c| c.resolver.oip_api = Some(indexer.url())),
    );
    let r = get(service
        .url("/api/records?recordType=workout&limit=2&page=3&sortBy=date:desc&resolveDepth=1"))
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        indexer.listing_queries(),
        ["recordType=workout&limit=2&page=3&sortBy=date:desc&resolveDepth=0"]
    );
    let body = r.json();
    let sent = envelope(Vec::new());
    for key in [
        "message",
        "latestArweaveBlockInDB",
        "indexingProgress",
        "totalRecords",
        "pageSize",
        "currentPage",
        "searchResults",
        "totalPages",
    ] {
        assert_eq!(body[key], sent[key], "{key} is the indexer's, untouched");
    }
    assert!(
        body.get("queryParams").is_none(),
        "the old indexer echoes the request (its token too): left out"
    );
    let records = body["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["data"]["basic"]["name"], "Leg Day");
    let exercise = &records[0]["data"]["workout"]["exercise"][0];
    assert!(
        exercise["data"]["basic"]["name"].is_string(),
        "resolved: {exercise}"
    );
    assert_eq!(
        records[1]["oip"]["didTx"],
        "did:gun:f3a9c2e1b7d4:workout-upper"
    );
    assert_eq!(body["resolution"]["depth"], 1);
    assert_eq!(
        body["resolution"]["leftOut"], 1,
        "a listed record without a DID is counted, not dropped silently"
    );
    assert!(body["resolution"]["fetched"].as_u64().unwrap() > 0);

    // Names only and the field filter apply to listings as to DIDs.
    let names =
        get(service.url("/api/records?recordType=workout&resolveDepth=1&resolveNamesOnly=true"))
            .await
            .json();
    assert!(names["records"][0]["data"]["workout"]["exercise"][0].is_string());
    assert!(!names["records"][0]["data"]["workout"]["exercise"][0]
        .as_str()
        .unwrap()
        .starts_with("did:"));
}

#[actix_web::test]
async fn a_listing_without_an_indexer_or_with_a_failing_one_says_so() {
    let relay = MockRelay::start();
    let none = TestApp::start(relay_config(&relay.url()));
    let r = get(none.url("/api/records?recordType=workout")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "missing_parameter");
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("resolver.oip_api"));

    let indexer = MockRelay::start();
    indexer.set_listing(500, serde_json::json!({"error": "elasticsearch is down"}));
    // Two attempts: once the indexer is gone, a pooled connection to it may fail mid-request
    // (a cut answer); the retry then meets the refused connection an operator would see.
    let failing = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.resolver.oip_api = Some(indexer.url());
        c.gun.max_attempts = 2;
    }));
    let r = get(failing.url("/api/records?recordType=workout")).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["code"], "relay_error");
    indexer.set_listing(200, serde_json::json!({"message": "no records key"}));
    let r = get(failing.url("/api/records?recordType=workout")).await;
    assert_eq!(r.status, 502);
    indexer.set_listing(200, envelope(Vec::new()));
    let empty = get(failing.url("/api/records?recordType=nothing")).await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json()["records"], serde_json::json!([]));
    assert_eq!(empty.json()["totalPages"], 21);
    let (port, _) = indexer.stop();
    // A worker of the stopped mock may still answer once on a pooled connection; the service
    // must answer 503 as soon as the indexer is really gone, and never a 500.
    let mut statuses = Vec::new();
    while std::net::TcpStream::connect(port).is_ok() || statuses.len() < 3 {
        let r = get(failing.url("/api/records?recordType=workout")).await;
        statuses.push(r.status);
        assert!(statuses.len() < 20, "{statuses:?}");
    }
    assert_eq!(statuses.last(), Some(&503), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 502 | 503)),
        "{statuses:?}"
    );
}

/// Four clients looping `forceRefresh` on a record with 150 references: before, 304 requests
/// (of a record with 1,000) sent the relay 60,800; now each soul is asked once per
/// `record_cache.refresh_after_secs`.
#[actix_web::test]
async fn force_refresh_in_a_loop_asks_the_relay_once_per_period() {
    let relay = MockRelay::start();
    let refs: Vec<String> = (0..150)
        .map(|i| {
            let soul = format!("a1b2c3d4e5f6:ref-{i}");
            relay.insert(
                &soul,
                node(
                    serde_json::json!({"basic": {"name": i}}),
                    serde_json::json!({}),
                ),
            );
            format!("did:gun:{soul}")
        })
        .collect();
    relay.insert(
        "a1b2c3d4e5f6:many",
        node(
            serde_json::json!({"basic": {"name": "Many"}, "list": {"items": refs}}),
            serde_json::json!({}),
        ),
    );
    let service = TestApp::start(relay_config(&relay.url()));
    let url =
        service.url("/api/records?did=did:gun:a1b2c3d4e5f6:many&resolveDepth=1&forceRefresh=true");
    let loops = (0..4).map(|_| {
        let url = url.clone();
        async move {
            for _ in 0..25 {
                let r = get(&url).await;
                assert_eq!(r.status, 200);
            }
        }
    });
    futures::future::join_all(loops).await;
    assert_eq!(
        relay.total_gets(),
        151,
        "each soul once in the period, for 100 requests"
    );
}

/// A client that adds forceRefresh to every request costs the relay one request per missing
/// soul per `negative_cache.refresh_after_secs`, not one per request.
#[actix_web::test]
async fn force_refresh_on_every_request_cannot_undo_the_negative_cache() {
    let relay = MockRelay::start();
    relay.set_miss_delay(10);
    let service = TestApp::start(relay_config(&relay.url()));
    let url = service.url("/api/records?did=did:gun:a1b2c3d4e5f6:gone&forceRefresh=true");
    for _ in 0..20 {
        let r = get(&url).await;
        assert_eq!(
            (r.status, r.json()["searchResults"].clone()),
            (200, 0.into())
        );
    }
    assert_eq!(relay.gets("a1b2c3d4e5f6:gone"), 1);
}

/// The old API filtered some listings after resolving them (`exerciseNames`, `hasAudio`, ...):
/// such a listing is the indexer's whole, resolved as asked, and what it resolved that the
/// caller may not read is a DID again.
#[actix_web::test]
async fn a_listing_filtered_over_resolved_records_is_the_indexers_whole() {
    let relay = MockRelay::start();
    let indexer = MockRelay::start();
    let mut workout = listed("workout-legs");
    let private = serde_json::json!({
        "data": {"accessControl": {"access_level": "private", "owner_public_key": "someone"},
                 "basic": {"name": "Secret Squat"}},
        "oip": {"did": "did:gun:f3a9c2e1b7d4:private-squat", "recordType": "exercise"}
    });
    let public = listed("exercise-squat");
    workout["data"]["workout"]["exercise"] = serde_json::json!([public, private]);
    workout["exerciseScore"] = serde_json::json!(1.1);
    workout["exerciseMatchedCount"] = serde_json::json!(1);
    indexer.set_listing(200, envelope(vec![workout]));
    let service = TestApp::start(
        relay_config(&relay.url()).with(|c| c.resolver.oip_api = Some(indexer.url())),
    );
    let query = "recordType=workout&exerciseNames=Back%20Squat&resolveDepth=1";
    let r = get(service.url(&format!("/api/records?{query}"))).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        indexer.listing_queries(),
        [query],
        "asked as the caller asked it"
    );
    let record = &r.json()["records"][0];
    assert_eq!(record["exerciseScore"], 1.1, "the indexer's scores stay");
    assert_eq!(record["exerciseMatchedCount"], 1);
    let exercises = &record["data"]["workout"]["exercise"];
    assert_eq!(exercises[0]["data"]["basic"]["name"], "Back Squat");
    assert_eq!(exercises[1], "did:gun:f3a9c2e1b7d4:private-squat");
    assert_eq!(relay.total_gets(), 0, "nothing more is resolved here");

    let plain = get(service.url("/api/records?recordType=workout&resolveDepth=1")).await;
    assert_eq!(plain.status, 200);
    assert_eq!(
        indexer.listing_queries()[1],
        "recordType=workout&resolveDepth=0",
        "without such a filter the records are resolved here"
    );
}

#[actix_web::test]
async fn record_types_and_recipe_summaries_are_the_indexers() {
    let relay = MockRelay::start();
    relay.load(&repo_path("data/demo/records.json"));
    let indexer = MockRelay::start();
    let service = TestApp::start(
        relay_config(&relay.url()).with(|c| c.resolver.oip_api = Some(indexer.url())),
    );
    let types = get(service.url("/api/records/recordTypes")).await;
    assert_eq!(types.status, 200);
    assert_eq!(types.json(), *RECORD_TYPES);

    let did = "did:gun:f3a9c2e1b7d4:workout-legs";
    let summary = get(service.url(&format!(
        "/api/records?did={did}&resolveDepth=1&summarizeRecipe=true"
    )))
    .await;
    assert_eq!(summary.status, 200);
    assert_eq!(
        indexer.did_queries(),
        [format!("did={did}&resolveDepth=1&summarizeRecipe=true")],
        "the indexer computes the summary over what it resolves"
    );
    assert_eq!(relay.total_gets(), 0);

    let alone = TestApp::start(relay_config(&relay.url()));
    let types = get(alone.url("/api/records/recordTypes")).await;
    assert_eq!(types.status, 404);
    assert_eq!(types.json()["code"], "not_configured");
    let summary = get(alone.url(&format!("/api/records?did={did}&summarizeRecipe=true"))).await;
    assert_eq!(
        summary.status, 200,
        "without an indexer: the records, without a summary"
    );
    assert!(summary.json()["records"][0]["data"]
        .get("calculatedSummaryNutritionalInfo")
        .is_none());
}
