//! Start-up as an operator meets it: config validation, and the embedded demo source that
//! `make run` serves with no relay.

mod common;

use std::process::Command;

use common::*;

/// Runs the binary with `args` to its end: whether it succeeded, and all it printed.
fn run(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_oip-resolver"))
        .args(args)
        .env_remove("GUN_PEERS")
        .env_remove("JWT_SECRET")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    (out.status.success(), text)
}

/// `--check-config` of a file holding `yaml`, written as an operator would write it.
fn check_config(yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    run(&[
        "--check-config".as_ref(),
        "--config".as_ref(),
        path.as_os_str(),
    ])
}

#[test]
fn the_shipped_config_is_valid() {
    let path = repo_path("config.yaml");
    let (ok, text) = run(&[
        "--check-config".as_ref(),
        "--config".as_ref(),
        path.as_os_str(),
    ]);
    assert!(ok, "{text}");
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
    ] {
        let (ok, text) = check_config(yaml);
        assert!(!ok, "{yaml} was accepted");
        assert!(text.contains(key), "{yaml}: {text}");
        assert_eq!(text.trim().lines().count(), 1, "{text}");
    }
    assert!(check_config("").0, "an empty file means every default");
    assert!(check_config("gun: { max_attempts: 5 }\n").0);
}

#[test]
fn a_missing_config_file_is_named() {
    let (ok, text) = run(&["--config".as_ref(), "/nonexistent/oip.yaml".as_ref()]);
    assert!(!ok);
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
