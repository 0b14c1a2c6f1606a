//! Start-up as an operator meets it: config validation, and the embedded demo source that
//! `make run` serves with no relay.

mod common;

use std::process::Command;

use common::*;

/// Runs the binary with `args` to its end: its exit status, and all it printed.
fn run(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_oip-resolver"))
        .args(args)
        .env_remove("GUN_PEERS")
        .env_remove("JWT_SECRET")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    (out.status.code(), text)
}

/// Runs the binary on a config file holding `yaml`, written as an operator would write it, with
/// `flags` before `--config`.
fn run_with_config(flags: &[&str], yaml: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut args: Vec<&std::ffi::OsStr> = flags.iter().map(|f| f.as_ref()).collect();
    args.extend(["--config".as_ref(), path.as_os_str()]);
    run(&args)
}

/// `--check-config` of `yaml`: whether it was accepted, and what was said.
fn check_config(yaml: &str) -> (bool, String) {
    let (code, text) = run_with_config(&["--check-config"], yaml);
    (code == Some(0), text)
}

#[test]
fn the_shipped_config_is_valid() {
    let path = repo_path("config.yaml");
    let (code, text) = run(&[
        "--check-config".as_ref(),
        "--config".as_ref(),
        path.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn a_taken_port_is_one_line_and_exit_status_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = test_config().with(|c| c.server.bind = addr.to_string());
    let (code, text) = run_with_config(&[], &yaml_serde::to_string(&config).unwrap());
    assert_eq!(code, Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one line, and nothing started: {text}");
    assert!(
        lines[0].ends_with(&format!("cannot listen on {addr}: address in use")),
        "{text}"
    );
}

#[test]
fn bad_config_stops_start_up_with_one_line_naming_the_key() {
    for (yaml, key) in [
        ("gun:\n  max_atempts: 3\n", "max_atempts"),
        (
            "negative_cache:\n  ttl_secs: -1\n",
            "negative_cache.ttl_secs",
        ),
        ("server:\n  bind: \"localhost\"\n", "server.bind"),
        (
            "gun:\n  source: relay\n  relay_url: \"127.0.0.1:8765\"\n",
            "gun.relay_url",
        ),
        ("colour: blue\n", "colour"),
        ("auth: { jwt_secret: abc }\n", "auth.jwt_secret"),
        ("auth: { admin_token: letmein }\n", "auth.admin_token"),
        (
            "media: { root: /srv/media, legacy_root: /srv }\n",
            "media.legacy_api_root",
        ),
        (
            "media: { root: /srv/media, legacy_static_root: /srv/media }\n",
            "media.legacy_static_root",
        ),
        (
            "gun: { source: relay, ca_file: /nowhere/ca.pem }\n",
            "gun.ca_file",
        ),
        (
            "gun: { source: relay, relay_urls: [\"http://a:1\", \"b:2\"] }\n",
            "gun.relay_urls",
        ),
        (
            "cors: { allowed_origins: [\"localhost\"] }\n",
            "cors.allowed_origins",
        ),
    ] {
        let (ok, text) = check_config(yaml);
        assert!(!ok, "{yaml} was accepted");
        assert!(text.contains(key), "{yaml}: {text}");
        assert_eq!(text.trim().lines().count(), 1, "{text}");
    }
    assert!(check_config("").0, "an empty file means every default");
    assert!(check_config("gun: { max_attempts: 5 }\n").0);
    let (code, text) = run_with_config(
        &["--check-config", "--set", "gun.max_attempts=0"],
        "gun: { max_attempts: 5 }\n",
    );
    assert_eq!(code, Some(1), "the command line wins: {text}");
    assert!(text.contains("gun.max_attempts"), "{text}");
    assert!(check_config("gun: { source: relay, relay_url: \"https://relay.example\" }\n").0);
}

#[test]
fn a_missing_config_file_is_named() {
    let (code, text) = run(&["--config".as_ref(), "/nonexistent/oip.yaml".as_ref()]);
    assert_eq!(code, Some(1));
    assert!(text.contains("/nonexistent/oip.yaml"), "{text}");
}

#[actix_web::test]
async fn the_demo_source_serves_records_and_instant_misses() {
    let service = TestApp::start(test_config().with(|c| c.server.workers = 1));
    let found = get(&service.url("/gun-relay/get?soul=f3a9c2e1b7d4:workout-legs")).await;
    assert_eq!(found.status, 200);
    let body = found.json();
    assert_eq!(body["data"]["data"]["basic"]["name"], "Leg Day");
    assert!(body["data"]["data"]["workout"]["exercise"]
        .as_str()
        .unwrap()
        .starts_with("[\"did:gun:"));

    let missing = get(&service.url("/gun-relay/get?soul=f3a9c2e1b7d4:exercise-box-jump")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("x-cache").as_deref(), Some("MISS"));
    let again = get(&service.url("/gun-relay/get?soul=f3a9c2e1b7d4:exercise-box-jump")).await;
    assert_eq!(again.header("x-cache").as_deref(), Some("NEGATIVE"));

    let health = get(&service.url("/health")).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["relay"], "file");
    assert_eq!(health.json()["status"], "ok");
}

#[test]
fn the_demo_graph_has_what_the_readme_promises() {
    let text = std::fs::read_to_string(repo_path("data/demo/records.json")).unwrap();
    let nodes: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    let kind = |t: &str| {
        nodes
            .values()
            .filter(|n| {
                n["oip"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("\"recordType\": \"{t}\""))
            })
            .count()
    };
    assert!(kind("workout") >= 3);
    assert!(kind("exercise") >= 10);
    assert!(kind("equipment") >= 5);
    assert!(text.contains("did:arweave:"));
    // Exercise lists are stored as JSON-string arrays, as the relay stores them.
    assert!(text.contains(r#"\"exercise\": \"[\\\"did:gun:"#));
    assert!(
        !nodes.contains_key("f3a9c2e1b7d4:exercise-box-jump"),
        "the dangling reference"
    );
}

#[test]
fn settings_come_from_the_environment_and_help_lists_them() {
    let (code, help) = run(&["--help".as_ref()]);
    assert_eq!(code, Some(0));
    for var in [
        "OIP_AUTH_ADMIN_TOKEN",
        "OIP_NEGATIVE_CACHE_TTL_SECS",
        "PORT",
        "GUN_PEERS",
    ] {
        assert!(help.contains(var), "{var} in --help");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_oip-resolver"))
        .args(["--check-config", "--config"])
        .arg(repo_path("config.yaml"))
        .env("OIP_GUN_MAX_ATEMPTS", "3")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("OIP_GUN_MAX_ATEMPTS: no such setting"),
        "{said}"
    );
}

#[actix_web::test]
async fn the_summary_says_where_each_setting_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    let config = test_config().with(|c| c.memory_monitor.interval_secs = 3600);
    std::fs::write(&path, yaml_serde::to_string(&config).unwrap()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_oip-resolver"))
        .arg("--config")
        .arg(&path)
        .env("OIP_NEGATIVE_CACHE_TTL_SECS", "120")
        .env("OIP_AUTH_JWT_SECRET", "a-secret-from-the-environment")
        .env_remove("GUN_PEERS")
        .env_remove("JWT_SECRET")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
    let summary = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("settings not at their defaults"))
        .expect("a summary of where settings came from");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        summary.contains("negative_cache.ttl_secs from OIP_NEGATIVE_CACHE_TTL_SECS"),
        "{summary}"
    );
    assert!(
        summary.contains("auth.jwt_secret from OIP_AUTH_JWT_SECRET"),
        "{summary}"
    );
    assert!(
        summary.contains("memory_monitor.interval_secs from file"),
        "{summary}"
    );
    assert!(
        !summary.contains("a-secret-from-the-environment"),
        "{summary}"
    );
}

/// A container's settings: `PORT` binds every interface on that port, every `GUN_PEERS` entry is
/// a relay, and an `OIP_...` variable sets its key; the start-up summary names each source.
#[actix_web::test]
async fn port_and_gun_peers_come_from_the_environment() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let (a, b) = (MockRelay::start(), MockRelay::start());
    let service = Service::try_start_with_env(
        &test_config(),
        &[
            ("PORT", &port),
            ("GUN_PEERS", &format!("{}, {}", a.url(), b.url())),
            ("OIP_GUN_BREAKER_OPEN_MS", "1234"),
        ],
    )
    .expect("the service starts");
    assert_eq!(service.addr.to_string(), format!("0.0.0.0:{port}"));
    let health = get(format!("http://127.0.0.1:{port}/health")).await.json();
    let urls: Vec<&str> = health["relays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls, [a.url(), b.url()], "{health}");
    let summary = service
        .wait_for_line(
            "settings not at their defaults",
            std::time::Duration::from_secs(2),
        )
        .unwrap();
    // The mock relays have no websocket: a write feed that cannot connect says so once.
    let down = service
        .wait_for_line("write feed down", std::time::Duration::from_secs(5))
        .expect("a WARN line for each feed that cannot connect");
    assert!(
        down.contains("WARN") && down.contains("ttl_without_watch_secs"),
        "{down}"
    );
    let starting = service
        .wait_for_line(
            "oip-resolver 0.1.0 starting:",
            std::time::Duration::from_secs(2),
        )
        .unwrap();
    assert!(
        starting.contains(&format!("source relays {}, {}", a.url(), b.url())),
        "{starting}"
    );
    for said in [
        "server.bind from PORT",
        "gun.relay_urls from GUN_PEERS",
        "gun.breaker_open_ms from OIP_GUN_BREAKER_OPEN_MS",
    ] {
        assert!(summary.contains(said), "{said}: {summary}");
    }
}

/// Runs the binary under `sh` after `limits` (`ulimit` arguments), for `secs` at most.
fn run_under_ulimit(limits: &str, yaml: &str, secs: u64) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    let script = format!("ulimit {limits} && exec timeout {secs} \"$0\" --config \"$1\"",);
    let out = Command::new("sh")
        .args(["-c", &script, env!("CARGO_BIN_EXE_oip-resolver")])
        .arg(&path)
        .env_remove("GUN_PEERS")
        .env_remove("JWT_SECRET")
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The soft descriptor limit is raised to the hard one at start; settings that could need more
/// descriptors than the hard limit allows stop start-up with one line naming them.
#[test]
fn descriptors_are_raised_to_the_hard_limit_and_settings_must_fit_under_it() {
    let config = test_config();
    let yaml = yaml_serde::to_string(&config).unwrap();
    let (code, text) = run_under_ulimit("-Sn 256 && ulimit -Hn 4000", &yaml, 5);
    assert_eq!(code, Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].contains("file descriptors")
            && lines[0].contains("server.max_connections 10000")
            && lines[0].contains("limit is 4000"),
        "{text}"
    );
    let fits = config.with(|c| c.server.max_connections = 3000);
    let (code, text) = run_under_ulimit(
        "-Sn 256 && ulimit -Hn 8000",
        &yaml_serde::to_string(&fits).unwrap(),
        2,
    );
    assert_eq!(code, Some(124), "ran until stopped: {text}");
    assert!(
        text.contains("file descriptors: soft limit raised from 256 to 8000"),
        "{text}"
    );
}
