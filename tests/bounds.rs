//! One client cannot make the service swell or hammer the relay: what a connection may queue,
//! what an answer may weigh, how often a refresh or a flood of misses may reach the relay.
//! Memory is read from the binary (`Service`), whose resident memory is its own; everything
//! else runs in process.

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use common::*;

/// Reads everything `s` sends until it has been quiet for `quiet`.
fn read_until_quiet(s: &mut TcpStream, quiet: Duration) -> Vec<u8> {
    s.set_read_timeout(Some(quiet)).unwrap();
    let mut all = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
    }
    all
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// 100 connections each pipeline 5,000 requests and read nothing: actix-http would parse and
/// queue all 500,000 (1.5 GB). The service reads a connection only while it has room for what
/// it reads, so memory stays near idle, and a client that then reads gets every answer.
#[test]
fn pipelining_cannot_make_it_swell_and_loses_nothing() {
    let service = Service::start(&test_config().with(|c| c.server.workers = 2));
    let pid = service.pid();
    let idle_kb = rss_kb(pid);
    let burst = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n".repeat(5000);
    let mut clients: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(service.addr).unwrap())
        .collect();
    let writers: Vec<_> = clients
        .iter()
        .map(|c| {
            let mut c = c.try_clone().unwrap();
            let burst = burst.clone();
            std::thread::spawn(move || {
                let _ = c.write_all(&burst);
            })
        })
        .collect();
    let mut peak_kb = idle_kb;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        peak_kb = peak_kb.max(rss_kb(pid));
    }
    assert!(
        peak_kb < idle_kb + 64 * 1024,
        "RSS went from {idle_kb} KB to {peak_kb} KB"
    );
    // The other 99 go away, as their 495,000 requests would otherwise keep the server busy
    // answering into socket buffers (and their writers blocked until the stall guard's
    // minute): the one that stays and reads gets every answer.
    for c in &clients[1..] {
        let _ = c.shutdown(std::net::Shutdown::Both);
    }
    let answers = read_until_quiet(&mut clients[0], Duration::from_secs(3));
    assert_eq!(count(&answers, b"HTTP/1.1 200 OK"), 5000);
    drop(clients);
    for w in writers {
        let _ = w.join();
    }
}

/// Requests are counted by their heads, and bodies are read past whatever they hold: a put whose
/// body holds blank lines and a request line, a chunked one, plain reads, all pipelined on one
/// connection, are all answered, in order.
#[test]
fn pipelined_requests_with_bodies_are_each_answered_in_order() {
    let service = TestApp::start(test_config());
    let node = serde_json::json!({"data": "{\"basic\":{\"name\":\"x\"}}", "note": "\r\n\r\nGET /health HTTP/1.1\r\n\r\n"});
    let body = serde_json::json!({"soul": "a1b2c3d4e5f6:pipelined", "data": node}).to_string();
    let mut stream = Vec::new();
    for i in 0..40 {
        stream.extend_from_slice(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n");
        let put_head = format!(
            "POST /gun-relay/put HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n"
        );
        stream.extend_from_slice(put_head.as_bytes());
        if i % 2 == 0 {
            stream.extend_from_slice(
                format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes(),
            );
        } else {
            let (a, b) = body.split_at(body.len() / 2);
            stream.extend_from_slice(
                format!(
                    "Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                    a.len(),
                    b.len()
                )
                .as_bytes(),
            );
        }
    }
    stream.extend_from_slice(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut s = TcpStream::connect(service.addr).unwrap();
    s.write_all(&stream).unwrap();
    let answers = read_until_quiet(&mut s, Duration::from_secs(5));
    let text = String::from_utf8_lossy(&answers);
    assert_eq!(count(&answers, b"HTTP/1.1 200 OK"), 81, "{text}");
    assert_eq!(count(&answers, b"\"status\":\"live\""), 40);
    assert_eq!(count(&answers, b"\"soul\":\"a1b2c3d4e5f6:pipelined\""), 40);
    assert!(text.trim_end().ends_with('}') && text.contains("\"relay\":\"file\""));
}

/// A 500 kB record referenced 1,000 times by another, asked for at depth 1: a 500 MB answer
/// before (RSS 20 → 994 MB). The answer stops at `resolver.max_answer_bytes`, the rest stay
/// DIDs with reason `budget`, and the record is written once and copied where it repeats.
#[actix_web::test]
async fn a_fan_out_answer_stops_at_its_byte_limit() {
    let relay = MockRelay::start();
    let big = "x".repeat(500_000);
    relay.insert(
        "a1b2c3d4e5f6:big",
        node(
            serde_json::json!({"basic": {"name": "Big"}, "blob": {"text": big}}),
            serde_json::json!({}),
        ),
    );
    let refs: Vec<String> = (0..1000)
        .map(|_| "did:gun:a1b2c3d4e5f6:big".to_string())
        .collect();
    relay.insert(
        "a1b2c3d4e5f6:fan",
        node(
            serde_json::json!({"basic": {"name": "Fan"}, "post": {"image": refs}}),
            serde_json::json!({}),
        ),
    );
    let service = Service::start(&relay_config(&relay.url()));
    let pid = service.pid();
    let idle_kb = rss_kb(pid);
    let url = service.url("/api/records?did=did:gun:a1b2c3d4e5f6:fan&resolveDepth=1");
    let watcher = std::thread::spawn(move || {
        let mut peak = 0;
        for _ in 0..40 {
            peak = peak.max(rss_kb(pid));
            std::thread::sleep(Duration::from_millis(50));
        }
        peak
    });
    let r = get(&url).await;
    assert_eq!(r.status, 200);
    let limit = oip_resolver::config::ResolverConfig::default().max_answer_bytes;
    assert!(r.body.len() < limit + 600_000, "{} bytes", r.body.len());
    let answer = r.json();
    let images = answer["records"][0]["data"]["post"]["image"]
        .as_array()
        .unwrap()
        .clone();
    let placed = images.iter().filter(|i| i.is_object()).count();
    assert!((15..=17).contains(&placed), "{placed} placed");
    assert_eq!(
        answer["resolution"]["unresolved"],
        serde_json::json!([{"did": "did:gun:a1b2c3d4e5f6:big", "reason": "budget"}])
    );
    let peak_kb = watcher.join().unwrap();
    assert!(
        peak_kb < idle_kb + 64 * 1024,
        "RSS {idle_kb} KB → {peak_kb} KB"
    );
}

/// A flood of misses: each relay connection is busy for the relay's miss wait. Time spent waiting
/// for a connection is not the relay's: no read times out for it, nor opens the breaker; past
/// `gun.max_queued` waiting, a read is answered 503 `relay_busy` at once; and what is cached is
/// answered throughout.
#[actix_web::test]
async fn a_flood_of_misses_neither_opens_the_breaker_nor_starves_the_cached() {
    let relay = MockRelay::start();
    relay.set_miss_delay(600);
    relay.insert(
        "a1b2c3d4e5f6:kept",
        node(
            serde_json::json!({"basic": {"name": "Kept"}}),
            serde_json::json!({}),
        ),
    );
    let service = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.gun.max_connections = 4;
        c.gun.max_queued = 12;
        c.gun.request_timeout_ms = 1000;
        c.gun.breaker_failures = 2;
    }));
    let read = |soul: String| get(service.url(&format!("/gun-relay/get?soul={soul}")));
    assert_eq!(read("a1b2c3d4e5f6:kept".into()).await.status, 200);

    // 16 misses on 4 connections: four rounds of 600 ms, each read well within its 1 s.
    let misses = (0..16).map(|i| read(format!("a1b2c3d4e5f6:miss-{i}")));
    let answers = futures::future::join_all(misses).await;
    assert!(
        answers.iter().all(|r| r.status == 404),
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(metric(&service, "oip_gun_circuit_open").await, Some(0.0));

    // 40 more at once: 4 sent, 12 queued, the rest shed at once; the cached record still answers.
    let started = std::time::Instant::now();
    let flood = futures::future::join_all((0..40).map(|i| read(format!("a1b2c3d4e5f6:flood-{i}"))));
    let during = async {
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        read("a1b2c3d4e5f6:kept".into()).await
    };
    let (answers, kept) = futures::join!(flood, during);
    assert_eq!(
        (kept.status, kept.header("x-cache").as_deref()),
        (200, Some("HIT"))
    );
    let shed: Vec<&Reply> = answers.iter().filter(|r| r.status == 503).collect();
    assert_eq!(shed.len(), 24);
    assert!(shed
        .iter()
        .all(|r| r.json()["code"] == "relay_busy" && r.header("retry-after").is_some()));
    assert_eq!(answers.iter().filter(|r| r.status == 404).count(), 16);
    assert_eq!(
        metric(&service, "oip_gun_shed_requests_total").await,
        Some(24.0)
    );
    assert_eq!(metric(&service, "oip_gun_circuit_open").await, Some(0.0));
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A listing from the indexer is bounded like a resolution: only `resolver.max_records` of its
/// records are read, identical listings asked at once share one request, and every failing
/// listing counts against the indexer's breaker (all listings counted as one soul before, so
/// it never opened).
#[actix_web::test]
async fn listings_are_bounded_coalesced_and_trip_the_breaker() {
    let indexer = MockRelay::start();
    let records: Vec<serde_json::Value> = (0..3000)
        .map(|i| {
            serde_json::json!({"data": {"basic": {"name": format!("r{i}")}},
                               "oip": {"did": format!("did:gun:a1b2c3d4e5f6:r{i}")}})
        })
        .collect();
    indexer.set_listing(
        200,
        serde_json::json!({"searchResults": 3000, "records": records}),
    );
    indexer.set_latency(200);
    let service = TestApp::start(test_config().with(|c| {
        c.resolver.oip_api = Some(indexer.url());
        c.resolver.max_records = 100;
        c.gun.max_attempts = 1;
        c.gun.breaker_failures = 3;
        c.gun.breaker_open_ms = 60_000;
    }));
    let url = service.url("/api/records?recordType=post&resolveDepth=0");
    let answers = futures::future::join_all((0..8).map(|_| get(&url))).await;
    for r in &answers {
        assert_eq!(r.status, 200);
        let body = r.json();
        assert_eq!(body["records"].as_array().unwrap().len(), 100);
        assert_eq!(body["resolution"]["leftOut"], 2900);
    }
    assert_eq!(
        indexer.listing_queries().len(),
        1,
        "eight at once, one request"
    );

    indexer.set_listing(500, serde_json::json!({"error": "down"}));
    for i in 0..3 {
        let other = service.url(&format!("/api/records?recordType=post&page={i}"));
        assert_eq!(get(&other).await.status, 502);
    }
    let asked = indexer.listing_queries().len();
    let open = get(&service.url("/api/records?recordType=post&page=9")).await;
    assert_eq!(open.status, 503, "{}", String::from_utf8_lossy(&open.body));
    assert_eq!(open.json()["code"], "relay_circuit_open");
    assert_eq!(
        indexer.listing_queries().len(),
        asked,
        "the open breaker sent nothing"
    );
}
