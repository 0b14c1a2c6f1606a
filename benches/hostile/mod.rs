//! What one hostile client can do, measured: memory it can make the service hold (pipelining,
//! a fan-out answer, big listings) and load it can send the relay (forced refreshes, a flood of
//! misses), each against a promise of the README that fails the bench when broken.

use std::{
    io::Write,
    net::TcpStream,
    time::{Duration, Instant},
};

use serde_json::json;

use super::{common, drive, measured, row, Load, Row, RssWatch, Settings, Target};
use common::{relay_config, rss_kb, test_config, ConfigExt, MockRelay, Served, Service};

/// What memory a workload may add above idle, at its peak.
const MEMORY_BOUND_MB: f64 = 64.0;

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// A row for a workload that is not a stream of timed requests: `requests` sent, RSS before,
/// at the peak and after.
fn memory_row(
    name: &str,
    (requests, failures): (u64, Option<u64>),
    rss: (f64, f64, f64),
    notes: String,
) -> Row {
    let load = Load {
        requests,
        failures,
        bytes: 0,
        elapsed: Duration::from_secs(1),
        latencies: Vec::new(),
    };
    let mut r = row(name, &load, None, measured(rss.0, rss.1, rss.2), notes);
    if rss.1 > rss.0 + MEMORY_BOUND_MB {
        r.broken.push(format!(
            "{name}: RSS went from {:.1} MB to {:.1} MB, more than {MEMORY_BOUND_MB} MB above idle",
            rss.0, rss.1
        ));
    }
    r
}

/// 100 connections each pipeline 5,000 `GET /health` and read nothing.
pub fn pipelining(_: &Settings) -> Vec<Row> {
    let service = Service::start(&test_config().with(|c| c.server.workers = 0));
    let pid = service.pid();
    let before = mb(rss_kb(pid));
    let watch = RssWatch::start(pid);
    let burst = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n".repeat(5000);
    let clients: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(service.addr).unwrap())
        .collect();
    let writers: Vec<_> = clients
        .iter()
        .map(|c| {
            let (mut c, burst) = (c.try_clone().unwrap(), burst.clone());
            std::thread::spawn(move || {
                let _ = c.write_all(&burst);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let peak = watch.peak_mb();
    drop(clients);
    for w in writers {
        let _ = w.join();
    }
    std::thread::sleep(Duration::from_secs(1));
    let after = mb(rss_kb(pid));
    let notes = "100 connections x 5,000 pipelined GET /health, none read; peak sampled every 50 ms over 3 s".to_string();
    vec![memory_row(
        "pipelining, 100 connections not reading",
        (500_000, None),
        (before, peak, after),
        notes,
    )]
}

/// A 500 kB record referenced 1,000 times, asked at depth 1: once, then by many at once.
pub fn fan_out(_: &Settings) -> Vec<Row> {
    const ASKERS: usize = 100;
    let relay = MockRelay::start();
    let big = "x".repeat(500_000);
    relay.insert(
        "a1b2c3d4e5f6:big",
        common::node(
            json!({"basic": {"name": "Big"}, "blob": {"text": big}}),
            json!({}),
        ),
    );
    let refs: Vec<String> = (0..1000)
        .map(|_| "did:gun:a1b2c3d4e5f6:big".to_string())
        .collect();
    relay.insert(
        "a1b2c3d4e5f6:fan",
        common::node(
            json!({"basic": {"name": "Fan"}, "post": {"image": refs}}),
            json!({}),
        ),
    );
    let service = Service::start(&relay_config(&relay.url()));
    let pid = service.pid();
    let before = mb(rss_kb(pid));
    let watch = RssWatch::start(pid);
    let target = "/api/records?did=did:gun:a1b2c3d4e5f6:fan&resolveDepth=1";
    let answer = common::raw_request(service.addr, "GET", target, &[]);
    std::thread::sleep(Duration::from_millis(200));
    let (peak, after) = (watch.peak_mb(), mb(rss_kb(pid)));
    let notes = format!(
        "status {}, {} bytes of answer (resolver.max_answer_bytes 8 MB; 500 MB without it)",
        answer.status,
        answer.body.len()
    );
    let mut rows = vec![memory_row(
        "fan-out answer, 500 kB x 1,000 at depth 1",
        (1, Some(u64::from(answer.status != 200))),
        (before, peak, after),
        notes,
    )];
    // Many at once: each answer reserves its bytes of resolver.answers_in_flight_bytes, so what
    // they hold does not grow with their number. The old API's filters after resolution read
    // the answer back: filtered, the same shows what that parse adds (it runs on the workers'
    // threads, two at a time).
    for (label, query) in [
        ("", ""),
        (", filtered after resolution (hasAudio)", "&hasAudio=true"),
    ] {
        let before = mb(rss_kb(pid));
        let watch = RssWatch::start(pid);
        let target = format!("{target}{query}");
        let answers: Vec<(u16, bool)> = std::thread::scope(|scope| {
            let askers: Vec<_> = (0..ASKERS)
                .map(|_| {
                    scope.spawn(|| {
                        let r = common::raw_request(service.addr, "GET", &target, &[]);
                        let cut =
                            String::from_utf8_lossy(&r.body).contains("\"reason\":\"budget\"");
                        (r.status, cut)
                    })
                })
                .collect();
            askers.into_iter().map(|a| a.join().unwrap()).collect()
        });
        std::thread::sleep(Duration::from_millis(200));
        let (peak, after) = (watch.peak_mb(), mb(rss_kb(pid)));
        let ok = answers.iter().filter(|(s, _)| *s == 200).count();
        let cut = answers.iter().filter(|(_, cut)| *cut).count();
        rows.push(memory_row(
            &format!("fan-out answer{label}, {ASKERS} at once"),
            (ASKERS as u64, Some((ASKERS - ok) as u64)),
            (before, peak, after),
            format!(
                "{ok} of {ASKERS} answered 200, each cut at 8 MB (resolver.max_answer_bytes) or sooner by the 24 MB of answers in flight; {cut} of them cut"
            ),
        ));
    }
    rows
}

/// Four clients loop `forceRefresh=true` on a record with 1,000 references.
pub fn refresh_flood(s: &Settings) -> Vec<Row> {
    let relay = MockRelay::start();
    let refs: Vec<String> = (0..1000)
        .map(|i| {
            let soul = format!("a1b2c3d4e5f6:ref-{i}");
            relay.insert(
                &soul,
                common::node(json!({"basic": {"name": i}}), json!({})),
            );
            format!("did:gun:{soul}")
        })
        .collect();
    relay.insert(
        "a1b2c3d4e5f6:many",
        common::node(
            json!({"basic": {"name": "Many"}, "list": {"items": refs}}),
            json!({}),
        ),
    );
    let service = Service::start(&relay_config(&relay.url()).with(|c| {
        c.resolver.max_upstream_per_request = 2000;
        c.resolver.max_records = 2000;
    }));
    let url =
        service.url("/api/records?did=did:gun:a1b2c3d4e5f6:many&resolveDepth=1&forceRefresh=true");
    let secs = s.secs.min(5);
    let before = mb(rss_kb(service.pid()));
    let watch = RssWatch::start(service.pid());
    let load = drive(
        "refresh-flood",
        4,
        secs,
        move |_| url.clone(),
        |st| st == 200,
    );
    let upstream = relay.total_gets();
    let periods = secs.div_ceil(10) + 1;
    let mut r = row(
        "forceRefresh loop, 4 clients, 1,000 references",
        &load,
        Some(upstream),
        measured(before, watch.peak_mb(), mb(rss_kb(service.pid()))),
        format!("{upstream} relay requests for {} resolutions of 1,001 souls (record_cache.refresh_after_secs 10)", load.requests),
    );
    if upstream > 1001 * periods {
        r.broken.push(format!(
            "forced refreshes sent {upstream} relay requests: more than once per soul per refresh period"
        ));
    }
    vec![r]
}

/// Another client's warm reads while 40 clients ask 50 never-written DIDs each, again and
/// again, of a relay whose misses take 3 s.
pub fn miss_flood(s: &Settings) -> Vec<Row> {
    let relay = MockRelay::start();
    relay.insert(
        "a1b2c3d4e5f6:warm",
        common::node(json!({"basic": {"name": "Warm"}}), json!({})),
    );
    let service = Service::start(&relay_config(&relay.url()));
    let warm = service.url("/api/records?did=did:gun:a1b2c3d4e5f6:warm&resolveDepth=0");
    let secs = s.secs.min(10);
    let quiet = {
        let warm = warm.clone();
        drive(
            "warm, alone",
            8,
            secs,
            move |_| warm.clone(),
            |st| st == 200,
        )
    };
    let flood_base = service.url("/api/records?did=");
    let flood = std::thread::spawn(move || {
        drive(
            "miss flood",
            40,
            secs + 2,
            move |n| {
                let dids: Vec<String> = (0..50)
                    .map(|i| format!("did:gun:0badf100d000:n{n}-{i}"))
                    .collect();
                Target::from(format!("{flood_base}{}", dids.join(",")))
            },
            |st| st == 200 || st == 503 || st == 504,
        )
    });
    std::thread::sleep(Duration::from_secs(1));
    let during = drive(
        "warm, during the flood",
        8,
        secs,
        move |_| warm.clone(),
        |st| st == 200,
    );
    let flooded = flood.join().unwrap();
    let open = common::scrape(service.addr, "oip_gun_circuit_open").unwrap_or(0.0);
    let shed = common::scrape(service.addr, "oip_gun_shed_requests_total").unwrap_or(0.0);
    let rate = |l: &Load| l.requests as f64 / l.elapsed.as_secs_f64();
    let ratio = rate(&during) / rate(&quiet).max(1e-9);
    let mut r = row(
        "warm reads during a miss flood",
        &during,
        Some(relay.total_gets()),
        [None; 3],
        format!(
            "{:.0}/s alone, {:.0}/s during ({ratio:.2}x); flood: {} requests of 50 misses, {} shed at once; breaker open at the end: {open}",
            rate(&quiet),
            rate(&during),
            flooded.requests,
            shed
        ),
    );
    if let Some(failed) = during.failures.filter(|f| *f > 0) {
        r.broken
            .push(format!("{failed} warm reads failed during the flood"));
    }
    if open > 0.0 {
        r.broken.push("a flood of misses opened the breaker".into());
    }
    vec![r]
}

/// Four listings of 6 MB each at once, from an indexer.
pub fn big_listings(_: &Settings) -> Vec<Row> {
    let indexer = MockRelay::start();
    let records: Vec<serde_json::Value> = (0..20_000)
        .map(|i| {
            json!({"data": {"basic": {"name": format!("record {i}"), "description": "y".repeat(200)}},
                   "oip": {"did": format!("did:gun:a1b2c3d4e5f6:l{i}")}})
        })
        .collect();
    indexer.set_listing(200, json!({"searchResults": 20_000, "records": records}));
    let service = Service::start(&test_config().with(|c| c.resolver.oip_api = Some(indexer.url())));
    let pid = service.pid();
    let before = mb(rss_kb(pid));
    let watch = RssWatch::start(pid);
    let started = Instant::now();
    let asks: Vec<_> = (0..4)
        .map(|i| {
            let addr = service.addr;
            std::thread::spawn(move || {
                common::raw_request(
                    addr,
                    "GET",
                    &format!("/api/records?recordType=x&page={i}&resolveDepth=0"),
                    &[],
                )
            })
        })
        .collect();
    let statuses: Vec<u16> = asks.into_iter().map(|a| a.join().unwrap().status).collect();
    let elapsed = started.elapsed();
    std::thread::sleep(Duration::from_millis(200));
    let (peak, after) = (watch.peak_mb(), mb(rss_kb(pid)));
    let notes = format!(
        "4 listings of 20,000 records (6 MB) at once, statuses {statuses:?}, {:.0} ms; 1,000 read of each (resolver.max_records)",
        elapsed.as_secs_f64() * 1000.0
    );
    let failed = statuses.iter().filter(|s| **s != 200).count() as u64;
    vec![memory_row(
        "big listings, 4 at once",
        (4, Some(failed)),
        (before, peak, after),
        notes,
    )]
}
