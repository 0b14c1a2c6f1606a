//! What operators rely on: the memory monitor's lines, the start-up summary, the access log
//! switch, health, and a shutdown that lets in-flight streams finish.

mod common;

use std::{
    io::Read,
    net::TcpStream,
    time::{Duration, Instant},
};

use common::*;
use oip_resolver::config::Config;
use serde_json::json;

/// The demo source with one worker and a 10 s drain.
fn demo() -> Config {
    test_config().with(|c| {
        c.server.workers = 1;
        c.server.shutdown_timeout_secs = 10;
        c.log.access = true;
    })
}

/// `demo` serving a folder with one media file, `big`, of `len` bytes.
fn with_media(len: u64) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("media/big");
    std::fs::create_dir_all(&clip).unwrap();
    std::fs::File::create(clip.join("original"))
        .unwrap()
        .set_len(len)
        .unwrap();
    let config = demo().with(|c| c.media.root = dir.path().join("media"));
    (dir, config)
}

fn number_after(line: &str, label: &str) -> u64 {
    let rest = line
        .split(label)
        .nth(1)
        .unwrap_or_else(|| panic!("{label} in {line}"));
    rest.trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("a number after {label} in {line}"))
}

#[actix_web::test]
async fn the_memory_monitor_reports_plausible_figures() {
    let service = Service::start(&demo().with(|c| {
        c.memory_monitor.interval_secs = 1;
        c.server.max_body_bytes = 16 << 20;
        c.log.access = false;
    }));
    assert_eq!(
        get(service.url("/gun-relay/get?soul=f3a9c2e1b7d4:nothing"))
            .await
            .status,
        404
    );
    // The first line is written at start-up, before that miss.
    let line = service
        .wait_for_line_after(
            service.log().len(),
            "[Memory Monitor] RSS:",
            Duration::from_secs(3),
        )
        .expect("a monitor line within the interval");
    let rss = number_after(&line, "RSS:");
    let heap = number_after(&line, "Heap:");
    assert!((1..2048).contains(&rss), "{line}");
    assert!(heap <= rss, "{line}");
    assert!(
        line.contains(", Streams: 0, 404 cache: 1 souls, Record cache: "),
        "{line}"
    );
    assert!(line.contains("MB, Trend: "), "{line}");
    assert!(!service.log().iter().any(|l| l.contains("CRITICAL")));

    let rss_bytes = metric(&service, "oip_process_resident_memory_bytes")
        .await
        .unwrap();
    let heap_bytes = metric(&service, "oip_heap_allocated_bytes").await.unwrap();
    assert!(rss_bytes > 1e6 && heap_bytes > 1e4 && heap_bytes < rss_bytes);

    // The heap figure follows what the service holds: a 6 MB record kept by the file source
    // raises the gauge and the monitor's line by at least that much.
    let big = json!({"data": json!({"basic": {"name": "x".repeat(6 << 20)}}).to_string()});
    let put = put_node(
        &service.url("/gun-relay"),
        "f3a9c2e1b7d4:big",
        big,
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    let grown = metric(&service, "oip_heap_allocated_bytes").await.unwrap();
    assert!(
        grown >= heap_bytes + 6e6,
        "heap gauge {heap_bytes} -> {grown} after storing 6 MB"
    );
    let later = service
        .wait_for_line_after(
            service.log().len(),
            "[Memory Monitor] RSS:",
            Duration::from_secs(3),
        )
        .expect("monitor lines go on");
    assert!(
        number_after(&later, "Heap:") >= heap + 6,
        "the monitor's heap figure followed: {line} then {later}"
    );
}

/// Memory that grows and keeps growing is called a ramp, projected to the critical threshold,
/// and exported; an idle service is flat.
#[actix_web::test]
async fn a_ramp_is_told_apart_and_warned_of() {
    let service = Service::start(&demo().with(|c| {
        c.memory_monitor.interval_secs = 1;
        c.memory_monitor.trend_window_secs = 60;
        c.memory_monitor.rss_warn_mb = 3000;
        c.memory_monitor.rss_critical_mb = 4000;
        c.server.max_body_bytes = 16 << 20;
        c.gun.file_write_limit_bytes = 1 << 30;
        c.log.access = false;
    }));
    // Start-up gives back a little memory in its first seconds (a steep slope over two samples
    // a second apart); what matters is what the monitor calls it, line after line.
    std::thread::sleep(Duration::from_secs(5));
    let idle: Vec<String> = service
        .log()
        .into_iter()
        .filter(|l| l.contains("[Memory Monitor] RSS:") && l.contains(" over "))
        .collect();
    assert!(idle.len() >= 2, "{idle:#?}");
    assert!(
        idle.iter().all(|l| l.contains("Trend: flat (within ")),
        "flat is said in MB, never beside a slope: {idle:#?}"
    );
    let first = service
        .log()
        .into_iter()
        .find(|l| l.contains("[Memory Monitor] RSS:"))
        .unwrap();
    assert!(
        first.contains("Trend: gathering (0s of 3s)"),
        "no slope before the readings span three intervals: {first}"
    );
    // Every second, 4 MB more held by the file source, for eight seconds.
    for i in 0..8 {
        let big = json!({"data": json!({"basic": {"name": "x".repeat(1 << 20)}}).to_string()});
        let r = put_node(
            &service.url("/gun-relay"),
            &format!("f3a9c2e1b7d4:ramp-{i}"),
            big,
            Some(ADMIN_TOKEN),
        )
        .await;
        assert_eq!(r.status, 200);
        std::thread::sleep(Duration::from_millis(1000));
    }
    let ramp = service
        .wait_for_line("(ramp)", Duration::from_secs(3))
        .expect("a line that calls it a ramp");
    let warning = service
        .wait_for_line("WARNING: RSS ramp +", Duration::from_secs(3))
        .expect("a warning that it will reach the critical threshold");
    assert!(warning.contains("MB/h, critical in ~"), "{warning}");
    let slope = metric(&service, "oip_process_resident_memory_trend_bytes_per_hour")
        .await
        .unwrap();
    assert!(slope > 1e8, "{slope} bytes/h after {ramp}");
}

#[actix_web::test]
async fn thresholds_below_the_current_rss_warn_and_alarm() {
    let warn = Service::start(&demo().with(|c| {
        c.memory_monitor.interval_secs = 1;
        c.memory_monitor.rss_warn_mb = 1;
        c.memory_monitor.rss_critical_mb = 100_000;
    }));
    let line = warn
        .wait_for_line("[Memory Monitor] WARNING: RSS", Duration::from_secs(3))
        .expect("a warning line");
    assert!(
        line.contains("WARN") && line.ends_with("over 1MB"),
        "{line}"
    );
    assert!(!warn.log().iter().any(|l| l.contains("CRITICAL")));

    let critical = Service::start(&demo().with(|c| {
        c.memory_monitor.interval_secs = 1;
        c.memory_monitor.rss_warn_mb = 1;
        c.memory_monitor.rss_critical_mb = 2;
    }));
    let line = critical
        .wait_for_line("[Memory Monitor] CRITICAL: RSS ", Duration::from_secs(3))
        .expect("a CRITICAL line");
    let mb = number_after(&line, "CRITICAL: RSS ");
    assert!(
        line.ends_with(&format!("[Memory Monitor] CRITICAL: RSS {mb}MB over 2MB")),
        "{line}"
    );
    // It reports; it takes no action: the service still answers.
    assert_eq!(get(critical.url("/health")).await.status, 200);
}

#[actix_web::test]
async fn start_up_summary_names_settings_but_never_secrets() {
    let service = Service::start(&demo().with(|c| {
        c.auth.jwt_secret = Some("sup3r-s3cret-value".into());
        c.auth.admin_token = Some("adm1n-t0ken-value".into());
    }));
    let summary = service
        .wait_for_line("starting: bind", Duration::from_secs(2))
        .expect("a start-up summary");
    assert!(
        !service.log().iter().any(|l| l.contains("no JWT secret")),
        "a secret is set: no warning"
    );
    for needle in [
        "source file",
        "records",
        "404 cache 10000 souls for 3600s",
        "record cache",
        "media",
        "JWT secret set",
        "admin token set",
    ] {
        assert!(summary.contains(needle), "{needle}: {summary}");
    }
    let all = service.log().join("\n");
    assert!(!all.contains("sup3r-s3cret-value") && !all.contains("adm1n-t0ken-value"));
}

/// Without a secret, private media can never be served: an operator learns it at start-up, in
/// the line docs/operations.md gives, not from the first owner's 403.
#[actix_web::test]
async fn a_missing_jwt_secret_is_said_at_start_up() {
    let service = Service::start(&demo().with(|c| c.auth.jwt_secret = None));
    let warning = service
        .wait_for_line("no JWT secret", Duration::from_secs(2))
        .expect("a start-up warning");
    assert!(
        warning.contains("WARN")
            && warning.ends_with(
                "no JWT secret (auth.jwt_secret / JWT_SECRET): private media will not be served"
            ),
        "{warning}"
    );
}

#[actix_web::test]
async fn open_writes_are_said_at_start_up() {
    let open = Service::start(&demo().with(|c| c.auth.open_writes = true));
    let warning = open
        .wait_for_line("auth.open_writes is on", Duration::from_secs(2))
        .expect("a start-up warning");
    assert!(warning.contains("WARN"), "{warning}");
    let summary = open
        .wait_for_line("starting: bind", Duration::from_secs(2))
        .unwrap();
    assert!(summary.ends_with("writes open to anyone"), "{summary}");
    let closed = Service::start(&demo());
    let summary = closed
        .wait_for_line("starting: bind", Duration::from_secs(2))
        .unwrap();
    assert!(summary.ends_with("writes admin token"), "{summary}");
    assert!(!closed.log().iter().any(|l| l.contains("open_writes")));
}

#[actix_web::test]
async fn the_access_log_can_be_switched_off() {
    let on = Service::start(&demo().with(|c| c.log.access = true));
    let off = Service::start(&demo().with(|c| c.log.access = false));
    for s in [&on, &off] {
        assert_eq!(get(s.url("/health")).await.status, 200);
    }
    assert!(on
        .wait_for_line("\"GET /health HTTP/1.1\" 200", Duration::from_secs(2))
        .is_some());
    std::thread::sleep(Duration::from_millis(200));
    assert!(!off.log().iter().any(|l| l.contains("GET /health")));
}

#[actix_web::test]
async fn tokens_never_reach_the_log() {
    let service = Service::start(&demo().with(|c| {
        c.auth.jwt_secret = Some("operations-test-secret".into());
    }));
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJwdWJsaWNLZXkiOiJ4In0.c2VjcmV0LXNpZ25hdHVyZQ";
    let r = send(
        client()
            .get(service.url(&format!("/api/media/demo-clip?token={token}&t=1")))
            .insert_header(("Authorization", format!("bearer {token}")))
            .insert_header(("Referer", format!("http://app.example/watch?token={token}"))),
    )
    .await;
    assert_eq!(r.status, 200);
    let unknown = get(service.url(&format!("/api/media/nothing-here?token={token}"))).await;
    assert_eq!(unknown.status, 404);
    // The name percent-encoded is the same parameter to the handler, and to the log.
    let encoded = get(service.url(&format!("/api/media/demo-clip?%74oken={token}"))).await;
    assert_eq!(encoded.status, 200);
    let line = service
        .wait_for_line("/api/media/nothing-here", Duration::from_secs(2))
        .expect("an access line");
    assert!(
        line.contains("GET /api/media/nothing-here?token=[redacted] HTTP/1.1"),
        "{line}"
    );
    let first = service
        .wait_for_line("/api/media/demo-clip", Duration::from_secs(2))
        .expect("an access line");
    assert!(first.contains("?token=[redacted]&t=1"), "{first}");
    assert!(first.contains("watch?token=[redacted]"), "{first}");
    let all = service.log().join("\n");
    assert!(!all.contains(token), "the token was logged:\n{all}");
}

#[actix_web::test]
async fn health_reports_state_uptime_and_version() {
    let service = TestApp::start(demo());
    let h = get(service.url("/health")).await;
    assert_eq!(h.status, 200);
    let body = h.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["relay"], "file");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptimeSecs"].is_u64());
}

#[actix_web::test]
async fn request_durations_are_labelled_by_route_template() {
    let (_dir, config) = with_media(1000);
    let service = TestApp::start(config);
    for id in ["big", "other-1", "other-2"] {
        get(service.url(&format!("/api/media/{id}"))).await;
    }
    let text = String::from_utf8(get(service.url("/metrics")).await.body.to_vec()).unwrap();
    assert!(text.contains(
        "oip_http_request_duration_seconds_count{route=\"/api/media/{mediaId}\",status=\"2xx\"} 1"
    ));
    assert!(text.contains(
        "oip_http_request_duration_seconds_count{route=\"/api/media/{mediaId}\",status=\"4xx\"} 2"
    ));
    assert!(!text.contains("other-1"), "raw ids never become labels");
}

/// Starts a download and reads only its head and first bytes; returns the connection and how
/// many body bytes came with the head.
fn start_download(service: &Service) -> (TcpStream, u64) {
    let mut s = open_get(service.addr, "/api/media/big");
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    let head = buf[..n]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the response head arrives first")
        + 4;
    (s, (n - head) as u64)
}

fn read_rest(mut s: TcpStream) -> u64 {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return total,
            Ok(n) => total += n as u64,
        }
    }
}

#[test]
fn sigterm_lets_a_stream_in_flight_finish_then_exits_zero() {
    const LEN: u64 = 32 << 20;
    let (_dir, config) = with_media(LEN);
    let mut service = Service::start(&config);
    let (download, first) = start_download(&service);
    std::thread::sleep(Duration::from_millis(300));
    service.signal("TERM");
    let said = service
        .wait_for_line("SIGTERM received", Duration::from_secs(2))
        .expect("the signal is acknowledged");
    assert!(
        said.ends_with(
            "SIGTERM received: no new connections; in-flight requests and streams have 10s to finish (send it again to exit now)"
        ),
        "{said}"
    );
    // New connections are no longer accepted.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        TcpStream::connect(service.addr).is_err() || service.wait_exit(Duration::ZERO).is_some(),
        "still accepting after SIGTERM"
    );
    let received = first + read_rest(download);
    assert_eq!(received, LEN, "the stream was cut short");
    let status = service
        .wait_exit(Duration::from_secs(10))
        .expect("the process exits once the stream is done");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_second_signal_exits_at_once() {
    let (_dir, config) = with_media(64 << 20);
    let mut service = Service::start(&config);
    let (_stalled, _) = start_download(&service);
    service.signal("INT");
    service
        .wait_for_line("SIGINT received", Duration::from_secs(2))
        .expect("the first signal is acknowledged");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        service.wait_exit(Duration::ZERO).is_none(),
        "the first signal waits for the stream"
    );
    let second = Instant::now();
    service.signal("INT");
    let status = service
        .wait_exit(Duration::from_secs(3))
        .expect("exits at once");
    let said = service
        .wait_for_line("received again", Duration::from_secs(2))
        .expect("the second signal is acknowledged");
    assert!(
        said.contains("WARN") && said.ends_with("SIGINT received again: exiting now"),
        "{said}"
    );
    eprintln!("exited {:?} after the second signal", second.elapsed());
    assert_eq!(
        status.code(),
        Some(1),
        "an exit of its own with status 1, not a death by signal: {status:?}"
    );
}
