//! Media routes: every range form and status, access rules, traversal attempts (in process), and
//! the promise that no client behaviour leaks a file handle (against the binary, whose
//! descriptors are its own).
//!
//! Requests are written by hand on fresh connections (`Connection: close`), so that paths reach
//! the server exactly as typed and no pooled connection skews the descriptor counts.

mod common;

use std::{
    io::Read,
    net::SocketAddr,
    path::Path,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use common::{
    open_fds, open_get, open_get_small_window, raw_request, test_config, ConfigExt, Served,
    Service, TestApp,
};
use oip_resolver::config::Config;
use serde_json::{json, Value};

const SECRET: &str = "media-test-secret";
const OWNER: &str = "02owner";
const OUTSIDE_SECRET: &str = "TOP-SECRET-OUTSIDE-THE-ROOT";

fn get(service: &impl Served, target: &str, headers: &[(&str, &str)]) -> common::Raw {
    raw_request(service.addr(), "GET", target, headers)
}

fn token(claims: Value, secret: &str) -> String {
    common::jwt(&claims, secret)
}

fn in_an_hour() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600
}

/// The byte at position `i` of the patterned test file.
fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("media");
        let add = |id: &str, content: Option<&[u8]>, manifest: Option<&str>| {
            let d = root.join(id);
            std::fs::create_dir_all(&d).unwrap();
            if let Some(c) = content {
                std::fs::write(d.join("original"), c).unwrap();
            }
            if let Some(m) = manifest {
                std::fs::write(d.join("manifest.json"), m).unwrap();
            }
        };
        let patterned: Vec<u8> = (0..1_000_000).map(pattern).collect();
        add(
            "clip",
            Some(&patterned),
            Some(r#"{"mimeType":"video/mp4","accessLevel":"public","originalName":"clip.mp4"}"#),
        );
        add(
            "song",
            Some(b"ID3 not really"),
            Some(r#"{"accessLevel":"public","originalName":"song.mp3"}"#),
        );
        add("blob", Some(b"plain bytes"), None);
        add("empty", Some(b""), None);
        add(
            "private",
            Some(b"private bytes"),
            Some(&json!({"accessLevel": "private", "userPublicKey": OWNER, "mimeType": "video/webm"}).to_string()),
        );
        add("broken", Some(b"bytes"), Some("{not json"));
        add(
            "page",
            Some(b"<script>alert(document.cookie)</script>"),
            Some(r#"{"mimeType":"text/html","accessLevel":"public"}"#),
        );
        // Not regular files: a FIFO (opening it for reading would wait for a writer), a socket
        // and a folder, each where a media file would be.
        for id in ["fifo", "socket", "folder"] {
            std::fs::create_dir_all(root.join(id)).unwrap();
        }
        assert!(std::process::Command::new("mkfifo")
            .arg(root.join("fifo/original"))
            .status()
            .unwrap()
            .success());
        // The socket file stays a socket after its listener closes.
        drop(std::os::unix::net::UnixListener::bind(root.join("socket/original")).unwrap());
        std::fs::create_dir_all(root.join("folder/original")).unwrap();
        let big = root.join("big");
        std::fs::create_dir_all(&big).unwrap();
        std::fs::File::create(big.join("original"))
            .unwrap()
            .set_len(64 << 20)
            .unwrap();

        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, OUTSIDE_SECRET).unwrap();
        std::fs::create_dir_all(root.join("escape")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("escape/original")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("escape-dir")).unwrap();
        std::fs::write(dir.path().join("original"), OUTSIDE_SECRET).unwrap();

        let web = root.join("web");
        std::fs::create_dir_all(web.join("sub")).unwrap();
        std::fs::write(web.join("poster.jpg"), b"jpeg bytes").unwrap();
        std::fs::write(web.join("sub/page.txt"), b"hello").unwrap();
        std::fs::write(web.join(".hidden"), b"dot").unwrap();
        std::os::unix::fs::symlink(&outside, web.join("link-out.txt")).unwrap();
        std::fs::write(web.join("drawing.svg"), b"<svg onload=\"alert(1)\"/>").unwrap();
        std::fs::write(web.join("page.html"), b"<script>alert(1)</script>").unwrap();
        assert!(std::process::Command::new("mkfifo")
            .arg(web.join("fifo.gif"))
            .status()
            .unwrap()
            .success());
        Self { dir }
    }

    /// The fixture's folders as the media roots, without a JWT secret.
    fn config(&self) -> Config {
        let root = self.dir.path().join("media");
        test_config().with(|c| {
            c.media.legacy_api_root = root.join("web");
            c.media.legacy_static_root = root.join("web");
            c.media.root = root;
            c.media.cache_control = "public, max-age=60".into();
        })
    }

    fn with_secret(&self) -> Config {
        self.config()
            .with(|c| c.auth.jwt_secret = Some(SECRET.into()))
    }

    fn app(&self) -> TestApp {
        TestApp::start(self.with_secret())
    }

    /// The binary, for what is counted per process (descriptors) or read from its log.
    fn service(&self) -> Service {
        Service::start(&self.with_secret())
    }
}

fn metric(service: &impl Served, name: &str) -> f64 {
    common::scrape(service.addr(), name).unwrap_or_else(|| panic!("no sample {name}"))
}

#[test]
fn every_range_form() {
    let fx = Fixture::new();
    let service = fx.app();
    let len = 1_000_000u64;
    let slice = |a: u64, b: u64| (a..=b).map(pattern).collect::<Vec<u8>>();

    let full = get(&service, "/api/media/clip", &[]);
    assert_eq!(full.status, 200);
    assert_eq!(full.body.len() as u64, len);
    assert_eq!(full.body, slice(0, len - 1));
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    assert_eq!(full.header("content-length"), Some("1000000"));

    for (range, a, b) in [
        ("bytes=0-1", 0, 1),
        ("bytes=0-", 0, len - 1),
        ("bytes=1000-1999", 1000, 1999),
        ("bytes=999000-", 999_000, len - 1),
        ("bytes=-500", len - 500, len - 1),
        ("bytes=999990-2000000", 999_990, len - 1),
    ] {
        let r = get(&service, "/api/media/clip", &[("Range", range)]);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {a}-{b}/{len}").as_str()),
            "{range}"
        );
        assert_eq!(r.body, slice(a, b), "{range}");
        assert_eq!(
            r.header("content-length"),
            Some((b - a + 1).to_string().as_str())
        );
    }

    for range in ["bytes=1000000-", "bytes=2000000-3000000", "bytes=-0"] {
        let r = get(&service, "/api/media/clip", &[("Range", range)]);
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(r.header("content-range"), Some("bytes */1000000"));
        assert_eq!(r.json()["code"], "range_not_satisfiable");
    }
    let empty = get(&service, "/api/media/empty", &[("Range", "bytes=0-")]);
    assert_eq!(empty.status, 416);
    assert_eq!(empty.header("content-range"), Some("bytes */0"));

    for range in [
        "bytes=abc",
        "bytes=5-1",
        "pages=1-2",
        "bytes=--5",
        "bytes=1-2-3",
    ] {
        let r = get(&service, "/api/media/clip", &[("Range", range)]);
        assert_eq!(r.status, 200, "malformed {range} is ignored");
        assert_eq!(r.body.len() as u64, len);
    }
    let overlapping = get(
        &service,
        "/api/media/clip",
        &[("Range", "bytes=0-100,50-150")],
    );
    assert_eq!(overlapping.status, 200, "never a wrong 206");
}

#[test]
fn several_ranges_make_a_multipart_answer() {
    let fx = Fixture::new();
    let service = fx.app();
    let r = get(
        &service,
        "/api/media/clip",
        &[("Range", "bytes=500-509, 0-9")],
    );
    assert_eq!(r.status, 206);
    let ct = r.header("content-type").unwrap().to_string();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .expect("multipart content type");
    assert_eq!(
        r.header("content-length").unwrap(),
        r.body.len().to_string()
    );
    let text = r.body.clone();
    let delimiter = format!("--{boundary}");
    let parts: Vec<&[u8]> = split(&text, delimiter.as_bytes());
    // Two parts, then the closing "--".
    let ranges: Vec<(String, Vec<u8>)> = parts
        .iter()
        .filter(|p| p.starts_with(b"\r\nContent-Type"))
        .map(|p| {
            let end = p.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            let head = String::from_utf8_lossy(&p[..end]).to_string();
            let cr = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Range: "))
                .unwrap()
                .to_string();
            let mut body = p[end + 4..].to_vec();
            if body.ends_with(b"\r\n") {
                body.truncate(body.len() - 2);
            }
            (cr, body)
        })
        .collect();
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    assert_eq!(ranges[0].0, "bytes 0-9/1000000");
    assert_eq!(ranges[0].1, (0..10).map(pattern).collect::<Vec<_>>());
    assert_eq!(ranges[1].0, "bytes 500-509/1000000");
    assert_eq!(ranges[1].1, (500..510).map(pattern).collect::<Vec<_>>());
    assert!(text.ends_with(format!("--{boundary}--\r\n").as_bytes()));
}

fn split<'a>(haystack: &'a [u8], needle: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = haystack;
    while let Some(i) = rest.windows(needle.len()).position(|w| w == needle) {
        out.push(&rest[..i]);
        rest = &rest[i + needle.len()..];
    }
    out.push(rest);
    out
}

#[test]
fn validators_conditionals_and_head() {
    let fx = Fixture::new();
    let service = fx.app();
    let first = get(&service, "/api/media/clip", &[]);
    let etag = first.header("etag").unwrap().to_string();
    let last_modified = first.header("last-modified").unwrap().to_string();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong: {etag}"
    );
    assert_eq!(first.header("cache-control"), Some("public, max-age=60"));
    assert_eq!(first.header("content-type"), Some("video/mp4"));

    let not_modified = get(&service, "/api/media/clip", &[("If-None-Match", &etag)]);
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
    let other = get(
        &service,
        "/api/media/clip",
        &[("If-None-Match", "\"nope\"")],
    );
    assert_eq!(other.status, 200);
    let since = get(
        &service,
        "/api/media/clip",
        &[("If-Modified-Since", &last_modified)],
    );
    assert_eq!(since.status, 304);
    let old = get(
        &service,
        "/api/media/clip",
        &[("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT")],
    );
    assert_eq!(old.status, 200);

    let matching = get(
        &service,
        "/api/media/clip",
        &[("Range", "bytes=0-1"), ("If-Range", &etag)],
    );
    assert_eq!(matching.status, 206);
    let by_date = get(
        &service,
        "/api/media/clip",
        &[("Range", "bytes=0-1"), ("If-Range", &last_modified)],
    );
    assert_eq!(by_date.status, 206);
    let changed = get(
        &service,
        "/api/media/clip",
        &[("Range", "bytes=0-1"), ("If-Range", "\"an-older-version\"")],
    );
    assert_eq!(
        changed.status, 200,
        "If-Range mismatch sends the whole file"
    );
    assert_eq!(changed.body.len(), 1_000_000);
    let if_match = get(&service, "/api/media/clip", &[("If-Match", "\"other\"")]);
    assert_eq!(if_match.status, 412);
    assert_eq!(if_match.json()["code"], "precondition_failed");

    let head = raw_request(service.addr, "HEAD", "/api/media/clip", &[]);
    assert_eq!(head.status, 200);
    for h in [
        "content-length",
        "etag",
        "last-modified",
        "accept-ranges",
        "content-type",
        "cache-control",
    ] {
        assert_eq!(head.header(h), first.header(h), "{h}");
    }
    let head_range = raw_request(
        service.addr,
        "HEAD",
        "/api/media/clip",
        &[("Range", "bytes=0-1")],
    );
    assert_eq!(head_range.status, 206);
    assert_eq!(head_range.header("content-length"), Some("2"));
    let legacy_head = raw_request(service.addr, "HEAD", "/media?id=poster.jpg", &[]);
    assert_eq!(legacy_head.status, 200);
    assert_eq!(legacy_head.header("content-length"), Some("10"));
}

#[test]
fn content_type_and_no_compression() {
    let fx = Fixture::new();
    let service = fx.app();
    let gz = [("Accept-Encoding", "gzip, br")];
    let song = get(&service, "/api/media/song", &gz);
    assert_eq!(song.header("content-type"), Some("audio/mpeg"));
    assert_eq!(song.header("content-encoding"), None);
    let blob = get(&service, "/api/media/blob", &gz);
    assert_eq!(
        blob.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(blob.body, b"plain bytes");
    let poster = get(&service, "/media?id=poster.jpg", &gz);
    assert_eq!(poster.header("content-type"), Some("image/jpeg"));
    let page = get(&service, "/media?id=sub/page.txt", &gz);
    assert_eq!(page.status, 200);
    assert_eq!(page.body, b"hello");
    assert_eq!(page.header("content-encoding"), None);
    let info = get(&service, "/api/media/clip/info", &[]);
    assert_eq!(info.status, 200);
    assert_eq!(info.json()["originalName"], "clip.mp4");
    assert_eq!(info.json()["seeding"], false, "this service seeds nothing");
    assert!(info.json()["seedingInfo"].is_null() && info.json().get("seedingInfo").is_some());
    let no_manifest = get(&service, "/api/media/blob/info", &[]);
    assert_eq!(no_manifest.status, 404);
    assert_eq!(no_manifest.json()["code"], "manifest_not_found");
    let missing = get(&service, "/api/media/nothing-here", &[]);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["code"], "media_not_found");
}

#[test]
fn private_media_needs_the_owners_token() {
    let fx = Fixture::new();
    let service = fx.app();
    let owner = token(json!({"publicKey": OWNER, "exp": in_an_hour()}), SECRET);
    let publisher = token(json!({"publisherPubKey": OWNER}), SECRET);
    let stranger = token(
        json!({"publicKey": "02stranger", "exp": in_an_hour()}),
        SECRET,
    );
    let expired = token(json!({"publicKey": OWNER, "exp": 1_000_000}), SECRET);
    let forged = token(json!({"publicKey": OWNER}), "not-the-secret");
    let bearer = |t: &str| format!("Bearer {t}");

    assert_eq!(get(&service, "/api/media/clip", &[]).status, 200, "public");
    let mine = get(
        &service,
        "/api/media/private",
        &[("Authorization", &bearer(&owner))],
    );
    assert_eq!(mine.status, 200);
    assert_eq!(mine.body, b"private bytes");
    assert_eq!(mine.header("content-type"), Some("video/webm"));
    assert_eq!(
        get(
            &service,
            "/api/media/private",
            &[("Authorization", &bearer(&publisher))]
        )
        .status,
        200
    );
    assert_eq!(
        get(&service, &format!("/api/media/private?token={owner}"), &[]).status,
        200
    );
    let info = get(
        &service,
        "/api/media/private/info",
        &[("Authorization", &bearer(&owner))],
    );
    assert_eq!(info.json()["userPublicKey"], OWNER);

    let theirs = get(
        &service,
        "/api/media/private",
        &[("Authorization", &bearer(&stranger))],
    );
    assert_eq!(theirs.status, 403);
    assert_eq!(theirs.json()["code"], "forbidden");
    for (what, t) in [
        ("expired", expired),
        ("forged", forged),
        ("garbage", "abc.def.ghi".into()),
    ] {
        let r = get(
            &service,
            "/api/media/private",
            &[("Authorization", &bearer(&t))],
        );
        assert_eq!(r.status, 401, "{what}");
        assert_eq!(r.json()["code"], "unauthorized", "{what}");
        assert!(!String::from_utf8_lossy(&r.body).contains("private bytes"));
    }
    let anonymous = get(&service, "/api/media/private", &[]);
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    assert_eq!(get(&service, "/api/media/private/info", &[]).status, 401);
    let broken = get(
        &service,
        "/api/media/broken",
        &[("Authorization", &bearer(&owner))],
    );
    assert_eq!(
        broken.status, 403,
        "an unreadable manifest is private to no one"
    );
}

#[test]
fn without_a_secret_private_media_is_never_served() {
    let fx = Fixture::new();
    let service = Service::start(&fx.config());
    let warning = service
        .wait_for_line("private media will not be served", Duration::from_secs(2))
        .expect("a start-up warning");
    assert!(warning.contains("WARN"), "{warning}");
    let owner = token(json!({"publicKey": OWNER}), SECRET);
    let r = get(
        &service,
        "/api/media/private",
        &[("Authorization", &format!("Bearer {owner}"))],
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], "private_media_disabled");
    assert_eq!(get(&service, "/api/media/clip", &[]).status, 200);
}

#[test]
fn traversal_attempts_are_refused() {
    let fx = Fixture::new();
    let service = fx.app();
    let tmp = fx.dir.path().display().to_string();
    let attempts = [
        "/api/media/..",
        "/api/media/.",
        "/api/media/%2e%2e",
        "/api/media/..%2f..%2foutside.txt",
        "/api/media/..%2F..%2Foriginal",
        "/api/media/a%00b",
        "/api/media/a%5c..%5c..",
        "/api/media/%2fetc%2fpasswd",
        "/api/media/escape",
        "/api/media/escape-dir",
        "/api/media/..%252f..%252foriginal",
        "/api/media/../../outside.txt",
        "/media?id=../outside.txt",
        "/media?id=%2e%2e/outside.txt",
        "/media?id=/etc/passwd",
        "/media?id=sub/../../outside.txt",
        "/media?id=sub%2f..%2f..%2foutside.txt",
        "/media?id=..%5coutside.txt",
        "/media?id=poster.jpg%00.txt",
        "/media?id=sub//page.txt",
        "/media?id=.hidden",
        "/media?id=link-out.txt",
        "/media?id=",
        "/media?id=%c0%ae%c0%ae/outside.txt",
    ];
    for target in attempts {
        let r = get(&service, target, &[]);
        assert!(
            matches!(r.status, 400 | 404),
            "{target}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        let body = String::from_utf8_lossy(&r.body);
        assert!(!body.contains(OUTSIDE_SECRET), "{target} leaked the file");
        assert!(!body.contains(&tmp), "{target} leaked a folder: {body}");
        if !r.body.is_empty() {
            assert!(r.json()["code"].is_string(), "{target}: {body}");
        }
    }
}

/// Opens a stream, reads its head and a little of the body, and goes away.
fn abort_mid_body(addr: SocketAddr, target: &str) {
    let mut s = open_get(addr, target);
    let mut buf = [0u8; 32 * 1024];
    let mut got = 0;
    while got < 16 * 1024 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    drop(s);
}

#[test]
fn disconnects_mid_body_leak_nothing() {
    let fx = Fixture::new();
    let service = fx.service();
    let pid = service.pid();
    // One complete request first, so every lazily opened descriptor exists at the baseline,
    // and a HEAD of the file under test: the open-file cache keeps its one descriptor.
    assert_eq!(get(&service, "/api/media/song", &[]).status, 200);
    assert_eq!(
        raw_request(service.addr, "HEAD", "/api/media/big", &[]).status,
        200
    );
    std::thread::sleep(Duration::from_millis(200));
    let baseline = open_fds(pid);
    let mut peak = baseline;
    for i in 0..500 {
        abort_mid_body(service.addr, "/api/media/big");
        if i % 50 == 0 {
            peak = peak.max(open_fds(pid));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    let (mut fds, mut active) = (usize::MAX, f64::MAX);
    while Instant::now() < deadline {
        fds = open_fds(pid);
        active = metric(&service, "oip_media_active_streams");
        if fds <= baseline && active == 0.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("fds: baseline {baseline}, peak {peak}, after {fds}");
    assert!(fds <= baseline, "fds {fds} > baseline {baseline}");
    assert_eq!(active, 0.0);
    let aborted = metric(&service, "oip_media_streams_total{outcome=\"aborted\"}");
    assert_eq!(aborted, 500.0);
}

#[test]
fn streams_report_how_they_ended_and_what_they_sent() {
    let fx = Fixture::new();
    let service = fx.app();
    assert_eq!(get(&service, "/api/media/clip", &[]).body.len(), 1_000_000);
    assert_eq!(
        get(&service, "/api/media/clip", &[("Range", "bytes=0-1")])
            .body
            .len(),
        2
    );
    assert_eq!(
        raw_request(service.addr, "HEAD", "/api/media/clip", &[]).status,
        200
    );
    assert_eq!(
        metric(&service, "oip_media_streams_total{outcome=\"complete\"}"),
        2.0,
        "HEAD opens no stream"
    );
    assert_eq!(metric(&service, "oip_media_bytes_sent_total"), 1_000_002.0);

    // A file that shrinks while it is being sent ends its stream in error, and the connection
    // is closed short rather than padded.
    let mut s = open_get(service.addr, "/api/media/big");
    let mut buf = vec![0u8; 4096];
    let _ = s.read(&mut buf).unwrap();
    std::fs::File::options()
        .write(true)
        .open(fx.dir.path().join("media/big/original"))
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut total = 0u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n as u64,
        }
    }
    assert!(total < 64 << 20, "the whole announced length arrived");
    let deadline = Instant::now() + Duration::from_secs(2);
    while metric(&service, "oip_media_streams_total{outcome=\"error\"}") < 1.0 {
        assert!(Instant::now() < deadline, "no stream ended in error");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(metric(&service, "oip_media_active_streams"), 0.0);
}

/// Pages not in the page cache, reads that would block, under concurrent load: a file whose
/// pages are evicted again and again while eight clients read it whole. Every body arrives
/// whole, byte for byte: a read that cannot be served without waiting goes to the media threads,
/// and never ends a body early.
#[test]
fn bodies_arrive_whole_while_their_pages_are_evicted() {
    let fx = Fixture::new();
    let service = TestApp::start(fx.with_secret().with(|c| c.media.open_cache_secs = 0));
    let path = fx.dir.path().join("media/clip/original");
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let evictions = std::sync::Arc::new(AtomicU64::new(0));
    let evictor = {
        let (stop, evictions, path) = (stop.clone(), evictions.clone(), path.clone());
        std::thread::spawn(move || {
            let file = std::fs::File::open(path).unwrap();
            // Written just now, its pages are dirty, and dirty pages are not evicted.
            file.sync_all().unwrap();
            while !stop.load(Relaxed) {
                let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
                evictions.fetch_add(1, Relaxed);
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    // On two busy cores the evictor may start late: the readers begin once it runs, and go on
    // until it has evicted the pages many times, however long that takes.
    let deadline = Instant::now() + Duration::from_secs(60);
    while evictions.load(Relaxed) == 0 {
        assert!(Instant::now() < deadline, "the evictor never ran");
        std::thread::sleep(Duration::from_millis(1));
    }
    let expected: Vec<u8> = (0..1_000_000).map(pattern).collect();
    let mut rounds = 0;
    while rounds < 3 || evictions.load(Relaxed) < 20 {
        assert!(Instant::now() < deadline, "the evictor fell behind");
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let addr = service.addr;
                std::thread::spawn(move || raw_request(addr, "GET", "/api/media/clip", &[]))
            })
            .collect();
        for reader in readers {
            let r = reader.join().unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(r.body.len(), expected.len(), "a body ended early");
            assert!(r.body == expected, "a body arrived wrong");
        }
        rounds += 1;
    }
    stop.store(true, Relaxed);
    evictor.join().unwrap();
    assert_eq!(
        metric(&service, "oip_media_streams_total{outcome=\"error\"}"),
        0.0
    );
}

#[test]
fn a_stalled_reader_is_cut_off() {
    let fx = Fixture::new();
    let service = Service::start(&fx.with_secret().with(|c| c.media.stall_timeout_secs = 1));
    let mut s = open_get(service.addr, "/api/media/big");
    let mut buf = vec![0u8; 64 * 1024];
    let _ = s.read(&mut buf).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        metric(&service, "oip_media_active_streams"),
        1.0,
        "streaming while we pause"
    );

    let stalled_at = Instant::now();
    let mut cut = false;
    while stalled_at.elapsed() < Duration::from_secs(5) {
        if metric(&service, "oip_media_active_streams") == 0.0 {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        cut,
        "the stream was still open 5 s into a 1 s stall timeout"
    );
    eprintln!(
        "cut off {:?} after the reader stopped",
        stalled_at.elapsed()
    );
    assert_eq!(
        metric(&service, "oip_media_streams_total{outcome=\"aborted\"}"),
        1.0
    );

    // What the socket still holds drains, then the connection is closed: the body ends short.
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut total = 0u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n as u64,
        }
    }
    assert!(total < 64 << 20, "the whole 64 MB arrived: nothing was cut");
}

/// A player reading at its own pace keeps the socket full most of the time: every write waits,
/// but each wait ends in progress. Only a wait with no progress for the whole stall timeout may
/// cut it; this reader takes about three stall timeouts to read the file and must get all of it.
#[test]
fn a_slow_steady_reader_gets_the_whole_body_past_the_stall_timeout() {
    const LEN: u64 = 32 << 20;
    const PER_TICK: usize = 1 << 20;
    let fx = Fixture::new();
    std::fs::write(
        fx.dir.path().join("media/big/original"),
        (0..LEN).map(pattern).collect::<Vec<u8>>(),
    )
    .unwrap();
    let service = Service::start(&fx.with_secret().with(|c| c.media.stall_timeout_secs = 1));
    let mut s = open_get(service.addr, "/api/media/big");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut received = Vec::with_capacity(LEN as usize + 1024);
    let mut buf = vec![0u8; 256 * 1024];
    'reading: loop {
        let mut this_tick = 0;
        while this_tick < PER_TICK {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break 'reading,
                Ok(n) => {
                    received.extend_from_slice(&buf[..n]);
                    this_tick += n;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let elapsed = started.elapsed();
    let head = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    let body = &received[head..];
    eprintln!(
        "read {} of {LEN} body bytes in {elapsed:?} with a 1 s stall timeout",
        body.len()
    );
    assert_eq!(body.len() as u64, LEN, "the reader was cut off");
    assert!(
        body.iter()
            .enumerate()
            .all(|(i, b)| *b == pattern(i as u64)),
        "the body arrived intact"
    );
    assert_eq!(
        metric(&service, "oip_media_streams_total{outcome=\"complete\"}"),
        1.0
    );
}

#[test]
fn answers_are_safe_to_show_in_a_browser() {
    let fx = Fixture::new();
    let service = fx.app();
    for target in [
        "/api/media/clip",
        "/api/media/nothing",
        "/health",
        "/nowhere",
    ] {
        let r = get(&service, target, &[]);
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{target}"
        );
    }
    let video = get(&service, "/api/media/clip", &[]);
    assert_eq!(video.header("content-security-policy"), None);
    assert_eq!(
        video.header("content-disposition"),
        None,
        "video plays inline"
    );
    assert_eq!(video.header("cache-control"), Some("public, max-age=60"));
    assert!(
        !video
            .header("vary")
            .unwrap_or_default()
            .contains("Authorization"),
        "a public answer does not vary with the token"
    );
    for target in [
        "/api/media/page",
        "/media?id=drawing.svg",
        "/media?id=page.html",
    ] {
        let r = get(&service, target, &[]);
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(
            r.header("content-security-policy"),
            Some("sandbox"),
            "{target}"
        );
        assert_eq!(
            r.header("content-disposition"),
            Some("attachment"),
            "{target}"
        );
    }
    let owner = token(json!({"publicKey": OWNER, "exp": in_an_hour()}), SECRET);
    let auth = format!("Bearer {owner}");
    for target in ["/api/media/private", "/api/media/private/info"] {
        let r = get(&service, target, &[("Authorization", &auth)]);
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(
            r.header("cache-control"),
            Some("private, max-age=60"),
            "{target}"
        );
        assert!(
            r.header("vary")
                .unwrap_or_default()
                .contains("Authorization"),
            "{target}"
        );
    }
    let public_info = get(&service, "/api/media/clip/info", &[]);
    assert_eq!(
        public_info.header("cache-control"),
        Some("public, max-age=60")
    );
}

/// A FIFO, a socket or a folder where a file should be reads like a missing file, and never
/// holds a media thread: with more such requests at once than the actor has threads, a normal
/// request is still answered.
#[test]
fn only_regular_files_are_served_and_nothing_blocks() {
    let fx = Fixture::new();
    let service = fx.app();
    let missing = get(&service, "/api/media/nothing", &[]);
    let odd: Vec<_> = (0..16)
        .map(|i| {
            let addr = service.addr;
            let target = [
                "/api/media/fifo",
                "/api/media/socket",
                "/api/media/folder",
                "/media?id=fifo.gif",
            ][i % 4];
            std::thread::spawn(move || (target, raw_request(addr, "GET", target, &[])))
        })
        .collect();
    for handle in odd {
        let (target, r) = handle.join().unwrap();
        assert_eq!(r.status, 404, "{target}");
        if target.starts_with("/api/media/") {
            assert_eq!(r.body, missing.body, "{target} reads like a missing file");
        }
    }
    assert_eq!(get(&service, "/api/media/clip", &[]).status, 200);
}

#[test]
fn outside_the_root_reads_exactly_like_missing() {
    let fx = Fixture::new();
    let service = fx.app();
    for (outside, missing) in [
        ("/api/media/escape", "/api/media/no-such-id"),
        ("/media?id=link-out.txt", "/media?id=no-such-file.txt"),
    ] {
        let (a, b) = (get(&service, outside, &[]), get(&service, missing, &[]));
        assert_eq!((a.status, &a.body), (b.status, &b.body), "{outside}");
    }
    let hidden = get(&service, "/api/media/.hidden", &[]);
    assert_eq!(hidden.status, 400);
    assert_eq!(hidden.json()["code"], "invalid_media_id");
}

/// A client with write access to the media folder swaps a file for a symlink to a secret
/// outside the root and back, as fast as it can, while it asks for it: what was opened is
/// checked, not the path, so the secret is never served (the open-file cache off, so that
/// every request opens).
#[test]
fn a_file_swapped_for_a_symlink_mid_request_never_serves_what_lies_outside() {
    let fx = Fixture::new();
    let service = TestApp::start(fx.with_secret().with(|c| c.media.open_cache_secs = 0));
    let dir = fx.dir.path().join("media/clip");
    let (file, link, real) = (
        dir.join("original"),
        dir.join("swap-link"),
        dir.join("swap-real"),
    );
    std::fs::copy(&file, &real).unwrap();
    std::os::unix::fs::symlink(fx.dir.path().join("outside.txt"), &link).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let swaps = (
                std::fs::hard_link(&link, dir.join("l2")),
                std::fs::hard_link(&real, dir.join("r2")),
            );
            assert!(swaps.0.is_ok() && swaps.1.is_ok());
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let from = if n % 2 == 0 { "l2" } else { "r2" };
                // A rename replaces the file atomically: between any check and any open.
                std::fs::rename(dir.join(from), &file).unwrap();
                std::fs::hard_link(&file, dir.join(from)).unwrap();
                n += 1;
            }
            n
        })
    };
    let (mut served, mut leaked) = (0, 0);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let r = get(&service, "/api/media/clip", &[]);
        served += usize::from(r.status == 200);
        leaked += usize::from(
            r.body
                .windows(OUTSIDE_SECRET.len())
                .any(|w| w == OUTSIDE_SECRET.as_bytes()),
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert_eq!(
        leaked, 0,
        "the secret was served ({served} served, {swaps} swaps)"
    );
    assert!(served > 0 && swaps > 100, "{served} served, {swaps} swaps");
}

/// Each id is its own folder's: a link from one id's folder (or the folder itself) into another
/// id's serves nothing, so a public manifest cannot front another id's private file.
#[test]
fn an_id_serves_only_what_lies_in_its_own_folder() {
    let fx = Fixture::new();
    let root = fx.dir.path().join("media");
    let fronts = root.join("front");
    std::fs::create_dir_all(&fronts).unwrap();
    std::fs::write(fronts.join("manifest.json"), r#"{"accessLevel":"public"}"#).unwrap();
    std::os::unix::fs::symlink(root.join("private/original"), fronts.join("original")).unwrap();
    std::os::unix::fs::symlink(root.join("private"), root.join("alias")).unwrap();
    let service = fx.app();
    // The alias's manifest is the private one's, not its own: private (401) before anything.
    for (id, status) in [("front", 404), ("alias", 401)] {
        let r = get(&service, &format!("/api/media/{id}"), &[]);
        assert_eq!(
            r.status,
            status,
            "{id}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(!r.body.windows(13).any(|w| w == b"private bytes"));
    }
    assert_eq!(get(&service, "/api/media/private", &[]).status, 401);
}

/// An answer that needed a token stays out of shared caches in every form: its 304 too carries
/// `Cache-Control: private` and `Vary: Authorization`, or a shared cache could keep the
/// revalidation as public.
#[test]
fn a_private_revalidation_is_private_too() {
    let fx = Fixture::new();
    let service = fx.app();
    let owner = token(json!({"publicKey": OWNER, "exp": in_an_hour()}), SECRET);
    let auth = format!("Bearer {owner}");
    let first = get(&service, "/api/media/private", &[("Authorization", &auth)]);
    let etag = first.header("etag").unwrap().to_string();
    let revalidated = get(
        &service,
        "/api/media/private",
        &[("Authorization", &auth), ("If-None-Match", &etag)],
    );
    assert_eq!(revalidated.status, 304);
    assert!(
        revalidated
            .header("cache-control")
            .is_some_and(|c| c.starts_with("private")),
        "{:?}",
        revalidated.headers
    );
    assert!(revalidated
        .header("vary")
        .is_some_and(|v| v.contains("Authorization")));
}

/// A manifest switched to private while its file is in the open-file cache is obeyed once the
/// cache's `media.open_cache_secs` has passed, as the README says.
#[test]
fn a_manifest_made_private_while_cached_is_obeyed_within_the_cache_time() {
    let fx = Fixture::new();
    let service = TestApp::start(fx.with_secret().with(|c| c.media.open_cache_secs = 1));
    assert_eq!(get(&service, "/api/media/clip", &[]).status, 200);
    std::fs::write(
        fx.dir.path().join("media/clip/manifest.json"),
        json!({"accessLevel": "private", "userPublicKey": OWNER}).to_string(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let r = get(&service, "/api/media/clip", &[]);
    assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
}

/// A manifest that cannot be read as the service's own (a link out of the root, a folder, a
/// FIFO) makes its media private, never public by accident.
#[test]
fn a_manifest_that_is_not_ours_to_read_makes_its_media_private() {
    let fx = Fixture::new();
    let root = fx.dir.path().join("media");
    for (id, make) in [("m-link", 0), ("m-folder", 1), ("m-fifo", 2)] {
        let d = root.join(id);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("original"), b"bytes").unwrap();
        let manifest = d.join("manifest.json");
        match make {
            0 => {
                let public = fx.dir.path().join("public-manifest.json");
                std::fs::write(&public, r#"{"accessLevel":"public"}"#).unwrap();
                std::os::unix::fs::symlink(&public, &manifest).unwrap();
            }
            1 => std::fs::create_dir(&manifest).unwrap(),
            _ => assert!(std::process::Command::new("mkfifo")
                .arg(&manifest)
                .status()
                .unwrap()
                .success()),
        }
    }
    let service = fx.app();
    for id in ["m-link", "m-folder", "m-fifo"] {
        let r = get(&service, &format!("/api/media/{id}"), &[]);
        assert_eq!(r.status, 401, "{id}: {}", String::from_utf8_lossy(&r.body));
    }
}

/// A GET on a fresh connection whose head has arrived, with the bytes read so far.
fn started_get(addr: SocketAddr, target: &str) -> (std::net::TcpStream, Vec<u8>) {
    let mut s = open_get(addr, target);
    let mut first = vec![0u8; 1024];
    let n = s.read(&mut first).unwrap();
    first.truncate(n);
    (s, first)
}

/// Reads the rest of a response started by `started_get`; returns its body's length.
fn finish_get((mut s, mut all): (std::net::TcpStream, Vec<u8>)) -> usize {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.read_to_end(&mut all);
    let head = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    all.len() - head
}

#[test]
fn past_the_stream_cap_a_new_stream_is_503_and_open_ones_go_on() {
    let fx = Fixture::new();
    let service = TestApp::start(fx.with_secret().with(|c| c.media.max_streams = 2));
    // 64 MB each: more than the socket buffers take, so both streams stay open.
    let open: Vec<_> = (0..2)
        .map(|_| started_get(service.addr, "/api/media/big"))
        .collect();
    let refused = get(&service, "/api/media/clip", &[]);
    assert_eq!(refused.status, 503);
    assert_eq!(refused.json()["code"], "too_many_streams");
    assert_eq!(refused.header("retry-after"), Some("5"));
    assert_eq!(
        raw_request(service.addr, "HEAD", "/api/media/clip", &[]).status,
        200,
        "HEAD opens no stream"
    );
    for stream in open {
        assert_eq!(finish_get(stream), 64 << 20, "an open stream is unaffected");
    }
    assert_eq!(get(&service, "/api/media/clip", &[]).status, 200);
    assert_eq!(
        metric(&service, "oip_media_streams_total{outcome=\"complete\"}"),
        3.0
    );
}

/// One client cannot take every stream: past `media.max_streams_per_client` open ones it gets
/// 429, and others are served. Behind a trusted proxy the client is its `X-Forwarded-For`.
#[test]
fn past_its_own_stream_cap_a_client_waits_and_others_do_not() {
    let fx = Fixture::new();
    let service = TestApp::start(fx.with_secret().with(|c| {
        c.media.max_streams_per_client = 2;
        c.server.trusted_proxies = vec!["127.0.0.0/8".into()];
    }));
    let started = |client: &str| {
        let mut s = std::net::TcpStream::connect(service.addr).unwrap();
        let request = format!(
            "GET /api/media/big HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6, {client}\r\nConnection: close\r\n\r\n"
        );
        std::io::Write::write_all(&mut s, request.as_bytes()).unwrap();
        let mut first = vec![0u8; 1024];
        let n = s.read(&mut first).unwrap();
        first.truncate(n);
        (s, first)
    };
    let hers: Vec<_> = (0..2).map(|_| started("203.0.113.1")).collect();
    assert!(hers
        .iter()
        .all(|(_, head)| head.starts_with(b"HTTP/1.1 200")));
    let (_, refused) = started("203.0.113.1");
    let refused = String::from_utf8_lossy(&refused).to_string();
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(
        refused.contains("too_many_streams_for_client")
            && refused.to_ascii_lowercase().contains("retry-after: 5")
    );
    let (_, other) = started("203.0.113.2");
    assert!(
        other.starts_with(b"HTTP/1.1 200"),
        "another client is served"
    );
    drop(hers);
    std::thread::sleep(Duration::from_millis(300));
    let (_, again) = started("203.0.113.1");
    assert!(
        again.starts_with(b"HTTP/1.1 200"),
        "hers ended: she may again"
    );
}

#[test]
fn past_the_connection_cap_new_connections_wait() {
    let fx = Fixture::new();
    let service = TestApp::start(fx.with_secret().with(|c| {
        c.server.workers = 1;
        c.server.max_connections = 2;
    }));
    let held: Vec<_> = (0..2)
        .map(|_| started_get(service.addr, "/api/media/big"))
        .collect();
    let mut third = open_get(service.addr, "/health");
    third
        .set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    let mut buf = [0u8; 1024];
    assert!(
        third.read(&mut buf).is_err(),
        "a third connection is not served while two are open"
    );
    drop(held);
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let n = third.read(&mut buf).expect("served once one closed");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
}

/// Readers that ask for a file and never read (paused players) cost a small, bounded amount of
/// memory each, and it comes back when they go.
#[test]
fn stalled_readers_cost_little_and_give_it_back() {
    // 64 MB: more than loopback's socket buffers take, so every one of them stalls.
    stalled_readers_cost_little("/api/media/big", open_get);
}

/// The same for a small file (an exercise GIF's size) read by a player over a slow link: what the
/// service hands the connection at once is what a reader that stops can pin. Reading such a
/// file in one piece (faster under wrk on loopback) pinned 109 KB per reader here.
#[test]
fn stalled_readers_of_small_files_cost_little_too() {
    stalled_readers_cost_little("/api/media/gif", open_get_small_window);
}

fn stalled_readers_cost_little(target: &str, open: fn(SocketAddr, &str) -> std::net::TcpStream) {
    const READERS: usize = 400;
    let fx = Fixture::new();
    let gif: Vec<u8> = (0..100_000).map(pattern).collect();
    std::fs::create_dir_all(fx.dir.path().join("media/gif")).unwrap();
    std::fs::write(fx.dir.path().join("media/gif/original"), gif).unwrap();
    let service = Service::start(&fx.with_secret().with(|c| c.media.stall_timeout_secs = 600));
    let pid = service.pid();
    assert_eq!(get(&service, "/api/media/song", &[]).status, 200);
    assert_eq!(get(&service, target, &[("Range", "bytes=0-0")]).status, 206);
    std::thread::sleep(Duration::from_millis(300));
    let idle_kb = common::rss_kb(pid);
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let mut s = open(service.addr, target);
            let mut head = [0u8; 4096];
            let _ = s.read(&mut head).unwrap();
            s
        })
        .collect();
    // Each stream either stalls or ends complete, its last chunk handed to the connection (in
    // the socket's buffers, or pinned in the connection's own when the socket is full); the
    // gauge settles once each has done one or the other. Either way the reader holds its
    // connection, and the cost is counted per reader.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut settled = f64::MAX;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = metric(&service, "oip_media_active_streams");
        if now == settled {
            break;
        }
        assert!(Instant::now() < deadline, "streams never settled");
        settled = now;
    }
    let stalled_kb = common::rss_kb(pid);
    let per_stream = (stalled_kb.saturating_sub(idle_kb)) as f64 / READERS as f64;
    eprintln!("{target}: RSS idle {idle_kb} KB, {READERS} readers stopped ({settled} streams stalled) {stalled_kb} KB: {per_stream:.0} KB each");
    assert!(per_stream <= 64.0, "{per_stream:.0} KB per stalled stream");
    drop(readers);
    let gone = Instant::now();
    loop {
        let now_kb = common::rss_kb(pid);
        if metric(&service, "oip_media_active_streams") == 0.0 && now_kb <= idle_kb + 4096 {
            eprintln!("RSS {now_kb} KB {:?} after they left", gone.elapsed());
            break;
        }
        assert!(
            gone.elapsed() < Duration::from_secs(10),
            "RSS {now_kb} KB 10 s after they left (idle {idle_kb} KB)"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn bad_media_input_is_a_json_400() {
    let fx = Fixture::new();
    let service = fx.app();
    let r = get(&service, "/media", &[]);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "missing_parameter");
    let r = raw_request(
        service.addr,
        "POST",
        "/api/media/clip",
        &[("Content-Length", "0")],
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["code"], "method_not_allowed");
    let r = get(&service, "/api/media/bad%20id", &[]);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "invalid_media_id");
    let r = get(&service, "/media?id=sub/../../outside.txt", &[]);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "invalid_path");
    assert!(Path::new(&fx.dir.path().join("media/clip/original")).exists());
}

/// The open-file cache answers a file asked again from what it found when it opened it, for
/// `media.open_cache_secs`: a replaced file is seen once that has passed, access is checked on
/// every request all the same, and it keeps at most `media.open_cache_entries` descriptors.
#[test]
fn the_open_file_cache_is_bounded_and_checks_access_every_time() {
    let fx = Fixture::new();
    let root = fx.dir.path().join("media");
    for i in 0..40 {
        std::fs::create_dir_all(root.join(format!("many-{i}"))).unwrap();
        std::fs::write(root.join(format!("many-{i}/original")), b"one of many").unwrap();
    }
    let service = Service::start(&fx.with_secret().with(|c| {
        c.media.open_cache_secs = 1;
        c.media.open_cache_entries = 8;
    }));
    let owner = token(json!({"publicKey": OWNER}), SECRET);
    let bearer = format!("Bearer {owner}");
    assert_eq!(
        get(
            &service,
            "/api/media/private",
            &[("Authorization", &bearer)]
        )
        .status,
        200
    );
    assert_eq!(
        get(&service, "/api/media/private", &[]).status,
        401,
        "cached, and still refused without a token"
    );

    // Written in place: the cached handle sees the new length at once, and it is opened again.
    assert_eq!(
        get(&service, "/api/media/song", &[]).body,
        b"ID3 not really"[..]
    );
    std::fs::write(root.join("song/original"), b"a new song").unwrap();
    assert_eq!(
        get(&service, "/api/media/song", &[]).body,
        b"a new song"[..]
    );
    // Replaced by a rename (how deploy tools write): the cached handle holds the old file
    // until `open_cache_secs` has passed.
    std::fs::write(root.join("song/next"), b"the third song").unwrap();
    std::fs::rename(root.join("song/next"), root.join("song/original")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while get(&service, "/api/media/song", &[]).body != b"the third song"[..] {
        assert!(
            Instant::now() < deadline,
            "the replaced file was never served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let baseline = open_fds(service.pid());
    for i in 0..40 {
        let r = get(&service, &format!("/api/media/many-{i}"), &[]);
        assert_eq!(r.status, 200);
    }
    let fds = open_fds(service.pid());
    assert!(
        fds <= baseline + 8,
        "{fds} descriptors after 40 files, {baseline} before: the cache keeps at most 8"
    );
}

/// The old service served `/api/media?id=` from its API's folder and `/media/<path>` from its
/// static one: each URL family reads its own folder, with the same path rules.
#[actix_web::test]
async fn each_old_url_family_reads_its_own_folder() {
    let fixture = Fixture::new();
    let api = fixture.dir.path().join("old-api-media");
    std::fs::create_dir_all(&api).unwrap();
    std::fs::write(api.join("article.txt"), b"scraped").unwrap();
    let service = TestApp::start(
        fixture
            .config()
            .with(|c| c.media.legacy_api_root = api.clone()),
    );
    let scraped = get(&service, "/api/media?id=article.txt", &[]);
    assert_eq!(
        (scraped.status, scraped.body.as_slice()),
        (200, &b"scraped"[..])
    );
    assert_eq!(get(&service, "/media/article.txt", &[]).status, 404);
    assert_eq!(get(&service, "/media?id=article.txt", &[]).status, 404);
    let poster = get(&service, "/media/poster.jpg", &[]);
    assert_eq!(
        (poster.status, poster.body.as_slice()),
        (200, &b"jpeg bytes"[..])
    );
    assert_eq!(get(&service, "/media?id=poster.jpg", &[]).status, 200);
    assert_eq!(get(&service, "/api/media?id=poster.jpg", &[]).status, 404);
    for escape in [
        "/api/media?id=../web/poster.jpg",
        "/api/media?id=%2e%2e/web/poster.jpg",
    ] {
        let r = get(&service, escape, &[]);
        assert!(matches!(r.status, 400 | 404), "{escape}: {}", r.status);
    }
}
