//! Every way the relay can misbehave: the service answers within a bounded time with the right
//! status, never panics, and neither memory nor descriptors grow from one round of faults to the
//! next.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::future::join_all;
use oip_resolver::config::Config;
use serde_json::json;

const SOUL: &str = "a1b2c3d4e5f6:some-record";

fn fault_config(relay_url: &str) -> Config {
    relay_config(relay_url).with(|c| {
        c.gun.request_timeout_ms = 400;
        c.gun.max_attempts = 2;
        c.gun.breaker_failures = 1000;
        c.gun.max_response_bytes = 65536;
        // As many relay connections as a round has requests: the pool is full after the first
        // round, so any later growth in descriptors is a leak.
        c.gun.max_connections = 20;
        c.negative_cache.log_every = 100_000;
    })
}

/// Sends `n` concurrent asks for distinct souls and returns the statuses and the slowest answer.
async fn round(service: &impl Served, n: usize, tag: usize) -> (Vec<u16>, Duration) {
    let started = Instant::now();
    let replies = join_all(
        (0..n).map(|i| get(service.url(&format!("/gun-relay/get?soul={SOUL}-{tag}-{i}")))),
    )
    .await;
    (
        replies.iter().map(|r| r.status).collect(),
        started.elapsed(),
    )
}

/// Runs a warm-up round and three measured rounds against a misbehaving upstream; checks every
/// answer is `expected` and arrives within `bound`, and that the last round leaves no more
/// descriptors or memory than the rounds before it.
///
/// The relay connection pool keeps up to one idle connection per concurrent request, and how
/// many it holds after a round depends on how the requests overlapped; it is full after the
/// first rounds. A leak grows with every request (the old service lost one stream per request),
/// so the last round is compared with the most the earlier rounds held. The heap is read from
/// the service's own exact gauge (every allocation is counted), so a leak of a few kilobytes per
/// failed attempt shows after a few rounds, where resident memory would hide it.
async fn survive(service: &Service, expected: u16, bound: Duration, label: &str) {
    const ROUNDS: usize = 6;
    const HEAP_SLACK: f64 = 256.0 * 1024.0;
    let pid = service.pid();
    let mut after = Vec::new();
    for r in 0..ROUNDS {
        let (statuses, slowest) = round(service, 20, r).await;
        assert!(
            statuses.iter().all(|s| *s == expected),
            "{label}: {statuses:?}"
        );
        assert!(slowest < bound, "{label}: slowest answer took {slowest:?}");
        std::thread::sleep(Duration::from_millis(300));
        if r > 0 {
            let heap = scrape(service.addr, "oip_heap_allocated_bytes").expect("a heap gauge");
            after.push((open_fds(pid), rss_kb(pid), heap));
        }
    }
    let early = &after[..2];
    let fds_before = early.iter().map(|a| a.0).max().unwrap();
    let rss_before = early.iter().map(|a| a.1).max().unwrap();
    let heap_before = early.iter().map(|a| a.2).fold(0.0, f64::max);
    let (mut fds_last, rss_last, heap_last) = *after.last().unwrap();
    // A connection to the relay may still be closing when the last round is sampled; a leaked
    // descriptor never closes, so the last count gets a second to settle.
    let settle = Instant::now() + Duration::from_secs(1);
    while fds_last > fds_before && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(50));
        fds_last = open_fds(pid);
    }
    let heaps: Vec<u64> = after.iter().map(|a| a.2 as u64 / 1024).collect();
    eprintln!(
        "{label}: fds {fds_before} -> {fds_last}, RSS {rss_before} -> {rss_last} KB, heap by round {heaps:?} KB"
    );
    assert!(
        fds_last <= fds_before,
        "{label}: descriptors grew {fds_before} -> {fds_last}"
    );
    assert!(
        heap_last <= heap_before + HEAP_SLACK,
        "{label}: the heap grew {heaps:?} KB over {} rounds of 20 failures",
        ROUNDS - 3
    );
    assert!(
        rss_last <= rss_before + 2048,
        "{label}: RSS grew {rss_before} -> {rss_last} KB"
    );
    let health = get(service.url("/health")).await;
    assert!(
        matches!(health.status, 200 | 503),
        "{label}: the service still answers"
    );
}

/// A mock relay answering every request with `mode` after 100 ms: the 20 requests of a round
/// overlap however loaded the machine is, so the service's pool holds its 20 relay connections
/// from the warm-up round on, and a later round can only add descriptors by leaking them. (An
/// answer that closes its connection, such as an oversized one, needs no such help.)
fn overlapping_relay(mode: Mode) -> MockRelay {
    let relay = MockRelay::start();
    relay.set_mode(mode);
    relay.set_latency(100);
    relay
}

#[actix_web::test]
async fn garbage_json_is_a_bad_gateway() {
    let relay = overlapping_relay(Mode::Garbage);
    let service = Service::start(&fault_config(&relay.url()));
    survive(&service, 502, Duration::from_secs(3), "garbage JSON").await;
}

#[actix_web::test]
async fn an_oversized_body_is_a_bad_gateway() {
    let relay = MockRelay::start();
    relay.set_mode(Mode::Huge(200_000));
    // Twenty 200 KB answers at once took longer than 400 ms on two busy cores: a timeout (504)
    // is not what this is about, so the relay gets time enough to send them.
    let service =
        Service::start(&fault_config(&relay.url()).with(|c| c.gun.request_timeout_ms = 10_000));
    survive(&service, 502, Duration::from_secs(15), "oversized body").await;
}

#[actix_web::test]
async fn server_errors_are_a_bad_gateway() {
    for code in [500, 503] {
        let relay = overlapping_relay(Mode::Status(code));
        let service = Service::start(&fault_config(&relay.url()));
        survive(
            &service,
            502,
            Duration::from_secs(3),
            &format!("HTTP {code}"),
        )
        .await;
    }
}

#[actix_web::test]
async fn a_truncated_body_is_a_bad_gateway() {
    let relay = FaultRelay::start(Fault::Truncated);
    let service = Service::start(&fault_config(&relay.url()));
    survive(&service, 502, Duration::from_secs(3), "truncated body").await;
}

#[actix_web::test]
async fn a_relay_that_never_answers_is_a_timeout() {
    let relay = FaultRelay::start(Fault::Silent);
    let service = Service::start(&fault_config(&relay.url()));
    // Two attempts of 400 ms and a short backoff.
    survive(&service, 504, Duration::from_secs(3), "silent relay").await;
}

#[actix_web::test]
async fn a_dripping_body_is_a_timeout() {
    let relay = FaultRelay::start(Fault::Drip);
    let service = Service::start(&fault_config(&relay.url()));
    survive(&service, 504, Duration::from_secs(3), "one byte a second").await;
}

#[actix_web::test]
async fn a_reset_or_a_non_http_answer_is_unavailable() {
    for (fault, expected) in [(Fault::Hangup, 503), (Fault::NotHttp, 503)] {
        let relay = FaultRelay::start(fault);
        let service = Service::start(&fault_config(&relay.url()));
        survive(
            &service,
            expected,
            Duration::from_secs(3),
            &format!("{fault:?}"),
        )
        .await;
        assert!(relay.accepted.load(std::sync::atomic::Ordering::SeqCst) > 0);
    }
}

#[actix_web::test]
async fn refused_connections_are_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let service = Service::start(&fault_config(&format!("http://127.0.0.1:{port}")));
    survive(&service, 503, Duration::from_secs(3), "connection refused").await;
}

#[actix_web::test]
async fn a_resolution_returns_what_worked_and_lists_what_did_not() {
    let relay = MockRelay::start();
    let exercises = ["ok", "garbage", "hang", "server-error", "huge"]
        .map(|k| format!("did:gun:a1b2c3d4e5f6:ex-{k}"));
    relay.insert(
        "a1b2c3d4e5f6:w",
        node(json!({"workout": {"exercise": exercises}}), json!({})),
    );
    relay.insert(
        "a1b2c3d4e5f6:ex-ok",
        node(json!({"basic": {"name": "Fine"}}), json!({})),
    );
    relay.set_soul_mode("a1b2c3d4e5f6:ex-garbage", Mode::Garbage);
    relay.set_soul_mode("a1b2c3d4e5f6:ex-hang", Mode::Hang);
    relay.set_soul_mode("a1b2c3d4e5f6:ex-server-error", Mode::Status(500));
    relay.set_soul_mode("a1b2c3d4e5f6:ex-huge", Mode::Huge(200_000));
    let service = TestApp::start(fault_config(&relay.url()));
    let started = Instant::now();
    let r = get(service.url("/api/records?did=did:gun:a1b2c3d4e5f6:w&resolveDepth=1")).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(r.status, 200);
    let body = r.json();
    let list = &body["records"][0]["data"]["workout"]["exercise"];
    assert_eq!(list[0]["data"]["basic"]["name"], "Fine");
    for i in 1..5 {
        assert_eq!(list[i], exercises[i].as_str());
    }
    let unresolved = body["resolution"]["unresolved"].as_array().unwrap();
    let reason = |k: &str| {
        unresolved
            .iter()
            .find(|u| u["did"] == format!("did:gun:a1b2c3d4e5f6:ex-{k}"))
            .map(|u| u["reason"].as_str().unwrap().to_string())
    };
    assert_eq!(reason("garbage").as_deref(), Some("error"));
    assert_eq!(reason("hang").as_deref(), Some("timeout"));
    assert_eq!(reason("server-error").as_deref(), Some("error"));
    assert_eq!(reason("huge").as_deref(), Some("error"));
    assert_eq!(reason("ok"), None);
}
