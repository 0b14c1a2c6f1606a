//! The relay proxy against a mock relay: one upstream request per missing soul per TTL, shared
//! fetches, retries only where they help, a breaker that fails fast, and bad input that never
//! reaches the relay.

mod common;

use std::{
    sync::atomic::Ordering::SeqCst,
    time::{Duration, Instant},
};

use common::*;
use futures::future::join_all;
use serde_json::json;

const MISSING: &str = "a1b2c3d4e5f6:missing-workout";
const FOUND: &str = "a1b2c3d4e5f6:workout-1";

fn found_node() -> serde_json::Value {
    node(
        json!({"basic": {"name": "Leg Day"}, "workout": {"exercise": ["did:gun:a1b2c3d4e5f6:squat"]}}),
        json!({"recordType": "workout"}),
    )
}

fn get_soul(service: &impl Served, soul: &str) -> String {
    service.url(&format!("/gun-relay/get?soul={soul}"))
}

#[actix_web::test]
async fn a_missing_soul_costs_one_upstream_request_per_ttl() {
    let relay = MockRelay::start();
    relay.set_miss_delay(300);
    let service =
        TestApp::start(relay_config(&relay.url()).with(|c| c.negative_cache.ttl_secs = 2));

    let started = Instant::now();
    let first = get(get_soul(&service, MISSING)).await;
    let miss_latency = started.elapsed();
    assert_eq!(first.status, 404);
    assert_eq!(first.header("x-cache").as_deref(), Some("MISS"));
    assert_eq!(first.json()["code"], "not_found");

    let started = Instant::now();
    for _ in 0..49 {
        let r = get(get_soul(&service, MISSING)).await;
        assert_eq!(r.status, 404);
        assert_eq!(r.header("x-cache").as_deref(), Some("NEGATIVE"));
    }
    let cached_latency = started.elapsed() / 49;
    let at_once = join_all((0..50).map(|_| get(get_soul(&service, MISSING)))).await;
    assert!(at_once.iter().all(|r| r.status == 404));
    assert_eq!(relay.gets(MISSING), 1, "100 asks, one upstream request");
    eprintln!("relay miss {miss_latency:?}, cached 404 {cached_latency:?} per request");

    std::thread::sleep(Duration::from_millis(2100));
    let after_ttl = get(get_soul(&service, MISSING)).await;
    assert_eq!(after_ttl.status, 404);
    assert_eq!(after_ttl.header("x-cache").as_deref(), Some("MISS"));
    for _ in 0..10 {
        get(get_soul(&service, MISSING)).await;
    }
    assert_eq!(relay.gets(MISSING), 2, "exactly one more after the TTL");
}

#[actix_web::test]
async fn fifty_concurrent_asks_for_a_new_missing_soul_share_one_request() {
    let relay = MockRelay::start();
    relay.set_miss_delay(500);
    let service = TestApp::start(relay_config(&relay.url()));
    let replies = join_all((0..50).map(|_| get(get_soul(&service, MISSING)))).await;
    assert!(replies.iter().all(|r| r.status == 404));
    assert_eq!(relay.gets(MISSING), 1);
    assert_eq!(
        metric(&service, "oip_gun_upstream_requests_total{status=\"404\"}").await,
        Some(1.0)
    );
}

#[actix_web::test]
async fn a_hundred_concurrent_reads_of_one_record_send_one_request() {
    let relay = MockRelay::start();
    relay.insert(FOUND, found_node());
    relay.set_latency(300);
    // Record cache off: what is measured here is coalescing, not caching.
    let service = TestApp::start(relay_config(&relay.url()).with(|c| c.record_cache.ttl_secs = 0));
    let replies = join_all((0..100).map(|_| get(get_soul(&service, FOUND)))).await;
    for r in &replies {
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["data"]["data"]["basic"]["name"], "Leg Day");
    }
    assert_eq!(relay.gets(FOUND), 1);
}

#[actix_web::test]
async fn found_records_pass_through_and_are_cached() {
    let relay = MockRelay::start();
    relay.insert(FOUND, found_node());
    let service = TestApp::start(relay_config(&relay.url()));
    let first = get(get_soul(&service, FOUND)).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-cache").as_deref(), Some("MISS"));
    let body = first.json();
    assert_eq!(body["success"], true);
    // Passed through as the relay answered: the array is still a JSON string here.
    assert_eq!(
        body["data"]["data"]["workout"]["exercise"],
        "[\"did:gun:a1b2c3d4e5f6:squat\"]"
    );
    let second = get(get_soul(&service, FOUND)).await;
    assert_eq!(second.header("x-cache").as_deref(), Some("HIT"));
    assert_eq!(second.body, first.body);
    assert_eq!(relay.gets(FOUND), 1);
    assert_eq!(
        metric(&service, "oip_record_cache_hits_total").await,
        Some(1.0)
    );
}

#[actix_web::test]
async fn a_500_is_retried_up_to_max_attempts_and_never_cached_as_missing() {
    let relay = MockRelay::start();
    relay.set_soul_mode(MISSING, Mode::Status(500));
    let service = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.gun.max_attempts = 3;
        c.gun.breaker_failures = 100;
    }));
    let r = get(get_soul(&service, MISSING)).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["code"], "relay_error");
    assert_eq!(relay.gets(MISSING), 3);

    let again = get(get_soul(&service, MISSING)).await;
    assert_eq!(again.status, 502, "a 5xx is not a 404: nothing was cached");
    assert_eq!(relay.gets(MISSING), 6);
    assert_eq!(
        metric(&service, "oip_gun_upstream_requests_total{status=\"500\"}").await,
        Some(6.0)
    );
    assert_eq!(metric(&service, "oip_gun_retries_total").await, Some(4.0));
    assert_eq!(
        metric(&service, "oip_negative_cache_entries").await,
        Some(0.0)
    );

    // The relay recovers: the record is served, proving no 404 was remembered.
    relay.insert(MISSING, found_node());
    relay.set_soul_mode(MISSING, Mode::Normal);
    assert_eq!(get(get_soul(&service, MISSING)).await.status, 200);
}

#[actix_web::test]
async fn a_timeout_is_retried_and_never_cached_as_missing() {
    let relay = MockRelay::start();
    relay.set_soul_mode(MISSING, Mode::Hang);
    // A 200 ms timeout is shorter than the real relay's 3 s miss wait: this relay must answer
    // its misses sooner, or the recovered miss below would time out too.
    relay.set_miss_delay(50);
    let service = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.gun.max_attempts = 2;
        c.gun.request_timeout_ms = 200;
    }));
    let r = get(get_soul(&service, MISSING)).await;
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["code"], "relay_timeout");
    assert_eq!(relay.gets(MISSING), 2);
    assert_eq!(
        metric(
            &service,
            "oip_gun_upstream_requests_total{status=\"error\"}"
        )
        .await,
        Some(2.0)
    );

    relay.set_soul_mode(MISSING, Mode::Normal);
    let now_missing = get(get_soul(&service, MISSING)).await;
    assert_eq!(now_missing.status, 404);
    assert_eq!(now_missing.header("x-cache").as_deref(), Some("MISS"));
    assert_eq!(relay.gets(MISSING), 3);
}

#[actix_web::test]
async fn an_oversized_or_garbage_answer_is_a_bad_gateway() {
    let relay = MockRelay::start();
    relay.set_soul_mode("big:1", Mode::Huge(200_000));
    relay.set_soul_mode("junk:1", Mode::Garbage);
    let service = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.gun.max_response_bytes = 100000;
        c.gun.max_attempts = 2;
    }));
    let big = get(get_soul(&service, "big:1")).await;
    assert_eq!(big.status, 502);
    assert_eq!(big.json()["code"], "relay_response_too_large");
    assert_eq!(
        relay.gets("big:1"),
        1,
        "too large again next time: not retried"
    );

    // A whole 200 answer that does not decode is what the relay holds for that soul: the
    // record's problem, not retried, and remembered for a while.
    for _ in 0..3 {
        let junk = get(get_soul(&service, "junk:1")).await;
        assert_eq!(junk.status, 502);
        assert_eq!(junk.json()["code"], "record_malformed");
    }
    assert_eq!(relay.gets("junk:1"), 1, "asked once, then remembered");
}

/// A record stored with `data` that is not JSON (the real relay then answers 200 with the raw
/// string), read by anyone, as often as they like.
#[actix_web::test]
async fn a_poisoned_record_read_100_times_harms_no_other_record() {
    const POISON: &str = "a1b2c3d4e5f6:poisoned";
    let relay = MockRelay::start();
    relay.insert(FOUND, found_node());
    relay.insert(POISON, json!({"data": "<b>not json", "oip": "{}"}));
    let service = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.gun.breaker_failures = 3;
        c.record_cache.ttl_secs = 0;
    }));
    for batch in 0..10 {
        let replies = join_all((0..10).map(|_| get(get_soul(&service, POISON)))).await;
        for r in replies {
            assert_eq!(r.status, 502, "batch {batch}");
            assert_eq!(r.json()["code"], "record_malformed");
        }
        assert_eq!(
            get(get_soul(&service, FOUND)).await.status,
            200,
            "batch {batch}"
        );
    }
    assert_eq!(relay.gets(POISON), 1, "one relay request for 100 reads");
    let health = get(service.url("/health")).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["circuit"], "closed");
    assert_eq!(
        metric(&service, "oip_gun_malformed_records_total").await,
        Some(1.0)
    );
    let resolved = get(service.url(&format!("/api/records?did=did:gun:{POISON}"))).await;
    assert_eq!(resolved.status, 502);
    assert_eq!(resolved.json()["code"], "record_malformed");
}

/// One soul the relay answers 500 for, asked again and again, counts once against the relay:
/// the breaker stays closed and every other soul is served.
#[actix_web::test]
async fn a_soul_failing_forever_does_not_open_the_breaker() {
    let relay = MockRelay::start();
    relay.insert(FOUND, found_node());
    relay.set_soul_mode(MISSING, Mode::Status(500));
    let service = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.gun.max_attempts = 2;
        c.gun.breaker_failures = 3;
        c.record_cache.ttl_secs = 0;
    }));
    for _ in 0..20 {
        let r = get(get_soul(&service, MISSING)).await;
        assert_eq!(r.json()["code"], "relay_error");
    }
    assert_eq!(get(get_soul(&service, FOUND)).await.status, 200);
    for _ in 0..5 {
        assert_eq!(get(get_soul(&service, MISSING)).await.status, 502);
        assert_eq!(get(get_soul(&service, FOUND)).await.status, 200);
    }
    assert_eq!(
        get(service.url("/health")).await.json()["circuit"],
        "closed"
    );
    assert!(relay.gets(MISSING) >= 20, "each read still asks the relay");

    // Three different souls failing is the relay's trouble: the breaker opens.
    for soul in ["x:1", "x:2", "x:3"] {
        relay.set_soul_mode(soul, Mode::Status(503));
        get(get_soul(&service, soul)).await;
    }
    let r = get(get_soul(&service, FOUND)).await;
    assert_eq!(r.json()["code"], "relay_circuit_open");
}

/// What an operator sees when the relay goes away and comes back: a WARN line when the breaker
/// opens, one when it closes, and a summary of failures per interval.
#[actix_web::test]
async fn relay_trouble_is_logged_at_warn_once_per_change() {
    let relay = MockRelay::start();
    relay.insert(FOUND, found_node());
    let service = Service::start(&relay_config(&relay.url()).with(|c| {
        c.gun.max_attempts = 1;
        c.gun.breaker_failures = 3;
        c.gun.breaker_open_ms = 500;
        c.gun.failure_log_interval_secs = 1;
        c.record_cache.ttl_secs = 0;
    }));
    let (addr, state) = relay.stop();
    for i in 0..10 {
        get(get_soul(&service, &format!("a1b2c3d4e5f6:gone-{i}"))).await;
    }
    let opened = service
        .wait_for_line("circuit open", Duration::from_secs(2))
        .expect("a line when the breaker opens");
    assert!(
        opened.contains("WARN") && opened.contains("[GUN Relay] relay http://"),
        "{opened}"
    );
    let summary = service
        .wait_for_line("failed requests in the last 1s", Duration::from_secs(3))
        .expect("a summary line");
    assert!(
        summary.contains("WARN") && summary.contains("unreachable 3"),
        "{summary}"
    );
    let _relay = MockRelay::start_at(addr, state);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(get(get_soul(&service, FOUND)).await.status, 200);
    let closed = service
        .wait_for_line("circuit closed", Duration::from_secs(2))
        .expect("a line when it closes");
    assert!(closed.contains("WARN"), "{closed}");
    let opens = service
        .log()
        .iter()
        .filter(|l| l.contains("circuit open"))
        .count();
    assert_eq!(opens, 1, "one line per change, not per request");
}

#[actix_web::test]
async fn a_relay_that_goes_away_trips_the_breaker_and_service_resumes_when_it_returns() {
    let relay = MockRelay::start();
    relay.insert(FOUND, found_node());
    let service = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.gun.max_attempts = 1;
        c.gun.breaker_failures = 3;
        c.gun.breaker_open_ms = 1000;
        c.record_cache.ttl_secs = 0;
    }));
    assert_eq!(get(get_soul(&service, FOUND)).await.status, 200);
    let (addr, state) = relay.stop();

    for _ in 0..3 {
        let r = get(get_soul(&service, FOUND)).await;
        assert_eq!(r.status, 503);
        assert_eq!(r.json()["code"], "relay_unreachable");
    }
    let refused = "oip_gun_upstream_requests_total{status=\"error\"}";
    assert_eq!(metric(&service, refused).await, Some(3.0));
    let started = Instant::now();
    let fast = get(get_soul(&service, FOUND)).await;
    let open_latency = started.elapsed();
    assert_eq!(fast.status, 503);
    assert_eq!(fast.json()["code"], "relay_circuit_open");
    eprintln!("answer with the breaker open: {open_latency:?}");
    assert_eq!(
        metric(&service, refused).await,
        Some(3.0),
        "with the breaker open the answer comes without trying the relay"
    );
    let health = get(&service.url("/health")).await;
    assert_eq!(health.status, 503);
    assert_eq!(health.json()["relay"], "unreachable");
    assert_eq!(metric(&service, "oip_gun_circuit_open").await, Some(1.0));

    let relay = MockRelay::start_at(addr, state);
    std::thread::sleep(Duration::from_millis(1100));
    let back = get(get_soul(&service, FOUND)).await;
    assert_eq!(back.status, 200, "{}", String::from_utf8_lossy(&back.body));
    let health = get(&service.url("/health")).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["relay"], "reachable");
    assert_eq!(health.json()["circuit"], "closed");
    assert_eq!(
        relay.gets(FOUND),
        2,
        "one before the outage, one probe after"
    );
}

#[actix_web::test]
async fn the_hit_rate_line_appears_every_log_every_lookups() {
    let relay = MockRelay::start();
    let service =
        Service::start(&relay_config(&relay.url()).with(|c| c.negative_cache.log_every = 5));
    for _ in 0..10 {
        assert_eq!(get(get_soul(&service, MISSING)).await.status, 404);
    }
    let five = service
        .wait_for_line("[GUN 404 Cache] 4/5 hits", Duration::from_secs(2))
        .expect("line after 5 lookups");
    assert!(
        five.ends_with("[GUN 404 Cache] 4/5 hits (80.0% cache hit rate, 1 cached souls)"),
        "{five}"
    );
    let ten = service
        .wait_for_line("[GUN 404 Cache] 9/10 hits", Duration::from_secs(2))
        .expect("line after 10 lookups");
    assert!(
        ten.ends_with("(90.0% cache hit rate, 1 cached souls)"),
        "{ten}"
    );
    let lines = service.log();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("[GUN 404 Cache]"))
            .count(),
        2
    );
    assert!(
        !lines.iter().any(|l| l.contains("Error in getRecord")),
        "a 404 is not an error"
    );
}

#[actix_web::test]
async fn expired_entries_are_swept_and_logged() {
    let relay = MockRelay::start();
    let service = Service::start(&relay_config(&relay.url()).with(|c| {
        c.negative_cache.ttl_secs = 1;
        c.negative_cache.sweep_interval_secs = 1;
    }));
    // Both misses arrive together (each takes the relay's 3 s), so they expire together.
    join_all([
        get(get_soul(&service, MISSING)),
        get(get_soul(&service, "a1b2c3d4e5f6:other")),
    ])
    .await;
    let line = service
        .wait_for_line("[GUN Cache] Cleaned", Duration::from_secs(4))
        .expect("sweep line");
    assert!(
        line.ends_with("[GUN Cache] Cleaned 2 expired entries (404: 0)"),
        "{line}"
    );
    assert_eq!(
        metric(&service, "oip_negative_cache_entries").await,
        Some(0.0)
    );
}

#[actix_web::test]
async fn a_put_through_the_service_makes_a_cached_missing_soul_readable_at_once() {
    let relay = MockRelay::start();
    let service = TestApp::start(relay_config(&relay.url()));
    assert_eq!(get(get_soul(&service, MISSING)).await.status, 404);
    assert_eq!(
        get(get_soul(&service, MISSING))
            .await
            .header("x-cache")
            .as_deref(),
        Some("NEGATIVE")
    );

    let put = put(&service, MISSING, found_node()).await;
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    assert_eq!(put.json(), json!({"success": true, "soul": MISSING}));

    let now = get(get_soul(&service, MISSING)).await;
    assert_eq!(now.status, 200);
    assert_eq!(now.json()["data"]["data"]["basic"]["name"], "Leg Day");
    assert_eq!(relay.gets(MISSING), 2);
}

async fn put(service: &impl Served, soul: &str, node: serde_json::Value) -> Reply {
    put_node(&service.url("/gun-relay"), soul, node, Some(ADMIN_TOKEN)).await
}

/// Only the admin token, or a token whose key hashes to the soul's publisher prefix, writes;
/// nothing else reaches the relay or touches the caches.
#[actix_web::test]
async fn writes_need_the_admin_token_or_the_souls_publisher() {
    const SECRET: &str = "relay-proxy-jwt-secret";
    let key = "02c0ffee-publisher-public-key";
    let prefix = oip_resolver::auth::publisher_prefix(key);
    let soul = format!("{prefix}:exercise-new");
    let relay = MockRelay::start();
    relay.set_miss_delay(10);
    let service = TestApp::start(
        relay_config(&relay.url()).with(|c| c.auth.jwt_secret = Some(SECRET.into())),
    );
    assert_eq!(get(get_soul(&service, &soul)).await.status, 404);
    let base = service.url("/gun-relay");
    let node = || found_node();
    let publisher = jwt(&json!({"publisherPubKey": key}), SECRET);
    let stranger = jwt(&json!({"publicKey": "02someone-else"}), SECRET);
    let forged = jwt(&json!({"publicKey": key}), "not-the-service-secret");
    for (token, status, code) in [
        (None, 401, "unauthorized"),
        (Some("not-a-token"), 401, "unauthorized"),
        (Some(forged.as_str()), 401, "unauthorized"),
        (Some(stranger.as_str()), 403, "forbidden"),
    ] {
        let r = put_node(&base, &soul, node(), token).await;
        assert_eq!(r.status, status, "{token:?}");
        assert_eq!(r.json()["code"], code, "{token:?}");
    }
    assert_eq!(
        relay.state.puts.load(SeqCst),
        0,
        "nothing reached the relay"
    );
    let still = get(get_soul(&service, &soul)).await;
    assert_eq!(
        still.header("x-cache").as_deref(),
        Some("NEGATIVE"),
        "the caches kept it"
    );

    assert_eq!(
        put_node(&base, &soul, node(), Some(&publisher))
            .await
            .status,
        200
    );
    assert_eq!(get(get_soul(&service, &soul)).await.status, 200);
    assert_eq!(
        put_node(&base, &soul, node(), Some(ADMIN_TOKEN))
            .await
            .status,
        200
    );
    assert_eq!(relay.state.puts.load(SeqCst), 2);

    let open = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.auth.admin_token = None;
        c.auth.open_writes = true;
    }));
    assert_eq!(
        put_node(&open.url("/gun-relay"), &soul, node(), None)
            .await
            .status,
        200
    );
    let off = TestApp::start(relay_config(&relay.url()).with(|c| c.auth.admin_token = None));
    let r = put_node(&off.url("/gun-relay"), &soul, node(), Some(&publisher)).await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (403, json!("writes_disabled"))
    );
}

/// The file source keeps writes in memory: what they may add is bounded.
#[actix_web::test]
async fn the_file_source_bounds_what_writes_hold() {
    let service = TestApp::start(test_config().with(|c| c.gun.file_write_limit_bytes = 100_000));
    let base = service.url("/gun-relay");
    let node = |n: usize| json!({"data": json!({"basic": {"name": "x".repeat(n)}}).to_string()});
    let mut accepted = 0;
    for i in 0..10 {
        let r = put_node(
            &base,
            &format!("a1b2c3d4e5f6:w{i}"),
            node(5000),
            Some(ADMIN_TOKEN),
        )
        .await;
        if r.status == 200 {
            accepted += 1;
            continue;
        }
        assert_eq!(r.status, 507);
        assert_eq!(r.json()["code"], "store_full");
        break;
    }
    assert!(
        (1..10).contains(&accepted),
        "{accepted} writes of ~5 KB under a 100 KB limit"
    );
    // Replacing a record that is held already is weighed once.
    let again = put_node(&base, "a1b2c3d4e5f6:w0", node(5000), Some(ADMIN_TOKEN)).await;
    assert_eq!(again.status, 200);
}

#[actix_web::test]
async fn a_put_invalidates_the_record_cache() {
    let relay = MockRelay::start();
    relay.insert(FOUND, found_node());
    let service = TestApp::start(relay_config(&relay.url()));
    assert_eq!(get(get_soul(&service, FOUND)).await.status, 200);
    let renamed = node(json!({"basic": {"name": "Leg Day v2"}}), json!({}));
    assert_eq!(put(&service, FOUND, renamed).await.status, 200);
    let after = get(get_soul(&service, FOUND)).await;
    assert_eq!(after.header("x-cache").as_deref(), Some("MISS"));
    assert_eq!(after.json()["data"]["data"]["basic"]["name"], "Leg Day v2");
}

/// GUN merges a write into the node and keeps a nested object as a node of its own: what is
/// read back after a put is the relay's merged node, with `meta` as a link.
#[actix_web::test]
async fn a_put_reads_back_as_gun_stores_it() {
    let relay = MockRelay::start();
    let service = TestApp::start(relay_config(&relay.url()));
    let first = json!({
        "data": json!({"basic": {"name": "Row"}}).to_string(),
        "meta": {"publishedBy": "p"},
    });
    assert_eq!(put(&service, FOUND, first).await.status, 200);
    let only_oip = json!({"oip": json!({"recordType": "exercise"}).to_string()});
    assert_eq!(put(&service, FOUND, only_oip).await.status, 200);
    let node = get(get_soul(&service, FOUND)).await.json()["data"].clone();
    assert_eq!(
        node["data"]["basic"]["name"], "Row",
        "the first put's field stays"
    );
    assert_eq!(node["oip"]["recordType"], "exercise");
    assert_eq!(node["meta"], json!({"#": format!("{FOUND}/meta")}));
    let resolved = get(service.url(&format!("/api/records?did=did:gun:{FOUND}")))
        .await
        .json();
    assert_eq!(resolved["records"][0]["data"]["basic"]["name"], "Row");
    assert!(
        resolved["records"][0].get("meta").is_none(),
        "the relay's meta link is left out of an answered record"
    );
}

/// What GUN cannot store (an array: an error; an empty object: never acknowledged, so a 504
/// after 20 s while the relay kept it) is refused with a 400 before the relay.
#[actix_web::test]
async fn a_put_the_relay_cannot_store_is_refused_before_the_relay() {
    let relay = MockRelay::start();
    let service = TestApp::start(relay_config(&relay.url()));
    let data = json!({"basic": {"name": "x"}}).to_string();
    for (node, field) in [
        (json!({"data": {"basic": {"name": "x"}}}), "data.data"),
        (json!({"data": "not json"}), "data.data"),
        (json!({"data": data, "oip": {}}), "data.oip"),
        (json!({"data": data, "tags": ["a", "b"]}), "data.tags"),
        (json!({"data": data, "meta": {}}), "data.meta"),
        (
            json!({"data": data, "meta": {"v": {"list": [1]}}}),
            "data.meta.v.list",
        ),
        (json!({}), "at least one field"),
    ] {
        let started = Instant::now();
        let r = put(&service, FOUND, node.clone()).await;
        assert_eq!(r.status, 400, "{node}");
        assert_eq!(r.json()["code"], "invalid_body");
        let message = r.json()["error"].as_str().unwrap().to_string();
        assert!(message.contains(field), "{node}: {message}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{node} waited on the relay"
        );
    }
    assert_eq!(
        relay.state.puts.load(SeqCst),
        0,
        "nothing reached the relay"
    );
}

#[actix_web::test]
async fn bad_input_is_refused_and_never_reaches_the_relay() {
    let relay = MockRelay::start();
    let service =
        TestApp::start(relay_config(&relay.url()).with(|c| c.server.max_body_bytes = 1000));
    let long = "a".repeat(513);
    let gets = [
        ("/gun-relay/get", 400, "missing_parameter"),
        ("/gun-relay/get?soul=", 400, "missing_parameter"),
        ("/gun-relay/get?other=1", 400, "missing_parameter"),
        (&*format!("/gun-relay/get?soul={long}"), 400, "invalid_soul"),
        ("/gun-relay/get?soul=a%0Ab", 400, "invalid_soul"),
        ("/gun-relay/get?soul=a%00b", 400, "invalid_soul"),
        ("/gun-relay/get?soul=a&soul=b", 400, "invalid_query"),
        ("/gun-relay/nothing", 404, "route_not_found"),
    ];
    for (path, status, code) in gets {
        let r = get(&service.url(path)).await;
        assert_eq!(r.status, status, "{path}");
        assert_eq!(r.json()["code"], code, "{path}");
    }

    let put_url = service.url("/gun-relay/put");
    let json_put = || {
        client()
            .post(&put_url)
            .bearer_auth(ADMIN_TOKEN)
            .insert_header(("content-type", "application/json"))
    };
    let puts: [(awc::ClientRequest, String, u16, &str); 6] = [
        (json_put(), "not json".into(), 400, "invalid_body"),
        (json_put(), "[1,2]".into(), 400, "invalid_body"),
        (
            json_put(),
            r#"{"soul":"","data":{}}"#.into(),
            400,
            "invalid_soul",
        ),
        (json_put(), r#"{"soul":"a:1"}"#.into(), 400, "invalid_body"),
        (
            json_put(),
            json!({"soul": "a:1", "data": {"x": "y".repeat(2000)}}).to_string(),
            413,
            "payload_too_large",
        ),
        (
            client()
                .post(&put_url)
                .insert_header(("content-type", "text/plain")),
            r#"{"soul":"a:1","data":{}}"#.into(),
            415,
            "unsupported_media_type",
        ),
    ];
    for (req, body, status, code) in puts {
        let r = send_body(req, body.clone()).await;
        assert_eq!(r.status, status, "{body:.60}");
        assert_eq!(r.json()["code"], code, "{body:.60}");
    }
    let wrong_method = send(client().delete(service.url("/gun-relay/get?soul=a:1"))).await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.json()["code"], "method_not_allowed");

    assert_eq!(relay.total_gets(), 0);
    assert_eq!(
        relay.state.puts.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[actix_web::test]
async fn operators_can_forget_a_missing_soul_with_the_admin_token() {
    let relay = MockRelay::start();
    let without = TestApp::start(relay_config(&relay.url()).with(|c| c.auth.admin_token = None));
    let r = send(client().delete(without.url(&format!("/api/cache/negative/{MISSING}")))).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], "not_configured");

    let service = TestApp::start(
        relay_config(&relay.url())
            .with(|c| c.auth.admin_token = Some("let-me-in-please-now".into())),
    );
    assert_eq!(get(get_soul(&service, MISSING)).await.status, 404);
    let url = service.url(&format!("/api/cache/negative/{MISSING}"));
    let anonymous = send(client().delete(&url)).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.json()["code"], "unauthorized");
    let wrong = send(client().delete(&url).bearer_auth("let-me-ou")).await;
    assert_eq!(wrong.status, 401);

    let ok = send(client().delete(&url).bearer_auth("let-me-in-please-now")).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json(), json!({"soul": MISSING, "forgotten": true}));
    let again = get(get_soul(&service, MISSING)).await;
    assert_eq!(again.header("x-cache").as_deref(), Some("MISS"));
    assert_eq!(relay.gets(MISSING), 2);

    // A record remembered as malformed is forgotten too: the relay is asked again at once.
    const POISON: &str = "a1b2c3d4e5f6:poisoned";
    relay.insert(POISON, json!({"data": "<b>not json", "oip": "{}"}));
    for _ in 0..2 {
        assert_eq!(get(get_soul(&service, POISON)).await.status, 502);
    }
    assert_eq!(relay.gets(POISON), 1, "remembered");
    let url = service.url(&format!("/api/cache/negative/{POISON}"));
    let ok = send(client().delete(&url).bearer_auth("let-me-in-please-now")).await;
    assert_eq!(ok.status, 200);
    relay.insert(POISON, found_node());
    assert_eq!(get(get_soul(&service, POISON)).await.status, 200);
    assert_eq!(relay.gets(POISON), 2, "forgotten: asked again");
}

/// What an operator's forget did is in the log, in the line docs/operations.md gives: whether
/// the soul was cached at all.
#[actix_web::test]
async fn a_forget_is_logged_with_whether_the_soul_was_cached() {
    let relay = MockRelay::start();
    let admin = "let-me-in-please-now";
    let service = Service::start(
        &relay_config(&relay.url()).with(|c| c.auth.admin_token = Some(admin.into())),
    );
    assert_eq!(get(get_soul(&service, MISSING)).await.status, 404);
    let url = service.url(&format!("/api/cache/negative/{MISSING}"));
    for (forgotten, cached) in [(true, "true"), (false, "false")] {
        let skip = service.log().len();
        let r = send(client().delete(&url).bearer_auth(admin)).await;
        assert_eq!(r.json()["forgotten"], forgotten);
        let said = format!("[GUN 404 Cache] operator forgot {MISSING} (was cached: {cached})");
        let line = service
            .wait_for_line_after(skip, "operator forgot", Duration::from_secs(2))
            .expect("a log line per forget");
        assert!(line.contains("INFO") && line.ends_with(&said), "{line}");
    }
}

#[actix_web::test]
async fn metrics_count_exactly() {
    let relay = MockRelay::start();
    let service = TestApp::start(relay_config(&relay.url()));
    for _ in 0..3 {
        get(get_soul(&service, MISSING)).await;
    }
    let m = |s: &'static str| metric(&service, s);
    assert_eq!(
        m("oip_gun_upstream_requests_total{status=\"404\"}").await,
        Some(1.0)
    );
    assert_eq!(m("oip_negative_cache_lookups_total").await, Some(3.0));
    assert_eq!(m("oip_negative_cache_hits_total").await, Some(2.0));
    assert_eq!(m("oip_negative_cache_entries").await, Some(1.0));
    let text = get(&service.url("/metrics")).await;
    assert_eq!(
        text.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = String::from_utf8(text.body.to_vec()).unwrap();
    assert!(text.contains(
        "oip_http_request_duration_seconds_count{route=\"/gun-relay/get\",status=\"4xx\"} 3"
    ));
}

#[actix_web::test]
async fn concurrent_askers_share_a_failure_too() {
    let relay = MockRelay::start();
    relay.set_soul_mode(MISSING, Mode::Status(503));
    relay.set_latency(200);
    let service = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.gun.max_attempts = 2;
        c.gun.breaker_failures = 100;
    }));
    let replies = join_all((0..30).map(|_| get(get_soul(&service, MISSING)))).await;
    assert!(replies.iter().all(|r| r.status == 502));
    assert_eq!(
        relay.gets(MISSING),
        2,
        "one fetch and its one retry, for 30 askers"
    );
}

/// The old integration guide's `GUN_PEERS=http://gun-relay:8765/gun`: the relay answers that
/// path `404 {"error":"Endpoint not found"}`-style, for every soul. That is no miss: nothing is
/// cached as missing, reads say what is wrong, and readiness fails while liveness holds.
#[actix_web::test]
async fn a_wrong_relay_path_is_misconfiguration_not_a_miss() {
    let relay = MockRelay::start();
    relay.insert(FOUND, found_node());
    let service = Service::start(&relay_config(&format!("{}/gun", relay.url())));
    for soul in [MISSING, FOUND, MISSING] {
        let r = get(get_soul(&service, soul)).await;
        assert_eq!(r.status, 502, "{soul}");
        assert_eq!(r.json()["code"], "relay_misconfigured");
        assert_ne!(r.header("x-cache").as_deref(), Some("NEGATIVE"));
    }
    assert_eq!(
        metric(&service, "oip_gun_upstream_requests_total{status=\"404\"}").await,
        Some(3.0),
        "each read asked again: nothing was cached as missing"
    );
    assert_eq!(
        metric(&service, "oip_negative_cache_entries").await,
        Some(0.0)
    );
    let ready = get(service.url("/health/ready")).await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["relay"], "misconfigured");
    assert_eq!(get(service.url("/health/live")).await.status, 200);
    assert_eq!(
        get(service.url("/health")).await.json()["relay"],
        "misconfigured"
    );
    let warned = service
        .wait_for_line(
            "not the relay's record-not-found answer",
            Duration::from_secs(2),
        )
        .expect("a WARN line naming the URL");
    assert!(
        warned.contains("WARN") && warned.contains("/gun"),
        "{warned}"
    );
    let lines = service
        .log()
        .iter()
        .filter(|l| l.contains("record-not-found"))
        .count();
    assert_eq!(lines, 1, "once, not per request");
}

#[actix_web::test]
async fn liveness_holds_through_a_relay_outage_and_readiness_does_not() {
    let file = TestApp::start(test_config());
    for probe in ["/health/live", "/health/ready"] {
        assert_eq!(get(file.url(probe)).await.status, 200, "{probe}");
    }
    let relay = MockRelay::start();
    relay.insert(FOUND, found_node());
    let service = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.gun.max_attempts = 1;
        c.gun.breaker_failures = 1;
        c.gun.breaker_open_ms = 60_000;
    }));
    assert_eq!(
        get(service.url("/health/ready")).await.json()["status"],
        "ready"
    );
    drop(relay.stop());
    assert_eq!(get(get_soul(&service, FOUND)).await.status, 503);
    let ready = get(service.url("/health/ready")).await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["status"], "not_ready");
    let live = get(service.url("/health/live")).await;
    assert_eq!(
        (live.status, live.json()["status"].clone()),
        (200, json!("live"))
    );
}

/// While the relay cannot answer, a record read a while ago is served past its TTL (marked
/// STALE); never in place of a 404; and once the relay is back, a changed record is seen at
/// once.
#[actix_web::test]
async fn stale_while_the_relay_is_down_then_fresh_when_it_is_back() {
    const GONE: &str = "a1b2c3d4e5f6:deleted-later";
    let relay = MockRelay::start();
    relay.set_miss_delay(10);
    relay.insert(FOUND, found_node());
    relay.insert(GONE, found_node());
    let service = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.record_cache.ttl_secs = 1;
        c.gun.max_attempts = 1;
        c.gun.breaker_failures = 2;
        c.gun.breaker_open_ms = 300;
    }));
    for soul in [FOUND, GONE] {
        assert_eq!(get(get_soul(&service, soul)).await.status, 200);
    }
    let (addr, state) = relay.stop();
    std::thread::sleep(Duration::from_millis(1200));
    let stale = get(get_soul(&service, FOUND)).await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.header("x-cache").as_deref(), Some("STALE"));
    assert_eq!(stale.json()["data"]["data"]["basic"]["name"], "Leg Day");
    let resolved =
        get(service.url(&format!("/api/records?did=did:gun:{FOUND}&resolveDepth=0"))).await;
    assert_eq!(resolved.status, 200);
    assert_eq!(resolved.json()["resolution"]["stale"], 1);
    assert_eq!(
        get(get_soul(&service, MISSING)).await.status,
        503,
        "nothing stale stands in for what was never read"
    );

    let relay = MockRelay::start_at(addr, state);
    relay.insert(
        FOUND,
        node(json!({"basic": {"name": "Leg Day v2"}}), json!({})),
    );
    relay.state.nodes.lock().unwrap().remove(GONE);
    std::thread::sleep(Duration::from_millis(400));
    let fresh = get(get_soul(&service, FOUND)).await;
    assert_eq!(fresh.status, 200);
    assert_eq!(fresh.header("x-cache").as_deref(), Some("MISS"));
    assert_eq!(fresh.json()["data"]["data"]["basic"]["name"], "Leg Day v2");
    let fresh = get(service.url(&format!("/api/records?did=did:gun:{FOUND}&resolveDepth=0")))
        .await
        .json();
    assert!(fresh["resolution"].get("stale").is_none(), "{fresh}");
    assert_eq!(
        get(get_soul(&service, GONE)).await.status,
        404,
        "a 404 from the relay is never covered by a stale copy"
    );
}

/// The memory of a malformed record lasts `gun.malformed_ttl_secs`, and no longer: read, read
/// again a second later (remembered: a memory much shorter than the setting would ask again),
/// wait it out, read: exactly two relay requests.
#[actix_web::test]
async fn a_malformed_record_is_asked_again_once_its_memory_expires() {
    const POISON: &str = "a1b2c3d4e5f6:poisoned";
    let relay = MockRelay::start();
    relay.insert(POISON, json!({"data": "<b>not json", "oip": "{}"}));
    let service = TestApp::start(relay_config(&relay.url()).with(|c| c.gun.malformed_ttl_secs = 3));
    let first = Instant::now();
    assert_eq!(get(get_soul(&service, POISON)).await.status, 502);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(get(get_soul(&service, POISON)).await.status, 502);
    assert_eq!(relay.gets(POISON), 1, "remembered a second later");
    std::thread::sleep(Duration::from_millis(3100).saturating_sub(first.elapsed()));
    assert_eq!(get(get_soul(&service, POISON)).await.status, 502);
    assert_eq!(relay.gets(POISON), 2, "asked again once the memory expired");
}

/// A stale copy stands in for `record_cache.stale_secs` past the TTL while the relay is down,
/// and no longer: both sides of the window.
#[actix_web::test]
async fn a_stale_copy_stands_in_for_its_window_and_no_longer() {
    let relay = MockRelay::start();
    relay.insert(FOUND, found_node());
    let service = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.record_cache.ttl_secs = 1;
        c.record_cache.stale_secs = 2;
        c.gun.max_attempts = 1;
    }));
    assert_eq!(get(get_soul(&service, FOUND)).await.status, 200);
    let _gone = relay.stop();
    // Past the TTL, within the stale window.
    std::thread::sleep(Duration::from_millis(1500));
    let stale = get(get_soul(&service, FOUND)).await;
    assert_eq!(stale.header("x-cache").as_deref(), Some("STALE"));
    // Past both (1 s of TTL and 2 s of stale).
    std::thread::sleep(Duration::from_millis(2000));
    let gone = get(get_soul(&service, FOUND)).await;
    assert_eq!(gone.status, 503, "{}", String::from_utf8_lossy(&gone.body));
}

/// During a miss flood, a record found before is answered stale within its window when the
/// relay's queue is full, rather than refused with `relay_busy`.
#[actix_web::test]
async fn a_stale_copy_stands_in_while_requests_are_shed() {
    let relay = MockRelay::start();
    relay.insert(FOUND, found_node());
    let service = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.record_cache.ttl_secs = 1;
        c.record_cache.stale_secs = 60;
        c.gun.max_attempts = 1;
        c.gun.max_connections = 1;
        c.gun.max_queued = 1;
    }));
    assert_eq!(get(get_soul(&service, FOUND)).await.status, 200);
    std::thread::sleep(Duration::from_millis(1500));
    // Two misses (3 s each at the relay): one holds the only connection, one waits in the queue.
    let misses: Vec<_> = ["a1b2c3d4e5f6:gone-1", "a1b2c3d4e5f6:gone-2"]
        .into_iter()
        .map(|soul| actix_web::rt::spawn(get(get_soul(&service, soul))))
        .collect();
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let shed = get(get_soul(&service, "a1b2c3d4e5f6:gone-3")).await;
    assert_eq!(shed.status, 503, "the queue is full");
    let stale = get(get_soul(&service, FOUND)).await;
    assert_eq!(
        stale.status,
        200,
        "{}",
        String::from_utf8_lossy(&stale.body)
    );
    assert_eq!(stale.header("x-cache").as_deref(), Some("STALE"));
    for miss in misses {
        assert_eq!(miss.await.unwrap().status, 404);
    }
}

/// A relay URL that answers, but not as a relay (a wrong path), passes reads to the next relay.
#[actix_web::test]
async fn a_misconfigured_relay_fails_over_to_the_next() {
    let wrong = MockRelay::start();
    wrong.set_mode(Mode::Status(404));
    let right = MockRelay::start();
    right.insert(FOUND, found_node());
    let service = TestApp::start(relay_config(&right.url()).with(|c| {
        c.gun.relay_urls = vec![wrong.url(), right.url()];
    }));
    let r = get(get_soul(&service, FOUND)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(wrong.gets(FOUND), 1);
    assert_eq!(metric(&service, "oip_gun_failovers_total").await, Some(1.0));
}

/// Retries wait their backoff: five reads of a soul the relay fails twice each, with a backoff
/// of up to 300 and 600 ms, take seconds between them (full jitter: each wait is random below
/// its bound); back to back they would take milliseconds.
#[actix_web::test]
async fn retries_wait_their_backoff() {
    let relay = MockRelay::start();
    relay.set_mode(Mode::Status(500));
    let service = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.gun.backoff_base_ms = 300;
        c.gun.backoff_max_ms = 600;
        c.gun.breaker_failures = 100;
    }));
    let started = Instant::now();
    for i in 0..5 {
        let r = get(get_soul(&service, &format!("a1b2c3d4e5f6:failing-{i}"))).await;
        assert_eq!(r.status, 502);
    }
    assert_eq!(relay.total_gets(), 15, "three attempts each");
    // Expected 2.25 s of waiting; under 0.6 s has a chance of about one in ten thousand.
    assert!(
        started.elapsed() > Duration::from_millis(600),
        "{:?} for 10 retries",
        started.elapsed()
    );
}
