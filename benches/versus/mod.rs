//! Side by side with nginx, measured the way a sceptical user would: `wrk -t2 -c64` (Debian's
//! package, which `make bench` installs with nginx) against this service (`workers: 2`) and
//! against nginx (`worker_processes 2`, `sendfile on`) serving the same bytes, the two
//! alternated twice per workload so that a noisy moment of a shared machine hits both. The ratio
//! of each round is what counts; the CPU each side and wrk used is printed beside it, so a load
//! generator that is the bottleneck shows.
//!
//! Settings: BENCH_WRK_SECS (per run, default 5; the 100 MB file gets twice that),
//! BENCH_WRK_TARGET (the ratio each workload must reach, default 0.8), BENCH_ROWS (only the rows
//! whose name contains this).

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use super::{
    aborted_streams, bench_token, common, measured, row, store_workouts, Load, Row, RssWatch,
    Settings, BENCH_JWT_SECRET,
};
use common::{env_u64, relay_config, rss_kb, ConfigExt, MockRelay, Service};

/// nginx serving `root` on a free loopback port.
struct Nginx {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(root: &Path) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let d = dir.path().display();
        let conf = format!(
            "user root;\nworker_processes 2;\ndaemon off;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 4096; }}\n\
             http {{ access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000;\n\
               default_type application/octet-stream;\n\
               client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n\
               uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
               server {{ listen 127.0.0.1:{port}; root {}; location / {{ }} }} }}\n",
            root.display()
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).ok()?;
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir.path())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                eprintln!("  nginx did not start: the comparison is skipped");
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self {
            child,
            port,
            _dir: dir,
        })
    }

    /// The master and its workers: what nginx's CPU time is summed over.
    fn pids(&self) -> Vec<u32> {
        let master = self.child.id();
        let mut pids = vec![master];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if stat_field(pid, 3) == Some(u64::from(master)) {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: the master then stops its workers instead of orphaning them.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// Field `n` (0-based, after the command name) of `/proc/<pid>/stat`.
fn stat_field(pid: u32, n: usize) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &text[text.rfind(')')? + 2..];
    after_name.split(' ').nth(n - 2)?.parse().ok()
}

/// CPU time (user + system) of `pids`, in seconds.
fn cpu_secs(pids: &[u32]) -> f64 {
    let ticks: u64 = pids
        .iter()
        .map(|&p| stat_field(p, 13).unwrap_or(0) + stat_field(p, 14).unwrap_or(0))
        .sum();
    ticks as f64 / 100.0
}

fn present(program: &str) -> bool {
    Command::new(program)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// One wrk run: requests per second, responses that were not 2xx or socket errors, and the
/// cores wrk and the server used on average.
struct Run {
    requests: u64,
    per_sec: f64,
    /// Latency percentiles and maximum as wrk measured them, in ms.
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
    errors: u64,
    wrk_cores: f64,
    server_cores: f64,
}

fn wrk(url: &str, headers: &[String], secs: u64, server: &[u32]) -> Run {
    let mut command = Command::new("wrk");
    command
        .args(["-t2", "-c64", "--timeout", "30s", "--latency"])
        .arg(format!("-d{secs}s"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for header in headers {
        command.args(["-H", header]);
    }
    let server_before = cpu_secs(server);
    let started = Instant::now();
    let mut child = command.arg(url).spawn().expect("wrk starts");
    // wrk's own CPU time, read until it exits (its last reading is within 50 ms of the end).
    let mut wrk_secs = 0.0;
    while child.try_wait().ok().flatten().is_none() {
        wrk_secs = cpu_secs(&[child.id()]).max(wrk_secs);
        std::thread::sleep(Duration::from_millis(50));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let server_secs = cpu_secs(server) - server_before;
    let mut out = String::new();
    use std::io::Read;
    let _ = child.stdout.take().unwrap().read_to_string(&mut out);
    let number_after = |label: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.trim_end_matches(',').parse::<f64>().ok())
    };
    let socket_errors: u64 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map(|rest| {
            rest.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Run {
        // "  123456 requests in 5.00s, 1.23GB read"
        requests: out
            .lines()
            .find(|l| l.contains(" requests in "))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or(0),
        per_sec: number_after("Requests/sec:").unwrap_or(0.0),
        p50_ms: latency_after(&out, "50%", 0),
        p99_ms: latency_after(&out, "99%", 0),
        // "Latency   1.23ms    2.34ms  45.67ms   89.00%": average, deviation, maximum.
        max_ms: latency_after(&out, "Latency", 2),
        errors: number_after("Non-2xx or 3xx responses:").unwrap_or(0.0) as u64 + socket_errors,
        wrk_cores: wrk_secs / elapsed,
        server_cores: server_secs / elapsed,
    }
}

/// The `nth` duration after `label` on a line of wrk's output, in ms ("635.91us", "3.11ms",
/// "1.02s").
fn latency_after(out: &str, label: &str, nth: usize) -> Option<f64> {
    let text = out
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))?
        .split_whitespace()
        .nth(nth)?;
    let (number, scale) = [("us", 0.001), ("ms", 1.0), ("m", 60_000.0), ("s", 1000.0)]
        .iter()
        .find_map(|(unit, scale)| Some((text.strip_suffix(unit)?, *scale)))?;
    number.parse::<f64>().ok().map(|n| n * scale)
}

/// The bytes of a file of `len`, a pattern that no layer can compress away.
fn write_file(path: &Path, len: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let content: Vec<u8> = (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    std::fs::write(path, content).unwrap();
}

pub fn versus_nginx(_: &Settings) -> Vec<Row> {
    for program in ["wrk", "nginx"] {
        if !present(program) {
            eprintln!("SKIPPED the comparison with nginx: {program} is not installed (`make bench` installs Debian's package)");
            return Vec::new();
        }
    }
    let secs = env_u64("BENCH_WRK_SECS", 5);
    let target = std::env::var("BENCH_WRK_TARGET")
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        .unwrap_or(0.8);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("media");
    for (id, len) in [
        ("hundred-kb", 100_000),
        ("one-mb", 1_000_000),
        ("hundred-mb", 100_000_000),
    ] {
        write_file(&root.join(id).join("original"), len);
    }
    let relay = MockRelay::start();
    relay.load(&common::repo_path("data/demo/records.json"));
    store_workouts(&relay, 1);
    let service = Service::start(&relay_config(&relay.url()).with(|c| {
        c.server.workers = 2;
        c.media.root = root.clone();
        c.record_cache.ttl_secs = 3600;
        c.negative_cache.log_every = 1_000_000;
        c.auth.jwt_secret = Some(BENCH_JWT_SECRET.into());
    }));
    let bearer = format!("Authorization: Bearer {}", bench_token("02bench-caller"));
    // The warm answers, byte for byte, for nginx to serve from files.
    let answers = [
        ("demo", "did:gun:f3a9c2e1b7d4:workout-full-body"),
        ("w81", "did:gun:bench:w0"),
    ];
    for (name, did) in answers {
        let path = format!("/api/records?did={did}&resolveDepth=2");
        common::raw_request(service.addr, "GET", &path, &[]);
        let warm = common::raw_request(service.addr, "GET", &path, &[]);
        assert_eq!(warm.status, 200, "{name}");
        std::fs::create_dir_all(root.join("answers")).unwrap();
        std::fs::write(root.join(format!("answers/{name}.json")), &warm.body).unwrap();
    }
    let Some(nginx) = Nginx::start(&root) else {
        return Vec::new();
    };
    let ours = |p: &str| format!("http://{}{p}", service.addr);
    let theirs = |p: &str| format!("http://127.0.0.1:{}{p}", nginx.port);
    let records = |did: &str| format!("/api/records?did={did}&resolveDepth=2");
    let none: Vec<String> = Vec::new();
    let range = vec!["Range: bytes=0-499999".to_string()];
    let caller = vec![bearer];
    let workloads = [
        (
            "100 kB file, whole",
            ours("/api/media/hundred-kb"),
            theirs("/hundred-kb/original"),
            &none,
            secs,
        ),
        (
            "1 MB file, whole",
            ours("/api/media/one-mb"),
            theirs("/one-mb/original"),
            &none,
            secs,
        ),
        (
            "1 MB file, one 500 kB range",
            ours("/api/media/one-mb"),
            theirs("/one-mb/original"),
            &range,
            secs,
        ),
        (
            "100 MB file, whole",
            ours("/api/media/hundred-mb"),
            theirs("/hundred-mb/original"),
            &none,
            secs * 2,
        ),
        (
            "warm resolution, demo workout (depth 2)",
            ours(&records(answers[0].1)),
            theirs("/answers/demo.json"),
            &none,
            secs,
        ),
        (
            "warm resolution, demo workout (depth 2), caller with a JWT",
            ours(&records(answers[0].1)),
            theirs("/answers/demo.json"),
            &caller,
            secs,
        ),
        (
            "warm resolution, 81-record workout (depth 2)",
            ours(&records(answers[1].1)),
            theirs("/answers/w81.json"),
            &none,
            secs,
        ),
    ];
    let pid = service.pid();
    let idle_mb = rss_kb(pid) as f64 / 1024.0;
    let nginx_pids = nginx.pids();
    let mut rows = Vec::new();
    let rows_wanted = std::env::var("BENCH_ROWS").unwrap_or_default();
    for (name, our_url, their_url, headers, secs) in workloads {
        if !name.contains(rows_wanted.as_str()) {
            continue;
        }
        eprintln!("  wrk: {name}");
        let before = rss_kb(pid) as f64 / 1024.0;
        let watch = RssWatch::start(pid);
        let mut rounds = Vec::new();
        for _ in 0..2 {
            let o = wrk(&our_url, headers, secs, &[pid]);
            let n = wrk(&their_url, headers, secs, &nginx_pids);
            rounds.push((o, n));
        }
        let after = rss_kb(pid) as f64 / 1024.0;
        let ratios: Vec<f64> = rounds
            .iter()
            .map(|(o, n)| o.per_sec / n.per_sec.max(1e-9))
            .collect();
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        let list = |f: &dyn Fn(&Run) -> f64, side: usize| {
            rounds
                .iter()
                .map(|r| format!("{:.0}", f(if side == 0 { &r.0 } else { &r.1 })))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let cores = |side: usize| {
            rounds
                .iter()
                .map(|r| {
                    let run = if side == 0 { &r.0 } else { &r.1 };
                    format!("{:.1}+{:.1}", run.server_cores, run.wrk_cores)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let notes = format!(
            "oip-resolver {} req/s, nginx {} req/s: ratio {} (mean {mean:.2}); cores server+wrk: ours {}, nginx {}",
            list(&|r| r.per_sec, 0),
            list(&|r| r.per_sec, 1),
            ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(", "),
            cores(0),
            cores(1),
        );
        let ours_mean = rounds.iter().map(|r| r.0.per_sec).sum::<f64>() / rounds.len() as f64;
        let errors: u64 = rounds.iter().map(|r| r.0.errors + r.1.errors).sum();
        let load = Load {
            requests: rounds.iter().map(|r| r.0.requests).sum(),
            failures: Some(errors),
            bytes: 0,
            elapsed: Duration::from_secs(secs * rounds.len() as u64),
            latencies: Vec::new(),
        };
        let mut r = row(
            &format!("vs nginx: {name}"),
            &load,
            None,
            measured(before, watch.peak_mb(), after),
            notes,
        );
        // The worse of the rounds, as wrk measured our side.
        let worst =
            |f: fn(&Run) -> Option<f64>| rounds.iter().filter_map(|r| f(&r.0)).reduce(f64::max);
        r.per_sec = Some(ours_mean);
        r.p50_ms = worst(|r| r.p50_ms);
        r.p99_ms = worst(|r| r.p99_ms);
        r.max_ms = worst(|r| r.max_ms);
        if mean < target {
            r.broken.push(format!(
                "{name}: {mean:.2}x nginx, under the {target} target"
            ));
        }
        if errors > 0 {
            r.broken
                .push(format!("{name}: {errors} responses were errors"));
        }
        rows.push(r);
    }
    let end_mb = rss_kb(pid) as f64 / 1024.0;
    if end_mb > idle_mb + 32.0 {
        rows.last_mut().unwrap().broken.push(format!(
            "RSS grew from {idle_mb:.1} MB to {end_mb:.1} MB over the wrk runs"
        ));
    }
    rows.push(aborted_streams(&service, "/api/media/hundred-mb", 10_000));
    rows
}
