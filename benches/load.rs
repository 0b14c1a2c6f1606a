//! `make bench`: starts a mock relay and the release binary on loopback, drives concurrent clients
//! through each workload, and prints one table (also written to `target/bench/load.json`).
//!
//! Settings come from the environment: BENCH_SECS (per workload, default 10), BENCH_CONCURRENCY
//! (64), BENCH_MISS_DELAY_MS (the relay's wait before a 404, 3000 like the real relay),
//! BENCH_RELAY_LATENCY_MS (0), BENCH_FAULT_PERCENT (0), BENCH_ONLY (run workloads whose name
//! contains this). Media and warm answers are compared with nginx under wrk: see `versus`.

#[path = "../tests/common/mod.rs"]
mod common;
mod hostile;
mod stamp;
mod table;
mod versus;

use std::{
    rc::Rc,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use common::{env_u64, relay_config, rss_kb, test_config, ConfigExt, MockRelay, Served, Service};
use futures::StreamExt;
use oip_resolver::config::Config;
use serde_json::json;
use table::Row;

struct Settings {
    secs: u64,
    concurrency: usize,
    miss_delay_ms: u64,
    latency_ms: u64,
    fault_percent: u64,
    only: Option<String>,
}

impl Settings {
    fn from_env() -> Self {
        Self {
            secs: env_u64("BENCH_SECS", 10),
            concurrency: env_u64("BENCH_CONCURRENCY", 64) as usize,
            miss_delay_ms: env_u64("BENCH_MISS_DELAY_MS", 3000),
            latency_ms: env_u64("BENCH_RELAY_LATENCY_MS", 0),
            fault_percent: env_u64("BENCH_FAULT_PERCENT", 0),
            only: std::env::var("BENCH_ONLY").ok().filter(|s| !s.is_empty()),
        }
    }
}

/// Samples the service's resident memory in the background and keeps the peak.
struct RssWatch {
    pid: u32,
    peak_kb: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssWatch {
    fn start(pid: u32) -> Self {
        let peak_kb = Arc::new(AtomicU64::new(rss_kb(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak_kb.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Relaxed) {
                p.fetch_max(rss_kb(pid), Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Self { pid, peak_kb, stop }
    }

    fn peak_mb(&self) -> f64 {
        self.peak_kb.load(Relaxed).max(rss_kb(self.pid)) as f64 / 1024.0
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

struct Load {
    requests: u64,
    /// Requests that failed, where the workload counts them.
    failures: Option<u64>,
    bytes: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// Runs `concurrency` clients for `secs`, each sending `url(n)` for its n-th request; `ok`
/// decides which statuses count as the expected answer. Prints progress every second.
/// One request of a workload: a URL, and a `Range` header for the media workloads.
struct Target {
    url: String,
    range: Option<String>,
    /// `Accept-Encoding`; the bytes counted are then the compressed bytes on the wire.
    encoding: Option<&'static str>,
    /// A bearer token: who asks.
    bearer: Option<String>,
}

impl From<String> for Target {
    fn from(url: String) -> Self {
        Self {
            url,
            range: None,
            encoding: None,
            bearer: None,
        }
    }
}

fn drive<R: Into<Target>>(
    label: &str,
    concurrency: usize,
    secs: u64,
    url: impl Fn(u64) -> R + 'static,
    ok: fn(u16) -> bool,
) -> Load {
    let system = actix_web::rt::System::new();
    system.block_on(async move {
        let url = Rc::new(url);
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(60))
            .connector(awc::Connector::new().limit(concurrency * 2))
            .finish();
        let counter = Rc::new(AtomicU64::new(0));
        let failures = Rc::new(AtomicU64::new(0));
        let bytes = Rc::new(AtomicU64::new(0));
        let started = Instant::now();
        let deadline = started + Duration::from_secs(secs);
        let progress = {
            let (counter, label) = (counter.clone(), label.to_string());
            actix_web::rt::spawn(async move {
                let mut last = 0;
                loop {
                    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
                    let now = counter.load(Relaxed);
                    eprintln!(
                        "  {label}: {:>4.0}s {now:>9} requests ({:>7} /s)",
                        started.elapsed().as_secs_f64(),
                        now - last
                    );
                    last = now;
                }
            })
        };
        let tasks = (0..concurrency).map(|_| {
            let (client, url, counter, failures, bytes) = (
                client.clone(),
                url.clone(),
                counter.clone(),
                failures.clone(),
                bytes.clone(),
            );
            async move {
                let mut latencies = Vec::with_capacity(4096);
                while Instant::now() < deadline {
                    let n = counter.fetch_add(1, Relaxed);
                    let t = Instant::now();
                    let target: Target = url(n).into();
                    let mut req = client.get(&target.url);
                    if let Some(range) = &target.range {
                        req = req.insert_header(("range", range.as_str()));
                    }
                    if let Some(encoding) = target.encoding {
                        req = req.insert_header(("accept-encoding", encoding));
                    }
                    if let Some(token) = &target.bearer {
                        req = req.bearer_auth(token);
                    }
                    // Bodies are counted and dropped as they arrive: a 100 MB file is never
                    // held whole.
                    let good = match req.send().await {
                        Ok(mut res) => {
                            let mut good = ok(res.status().as_u16());
                            while let Some(chunk) = res.next().await {
                                match chunk {
                                    Ok(c) => {
                                        bytes.fetch_add(c.len() as u64, Relaxed);
                                    }
                                    Err(_) => {
                                        good = false;
                                        break;
                                    }
                                }
                            }
                            good
                        }
                        Err(_) => false,
                    };
                    latencies.push(t.elapsed());
                    if !good {
                        failures.fetch_add(1, Relaxed);
                    }
                }
                latencies
            }
        });
        let per_client = futures::future::join_all(tasks).await;
        progress.abort();
        let mut latencies: Vec<Duration> = per_client.into_iter().flatten().collect();
        latencies.sort_unstable();
        Load {
            requests: latencies.len() as u64,
            failures: Some(failures.load(Relaxed)),
            bytes: bytes.load(Relaxed),
            elapsed: started.elapsed(),
            latencies,
        }
    })
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// A row of a timed load: its rate and latencies when it timed requests, `upstream` when the
/// workload counts the relay's requests, and resident memory before, at the peak and after.
fn row(
    workload: &str,
    load: &Load,
    upstream: Option<u64>,
    rss: [Option<f64>; 3],
    notes: String,
) -> Row {
    let timed = !load.latencies.is_empty();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    Row {
        workload: workload.to_string(),
        requests: load.requests,
        failures: load.failures,
        per_sec: timed.then(|| load.requests as f64 / load.elapsed.as_secs_f64()),
        p50_ms: timed.then(|| percentile_ms(&load.latencies, 0.50)),
        p99_ms: timed.then(|| percentile_ms(&load.latencies, 0.99)),
        max_ms: load.latencies.last().map(ms),
        upstream,
        rss_mb: rss,
        notes,
        broken: Vec::new(),
    }
}

/// Resident memory before, at the peak and after, all measured.
fn measured(before: f64, peak: f64, after: f64) -> [Option<f64>; 3] {
    [Some(before), Some(peak), Some(after)]
}

/// The service as an operator runs it (one worker per core, default backoff) against `relay`,
/// with `change` applied.
fn relay_service(relay: &MockRelay, change: impl FnOnce(&mut Config)) -> Service {
    let defaults = Config::default();
    Service::start(&relay_config(&relay.url()).with(|c| {
        c.server.workers = 0;
        c.gun.backoff_base_ms = defaults.gun.backoff_base_ms;
        c.gun.backoff_max_ms = defaults.gun.backoff_max_ms;
        c.negative_cache.log_every = 100_000;
        change(c);
    }))
}

/// The old service's failure case: one workout whose 56 references are all missing, read again
/// and again through `/gun-relay/get`. Each miss costs the relay `miss_delay`; the old service
/// paid it three times per reference per read.
fn missing_references(s: &Settings) -> Row {
    let relay = MockRelay::start();
    relay.set_miss_delay(s.miss_delay_ms);
    relay.set_latency(s.latency_ms);
    relay.set_fault_percent(s.fault_percent);
    let refs: Vec<String> = (0..56)
        .map(|i| format!("0badc0ffee00:gone-{i:02}"))
        .collect();
    let workout = "0badc0ffee00:workout-56";
    let exercise: Vec<String> = refs.iter().map(|r| format!("did:gun:{r}")).collect();
    relay.insert(
        workout,
        common::node(
            json!({"basic": {"name": "56 missing"}, "workout": {"exercise": exercise}}),
            json!({"recordType": "workout"}),
        ),
    );
    let service = relay_service(&relay, |_| {});
    let missing = refs.clone();
    let mut souls = vec![workout.to_string()];
    souls.extend(refs);
    let base = service.url("/gun-relay/get?soul=");
    let watch = RssWatch::start(service.pid());
    let before = rss_kb(service.pid()) as f64 / 1024.0;
    let load = drive(
        "missing-refs",
        s.concurrency,
        s.secs,
        move |n| format!("{base}{}", souls[(n % 57) as usize]),
        |status| status == 200 || status == 404,
    );
    let after = rss_kb(service.pid()) as f64 / 1024.0;
    let upstream = relay.total_gets();
    let worst = missing
        .iter()
        .map(|soul| relay.gets(soul))
        .max()
        .unwrap_or(0);
    let notes = format!(
        "57 souls, 56 missing, relay miss delay {} ms; upstream/soul {:.2}; most for one missing soul {worst}",
        s.miss_delay_ms,
        upstream as f64 / 57.0
    );
    let mut r = row(
        "missing-refs (/gun-relay/get)",
        &load,
        Some(upstream),
        measured(before, watch.peak_mb(), after),
        notes,
    );
    // The negative cache's TTL (an hour) is longer than any run: one request per missing soul.
    if worst > 1 {
        r.broken.push(format!(
            "a missing soul cost {worst} relay requests (the README promises 1 per TTL)"
        ));
    }
    r
}

/// A workload starts what it needs, drives it and reports one row.
type Workload = fn(&Settings) -> Vec<Row>;

/// Stores `count` workouts, each with 20 exercises needing 3 equipment records of their own:
/// 81 distinct souls per workout.
fn store_workouts(relay: &MockRelay, count: usize) {
    for w in 0..count {
        let mut exercises = Vec::new();
        for i in 0..20 {
            let equipment: Vec<String> = (0..3)
                .map(|j| format!("did:gun:bench:w{w}-eq{i}-{j}"))
                .collect();
            for j in 0..3 {
                relay.insert(
                    &format!("bench:w{w}-eq{i}-{j}"),
                    common::node(
                        json!({"basic": {"name": format!("Equipment {i}-{j}")}, "equipment": {"kind": "free weight"}}),
                        json!({"recordType": "equipment"}),
                    ),
                );
            }
            relay.insert(
                &format!("bench:w{w}-ex{i}"),
                common::node(
                    json!({"basic": {"name": format!("Exercise {i}")}, "exercise": {"equipmentRequired": equipment, "sets": 3}}),
                    json!({"recordType": "exercise"}),
                ),
            );
            exercises.push(format!("did:gun:bench:w{w}-ex{i}"));
        }
        relay.insert(
            &format!("bench:w{w}"),
            common::node(
                json!({"basic": {"name": format!("Workout {w}")}, "workout": {"exercise": exercises}}),
                json!({"recordType": "workout"}),
            ),
        );
    }
}

/// What one request to the mock relay costs from here (its configured latency plus timer and
/// loopback overhead): the unit the resolver's latency target is stated in.
fn relay_round_trip_ms(relay: &MockRelay) -> f64 {
    let url = format!("{}/get?soul=bench:w0", relay.url());
    let load = drive(
        "relay round trip",
        1,
        1,
        move |_| url.clone(),
        |st| st == 200,
    );
    percentile_ms(&load.latencies, 0.5)
}

/// Depth-2 resolutions through `/api/records` against a relay that takes 5 ms per answer.
/// Each client request picks one of `workouts` distinct workouts, so concurrent requests do not
/// share fetches and the upstream figure is what one resolution costs.
fn resolution(s: &Settings, cache_on: bool, clients: usize, workouts: usize) -> Row {
    const RELAY_MS: u64 = 5;
    let relay = MockRelay::start();
    relay.set_latency(RELAY_MS);
    store_workouts(&relay, workouts);
    let rtt = relay_round_trip_ms(&relay);
    let ttl = if cache_on { 300 } else { 0 };
    // 60 equipment records sit on one level: let them all be in flight together.
    let service = relay_service(&relay, |c| {
        c.record_cache.ttl_secs = ttl;
        c.resolver.concurrency = 64;
    });
    let base = service.url("/api/records?resolveDepth=2&did=did:gun:bench:w");
    let url = move |n: u64| format!("{base}{}", n % workouts as u64);
    if cache_on {
        // The steady state is what is measured: a first pass over the workouts, one per
        // client, warms the cache.
        drive("warm-up", workouts, 2, url.clone(), |st| st == 200);
    }
    let upstream_before = relay.total_gets();
    let watch = RssWatch::start(service.pid());
    let before = rss_kb(service.pid()) as f64 / 1024.0;
    let label = format!("resolve cache {}", if cache_on { "on" } else { "off" });
    let load = drive(&label, clients, s.secs, url, |st| st == 200);
    let after = rss_kb(service.pid()) as f64 / 1024.0;
    let upstream = relay.total_gets() - upstream_before;
    let per_resolution = upstream as f64 / load.requests.max(1) as f64;
    let notes = format!(
        "{workouts} workout(s) x 81 souls, depth 2; relay round trip {rtt:.1} ms; upstream/resolution {per_resolution:.2}; p50 = {:.2} x 3 round trips",
        percentile_ms(&load.latencies, 0.5) / (3.0 * rtt)
    );
    row(
        &format!(
            "{label}, {clients} client{}",
            if clients == 1 { "" } else { "s" }
        ),
        &load,
        Some(upstream),
        measured(before, watch.peak_mb(), after),
        notes,
    )
}

fn resolve_cold_single(s: &Settings) -> Row {
    resolution(s, false, 1, 1)
}

fn resolve_cold(s: &Settings) -> Row {
    resolution(s, false, s.concurrency, 64)
}

fn resolve_warm(s: &Settings) -> Row {
    resolution(s, true, s.concurrency, 64)
}

/// The JWT secret of the workloads that ask as someone.
pub const BENCH_JWT_SECRET: &str = "bench-jwt-secret-0123456789";

/// A token of `key`, valid for a day, signed with `BENCH_JWT_SECRET`.
pub fn bench_token(key: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    common::jwt(
        &json!({"publicKey": key, "exp": now + 86_400}),
        BENCH_JWT_SECRET,
    )
}

/// Warm resolutions of the demo's three workouts at depth 2, asked in turn by an anonymous
/// client and two users with tokens: how often the answer cache answers (each caller's view
/// is kept apart), and what the access checks cost against anonymous traffic alone.
fn callers(s: &Settings) -> Vec<Row> {
    let service = Service::start(&test_config().with(|c| {
        c.server.workers = 0;
        c.auth.jwt_secret = Some(BENCH_JWT_SECRET.into());
    }));
    let workouts: Vec<String> = ["workout-full-body", "workout-legs", "workout-upper"]
        .iter()
        .map(|w| {
            service.url(&format!(
                "/api/records?did=did:gun:f3a9c2e1b7d4:{w}&resolveDepth=2"
            ))
        })
        .collect();
    let tokens = [
        None,
        Some(bench_token("02alice")),
        Some(bench_token("02bob")),
    ];
    let mut rows = Vec::new();
    for (label, mixed) in [
        ("resolve warm, anonymous only", false),
        ("resolve warm, anonymous and two users mixed", true),
    ] {
        let (hits_before, asked_before) = answer_cache_counts(&service);
        let before = rss_kb(service.pid()) as f64 / 1024.0;
        let watch = RssWatch::start(service.pid());
        let (workouts, tokens) = (workouts.clone(), tokens.clone());
        let load = drive(
            label,
            s.concurrency,
            s.secs,
            move |n| Target {
                url: workouts[(n % 3) as usize].clone(),
                range: None,
                encoding: None,
                bearer: if mixed {
                    tokens[(n / 3 % 3) as usize].clone()
                } else {
                    None
                },
            },
            |st| st == 200,
        );
        let after = rss_kb(service.pid()) as f64 / 1024.0;
        let (hits, asked) = answer_cache_counts(&service);
        let (hits, asked) = (hits - hits_before, asked - asked_before);
        let notes = format!(
            "answer cache: {hits} of {asked} resolutions answered whole ({:.3}%)",
            hits * 100.0 / asked.max(1.0)
        );
        rows.push(row(
            label,
            &load,
            None,
            measured(before, watch.peak_mb(), after),
            notes,
        ));
    }
    rows
}

/// `oip_answer_cache_hits_total` and `oip_resolve_requests_total` of `service` now.
fn answer_cache_counts(service: &Service) -> (f64, f64) {
    let read = |name| common::scrape(service.addr, name).unwrap_or(0.0);
    (
        read("oip_answer_cache_hits_total"),
        read("oip_resolve_requests_total"),
    )
}

/// Warm resolutions of the demo's full-body workout at depth 2 (a 6.4 kB answer), asked
/// without compression, with gzip and with brotli: bytes on the wire per answer and answers/s.
fn compression(s: &Settings) -> Vec<Row> {
    let service = Service::start(&test_config().with(|c| c.server.workers = 0));
    let url = service.url("/api/records?did=did:gun:f3a9c2e1b7d4:workout-full-body&resolveDepth=2");
    let mut rows = Vec::new();
    let mut plain_rate = 0.0;
    for encoding in [None, Some("gzip"), Some("br")] {
        let label = format!("resolve warm, {}", encoding.unwrap_or("no compression"));
        let url = url.clone();
        let before = rss_kb(service.pid()) as f64 / 1024.0;
        let watch = RssWatch::start(service.pid());
        let load = drive(
            &label,
            s.concurrency,
            s.secs,
            move |_| Target {
                url: url.clone(),
                range: None,
                encoding,
                bearer: None,
            },
            |st| st == 200,
        );
        let after = rss_kb(service.pid()) as f64 / 1024.0;
        let rate = load.requests as f64 / load.elapsed.as_secs_f64();
        let per_answer = load.bytes as f64 / load.requests.max(1) as f64;
        if encoding.is_none() {
            plain_rate = rate;
        }
        let notes = format!(
            "{per_answer:.0} bytes of body on the wire per answer; {:.2}x the uncompressed rate",
            rate / plain_rate
        );
        let rss = measured(before, watch.peak_mb(), after);
        rows.push(row(&label, &load, None, rss, notes));
    }
    rows
}

fn aborted_streams(service: &Service, path: &str, count: u64) -> Row {
    use std::io::Read;
    let pid = service.pid();
    let before = rss_kb(pid) as f64 / 1024.0;
    let watch = RssWatch::start(pid);
    let started = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (addr, path, done) = (service.addr, path.to_string(), done.clone());
            std::thread::spawn(move || {
                let (mut latencies, mut failed) = (Vec::new(), 0u64);
                while done.fetch_add(1, Relaxed) < count {
                    let t = Instant::now();
                    let mut s = common::open_get(addr, &path);
                    let mut buf = [0u8; 16 * 1024];
                    // A stream that does not start as a 200 with a body is a failure.
                    match s.read(&mut buf) {
                        Ok(n) if buf[..n].starts_with(b"HTTP/1.1 200") => {}
                        _ => failed += 1,
                    }
                    latencies.push(t.elapsed());
                }
                (latencies, failed)
            })
        })
        .collect();
    let (mut latencies, mut failures) = (Vec::new(), 0);
    for (l, f) in threads.into_iter().map(|t| t.join().unwrap()) {
        latencies.extend(l);
        failures += f;
    }
    latencies.sort_unstable();
    let elapsed = started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_kb(pid) as f64 / 1024.0;
    let load = Load {
        requests: latencies.len() as u64,
        failures: Some(failures),
        bytes: 0,
        elapsed,
        latencies,
    };
    let notes = format!("RSS after - before = {:+.1} MB", after - before);
    let mut r = row(
        &format!("{count} aborted streams"),
        &load,
        None,
        measured(before, watch.peak_mb(), after),
        notes,
    );
    if after - before > ABORTED_STREAMS_RSS_LIMIT_MB {
        r.broken.push(format!(
            "RSS grew {:+.1} MB over {count} aborted streams (limit +{ABORTED_STREAMS_RSS_LIMIT_MB} MB)",
            after - before
        ));
    }
    r
}

/// What the README promises for abandoned streams: memory comes back.
const ABORTED_STREAMS_RSS_LIMIT_MB: f64 = 10.0;

/// What a stream whose reader stops (a paused player) may cost, and how close to idle the
/// service must come back once those readers are gone.
const STALLED_STREAM_KB: f64 = 64.0;
const STALLED_RECOVERY_MB: f64 = 20.0;

/// `counts` readers each ask for a 3 MB file, read its first bytes and stop, as a paused
/// player does. Measured: RSS with all of them stalled, per stream above idle, and where RSS is
/// 10 s after they all went away.
fn stalled_readers(_: &Settings) -> Vec<Row> {
    use std::io::Read;
    let counts: Vec<u64> = std::env::var("BENCH_STALLED")
        .unwrap_or_else(|_| "1000,2000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("media");
    std::fs::create_dir_all(root.join("three-mb")).unwrap();
    let content: Vec<u8> = (0..3u64 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("three-mb/original"), content).unwrap();
    let mut rows = Vec::new();
    for count in counts {
        let service = Service::start(&test_config().with(|c| {
            c.server.workers = 0;
            c.media.root = root.clone();
            c.media.stall_timeout_secs = 600;
            // Every reader comes from this one address: the per-client cap would refuse all
            // but 64, and what a stalled stream costs is what is measured.
            c.media.max_streams_per_client = 10_000;
        }));
        let pid = service.pid();
        // One complete read first, so the file is in the page cache and lazily built state
        // exists at the baseline.
        assert_eq!(
            common::raw_request(service.addr, "GET", "/api/media/three-mb", &[]).status,
            200
        );
        std::thread::sleep(Duration::from_millis(500));
        let idle = rss_kb(pid) as f64 / 1024.0;
        let watch = RssWatch::start(pid);
        let started = Instant::now();
        // A reader whose stream does not start as a 200 is a failure.
        let mut failures = 0;
        let readers: Vec<std::net::TcpStream> = (0..count)
            .map(|_| {
                let mut s = common::open_get(service.addr, "/api/media/three-mb");
                let mut head = [0u8; 4096];
                match s.read(&mut head) {
                    Ok(n) if head[..n].starts_with(b"HTTP/1.1 200") => {}
                    _ => failures += 1,
                }
                s
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        let active =
            |pid_addr| common::scrape(pid_addr, "oip_media_active_streams").unwrap_or(0.0) as u64;
        // On loopback the socket buffers take a whole 3 MB for some readers: those streams end
        // complete, and only the others stall. The gauge settles once each has done one or the
        // other.
        let mut settled = 0;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
            let now = active(service.addr);
            if now == settled && now > 0 {
                break;
            }
            settled = now;
        }
        let stalled_streams = active(service.addr).max(1);
        let stalled = rss_kb(pid) as f64 / 1024.0;
        let peak = watch.peak_mb();
        let elapsed = started.elapsed();
        drop(readers);
        let gone = Instant::now();
        let mut after = rss_kb(pid) as f64 / 1024.0;
        while gone.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(250));
            after = rss_kb(pid) as f64 / 1024.0;
            if after <= idle + STALLED_RECOVERY_MB / 2.0 {
                break;
            }
        }
        let per_stream_kb = (peak - idle) * 1024.0 / stalled_streams as f64;
        let notes = format!(
            "idle {idle:.1} MB, {stalled_streams} of {count} streams stalled: {stalled:.1} MB (peak {peak:.1}), {per_stream_kb:.0} KB per stalled stream; {after:.1} MB {:.1} s after they left",
            gone.elapsed().as_secs_f64()
        );
        let load = Load {
            requests: count,
            failures: Some(failures),
            bytes: 0,
            elapsed,
            latencies: Vec::new(),
        };
        let mut r = row(
            &format!("{count} stalled readers of a 3 MB file"),
            &load,
            None,
            measured(idle, peak, after),
            notes,
        );
        if per_stream_kb > STALLED_STREAM_KB {
            r.broken.push(format!(
                "{per_stream_kb:.0} KB of RSS per stalled stream (limit {STALLED_STREAM_KB} KB)"
            ));
        }
        if after > idle + STALLED_RECOVERY_MB {
            r.broken.push(format!(
                "RSS {after:.1} MB 10 s after {count} stalled readers left (idle {idle:.1} MB, limit +{STALLED_RECOVERY_MB} MB)"
            ));
        }
        rows.push(r);
    }
    rows
}

fn main() {
    let settings = Settings::from_env();
    let workloads: &[(&str, Workload)] = &[
        ("missing-refs", |s| vec![missing_references(s)]),
        ("resolve-cold-1", |s| vec![resolve_cold_single(s)]),
        ("resolve-cold", |s| vec![resolve_cold(s)]),
        ("resolve-warm", |s| vec![resolve_warm(s)]),
        ("callers", callers),
        ("media-and-answers-vs-nginx", versus::versus_nginx),
        ("stalled", stalled_readers),
        ("compression", compression),
        ("hostile-pipelining", hostile::pipelining),
        ("hostile-fan-out", hostile::fan_out),
        ("hostile-refresh", hostile::refresh_flood),
        ("hostile-miss-flood", hostile::miss_flood),
        ("hostile-listings", hostile::big_listings),
    ];
    let mut rows = Vec::new();
    for &(name, run) in workloads {
        if settings.only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        eprintln!(
            "== {name}: {} clients for {} s",
            settings.concurrency, settings.secs
        );
        rows.extend(run(&settings));
    }
    println!("\n{}", table::markdown(&rows));
    write_json(&settings, &rows);
    let broken: Vec<&String> = rows.iter().flat_map(|r| &r.broken).collect();
    if !broken.is_empty() {
        for b in &broken {
            eprintln!("bench FAILED: {b}");
        }
        std::process::exit(1);
    }
}

fn write_json(s: &Settings, rows: &[Row]) {
    let settings = json!({"secs": s.secs, "concurrency": s.concurrency, "missDelayMs": s.miss_delay_ms,
                          "relayLatencyMs": s.latency_ms, "faultPercent": s.fault_percent,
                          "only": s.only});
    let doc = json!({"settings": settings, "rows": table::json(rows)});
    stamp::write("load", &stamp::stamped("make bench", doc));
}
