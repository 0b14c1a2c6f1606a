//! `GET /api/records` end to end: golden answers on the demo graph, fetched from a counting mock
//! relay, plus the parallelism, budget, deadline, indexer and error behaviour.
//!
//! Golden files live in `tests/golden/`; after an intended change of output, regenerate them
//! with `UPDATE_GOLDEN=1 cargo test --test records` and review the diff.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const P: &str = "f3a9c2e1b7d4";
const AR: &str = "did:arweave:Qm7Lk2x9VbN4pR8sT1uW3yZ5aC6dE0fG2hJ4kL6mN8o";

fn demo_relay() -> MockRelay {
    let relay = MockRelay::start();
    relay.load(&repo_path("data/demo/records.json"));
    relay
}

fn did(local: &str) -> String {
    format!("did:gun:{P}:{local}")
}

fn soul(local: &str) -> String {
    format!("{P}:{local}")
}

async fn records(service: &impl Served, query: &str) -> Reply {
    get(service.url(&format!("/api/records?{query}"))).await
}

/// Compares an answer with its golden file (elapsed time left out: it is the one figure that
/// varies between runs).
fn golden(name: &str, mut answer: Value) {
    answer["resolution"]
        .as_object_mut()
        .expect("a resolution summary")
        .remove("elapsedMs");
    let path = repo_path(&format!("tests/golden/{name}.json"));
    let text = serde_json::to_string_pretty(&answer).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no golden file {}: run with UPDATE_GOLDEN=1",
            path.display()
        )
    });
    assert!(
        expected == text,
        "answer differs from {}:\n{text}",
        path.display()
    );
}

fn demo_service(relay: &MockRelay) -> TestApp {
    TestApp::start(relay_config(&relay.url()))
}

#[actix_web::test]
async fn golden_depths_zero_to_three() {
    for depth in 0..=3 {
        let relay = demo_relay();
        let service = demo_service(&relay);
        let r = records(
            &service,
            &format!("did={}&resolveDepth={depth}", did("workout-full-body")),
        )
        .await;
        assert_eq!(r.status, 200, "depth {depth}");
        golden(&format!("full-body-depth-{depth}"), r.json());
    }
}

#[actix_web::test]
async fn depth_rules_as_a_client_sees_them() {
    let relay = demo_relay();
    let service = demo_service(&relay);
    let q = |d: u32| format!("did={}&resolveDepth={d}", did("workout-full-body"));

    let zero = records(&service, &q(0)).await.json();
    let w = &zero["records"][0];
    // Arrays stored as JSON strings come back as arrays, references untouched.
    assert_eq!(w["data"]["workout"]["exercise"][0], did("exercise-squat"));
    assert_eq!(w["data"]["workout"]["exercise_amount"], json!([5, 5, 5, 8]));
    assert_eq!(w["oip"]["did"], did("workout-full-body"));
    assert_eq!(zero["searchResults"], 1);
    assert_eq!(zero["resolution"]["depth"], 0);

    let two = records(&service, &q(2)).await.json();
    let squat = &two["records"][0]["data"]["workout"]["exercise"][0];
    assert_eq!(squat["data"]["basic"]["name"], "Back Squat");
    assert_eq!(
        squat["data"]["exercise"]["equipmentRequired"][0]["data"]["basic"]["name"],
        "Barbell"
    );
    // The arweave warm-up has no source configured.
    assert_eq!(two["records"][0]["data"]["workout"]["warmup"], AR);
    let unresolved = two["resolution"]["unresolved"].as_array().unwrap();
    assert!(unresolved.contains(&json!({"did": AR, "reason": "unsupported"})));
    assert_eq!(
        metric(&service, "oip_resolve_requests_total").await,
        Some(2.0),
        "one per resolution"
    );
}

#[actix_web::test]
async fn names_only_and_field_filters() {
    let relay = demo_relay();
    let service = demo_service(&relay);
    let w = did("workout-full-body");

    let names = records(
        &service,
        &format!("did={w}&resolveDepth=1&resolveNamesOnly=true"),
    )
    .await;
    assert_eq!(
        names.json()["records"][0]["data"]["workout"]["exercise"],
        json!(["Back Squat", "Bench Press", "Deadlift", "Pull-up"])
    );
    golden("full-body-names-only-depth-2", {
        records(
            &service,
            &format!("did={w}&resolveDepth=2&resolveNamesOnly=true"),
        )
        .await
        .json()
    });

    for (filter, exercise_resolved, equipment_resolved) in [
        ("workout.exercise", true, false),
        ("workout", true, false),
        (
            "data.workout.exercise,exercise.equipmentRequired",
            true,
            true,
        ),
        ("data", true, true),
        ("exercise", false, false),
    ] {
        let r = records(
            &service,
            &format!("did={w}&resolveDepth=2&resolveFieldNames={filter}"),
        )
        .await
        .json();
        let first = &r["records"][0]["data"]["workout"]["exercise"][0];
        assert_eq!(first.is_object(), exercise_resolved, "{filter}");
        if exercise_resolved {
            let eq = &first["data"]["exercise"]["equipmentRequired"][0];
            assert_eq!(eq.is_object(), equipment_resolved, "{filter}");
        }
    }
    let alias = records(
        &service,
        &format!("did={w}&resolveDepth=1&resolveFieldName=basic"),
    )
    .await
    .json();
    assert_eq!(
        alias["records"][0]["data"]["workout"]["exercise"][0],
        did("exercise-squat")
    );
    golden("full-body-fields-workout-depth-2", {
        records(
            &service,
            &format!("did={w}&resolveDepth=2&resolveFieldNames=workout"),
        )
        .await
        .json()
    });
}

#[actix_web::test]
async fn a_cycle_becomes_a_circular_marker_at_any_depth() {
    let relay = demo_relay();
    let service = demo_service(&relay);
    // bench-press.variationOf -> pushup, pushup.variationOf -> bench-press.
    for depth in [2, 3, 4] {
        let r = records(
            &service,
            &format!("did={}&resolveDepth={depth}", did("exercise-bench-press")),
        )
        .await
        .json();
        let pushup = &r["records"][0]["data"]["exercise"]["variationOf"];
        assert_eq!(pushup["data"]["basic"]["name"], "Push-up", "depth {depth}");
        let back = &pushup["data"]["exercise"]["variationOf"];
        assert_eq!(back["_circular"], true, "depth {depth}");
        assert_eq!(back["oip"]["did"], did("exercise-bench-press"));
        assert_eq!(back["data"]["basic"]["name"], "Bench Press");
        assert_eq!(r["resolution"]["circular"], 1);
        golden(&format!("bench-press-cycle-depth-{depth}"), r);
    }
}

#[actix_web::test]
async fn each_record_is_fetched_once_per_request_and_misses_once_per_ttl() {
    let relay = demo_relay();
    let service = TestApp::start(relay_config(&relay.url()).with(|c| c.record_cache.ttl_secs = 0));
    // workout-upper lists bench-press and pushup, which also reference each other; row and
    // bench-press both need the bench.
    let r = records(
        &service,
        &format!("did={}&resolveDepth=3", did("workout-upper")),
    )
    .await;
    assert_eq!(r.status, 200);
    for local in ["exercise-pushup", "exercise-bench-press", "equipment-bench"] {
        assert_eq!(relay.gets(&soul(local)), 1, "{local}");
    }

    let legs = format!("did={}&resolveDepth=2", did("workout-legs"));
    let first = records(&service, &legs).await.json();
    let gone = did("exercise-box-jump");
    assert_eq!(first["records"][0]["data"]["workout"]["exercise"][4], gone);
    let unresolved = first["resolution"]["unresolved"].as_array().unwrap();
    assert_eq!(
        unresolved
            .iter()
            .filter(|u| u["did"] == gone.as_str())
            .collect::<Vec<_>>(),
        [&json!({"did": gone, "reason": "not_found"})]
    );
    assert_eq!(relay.gets(&soul("exercise-box-jump")), 1);
    let second = records(&service, &legs).await.json();
    assert_eq!(
        second["resolution"]["unresolved"],
        first["resolution"]["unresolved"]
    );
    assert_eq!(
        relay.gets(&soul("exercise-box-jump")),
        1,
        "the second request sent no upstream request for it"
    );
}

/// A relay holding a workout `abc:w` with 20 exercises, each answered after 50 ms.
fn twenty_exercises() -> MockRelay {
    let relay = MockRelay::start();
    let exercises: Vec<String> = (0..20).map(|i| format!("did:gun:abc:ex{i}")).collect();
    relay.insert(
        "abc:w",
        node(json!({"workout": {"exercise": exercises}}), json!({})),
    );
    for i in 0..20 {
        relay.insert(
            &format!("abc:ex{i}"),
            node(json!({"basic": {"name": format!("Ex {i}")}}), json!({})),
        );
    }
    relay
}

#[actix_web::test]
async fn a_level_is_fetched_in_parallel() {
    let relay = twenty_exercises();
    let service = demo_service(&relay);
    // The workout is read first; then no exercise is answered until all 20 have been asked:
    // only a level fetched in parallel gets its answer (else the mock waits 10 s and the count
    // below falls short).
    records(&service, "did=did:gun:abc:w&resolveDepth=0").await;
    relay.set_barrier(21);
    let r = records(&service, "did=did:gun:abc:w&resolveDepth=1").await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(
        body["records"][0]["data"]["workout"]["exercise"][19]["data"]["basic"]["name"],
        "Ex 19"
    );
    assert_eq!(body["resolution"]["fetched"], 21);
    assert_eq!(
        relay.max_in_flight(),
        20,
        "all 20 exercises were in flight together"
    );
}

#[actix_web::test]
async fn resolver_concurrency_bounds_what_is_in_flight() {
    let relay = twenty_exercises();
    let service = TestApp::start(relay_config(&relay.url()).with(|c| c.resolver.concurrency = 5));
    // The first five exercises are held until all five have been asked.
    records(&service, "did=did:gun:abc:w&resolveDepth=0").await;
    relay.set_barrier(6);
    let r = records(&service, "did=did:gun:abc:w&resolveDepth=1").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["resolution"]["fetched"], 21);
    assert_eq!(
        relay.max_in_flight(),
        5,
        "resolver.concurrency: 5 keeps at most 5 relay requests in flight, and uses all 5"
    );
}

#[actix_web::test]
async fn several_dids_keep_their_order_and_skip_the_missing() {
    let relay = demo_relay();
    let service = demo_service(&relay);
    let q = format!(
        "did={},{},{}&resolveDepth=0",
        did("equipment-bench"),
        did("nothing-here"),
        did("equipment-barbell")
    );
    let r = records(&service, &q).await.json();
    assert_eq!(r["searchResults"], 2);
    assert_eq!(r["records"][0]["data"]["basic"]["name"], "Flat Bench");
    assert_eq!(r["records"][1]["data"]["basic"]["name"], "Barbell");
    assert_eq!(
        r["resolution"]["unresolved"],
        json!([{"did": did("nothing-here"), "reason": "not_found"}])
    );

    let none = records(
        &service,
        &format!("did={},{}", did("nope-1"), did("nope-2")),
    )
    .await;
    assert_eq!(
        none.status, 200,
        "as the old API: an empty answer, not an error"
    );
    let none = none.json();
    assert_eq!(
        (none["records"].clone(), none["searchResults"].clone()),
        (json!([]), json!(0))
    );
    assert_eq!(
        none["resolution"]["unresolved"],
        json!([
            {"did": did("nope-1"), "reason": "not_found"},
            {"did": did("nope-2"), "reason": "not_found"}
        ])
    );
}

#[actix_web::test]
async fn the_budget_keeps_the_rest_as_dids() {
    let relay = demo_relay();
    let service = TestApp::start(relay_config(&relay.url()).with(|c| c.resolver.max_records = 3));
    let r = records(
        &service,
        &format!("did={}&resolveDepth=2", did("workout-full-body")),
    )
    .await
    .json();
    assert_eq!(r["resolution"]["fetched"], 3);
    let unresolved = r["resolution"]["unresolved"].as_array().unwrap();
    assert!(
        unresolved.iter().any(|u| u["reason"] == "budget"),
        "{unresolved:?}"
    );
    let exercise = r["records"][0]["data"]["workout"]["exercise"]
        .as_array()
        .unwrap();
    assert!(exercise.iter().any(|e| e.is_string()));
    assert!(exercise.iter().any(|e| e.is_object()));

    // Nothing found within the budget: the answer says so rather than "not found".
    let one = TestApp::start(relay_config(&relay.url()).with(|c| c.resolver.max_records = 1));
    let over = records(
        &one,
        &format!("did={},{}", did("nothing-here"), did("workout-legs")),
    )
    .await;
    assert_eq!(over.status, 400);
    assert_eq!(over.json()["code"], "budget_exceeded");
}

/// A record with 300 references, none of them stored: however it is asked for, one request
/// sends at most `resolver.max_upstream_per_request` relay requests.
#[actix_web::test]
async fn one_request_cannot_make_more_relay_requests_than_its_budget() {
    let relay = MockRelay::start();
    relay.set_miss_delay(10);
    let refs: Vec<String> = (0..300).map(|i| format!("did:gun:{P}:gone-{i}")).collect();
    relay.insert(
        &soul("many"),
        node(json!({"workout": {"exercise": refs}}), json!({})),
    );
    let service = TestApp::start(
        relay_config(&relay.url()).with(|c| c.resolver.max_upstream_per_request = 50),
    );
    let mut before = 0;
    for round in 0..3 {
        let r = records(&service, &format!("did={}&resolveDepth=1", did("many"))).await;
        assert_eq!(r.status, 200);
        let body = r.json();
        let sent = relay.total_gets() - before;
        before = relay.total_gets();
        assert!(
            sent <= 50,
            "round {round}: one request sent {sent} relay requests"
        );
        let unresolved = body["resolution"]["unresolved"].as_array().unwrap();
        assert_eq!(unresolved.len(), 300);
        let over = unresolved
            .iter()
            .filter(|u| u["reason"] == "budget")
            .count();
        assert!(
            over >= 250,
            "round {round}: {over} references over the budget"
        );
        let exercise = &body["records"][0]["data"]["workout"]["exercise"];
        assert_eq!(
            exercise[299],
            refs[299].as_str(),
            "past the budget a reference stays a DID"
        );
    }
}

#[actix_web::test]
async fn at_the_deadline_what_has_not_arrived_is_a_timeout() {
    let relay = demo_relay();
    relay.set_soul_mode(&soul("exercise-deadlift"), Mode::Hang);
    let service = TestApp::start(relay_config(&relay.url()).with(|c| c.resolver.deadline_ms = 400));
    let started = std::time::Instant::now();
    let r = records(
        &service,
        &format!("did={}&resolveDepth=2", did("workout-full-body")),
    )
    .await;
    eprintln!(
        "answered after {:?} with a 400 ms deadline",
        started.elapsed()
    );
    assert_eq!(r.status, 200);
    let body = r.json();
    let exercise = &body["records"][0]["data"]["workout"]["exercise"];
    assert_eq!(exercise[0]["data"]["basic"]["name"], "Back Squat");
    assert_eq!(exercise[2], did("exercise-deadlift"));
    assert!(body["resolution"]["unresolved"]
        .as_array()
        .unwrap()
        .contains(&json!({"did": did("exercise-deadlift"), "reason": "timeout"})));

    relay.set_soul_mode(&soul("equipment-barbell"), Mode::Hang);
    let root = records(&service, &format!("did={}", did("equipment-barbell"))).await;
    assert_eq!(root.status, 504);
    assert_eq!(root.json()["code"], "relay_timeout");
}

#[actix_web::test]
async fn failed_references_are_listed_as_errors_and_the_rest_is_returned() {
    let relay = demo_relay();
    relay.set_soul_mode(&soul("exercise-pullup"), Mode::Status(500));
    let service = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.gun.max_attempts = 2;
        c.gun.breaker_failures = 100;
    }));
    let r = records(
        &service,
        &format!("did={}&resolveDepth=1", did("workout-full-body")),
    )
    .await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(
        body["records"][0]["data"]["workout"]["exercise"][3],
        did("exercise-pullup")
    );
    assert!(body["resolution"]["unresolved"]
        .as_array()
        .unwrap()
        .contains(&json!({"did": did("exercise-pullup"), "reason": "error"})));
}

#[actix_web::test]
async fn other_did_methods_come_from_the_oip_indexer() {
    let relay = demo_relay();
    let indexer = MockRelay::start();
    let workout = did("workout-full-body");
    indexer.insert(
        AR,
        json!({"data": {"basic": {"name": "Arweave Warm-up"}, "exercise": {"steps": "[\"jog\",\"skip\"]"}}, "oip": {"recordType": "exercise"}}),
    );
    let service = TestApp::start(
        relay_config(&relay.url()).with(|c| c.resolver.oip_api = Some(indexer.url())),
    );
    let r = records(&service, &format!("did={workout}&resolveDepth=1"))
        .await
        .json();
    let warmup = &r["records"][0]["data"]["workout"]["warmup"];
    assert_eq!(warmup["data"]["basic"]["name"], "Arweave Warm-up");
    assert_eq!(warmup["data"]["exercise"]["steps"], json!(["jog", "skip"]));
    assert_eq!(warmup["oip"]["did"], AR);
    assert_eq!(indexer.gets(AR), 1);

    let missing = "did:arweave:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for _ in 0..3 {
        let r = records(&service, &format!("did={missing}")).await;
        assert_eq!((r.status, r.json()["records"].clone()), (200, json!([])));
    }
    assert_eq!(
        indexer.gets(missing),
        1,
        "the indexer's misses are cached too"
    );
    assert_eq!(
        metric(&service, "oip_indexer_requests_total{status=\"200\"}").await,
        Some(2.0)
    );
}

#[actix_web::test]
async fn without_an_indexer_other_methods_are_unsupported() {
    let relay = demo_relay();
    let service = demo_service(&relay);
    let r = records(&service, &format!("did={AR}")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "unsupported_did");
}

#[actix_web::test]
async fn a_relay_that_is_down_is_a_503() {
    let relay = demo_relay();
    let service = TestApp::start(relay_config(&relay.url()).with(|c| c.gun.max_attempts = 1));
    drop(relay.stop());
    let r = records(&service, &format!("did={}", did("workout-legs"))).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["code"], "relay_unreachable");
}

#[actix_web::test]
async fn bad_input_is_a_400_naming_the_parameter_and_reaches_no_relay() {
    let relay = demo_relay();
    let service = demo_service(&relay);
    let w = did("workout-legs");
    let many = vec![w.as_str(); 51].join(",");
    let cases = [
        ("".to_string(), "missing_parameter", "did"),
        ("did=".to_string(), "missing_parameter", "did"),
        (
            "did=workout-legs".to_string(),
            "invalid_did",
            "workout-legs",
        ),
        ("did=did:gun:".to_string(), "invalid_did", "did:gun:"),
        (
            "did=did:arweave:short".to_string(),
            "invalid_did",
            "arweave",
        ),
        (format!("did={many}"), "invalid_parameter", "did"),
        (format!("did={w},,{w}"), "invalid_parameter", "did"),
        (
            format!("did={w}&resolveDepth=-1"),
            "invalid_parameter",
            "resolveDepth",
        ),
        (
            format!("did={w}&resolveDepth=1.5"),
            "invalid_parameter",
            "resolveDepth",
        ),
        (
            format!("did={w}&resolveDepth=6"),
            "invalid_parameter",
            "resolveDepth",
        ),
        (
            format!("did={w}&resolveDepth=99999"),
            "invalid_parameter",
            "resolveDepth",
        ),
        (
            format!("did={w}&resolveNamesOnly=maybe"),
            "invalid_parameter",
            "resolveNamesOnly",
        ),
        (
            format!("did={w}&resolveFieldNames=a%20b"),
            "invalid_parameter",
            "resolveFieldNames",
        ),
        (format!("did={w}&did={w}"), "invalid_query", "did"),
    ];
    for (query, code, named) in cases {
        let r = records(&service, &query).await;
        assert_eq!(r.status, 400, "{query:.80}");
        let body = r.json();
        assert_eq!(body["code"], code, "{query:.80}");
        assert!(
            body["error"].as_str().unwrap().contains(named),
            "{query:.80}: {body}"
        );
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(relay.total_gets(), 0);
    assert_eq!(
        metric(&service, "oip_resolve_requests_total").await,
        Some(0.0),
        "refused requests never reach the resolver"
    );
}

/// A warm resolution asked again is answered whole from the answer cache (`X-Cache: HIT`), byte
/// for byte the records of the first answer; a write to any record in it, the expiry of one, or
/// `forceRefresh` builds it again, so it is never older than the record cache would answer.
#[actix_web::test]
async fn warm_answers_are_kept_whole_until_a_record_in_them_changes_or_expires() {
    let relay = demo_relay();
    // Refreshes with no floor: what a refresh does to kept answers is what is looked at here.
    let service = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.record_cache.ttl_secs = 2;
        c.record_cache.refresh_after_secs = 0;
    }));
    let query = format!("did={}&resolveDepth=2", did("workout-full-body"));
    let first = records(&service, &query).await;
    assert_eq!(first.header("x-cache").as_deref(), Some("MISS"));
    let kept = records(&service, &query).await;
    assert_eq!(kept.header("x-cache").as_deref(), Some("HIT"));
    assert_eq!(kept.json()["records"], first.json()["records"]);
    let summary = &kept.json()["resolution"];
    assert_eq!(
        summary["unresolved"],
        first.json()["resolution"]["unresolved"]
    );
    assert_eq!(summary["fromCache"], summary["fetched"], "{summary}");
    let other_depth = format!("did={}&resolveDepth=1", did("workout-full-body"));
    let shallower = records(&service, &other_depth).await;
    assert_eq!(shallower.header("x-cache").as_deref(), Some("MISS"));

    // A record two levels down is written: the next answer carries it.
    let barbell = soul("equipment-barbell");
    let renamed = node(
        json!({"basic": {"name": "Trap Bar"}}),
        json!({"recordType": "equipment"}),
    );
    let put = put_node(
        &service.url("/gun-relay"),
        &barbell,
        renamed,
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(put.status, 200);
    let after_write = records(&service, &query).await;
    assert_eq!(after_write.header("x-cache").as_deref(), Some("MISS"));
    let text = String::from_utf8_lossy(&after_write.body).to_string();
    assert!(text.contains("Trap Bar"), "{text}");
    assert_eq!(
        records(&service, &query).await.header("x-cache").as_deref(),
        Some("HIT")
    );

    let refresh = format!("{query}&forceRefresh=true");
    let refreshed = records(&service, &refresh).await;
    assert_eq!(refreshed.header("x-cache").as_deref(), Some("MISS"));
    assert_eq!(
        records(&service, &query).await.header("x-cache").as_deref(),
        Some("HIT"),
        "a refresh that found nothing new leaves kept answers alone: any client may ask for one"
    );
    // Changed at the relay behind the service's back: a refresh brings it, and the kept answer
    // goes.
    relay.insert(
        &barbell,
        node(
            json!({"basic": {"name": "Safety Bar"}}),
            json!({"recordType": "equipment"}),
        ),
    );
    records(&service, &refresh).await;
    let after_refresh = records(&service, &query).await;
    assert_eq!(after_refresh.header("x-cache").as_deref(), Some("MISS"));
    assert!(String::from_utf8_lossy(&after_refresh.body).contains("Safety Bar"));

    // Past the records' TTL the answer is built again, from the relay.
    let before = relay.gets(&soul("workout-full-body"));
    actix_web::rt::time::sleep(Duration::from_millis(2100)).await;
    let expired = records(&service, &query).await;
    assert_eq!(expired.header("x-cache").as_deref(), Some("MISS"));
    assert_eq!(relay.gets(&soul("workout-full-body")), before + 1);
}

/// Kept answers are kept apart by every option that shapes them: asked one way then another, each
/// answer is the one its options call for, and the first of each is made, not served from the
/// other's.
#[actix_web::test]
async fn kept_answers_are_kept_apart_by_every_option() {
    let relay = demo_relay();
    let service = demo_service(&relay);
    let base = format!("did={}&resolveDepth=2", did("workout-full-body"));
    // The demo's records carry no signature: without one, includeSigs changes nothing but the
    // key the answer is kept under.
    let variants = [
        ("", true),
        ("&resolveNamesOnly=true", true),
        ("&resolveFieldNames=exercise", true),
        ("&includePubKeys=false", true),
        ("&resolveDepth=1", true),
        ("&includeSigs=false", false),
    ];
    let mut seen = Vec::new();
    for round in 0..2 {
        for (variant, differs) in variants {
            let query = if variant.contains("resolveDepth") {
                format!("did={}{variant}", did("workout-full-body"))
            } else {
                format!("{base}{variant}")
            };
            let r = records(&service, &query).await;
            let expected = if round == 0 { "MISS" } else { "HIT" };
            assert_eq!(r.header("x-cache").as_deref(), Some(expected), "{variant}");
            let body = r.json()["records"].to_string();
            if round == 0 && differs {
                assert!(!seen.contains(&body), "{variant} answered like another");
                seen.push(body);
            }
        }
    }
}
