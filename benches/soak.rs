//! `make soak`: a long mixed run at steady concurrency, the way the old service died: resolutions
//! with hits, misses and cycles; media streams that complete, abort, stall or ask for ranges;
//! relay faults; hostile input. Every 30 s it prints RSS, heap, open descriptors, active streams
//! and cache sizes. After warm-up, it fails if RSS ramps (the memory monitor's trend: growth
//! across the run, not a sawtooth or one step) by more than SOAK_MAX_GROWTH_MB_PER_DAY (64) a
//! day, descriptors grow at all, or any answer's status was not the one its kind calls for (or
//! no answer came). `make soak-leak` runs it against a build with a leak put in on purpose
//! (the `leak-injection` feature), to show the verdict can fail.
//!
//! Settings: SOAK_SECS (600), SOAK_CONCURRENCY (32), SOAK_WARMUP_SECS (60).

#[path = "../tests/common/mod.rs"]
mod common;
mod stamp;

use std::{
    cell::RefCell,
    collections::BTreeMap,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    rc::Rc,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use common::{
    descriptors, env_u64, relay_config, rss_kb, sample_value, ConfigExt, MockRelay, Mode, Service,
};
use futures::StreamExt;
use serde_json::json;

/// What a request is and which statuses it may get: any other status fails the soak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    ResolveHit,
    ResolveMiss,
    ResolveCycle,
    RelayGarbage,
    RelayServerError,
    RelayTimeout,
    MediaComplete,
    MediaRange,
    Hostile,
}

impl Kind {
    fn expect(self) -> &'static [u16] {
        match self {
            // A DID that is not there: an empty answer, as the old API gave.
            Kind::ResolveHit | Kind::ResolveCycle | Kind::MediaComplete | Kind::ResolveMiss => {
                &[200]
            }
            Kind::RelayGarbage | Kind::RelayServerError => &[502],
            Kind::RelayTimeout => &[504],
            Kind::MediaRange => &[206],
            Kind::Hostile => &[400],
        }
    }

    fn is_fault(self) -> bool {
        matches!(
            self,
            Kind::RelayGarbage | Kind::RelayServerError | Kind::RelayTimeout
        )
    }
}

const WEIGHTS: [(Kind, u32); 9] = [
    (Kind::ResolveHit, 30),
    (Kind::ResolveMiss, 15),
    (Kind::ResolveCycle, 10),
    (Kind::RelayGarbage, 3),
    (Kind::RelayServerError, 3),
    (Kind::RelayTimeout, 2),
    (Kind::MediaComplete, 12),
    (Kind::MediaRange, 15),
    (Kind::Hostile, 10),
];

fn pick() -> Kind {
    let total: u32 = WEIGHTS.iter().map(|(_, w)| w).sum();
    let mut n = fastrand::u32(0..total);
    for (kind, w) in WEIGHTS {
        if n < w {
            return kind;
        }
        n -= w;
    }
    Kind::ResolveHit
}

fn target(kind: Kind) -> (String, Option<String>) {
    let did = |local: &str| format!("did:gun:f3a9c2e1b7d4:{local}");
    match kind {
        Kind::ResolveHit => {
            let w = ["workout-full-body", "workout-upper", "workout-legs"][fastrand::usize(0..3)];
            (format!("/api/records?did={}&resolveDepth=2", did(w)), None)
        }
        Kind::ResolveMiss => (
            format!(
                "/api/records?did={}",
                did(&format!("gone-{}", fastrand::u32(0..2000)))
            ),
            None,
        ),
        Kind::ResolveCycle => (
            format!(
                "/api/records?did={}&resolveDepth=4",
                did("exercise-bench-press")
            ),
            None,
        ),
        Kind::RelayGarbage => ("/gun-relay/get?soul=fault:garbage".into(), None),
        Kind::RelayServerError => ("/gun-relay/get?soul=fault:503".into(), None),
        Kind::RelayTimeout => ("/gun-relay/get?soul=fault:hang".into(), None),
        Kind::MediaComplete => ("/api/media/small".into(), None),
        Kind::MediaRange => {
            let start = fastrand::u64(0..(4 << 20) - 65_536);
            (
                "/api/media/big".into(),
                Some(format!("bytes={start}-{}", start + 65_535)),
            )
        }
        Kind::Hostile => {
            let t = [
                "/gun-relay/get?soul=%FF%FE",
                "/api/records?did=did:gun:a:1&resolveDepth=99999",
                "/api/records?did=nope",
                "/media?id=../../etc/passwd",
                "/gun-relay/get?soul=a&soul=b",
            ];
            (t[fastrand::usize(0..t.len())].into(), None)
        }
    }
}

#[derive(Default)]
struct Tally {
    by_kind: BTreeMap<(Kind, u16), u64>,
    unexpected: Vec<String>,
}

/// A stream abandoned mid-body, or one whose reader stops until the stall timeout cuts it.
fn misbehaving_reader(addr: SocketAddr, stall: bool) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.write_all(b"GET /api/media/big HTTP/1.1\r\nHost: soak\r\n\r\n");
    let mut buf = [0u8; 16 * 1024];
    let _ = s.read(&mut buf);
    if stall {
        std::thread::sleep(Duration::from_secs(4));
    }
    true
}

struct Figures {
    rss_kb: u64,
    heap: f64,
    /// Descriptors other than the relay connection pool's and the clients' connections: these
    /// must not grow.
    fds: usize,
    /// What those are, for a report that says which grew.
    others: Vec<String>,
    /// The relay connection pool's, bounded by `gun.max_connections`.
    relay_fds: usize,
    /// Connections the soak's clients opened and keep alive while paused: theirs to close.
    client_fds: usize,
    streams: f64,
    negative: f64,
    record_bytes: f64,
}

fn figures(service: &Service, relay_port: u16) -> Figures {
    // One scrape for all the figures of a report.
    let text = common::raw_request(service.addr, "GET", "/metrics", &[]).body;
    let text = String::from_utf8_lossy(&text);
    let m = |name: &str| sample_value(&text, name).unwrap_or(f64::NAN);
    let (to_relay, from_clients) = (
        format!(" -> {relay_port}"),
        format!("tcp {} -> ", service.addr.port()),
    );
    let is_client = |d: &String| d.starts_with(&from_clients) && !d.ends_with(" -> 0");
    let all = descriptors(service.pid());
    let relay_fds = all.iter().filter(|d| d.ends_with(&to_relay)).count();
    let client_fds = all.iter().filter(|d| is_client(d)).count();
    let others: Vec<String> = all
        .into_iter()
        .filter(|d| !d.ends_with(&to_relay) && !is_client(d))
        .collect();
    Figures {
        rss_kb: rss_kb(service.pid()),
        heap: m("oip_heap_allocated_bytes"),
        fds: others.len(),
        others,
        relay_fds,
        client_fds,
        streams: m("oip_media_active_streams"),
        negative: m("oip_negative_cache_entries"),
        record_bytes: m("oip_record_cache_bytes"),
    }
}

fn print_figures(t: Duration, f: &Figures, requests: u64) {
    eprintln!(
        "[soak {:>4}s] RSS {:.1} MB, heap {:.1} MB, fds {} (+{} to the relay, +{} from clients), streams {}, 404 cache {}, record cache {:.1} MB, {requests} requests",
        t.as_secs(),
        f.rss_kb as f64 / 1024.0,
        f.heap / 1048576.0,
        f.fds,
        f.relay_fds,
        f.client_fds,
        f.streams,
        f.negative,
        f.record_bytes / 1048576.0
    );
}

fn main() {
    let secs = env_u64("SOAK_SECS", 600);
    let concurrency = env_u64("SOAK_CONCURRENCY", 32) as usize;
    let warmup = Duration::from_secs(env_u64("SOAK_WARMUP_SECS", 60).min(secs / 2));

    let relay = MockRelay::start();
    relay.load(&common::repo_path("data/demo/records.json"));
    relay.set_latency(2);
    relay.set_miss_delay(200);
    relay.set_soul_mode("fault:garbage", Mode::Garbage);
    relay.set_soul_mode("fault:503", Mode::Status(503));
    relay.set_soul_mode("fault:hang", Mode::Hang);
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(media.join("small")).unwrap();
    std::fs::write(media.join("small/original"), vec![7u8; 200_000]).unwrap();
    std::fs::create_dir_all(media.join("big")).unwrap();
    std::fs::write(media.join("big/original"), vec![9u8; 4 << 20]).unwrap();
    let config = relay_config(&relay.url()).with(|c| {
        c.server.workers = 0;
        c.gun.request_timeout_ms = 300;
        c.gun.max_attempts = 2;
        c.gun.backoff_base_ms = 10;
        c.gun.backoff_max_ms = 50;
        c.gun.breaker_failures = 100_000;
        c.negative_cache.ttl_secs = 30;
        c.negative_cache.sweep_interval_secs = 10;
        c.negative_cache.capacity = 1000;
        c.negative_cache.log_every = 100_000;
        c.record_cache.ttl_secs = 5;
        c.media.root = media.clone();
        c.media.stall_timeout_secs = 2;
        c.memory_monitor.interval_secs = 60;
    });
    let service = Service::start(&config);
    let (relay_port, max_relay_connections) = (relay.addr.port(), config.gun.max_connections);
    eprintln!(
        "soak: {secs} s at {concurrency} clients (warm-up {} s), service pid {}",
        warmup.as_secs(),
        service.pid()
    );

    let start_rss = rss_kb(service.pid());
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let paused = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let misbehaved = Arc::new(AtomicU64::new(0));
    let peak_rss = Arc::new(AtomicU64::new(0));

    // Raw clients that abandon or stall streams, in the background.
    let raw_clients = 2;
    let raw: Vec<_> = (0..raw_clients)
        .map(|i| {
            let (stop, paused, count, addr) = (
                stop.clone(),
                paused.clone(),
                misbehaved.clone(),
                service.addr,
            );
            std::thread::spawn(move || {
                while !stop.load(Relaxed) {
                    if paused.load(Relaxed) {
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                    let stall = i == 1 && fastrand::u8(0..4) == 0;
                    if misbehaving_reader(addr, stall) {
                        count.fetch_add(1, Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();

    // The HTTP clients, on their own thread and runtime.
    let client_thread = {
        let (stop, paused, requests, base) = (
            stop.clone(),
            paused.clone(),
            requests.clone(),
            format!("http://{}", service.addr),
        );
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let client = awc::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .connector(awc::Connector::new().limit(concurrency * 2))
                    .finish();
                let tally = Rc::new(RefCell::new(Tally::default()));
                let tasks = (0..concurrency).map(|_| {
                    let (client, tally, stop, paused, requests, base) = (
                        client.clone(),
                        tally.clone(),
                        stop.clone(),
                        paused.clone(),
                        requests.clone(),
                        base.clone(),
                    );
                    async move {
                        while !stop.load(Relaxed) {
                            if paused.load(Relaxed) {
                                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                                continue;
                            }
                            let kind = pick();
                            let (path, range) = target(kind);
                            let mut req = client.get(format!("{base}{path}"));
                            if let Some(r) = range {
                                req = req.insert_header(("range", r));
                            }
                            let status = match req.send().await {
                                Ok(mut res) => {
                                    let status = res.status().as_u16();
                                    while let Some(chunk) = res.next().await {
                                        if chunk.is_err() {
                                            break;
                                        }
                                    }
                                    status
                                }
                                Err(_) => 0,
                            };
                            requests.fetch_add(1, Relaxed);
                            let mut t = tally.borrow_mut();
                            *t.by_kind.entry((kind, status)).or_default() += 1;
                            if !kind.expect().contains(&status) {
                                t.unexpected.push(format!("{kind:?} {path} -> {status}"));
                            }
                        }
                    }
                });
                futures::future::join_all(tasks).await;
                Rc::try_unwrap(tally).ok().unwrap().into_inner()
            })
        })
    };

    let settle = |paused: &AtomicBool| {
        paused.store(true, Relaxed);
        // Longer than the stall timeout and the relay timeout: what is in flight ends.
        std::thread::sleep(Duration::from_secs(5));
        let f = figures(&service, relay_port);
        paused.store(false, Relaxed);
        f
    };

    let mut baseline: Option<Figures> = None;
    let mut next_report = Duration::from_secs(30);
    let end = Duration::from_secs(secs);
    // RSS after warm-up, (seconds, MB), every second: what the trend is fitted to.
    let mut rss_series: Vec<(f64, f64)> = Vec::new();
    let mut next_sample = warmup;
    while started.elapsed() < end {
        std::thread::sleep(Duration::from_millis(250));
        let rss = rss_kb(service.pid());
        peak_rss.fetch_max(rss, Relaxed);
        if baseline.is_some() && started.elapsed() >= next_sample {
            rss_series.push((started.elapsed().as_secs_f64(), rss as f64 / 1024.0));
            next_sample += Duration::from_secs(1);
        }
        if baseline.is_none() && started.elapsed() >= warmup {
            let f = settle(&paused);
            eprint!("warm-up done, baseline: ");
            print_figures(started.elapsed(), &f, requests.load(Relaxed));
            baseline = Some(f);
        }
        if started.elapsed() >= next_report {
            print_figures(
                started.elapsed(),
                &figures(&service, relay_port),
                requests.load(Relaxed),
            );
            next_report += Duration::from_secs(30);
        }
    }
    let last = settle(&paused);
    stop.store(true, Relaxed);
    let tally = client_thread.join().unwrap();
    for t in raw {
        let _ = t.join();
    }
    let baseline = baseline.expect("the run is longer than its warm-up");
    eprint!("end, settled: ");
    print_figures(started.elapsed(), &last, requests.load(Relaxed));

    let faults: u64 = tally
        .by_kind
        .iter()
        .filter(|((k, _), _)| k.is_fault())
        .map(|(_, n)| n)
        .sum();
    println!("\n| kind | status | count |\n|---|---:|---:|");
    for ((kind, status), n) in &tally.by_kind {
        println!("| {kind:?} | {status} | {n} |");
    }
    // The verdict is the trend of RSS after warm-up, as the memory monitor reads it: only a ramp
    // (growth across the run, under whatever sawtooth) fails, and only one that would add more
    // than SOAK_MAX_GROWTH_MB_PER_DAY in a day. A few MB of noise at a 15 MB footprint is not a
    // verdict either way.
    let max_per_day = env_u64("SOAK_MAX_GROWTH_MB_PER_DAY", 64) as f64;
    let trend =
        oip_resolver::monitor::trend::classify(&rss_series).expect("samples after the warm-up");
    let per_day = trend.mb_per_hour * 24.0;
    println!(
        "\nsoak {secs} s: {} requests ({faults} relay faults injected, {} streams aborted or stalled), \
         RSS start {:.1} MB / baseline {:.1} MB / peak {:.1} MB / end {:.1} MB, \
         fds {} -> {}, unexpected statuses {}",
        requests.load(Relaxed),
        misbehaved.load(Relaxed),
        start_rss as f64 / 1024.0,
        baseline.rss_kb as f64 / 1024.0,
        peak_rss.load(Relaxed) as f64 / 1024.0,
        last.rss_kb as f64 / 1024.0,
        baseline.fds,
        last.fds,
        tally.unexpected.len()
    );
    // A projection only means something for a ramp: a flat or sawtooth run has no slope to
    // carry forward, and a number beside "flat" would read as growth.
    let projection = match trend.shape {
        oip_resolver::monitor::trend::Shape::Ramp => format!(
            "; projected {:.1} MB after 24 h and {:.1} MB after 7 days (limit +{max_per_day} MB a day)",
            trend.last_mb + trend.mb_per_hour.max(0.0) * 24.0,
            trend.last_mb + trend.mb_per_hour.max(0.0) * 24.0 * 7.0,
        ),
        _ => String::new(),
    };
    println!(
        "RSS trend after warm-up: {}, min {:.1} / max {:.1} MB{projection}",
        oip_resolver::monitor::trend::Reading::Known(trend),
        trend.min_mb,
        trend.max_mb,
    );
    let figures = json!({
        "secs": secs, "concurrency": concurrency, "requests": requests.load(Relaxed),
        "faultsInjected": faults, "streamsAbortedOrStalled": misbehaved.load(Relaxed),
        "rssStartMb": start_rss as f64 / 1024.0,
        "rssBaselineMb": baseline.rss_kb as f64 / 1024.0, "rssPeakMb": peak_rss.load(Relaxed) as f64 / 1024.0,
        "rssEndMb": last.rss_kb as f64 / 1024.0, "fdsBaseline": baseline.fds, "fdsEnd": last.fds,
        "clientConnectionsEnd": last.client_fds, "relayConnectionsEnd": last.relay_fds,
        "rssTrendMbPerHour": trend.mb_per_hour, "rssTrendShape": trend.shape.to_string(),
        "rssTrendToleranceMb": trend.tolerance_mb,
        "rssTrendSpanSecs": trend.span_secs,
        "unexpectedStatuses": tally.unexpected.len(),
    });
    stamp::write("soak", &stamp::stamped("make soak", figures));
    let mut failed = Vec::new();
    if trend.shape == oip_resolver::monitor::trend::Shape::Ramp && per_day > max_per_day {
        failed.push(format!(
            "RSS ramps {:+.1} MB/h: {per_day:+.0} MB a day, over the {max_per_day} MB limit",
            trend.mb_per_hour
        ));
    }
    if last.fds > baseline.fds {
        let mut added = last.others.clone();
        for was in &baseline.others {
            if let Some(i) = added.iter().position(|d| d == was) {
                added.remove(i);
            }
        }
        failed.push(format!(
            "descriptors grew {} -> {} (added: {})",
            baseline.fds,
            last.fds,
            added.join(", ")
        ));
    }
    // The clients' own connections are theirs to close, but accepted sockets the service never
    // closed would outnumber them.
    let max_client_connections = concurrency * 2 + raw_clients;
    if last.client_fds > max_client_connections {
        failed.push(format!(
            "{} client connections open, more than the soak's clients can hold ({max_client_connections})",
            last.client_fds
        ));
    }
    if last.relay_fds > max_relay_connections {
        failed.push(format!(
            "{} connections to the relay, over gun.max_connections {max_relay_connections}",
            last.relay_fds
        ));
    }
    if !tally.unexpected.is_empty() {
        failed.push(format!(
            "{} answers with an unexpected status, e.g. {:?}",
            tally.unexpected.len(),
            &tally.unexpected[..tally.unexpected.len().min(5)]
        ));
    }
    if failed.is_empty() {
        println!("soak PASSED");
    } else {
        println!("soak FAILED: {}", failed.join("; "));
        // `exit` runs no destructors: stop the service first, or a failed soak leaves it running.
        drop(service);
        std::process::exit(1);
    }
}
