//! Interop with a real GUN relay: `tests/relay/relay.js`, on node with the `gun` package (which
//! `make test` installs into `tests/relay/node_modules`). A workout graph is stored through the
//! service's own `POST /gun-relay/put`, with arrays as JSON strings as the old publisher wrote
//! them, then resolved at depths 0 to 3.
//!
//! Without node or the package the test says so plainly and skips; under CI (the `CI` variable
//! set, as `.ci/run` runs) it fails instead, since a skipped interop test would pass unseen.

mod common;

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use common::{gun_relay::*, *};
use serde_json::{json, Value};

const P: &str = "9a8b7c6d5e4f";

/// A service reading from the real relay at `url`, listening to its write feed as it would in
/// production.
fn real_relay_config(url: &str) -> oip_resolver::config::Config {
    relay_config(url).with(|c| c.gun.watch = true)
}

/// A node as the old publisher stored it: `data` and `oip` as JSON strings, arrays inside
/// `data` as JSON strings too, `meta` a nested object (GUN stores it as a linked node).
fn publisher_node(data: Value, record_type: &str) -> Value {
    let mut n = node(data, json!({"recordType": record_type, "storage": "gun"}));
    n["meta"] = json!({"publishedBy": "interop-test", "version": 1});
    n
}

/// `POST {base}/put` of `node` under `local`, as a client of the relay sends it.
async fn put_to(base: impl AsRef<str>, local: impl AsRef<str>, node: Value) -> Reply {
    let soul = format!("{P}:{}", local.as_ref());
    put_node(base.as_ref(), &soul, node, Some(ADMIN_TOKEN)).await
}

async fn put(service: &Service, local: &str, node: Value) {
    let r = put_to(&service.url("/gun-relay"), local, node).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

async fn relay_gets(relay: &GunRelay, local: &str) -> u64 {
    let stats = get(format!("{}/stats", relay.url)).await.json();
    stats["gets"][format!("{P}:{local}")].as_u64().unwrap_or(0)
}

#[actix_web::test]
async fn a_workout_graph_round_trips_through_a_real_gun_relay() {
    let Some(relay) = start_gun_relay() else {
        return;
    };
    let service = Service::start(&real_relay_config(&relay.url));
    let did = |local: &str| format!("did:gun:{P}:{local}");

    put(
        &service,
        "eq-bar",
        publisher_node(json!({"basic": {"name": "Barbell"}}), "equipment"),
    )
    .await;
    put(
        &service,
        "ex-squat",
        publisher_node(
            json!({"basic": {"name": "Squat"}, "exercise": {"equipmentRequired": [did("eq-bar")], "muscleGroups": ["legs", "glutes"]}}),
            "exercise",
        ),
    )
    .await;
    put(
        &service,
        "ex-press",
        publisher_node(
            json!({"basic": {"name": "Press"}, "exercise": {"equipmentRequired": [did("eq-bar")], "variationOf": did("ex-pushup")}}),
            "exercise",
        ),
    )
    .await;
    put(
        &service,
        "ex-pushup",
        publisher_node(
            json!({"basic": {"name": "Push-up"}, "exercise": {"variationOf": did("ex-press")}}),
            "exercise",
        ),
    )
    .await;
    put(
        &service,
        "workout",
        publisher_node(
            json!({"basic": {"name": "Interop Workout"}, "workout": {
                "exercise": [did("ex-squat"), did("ex-press"), did("ex-ghost")],
                "exercise_amount": [5, 8, 10]
            }}),
            "workout",
        ),
    )
    .await;

    let resolve = |depth: u32| {
        let url = service.url(&format!(
            "/api/records?did={}&resolveDepth={depth}",
            did("workout")
        ));
        async move {
            let r = get(url).await;
            assert_eq!(
                r.status,
                200,
                "depth {depth}: {}",
                String::from_utf8_lossy(&r.body)
            );
            r.json()
        }
    };

    let d0 = resolve(0).await;
    let w = &d0["records"][0];
    assert_eq!(
        w["data"]["workout"]["exercise"],
        json!([did("ex-squat"), did("ex-press"), did("ex-ghost")])
    );
    assert_eq!(w["data"]["workout"]["exercise_amount"], json!([5, 8, 10]));
    assert_eq!(w["oip"]["recordType"], "workout");
    assert_eq!(w["oip"]["did"], did("workout"));
    assert!(
        w.get("meta").is_none(),
        "GUN's meta link is the relay's bookkeeping, not part of the record: {w}"
    );

    let d1 = resolve(1).await;
    let ex = &d1["records"][0]["data"]["workout"]["exercise"];
    assert_eq!(ex[0]["data"]["basic"]["name"], "Squat");
    assert_eq!(
        ex[0]["data"]["exercise"]["muscleGroups"],
        json!(["legs", "glutes"])
    );
    assert_eq!(
        ex[0]["data"]["exercise"]["equipmentRequired"],
        json!([did("eq-bar")])
    );
    assert_eq!(ex[2], did("ex-ghost"));
    assert_eq!(
        d1["resolution"]["unresolved"],
        json!([{"did": did("ex-ghost"), "reason": "not_found"}])
    );
    assert_eq!(
        relay_gets(&relay, "ex-ghost").await,
        1,
        "the miss cost one relay request"
    );

    let d2 = resolve(2).await;
    let ex = &d2["records"][0]["data"]["workout"]["exercise"];
    assert_eq!(
        ex[0]["data"]["exercise"]["equipmentRequired"][0]["data"]["basic"]["name"],
        "Barbell"
    );
    assert_eq!(
        ex[1]["data"]["exercise"]["variationOf"]["data"]["basic"]["name"],
        "Push-up"
    );

    let d3 = resolve(3).await;
    let back = &d3["records"][0]["data"]["workout"]["exercise"][1]["data"]["exercise"]
        ["variationOf"]["data"]["exercise"]["variationOf"];
    assert_eq!(back["_circular"], true, "{back}");
    assert_eq!(back["data"]["basic"]["name"], "Press");

    assert_eq!(
        relay_gets(&relay, "ex-ghost").await,
        1,
        "and then none: three more resolutions"
    );
    assert_eq!(
        metric(&service, "oip_gun_upstream_requests_total{status=\"404\"}").await,
        Some(1.0)
    );
}

/// What the mock relay imitates, checked against GUN itself, and the service's put rules on it:
/// an array is an error, an empty object is never acknowledged, fields merge, nested objects
/// come back as links. The service refuses the first two before the relay.
#[actix_web::test]
async fn writes_follow_gun_rules_on_a_real_relay() {
    let Some(relay) = start_gun_relay() else {
        return;
    };
    let data = json!({"basic": {"name": "Merge me"}}).to_string();

    let array = put_to(
        &relay.url,
        "direct-array",
        json!({"data": data, "tags": ["a"]}),
    )
    .await;
    assert_eq!(array.status, 500, "GUN refuses arrays");
    let empty = client()
        .post(format!("{}/put", relay.url))
        .timeout(std::time::Duration::from_secs(2))
        .insert_header(("content-type", "application/json"))
        .send_body(
            json!({"soul": format!("{P}:direct-empty"), "data": {"data": data, "oip": {}}})
                .to_string(),
        )
        .await;
    assert!(
        matches!(empty, Err(awc::error::SendRequestError::Timeout)),
        "GUN never acknowledges an empty object: {:?}",
        empty.map(|r| r.status())
    );

    let service = Service::start(&real_relay_config(&relay.url));
    for node in [
        json!({"data": data, "tags": ["a"]}),
        json!({"data": data, "oip": {}}),
    ] {
        let r = put_to(&service.url("/gun-relay"), "refused", node.clone()).await;
        assert_eq!(r.status, 400, "{node}");
        assert_eq!(r.json()["code"], "invalid_body");
    }

    put(
        &service,
        "merged",
        json!({"data": data, "meta": {"publishedBy": "interop-test"}}),
    )
    .await;
    put(
        &service,
        "merged",
        json!({"oip": json!({"recordType": "exercise"}).to_string()}),
    )
    .await;
    let node = get(service.url(&format!("/gun-relay/get?soul={P}:merged")))
        .await
        .json()["data"]
        .clone();
    assert_eq!(node["data"]["basic"]["name"], "Merge me", "{node}");
    assert_eq!(node["oip"]["recordType"], "exercise", "{node}");
    assert!(node["meta"]["#"].is_string(), "{node}");
}

/// A CA and a certificate it signed for `127.0.0.1` and `localhost`, written into `dir`:
/// `(ca.pem, cert.pem, key.pem)`.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "oip-resolver test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca_cert, &ca_key)
        .unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, leaf.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

/// A relay behind TLS with a private CA: trusted through `gun.ca_file` (its write feed too, over
/// `wss://`); without it every read
/// says what is wrong (502 `relay_misconfigured` naming the certificate and the setting), the
/// breaker stays closed (a certificate is not an outage), readiness fails and one WARN line
/// says why.
#[actix_web::test]
async fn an_https_relay_is_trusted_with_its_ca_file_and_refused_without() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let Some(relay) = start_relay_with(RelaySetup {
        tls: Some((cert, key)),
        ..RelaySetup::default()
    }) else {
        return;
    };
    assert!(relay.url.starts_with("https://"), "{}", relay.url);

    let trusted = Service::start(&real_relay_config(&relay.url).with(|c| c.gun.ca_file = Some(ca)));
    put(
        &trusted,
        "tls-ex",
        publisher_node(json!({"basic": {"name": "Over TLS"}}), "exercise"),
    )
    .await;
    let r = get(trusted.url(&format!("/api/records?did=did:gun:{P}:tls-ex"))).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["records"][0]["data"]["basic"]["name"], "Over TLS");
    assert_eq!(get(trusted.url("/health/ready")).await.status, 200);
    wait_for_watch(&trusted, "live").await;

    let untrusted =
        Service::start(&real_relay_config(&relay.url).with(|c| c.gun.breaker_failures = 2));
    for _ in 0..5 {
        let r = get(untrusted.url(&format!("/gun-relay/get?soul={P}:tls-ex"))).await;
        assert_eq!(r.status, 502);
        let body = r.json();
        assert_eq!(body["code"], "relay_misconfigured");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains("certificate") && error.contains("gun.ca_file"),
            "{error}"
        );
    }
    assert_eq!(
        metric(&untrusted, "oip_gun_circuit_open").await,
        Some(0.0),
        "a certificate the service does not trust is not an outage"
    );
    let ready = get(untrusted.url("/health/ready")).await;
    assert_eq!(ready.status, 503);
    let ready = ready.json();
    assert_eq!(ready["relay"], "misconfigured");
    assert!(
        ready["relays"][0]["problem"]
            .as_str()
            .is_some_and(|p| p.contains("TLS handshake failed") && !p.contains("UnknownIssuer")),
        "{ready}"
    );
    assert_eq!(get(untrusted.url("/health/live")).await.status, 200);
    let warnings = untrusted
        .log()
        .iter()
        .filter(|l| l.contains("WARN") && l.contains("TLS handshake failed"))
        .count();
    assert_eq!(warnings, 1, "{:#?}", untrusted.log());
}

/// Stops or starts a relay off the test's thread, so that the load it runs goes on meanwhile.
async fn in_background(mut relay: GunRelay, change: fn(&mut GunRelay)) -> GunRelay {
    actix_web::rt::task::spawn_blocking(move || {
        change(&mut relay);
        relay
    })
    .await
    .unwrap()
}

/// Waits until `relay` holds `local`, synced from its peer.
async fn wait_until_relay_has(relay: &GunRelay, local: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(format!("{}/get?soul={P}:{local}", relay.url))
        .await
        .status
        != 200
    {
        assert!(
            Instant::now() < deadline,
            "{local} never reached {}",
            relay.url
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two real relays that sync through GUN; the service lists both. Under a steady load of
/// resolutions (record cache off, so every one asks a relay), the first relay is killed, then
/// started again on its port: no request fails, and the restarted relay takes traffic again.
#[actix_web::test]
async fn one_of_two_relays_killed_under_load_fails_no_request() {
    let Some(first) = start_gun_relay() else {
        return;
    };
    let second = start_relay_with(RelaySetup {
        peers: vec![first.peer_url()],
        ..RelaySetup::default()
    })
    .expect("a second relay starts where the first did");
    let service = Service::start(&real_relay_config(&first.url).with(|c| {
        c.gun.relay_urls = vec![first.url.clone(), second.url.clone()];
        c.gun.breaker_open_ms = 300;
        c.record_cache.ttl_secs = 0;
    }));
    let did = |local: &str| format!("did:gun:{P}:{local}");
    for (local, name) in [("fo-ex1", "Lunge"), ("fo-ex2", "Plank")] {
        let node = publisher_node(json!({"basic": {"name": name}}), "exercise");
        put(&service, local, node).await;
    }
    let workout = json!({"basic": {"name": "Fail-over"}, "workout": {"exercise": [did("fo-ex1"), did("fo-ex2")]}});
    put(&service, "fo-workout", publisher_node(workout, "workout")).await;
    for local in ["fo-ex1", "fo-ex2", "fo-workout"] {
        wait_until_relay_has(&second, local).await;
    }

    let url = service.url(&format!(
        "/api/records?did={}&resolveDepth=1",
        did("fo-workout")
    ));
    let running = std::rc::Rc::new(std::cell::Cell::new(true));
    // A peered GUN relay answers a read in ~100 ms (it asks its peers too): 32 clients keep
    // both relays busy.
    let clients: Vec<_> = (0..32)
        .map(|_| {
            let (url, running) = (url.clone(), running.clone());
            actix_web::rt::spawn(async move {
                let (mut sent, mut failed) = (0u64, Vec::new());
                while running.get() {
                    let r = get(&url).await;
                    sent += 1;
                    let complete = r.status == 200
                        && r.json()["records"][0]["data"]["workout"]["exercise"][1]["data"]
                            ["basic"]["name"]
                            == "Plank";
                    if !complete {
                        failed.push(format!(
                            "{}: {}",
                            r.status,
                            String::from_utf8_lossy(&r.body)
                        ));
                    }
                }
                (sent, failed)
            })
        })
        .collect();

    actix_web::rt::time::sleep(Duration::from_millis(800)).await;
    let first = in_background(first, GunRelay::stop).await;
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    let first_open = format!("oip_gun_relay_circuit_open{{relay=\"{}\"}}", first.url);
    let second_open = format!("oip_gun_relay_circuit_open{{relay=\"{}\"}}", second.url);
    assert_eq!(
        metric(&service, &first_open).await,
        Some(1.0),
        "{first_open}"
    );
    assert_eq!(
        metric(&service, &second_open).await,
        Some(0.0),
        "{second_open}"
    );
    assert_eq!(
        metric(&service, "oip_gun_circuit_open").await,
        Some(0.0),
        "one relay is still usable"
    );
    let first = in_background(first, GunRelay::start_again).await;
    let back = Instant::now();
    let stats = format!("{}/stats", first.url);
    while get(&stats).await.json()["gets"]
        .as_object()
        .unwrap()
        .is_empty()
    {
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "the restarted relay never took traffic again"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let took_traffic = back.elapsed();
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    running.set(false);
    let (mut sent, mut failed) = (0, Vec::new());
    for client in clients {
        let (n, f) = client.await.unwrap();
        sent += n;
        failed.extend(f);
    }
    let _ = writeln!(
        std::io::stderr(),
        "fail-over: {sent} resolutions, {} failed; the restarted relay took traffic again {} ms after it listened",
        failed.len(),
        took_traffic.as_millis()
    );
    assert!(
        failed.is_empty(),
        "{} of {sent} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    assert!(sent > 100, "the load was real: {sent} resolutions");
    assert!(
        metric(&service, "oip_gun_failovers_total").await > Some(0.0),
        "reads moved to the second relay"
    );
    let failures = format!("oip_gun_relay_failures_total{{relay=\"{}\"}}", first.url);
    assert!(metric(&service, &failures).await > Some(0.0), "{failures}");
    for relay in [&first.url, &second.url] {
        let requests = format!("oip_gun_relay_requests_total{{relay=\"{relay}\"}}");
        assert!(metric(&service, &requests).await > Some(0.0), "{requests}");
    }
    let health = get(service.url("/health")).await.json();
    assert_eq!(health["relays"][0]["state"], "reachable", "{health}");
    assert_eq!(health["relays"][1]["state"], "reachable", "{health}");
}

/// A relay outage with one relay: a record read before it is served stale past its TTL while the
/// relay is down; once the relay is back, a change written to it meanwhile is seen as soon as the
/// breaker lets a probe through (`gun.breaker_open_ms`).
#[actix_web::test]
async fn after_an_outage_a_changed_record_is_seen_once_the_relay_is_back() {
    let Some(relay) = start_gun_relay() else {
        return;
    };
    let service = Service::start(&real_relay_config(&relay.url).with(|c| {
        c.record_cache.ttl_secs = 1;
        c.gun.breaker_failures = 2;
        c.gun.breaker_open_ms = 1000;
    }));
    let named = |name: &str| publisher_node(json!({"basic": {"name": name}}), "exercise");
    put(&service, "outage-ex", named("Before")).await;
    let url = service.url(&format!("/api/records?did=did:gun:{P}:outage-ex"));
    let name = |r: &Reply| r.json()["records"][0]["data"]["basic"]["name"].clone();
    assert_eq!(name(&get(&url).await), "Before");

    let relay = in_background(relay, GunRelay::stop).await;
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..3 {
        let r = get(&url).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(name(&r), "Before");
        assert_eq!(r.json()["resolution"]["stale"], 1);
    }

    let relay = in_background(relay, GunRelay::start_again).await;
    let changed = put_to(&relay.url, "outage-ex", named("After")).await;
    assert_eq!(changed.status, 200);
    let back = Instant::now();
    loop {
        let r = get(&url).await;
        // The write comes back on the feed, which may reconnect before the breaker lets a
        // probe through: the stale copy is gone then (it is out of date), and the read is
        // 503 until the probe.
        let circuit_open = r.status == 503 && r.json()["code"] == "relay_circuit_open";
        assert!(
            r.status == 200 || circuit_open,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        if r.status == 200 && name(&r) == "After" {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "never saw the change"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = writeln!(
        std::io::stderr(),
        "outage: the changed record was seen {} ms after the relay came back (breaker_open_ms 1000)",
        back.elapsed().as_millis()
    );
}

/// Asks the service for `local` through the relay proxy until it is found: how long after
/// `start` (the write set out) the first read not answered from the negative cache set out (the
/// invalidation), and the record was served (that read's trip to the relay added).
async fn time_until_found(service: &Service, local: &str, start: Instant) -> (Duration, Duration) {
    let url = service.url(&format!("/gun-relay/get?soul={P}:{local}"));
    loop {
        let asked = start.elapsed();
        let r = get(&url).await;
        if r.header("x-cache").as_deref() != Some("NEGATIVE") {
            assert_eq!(
                r.status,
                200,
                "{local}: {}",
                String::from_utf8_lossy(&r.body)
            );
            return (asked, start.elapsed());
        }
        assert!(asked < Duration::from_secs(10), "{local} was never seen");
        actix_web::rt::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Asks for `local` until the service answers it known missing (`X-Cache: NEGATIVE`).
async fn cache_as_missing(service: &Service, local: &str) {
    let url = service.url(&format!("/gun-relay/get?soul={P}:{local}"));
    assert_eq!(get(&url).await.status, 404);
    let again = get(&url).await;
    assert_eq!(again.status, 404);
    assert_eq!(again.header("x-cache").as_deref(), Some("NEGATIVE"));
}

/// "invalidated after M ms (median), W ms (worst); served after ..." of `times`.
fn figures(times: &[(Duration, Duration)]) -> String {
    let summary = |mut ms: Vec<Duration>| {
        ms.sort();
        let median = ms[ms.len() / 2].as_secs_f64() * 1000.0;
        let worst = ms.last().unwrap().as_secs_f64() * 1000.0;
        format!("{median:.1} ms (median), {worst:.1} ms (worst)")
    };
    format!(
        "invalidated after {}; served after {}, of {}",
        summary(times.iter().map(|t| t.0).collect()),
        summary(times.iter().map(|t| t.1).collect()),
        times.len()
    )
}

/// A publisher writes straight to the relay a soul the service has cached as missing: the
/// relay's broadcast drops it from the negative cache, so the next read finds it, at the cost of
/// one more relay request. Without the feed it would stay missing for the negative TTL (an hour).
#[actix_web::test]
async fn a_soul_written_straight_to_the_relay_is_seen_at_once() {
    let Some(relay) = start_gun_relay() else {
        return;
    };
    let service = Service::start(&real_relay_config(&relay.url));
    wait_for_watch(&service, "live").await;
    let mut times = Vec::new();
    for i in 0..10 {
        let local = format!("direct-{i}");
        cache_as_missing(&service, &local).await;
        let start = Instant::now();
        let node = publisher_node(json!({"basic": {"name": "Late"}}), "exercise");
        let written = actix_web::rt::spawn(put_to(relay.url.clone(), local.clone(), node));
        times.push(time_until_found(&service, &local, start).await);
        assert_eq!(written.await.unwrap().status, 200);
        assert_eq!(
            relay_gets(&relay, &local).await,
            2,
            "the miss, then the find"
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "watch: a direct write to the relay: {}",
        figures(&times)
    );
    assert!(metric(&service, "oip_gun_watch_invalidations_total").await >= Some(10.0));
    assert!(metric(&service, "oip_gun_watch_frames_total").await >= Some(10.0));
}

/// Two replicas on one relay: a put through one is seen by the other, whose negative cache
/// held the soul.
#[actix_web::test]
async fn a_put_through_one_replica_is_seen_by_another() {
    let Some(relay) = start_gun_relay() else {
        return;
    };
    let (one, other) = (
        Service::start(&real_relay_config(&relay.url)),
        Service::start(&real_relay_config(&relay.url)),
    );
    wait_for_watch(&one, "live").await;
    wait_for_watch(&other, "live").await;
    let mut times = Vec::new();
    for i in 0..10 {
        let local = format!("replica-{i}");
        cache_as_missing(&other, &local).await;
        let start = Instant::now();
        let node = publisher_node(json!({"basic": {"name": "Elsewhere"}}), "exercise");
        let written = actix_web::rt::spawn(put_to(one.url("/gun-relay"), local.clone(), node));
        times.push(time_until_found(&other, &local, start).await);
        assert_eq!(written.await.unwrap().status, 200);
    }
    let _ = writeln!(
        std::io::stderr(),
        "watch: a put through another replica: {}",
        figures(&times)
    );
}

/// A fetch on its way when its soul is written must not cache the 404 it brings back: that
/// answer predates the write. The relay here takes 1.5 s to say "not found"; the write lands
/// in the middle.
#[actix_web::test]
async fn a_write_racing_an_in_flight_404_is_not_hidden() {
    let Some(relay) = start_relay_with(RelaySetup {
        miss_wait_ms: Some(1500),
        ..RelaySetup::default()
    }) else {
        return;
    };
    let service = Service::start(&real_relay_config(&relay.url));
    wait_for_watch(&service, "live").await;
    let url = service.url(&format!("/gun-relay/get?soul={P}:racing"));
    let asking = actix_web::rt::spawn(get(url.clone()));
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let node = publisher_node(json!({"basic": {"name": "Raced"}}), "exercise");
    assert_eq!(put_to(&relay.url, "racing", node).await.status, 200);
    assert_eq!(
        asking.await.unwrap().status,
        404,
        "the relay's answer predates the write"
    );
    let after = get(&url).await;
    assert_eq!(after.status, 200, "the 404 on its way was not cached");
    assert_eq!(after.header("x-cache").as_deref(), Some("MISS"));
}

/// The relay restarts: the feed goes down and comes back. A soul cached as missing after the
/// restart but before the feed reconnected, then written while the feed was still down (so its
/// broadcast was never seen), is found once the feed is back: a feed going live again drops
/// what was cached while no feed listened.
#[actix_web::test]
async fn the_feed_reconnects_after_a_relay_restart_and_what_it_missed_is_seen() {
    let Some(relay) = start_gun_relay() else {
        return;
    };
    let service = Service::start(&real_relay_config(&relay.url));
    wait_for_watch(&service, "live").await;
    let relay = in_background(relay, GunRelay::stop).await;
    wait_for_watch(&service, "down").await;
    let relay = in_background(relay, GunRelay::start_again).await;
    let url = service.url(&format!("/gun-relay/get?soul={P}:while-down"));
    let missed = get(&url).await;
    assert_eq!(missed.status, 404);
    let node = publisher_node(json!({"basic": {"name": "Missed"}}), "exercise");
    assert_eq!(put_to(&relay.url, "while-down", node).await.status, 200);
    wait_for_watch(&service, "live").await;
    let found = get(&url).await;
    assert_eq!(
        found.status,
        200,
        "{}",
        String::from_utf8_lossy(&found.body)
    );
    assert!(metric(&service, "oip_gun_watch_reconnects_total").await >= Some(1.0));
    let log = service.log();
    for said in ["write feed down", "write feed live"] {
        assert!(log.iter().any(|l| l.contains(said)), "{said}: {log:#?}");
    }
}

/// A relay with AXE routing does not broadcast writes to a socket that never asked: the canary
/// never comes back, the feed is reported unsupported with a WARN line, and negative entries
/// last only `negative_cache.ttl_without_watch_secs`.
#[actix_web::test]
async fn a_relay_that_does_not_broadcast_is_detected_and_reported() {
    let Some(relay) = start_relay_with(RelaySetup {
        axe: true,
        ..RelaySetup::default()
    }) else {
        return;
    };
    let service = Service::start(
        &real_relay_config(&relay.url).with(|c| c.negative_cache.ttl_without_watch_secs = 1),
    );
    wait_for_watch(&service, "unsupported").await;
    let warned = service
        .wait_for_line("canary write never came back", Duration::from_secs(1))
        .expect("a WARN line");
    assert!(
        warned.contains("WARN") && warned.contains("ttl_without_watch_secs"),
        "{warned}"
    );
    assert_eq!(
        metric(
            &service,
            &format!("oip_gun_watch_live{{relay=\"{}\"}}", relay.url)
        )
        .await,
        Some(0.0)
    );
    cache_as_missing(&service, "axe-missing").await;
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    let url = service.url(&format!("/gun-relay/get?soul={P}:axe-missing"));
    assert_eq!(get(&url).await.header("x-cache").as_deref(), Some("MISS"));
    assert_eq!(relay_gets(&relay, "axe-missing").await, 2);
}

/// A publisher's valid token, tried the three ways that overwrote another publisher's record on
/// a real relay (metadata naming its soul, a link to it, a nested object under a key that links
/// to it): the victim's record is unchanged after each, and the writer's own nested object lands
/// under its own soul.
#[actix_web::test]
async fn a_publisher_writes_only_its_own_souls_on_a_real_relay() {
    let Some(relay) = start_gun_relay() else {
        return;
    };
    const SECRET: &str = "interop-test-jwt-secret";
    let key = "02interop-publisher-public-key";
    let own = oip_resolver::auth::publisher_prefix(key);
    let token = jwt(&json!({ "publicKey": key }), SECRET);
    let victim = format!("{P}:victim");
    let record = |name: &str| json!({"data": json!({"basic": {"name": name}}).to_string()});
    let r = put_node(&relay.url, &victim, record("Victim"), None).await;
    assert_eq!(r.status, 200);
    // A link to the victim written straight to the relay (anyone can), before the service's put.
    let planted = format!("{own}:planted");
    let link = json!({"meta": {"#": victim}});
    assert_eq!(
        put_node(&relay.url, &planted, link.clone(), None)
            .await
            .status,
        200
    );

    let service = Service::start(
        &real_relay_config(&relay.url).with(|c| c.auth.jwt_secret = Some(SECRET.into())),
    );
    let base = service.url("/gun-relay");
    let victim_name = || async {
        let node = get(format!("{}/get?soul={victim}", relay.url)).await.json();
        node["data"]["data"]["basic"]["name"].clone()
    };
    let pwned = json!({"data": json!({"basic": {"name": "Pwned"}}).to_string()});
    for (soul, node, status, code) in [
        (
            format!("{own}:a"),
            json!({"_": {"#": victim}, "data": "{}"}),
            400,
            "invalid_body",
        ),
        (
            format!("{own}:b"),
            json!({"meta": {"_": {"#": victim}, "data": "{}"}}),
            400,
            "invalid_body",
        ),
        (format!("{own}:c"), link, 403, "forbidden"),
        (planted.clone(), json!({"meta": pwned}), 200, ""),
    ] {
        let r = put_node(&base, &soul, node.clone(), Some(&token)).await;
        assert_eq!(
            r.status,
            status,
            "{node}: {}",
            String::from_utf8_lossy(&r.body)
        );
        if status != 200 {
            assert_eq!(r.json()["code"], code, "{node}");
        }
        assert_eq!(victim_name().await, "Victim", "after {node}");
    }
    let own_meta = get(format!("{}/get?soul={planted}/meta", relay.url))
        .await
        .json();
    assert_eq!(
        own_meta["data"]["data"]["basic"]["name"], "Pwned",
        "{own_meta}"
    );
    let planted_node = get(format!("{}/get?soul={planted}", relay.url))
        .await
        .json();
    assert_eq!(planted_node["data"]["meta"]["#"], format!("{planted}/meta"));

    let mut many = serde_json::Map::new();
    for i in 0..=oip_resolver::gun::write::MAX_NESTED_NODES {
        many.insert(format!("k{i}"), json!({"v": i}));
    }
    let r = put_node(
        &base,
        &format!("{own}:many"),
        Value::Object(many),
        Some(&token),
    )
    .await;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
}

/// A hot soul written 40 times, as fast as the relay takes them, straight on it: each write used
/// to drop it,
/// and every read after was a trip to the relay (6,859 answers/s fell to 10). Writes to one soul
/// within a second invalidate it once, and once more when the second ends, so the last write is
/// seen within a second of it; and writes to souls nobody read leave kept answers alone.
#[actix_web::test]
async fn writes_on_the_feed_cost_what_they_touch() {
    let Some(relay) = start_gun_relay() else {
        return;
    };
    let service = Service::start(&real_relay_config(&relay.url));
    wait_for_watch(&service, "live").await;
    let named = |i: usize| publisher_node(json!({"basic": {"name": format!("v{i}")}}), "exercise");
    assert_eq!(put_to(&relay.url, "hot", named(0)).await.status, 200);
    assert_eq!(put_to(&relay.url, "kept", named(0)).await.status, 200);
    let kept = service.url(&format!("/api/records?did=did:gun:{P}:kept&resolveDepth=0"));
    get(&kept).await;
    assert_eq!(get(&kept).await.header("x-cache").as_deref(), Some("HIT"));
    for i in 0..10 {
        assert_eq!(
            put_to(&relay.url, format!("cold-{i}"), named(i))
                .await
                .status,
            200
        );
    }
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        get(&kept).await.header("x-cache").as_deref(),
        Some("HIT"),
        "writes to souls nobody read left the kept answer alone"
    );
    let hot = service.url(&format!("/gun-relay/get?soul={P}:hot"));
    assert_eq!(get(&hot).await.status, 200);
    let before = relay_gets(&relay, "hot").await;

    let writer = actix_web::rt::spawn({
        let url = relay.url.clone();
        async move {
            for i in 1..=40 {
                assert_eq!(put_to(&url, "hot", named(i)).await.status, 200);
            }
            for i in 0..10 {
                assert_eq!(
                    put_to(&url, format!("cold-{i}"), named(i)).await.status,
                    200
                );
            }
        }
    });
    let (mut reads, started) = (0, Instant::now());
    while !writer.is_finished() {
        assert_eq!(get(&hot).await.status, 200);
        reads += 1;
    }
    writer.await.unwrap();
    let (sent, secs) = (
        relay_gets(&relay, "hot").await - before,
        started.elapsed().as_secs_f64(),
    );
    // At most one invalidation a second, and one more as each second ends.
    assert!(
        (sent as f64) <= (2.0 * secs).ceil() + 1.0 && sent < 40,
        "{sent} relay reads of the hot soul in {secs:.1} s, for {reads} reads of it and 40 writes"
    );
    let last = Instant::now();
    loop {
        let node = get(&hot).await.json();
        if node["data"]["data"]["basic"]["name"] == "v40" {
            break;
        }
        assert!(
            last.elapsed() < Duration::from_secs(3),
            "the last write was never seen: {node}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A feed frame naming more souls than `gun.watch_max_souls_per_frame` drops the caches
/// wholesale, rather than soul by soul; one under it drops only what it names.
#[actix_web::test]
async fn a_frame_past_the_soul_limit_drops_the_caches_wholesale() {
    let Some(relay) = start_gun_relay() else {
        return;
    };
    let service = Service::start(
        &real_relay_config(&relay.url).with(|c| c.gun.watch_max_souls_per_frame = 5),
    );
    wait_for_watch(&service, "live").await;
    let node = publisher_node(json!({"basic": {"name": "Cached"}}), "exercise");
    assert_eq!(put_to(&relay.url, "cached", node).await.status, 200);
    let url = service.url(&format!("/gun-relay/get?soul={P}:cached"));
    get(&url).await;
    let cache = |r: Reply| r.header("x-cache");
    assert_eq!(cache(get(&url).await).as_deref(), Some("HIT"));
    let nested = |n: usize| {
        let mut node = serde_json::Map::new();
        for i in 0..n {
            node.insert(format!("k{i}"), json!({"v": i}));
        }
        Value::Object(node)
    };
    // The parent and 3 nested nodes: 4 souls, under the limit.
    assert_eq!(put_to(&relay.url, "small", nested(3)).await.status, 200);
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cache(get(&url).await).as_deref(), Some("HIT"));
    // The parent and 6 nested nodes: past it.
    assert_eq!(put_to(&relay.url, "large", nested(6)).await.status, 200);
    let deadline = Instant::now() + Duration::from_secs(3);
    while cache(get(&url).await).as_deref() == Some("HIT") {
        assert!(Instant::now() < deadline, "the caches were never dropped");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}
