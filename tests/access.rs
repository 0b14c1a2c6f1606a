//! Who reads what on `GET /api/records`, against the real GUN relay with records written the
//! way the old publisher writes them (`data` and `oip` as JSON strings, arrays as JSON strings,
//! `meta` a nested object; an encrypted record's `data` an object `{encrypted, iv, tag}`, so
//! that GUN keeps `data` and `meta` as nodes of their own): private records are their owner's
//! at every depth, an encrypted one is opened for its owner only, answers kept whole are never
//! served across users, and `/gun-relay/get` stays the relay's raw node for peers.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{gun_relay::*, *};
use serde_json::{json, Value};

const SECRET: &str = "access-test-jwt-secret";
/// The owner of the encrypted corpus record (`tests/corpus/encrypted-note.json`).
const ALICE: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
const BOB: &str = "03b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
/// The old publisher's souls carry its server key's prefix, whoever the record's owner is.
const PUB: &str = "f221527bf872";

fn token(key: &str, valid_for: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    jwt(
        &json!({"publicKey": key, "email": "someone@example.com", "userId": key[..8], "exp": now + valid_for}),
        SECRET,
    )
}

/// Who asks, in the order of the table: no token, the owner, another user, the owner with an
/// expired token, a token signed with another secret.
fn callers() -> Vec<(&'static str, Option<String>)> {
    vec![
        ("anonymous", None),
        ("alice", Some(token(ALICE, 3600))),
        ("bob", Some(token(BOB, 3600))),
        ("expired", Some(token(ALICE, -10))),
        (
            "forged",
            Some(jwt(&json!({"publicKey": ALICE}), "another-secret-entirely")),
        ),
    ]
}

fn did(local: &str) -> String {
    format!("did:gun:{PUB}:{local}")
}

fn private(owner: &str) -> Value {
    json!({"access_level": "private", "owner_public_key": owner, "created_by": owner})
}

fn oip(local: &str, record_type: &str) -> Value {
    json!({"did": did(local), "didTx": did(local), "recordType": record_type, "ver": "0.8.0"})
}

/// A record as the old publisher puts it to the relay.
fn published(local: &str, record_type: &str, data: Value) -> Value {
    let mut n = node(data, oip(local, record_type));
    n["meta"] = json!({"created": 1735689600000_u64, "localId": local, "encrypted": false});
    n
}

fn corpus() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(repo_path("tests/corpus/encrypted-note.json")).unwrap(),
    )
    .unwrap()
}

/// Every record of the tests, written to the relay's own `/put` as the publisher writes them.
async fn publish(relay: &GunRelay) {
    let records = [
        (
            "note",
            published(
                "note",
                "notes",
                json!({"basic": {"name": "Meeting note", "date": 1735689600},
                       "notes": {"note_type": "MEETING", "transcript_full_text": did("note:transcript")},
                       "accessControl": private(ALICE)}),
            ),
        ),
        (
            "note:transcript",
            published(
                "note:transcript",
                "text",
                json!({"basic": {"name": "Transcript"}, "text": {"value": "secret words"},
                       "accessControl": private(ALICE)}),
            ),
        ),
        (
            "post",
            published(
                "post",
                "post",
                json!({"basic": {"name": "A public post"},
                       "post": {"image": [did("img-private"), did("img-public")]}}),
            ),
        ),
        (
            "img-private",
            published(
                "img-private",
                "image",
                json!({"basic": {"name": "Private image"}, "accessControl": private(ALICE)}),
            ),
        ),
        (
            "img-public",
            published(
                "img-public",
                "image",
                json!({"basic": {"name": "Public image"}, "accessControl": {"access_level": "public"}}),
            ),
        ),
        (
            "session",
            published(
                "session",
                "conversationSession",
                json!({"basic": {"name": "Old session"},
                       "conversationSession": {"is_private": true, "owner_public_key": ALICE}}),
            ),
        ),
        (
            "shared",
            published(
                "shared",
                "text",
                json!({"basic": {"name": "Shared"}, "accessControl": {"access_level": "shared", "created_by": BOB}}),
            ),
        ),
        (
            "org",
            published(
                "org",
                "text",
                json!({"basic": {"name": "Organization"},
                       "accessControl": {"access_level": "organization", "owner_public_key": ALICE,
                                         "shared_with": "[\"did:arweave:org\"]"}}),
            ),
        ),
    ];
    for (local, node) in records {
        let r = put_node(&relay.url, &format!("{PUB}:{local}"), node, None).await;
        assert_eq!(r.status, 200, "{local}");
    }
    let v = corpus();
    let sealed = &v["put"];
    let soul = sealed["soul"].as_str().unwrap();
    assert_eq!(
        put_node(&relay.url, soul, sealed["data"].clone(), None)
            .await
            .status,
        200
    );
    let mut salted = sealed["data"].clone();
    salted["data"] = v["saltedKey"].clone();
    salted["oip"] = oip("salted", "text").to_string().into();
    let salted_soul = format!("{PUB}:salted");
    assert_eq!(
        put_node(&relay.url, &salted_soul, salted, None)
            .await
            .status,
        200
    );
    // GUN may answer a node before its links are there: the tests read once they are.
    for soul in [soul.to_string(), salted_soul] {
        for _ in 0..100 {
            let n = get(format!("{}/get?soul={soul}", relay.url)).await;
            if n.status == 200 && n.json()["data"]["data"]["#"].is_string() {
                break;
            }
            actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

fn sealed_did() -> String {
    format!("did:gun:{}", corpus()["put"]["soul"].as_str().unwrap())
}

async fn ask(service: &impl Served, query: &str, token: Option<&str>) -> Reply {
    let mut req = client().get(service.url(&format!("/api/records?{query}")));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    send(req).await
}

fn reasons(answer: &Value) -> Vec<(String, String)> {
    answer["resolution"]["unresolved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["did"].as_str().unwrap().to_string(),
                u["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn service_for(relay: &GunRelay) -> Service {
    Service::start(&relay_config(&relay.url).with(|c| {
        c.gun.watch = true;
        c.auth.jwt_secret = Some(SECRET.into());
    }))
}

#[actix_web::test]
async fn each_caller_sees_what_the_old_rules_and_every_depth_allow() {
    let Some(relay) = start_gun_relay() else {
        return;
    };
    publish(&relay).await;
    let service = service_for(&relay);
    for (who, token) in callers() {
        let token = token.as_deref();
        let alice = who == "alice";
        let view = |query: String| {
            let service = &service;
            async move {
                let r = ask(service, &query, token).await;
                assert_eq!(
                    r.status,
                    200,
                    "{who} {query}: {}",
                    String::from_utf8_lossy(&r.body)
                );
                r.json()
            }
        };

        // The private note and its transcript: the owner's, whole; nobody else's, not even known.
        let note = view(format!("did={}&resolveDepth=1", did("note"))).await;
        if alice {
            let transcript = &note["records"][0]["data"]["notes"]["transcript_full_text"];
            assert_eq!(transcript["data"]["text"]["value"], "secret words", "{who}");
            assert_eq!(note["auth"]["user"]["publicKey"], ALICE);
        } else {
            assert_eq!(note["records"], json!([]), "{who}: {note}");
            assert_eq!(note["searchResults"], 0);
            assert_eq!(reasons(&note), [(did("note"), "not_found".into())], "{who}");
            assert_eq!(note["auth"]["authenticated"], who == "bob", "{who}");
        }

        // A public post embedding a private image: the image stays its DID for everyone else,
        // names-only too (the old API showed it to anyone).
        for names_only in [false, true] {
            let post = view(format!(
                "did={}&resolveDepth=1&resolveNamesOnly={names_only}",
                did("post")
            ))
            .await;
            let images = &post["records"][0]["data"]["post"]["image"];
            let name = |image: &Value| match names_only {
                true => image.clone(),
                false => image["data"]["basic"]["name"].clone(),
            };
            assert_eq!(name(&images[1]), "Public image", "{who}");
            if alice {
                assert_eq!(name(&images[0]), "Private image", "{who}");
            } else {
                assert_eq!(
                    images[0],
                    did("img-private"),
                    "{who} names-only {names_only}"
                );
                assert_eq!(
                    reasons(&post),
                    [(did("img-private"), "forbidden".into())],
                    "{who}"
                );
            }
        }

        // Encrypted by the old publisher for Alice: opened for her, nobody else's.
        let sealed = view(format!("did={}&resolveDepth=0", sealed_did())).await;
        if alice {
            let data = &sealed["records"][0]["data"];
            assert_eq!(data["text"]["value"], "hello world", "{sealed}");
            assert_eq!(data["basic"]["tagItems"], json!(["alpha", "beta"]));
            assert!(reasons(&sealed).is_empty(), "{sealed}");
        } else {
            assert_eq!(sealed["records"], json!([]), "{who}: {sealed}");
        }

        // Alice's, sealed with a password-salted key this service cannot derive: hers as stored.
        let salted = view(format!("did={}&resolveDepth=0", did("salted"))).await;
        if alice {
            assert!(
                salted["records"][0]["data"]["encrypted"].is_string(),
                "{salted}"
            );
            assert_eq!(reasons(&salted), [(did("salted"), "encrypted".into())]);
        } else {
            assert_eq!(salted["records"], json!([]), "{who}: {salted}");
        }

        // A legacy private session and an organization record: Alice's; a shared one: Bob's.
        for (local, owner) in [("session", "alice"), ("org", "alice"), ("shared", "bob")] {
            let r = view(format!("did={}&resolveDepth=0", did(local))).await;
            let shown = r["records"].as_array().unwrap().len();
            assert_eq!(
                shown,
                usize::from(who == owner),
                "{who} reading {local}: {r}"
            );
        }
    }
}

/// Two users and an anonymous client ask the same DIDs in every order: each gets their own
/// view every time, from the answer cache too.
#[actix_web::test]
async fn answers_kept_whole_never_cross_users() {
    let Some(relay) = start_gun_relay() else {
        return;
    };
    publish(&relay).await;
    let service = service_for(&relay);
    // The feed's canary write, coming back, would drop what was kept so far.
    wait_for_watch(&service, "live").await;
    let tokens: Vec<(&str, Option<String>)> = callers().into_iter().take(3).collect();
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    let mut hits = 0;
    for order in orders {
        for i in order {
            let (who, token) = &tokens[i];
            for local in ["note", "post"] {
                let r = ask(
                    &service,
                    &format!("did={}&resolveDepth=1", did(local)),
                    token.as_deref(),
                )
                .await;
                hits += usize::from(r.header("x-cache").as_deref() == Some("HIT"));
                assert!(r
                    .header("vary")
                    .unwrap_or_default()
                    .contains("Authorization"));
                let answer = r.json();
                let text = answer["records"].to_string();
                let sees_private = text.contains("secret words") || text.contains("Private image");
                assert_eq!(
                    sees_private,
                    *who == "alice",
                    "{who} asked {local} after {order:?}: {text}"
                );
            }
        }
    }
    // Four views have records, each made once then kept; the two empty ones (the note for anyone
    // but Alice) are never kept, as an answer about a missing record is not.
    assert_eq!(
        hits, 20,
        "each of the 4 views with records is made once, then kept"
    );
    assert_eq!(
        metric(&service, "oip_answer_cache_hits_total").await,
        Some(20.0)
    );
}

/// Other OIP nodes sync through `/gun-relay/get`: it stays the relay's node as stored, private
/// and encrypted records included, as the old proxy passed them.
#[actix_web::test]
async fn the_relay_proxy_stays_the_relays_raw_node_for_peers() {
    let Some(relay) = start_gun_relay() else {
        return;
    };
    publish(&relay).await;
    let service = service_for(&relay);
    let note = get(service.url(&format!("/gun-relay/get?soul={PUB}:note"))).await;
    assert_eq!(note.status, 200);
    assert_eq!(
        note.json()["data"]["data"]["accessControl"]["owner_public_key"],
        ALICE
    );
    let soul = corpus()["put"]["soul"].as_str().unwrap().to_string();
    let sealed = get(service.url(&format!("/gun-relay/get?soul={soul}")))
        .await
        .json();
    assert_eq!(
        sealed["data"]["data"]["#"],
        format!("{soul}/data"),
        "{sealed}"
    );
    let data = get(service.url(&format!("/gun-relay/get?soul={soul}/data")))
        .await
        .json();
    assert!(data["data"]["encrypted"].is_string(), "{data}");
}

/// A listing goes to the indexer with the caller's `Authorization`, and what it lists passes
/// the same rules here: an indexer that forgets to filter leaks nothing.
#[actix_web::test]
async fn listings_carry_the_callers_token_and_are_filtered_here_too() {
    let indexer = MockRelay::start();
    let listed = |local: &str, data: Value| json!({"data": data, "oip": oip(local, "text")});
    indexer.set_listing(
        200,
        json!({"message": "Records retrieved successfully", "searchResults": 2, "records": [
            listed("open", json!({"basic": {"name": "Open"}})),
            listed("mine", json!({"basic": {"name": "Alice's"}, "accessControl": private(ALICE)})),
        ]}),
    );
    let service = TestApp::start(test_config().with(|c| {
        c.resolver.oip_api = Some(indexer.url());
        c.auth.jwt_secret = Some(SECRET.into());
    }));
    let alice = token(ALICE, 3600);
    for (who, token, names) in [
        ("anonymous", None, vec!["Open"]),
        ("alice", Some(alice.clone()), vec!["Open", "Alice's"]),
        ("bob", Some(token(BOB, 3600)), vec!["Open"]),
    ] {
        let r = ask(&service, "recordType=text&resolveDepth=0", token.as_deref()).await;
        assert_eq!(r.status, 200);
        let shown: Vec<String> = r.json()["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["data"]["basic"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(shown, names, "{who}");
    }
    let sent = indexer.state.listing_authorizations.lock().unwrap().clone();
    assert_eq!(sent[0], None);
    assert_eq!(sent[1], Some(format!("Bearer {alice}")));
}

/// GUN may answer a record before its `data` is there (only `oip`): such a node is answered as
/// missing and not cached, so the next read, once it is whole, finds it.
#[actix_web::test]
async fn a_record_caught_before_its_data_is_not_cached_as_complete() {
    let relay = MockRelay::start();
    let service = TestApp::start(relay_config(&relay.url()));
    let soul = format!("{PUB}:half");
    relay.insert(&soul, json!({"oip": oip("half", "text").to_string()}));
    let r = ask(
        &service,
        &format!("did=did:gun:{soul}&resolveDepth=0"),
        None,
    )
    .await
    .json();
    assert_eq!(r["records"], json!([]), "{r}");
    relay.insert(
        &soul,
        published("half", "text", json!({"basic": {"name": "Whole"}})),
    );
    let r = ask(
        &service,
        &format!("did=did:gun:{soul}&resolveDepth=0"),
        None,
    )
    .await
    .json();
    assert_eq!(r["records"][0]["data"]["basic"]["name"], "Whole", "{r}");
    assert_eq!(relay.gets(&soul), 2);
}

/// Records written before the publisher stringified `data` and `oip` are nested objects, which
/// GUN keeps as nodes of their own (`<soul>/data`, `<soul>/data/basic`, ...): they are read and
/// put together, and judged like any other; a plain record costs its one read.
#[actix_web::test]
async fn records_kept_in_linked_nodes_are_put_together_and_judged() {
    let Some(relay) = start_gun_relay() else {
        return;
    };
    let older = |name: &str, access: Value| {
        json!({
            "data": {"basic": {"name": name, "tagItems": "[\"old\"]"}, "accessControl": access},
            "oip": {"recordType": "post", "ver": "0.8.0"},
            "meta": {"created": 1700000000000_u64}
        })
    };
    for (local, node) in [
        (
            "older",
            older("Older post", json!({"access_level": "public"})),
        ),
        ("older-private", older("Older private", private(ALICE))),
        (
            "plain",
            published("plain", "post", json!({"basic": {"name": "Plain"}})),
        ),
    ] {
        let r = put_node(&relay.url, &format!("{PUB}:{local}"), node, None).await;
        assert_eq!(r.status, 200, "{local}");
    }
    let service = service_for(&relay);
    let gets = |local: &'static str| {
        let url = relay.url.clone();
        async move {
            let stats = get(format!("{url}/stats")).await.json();
            stats["gets"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(soul, _)| soul.starts_with(&format!("{PUB}:{local}")))
                .map(|(_, n)| n.as_u64().unwrap())
                .sum::<u64>()
        }
    };

    let r = ask(
        &service,
        &format!("did={}&resolveDepth=0", did("older")),
        None,
    )
    .await
    .json();
    let record = &r["records"][0];
    assert_eq!(record["data"]["basic"]["name"], "Older post", "{r}");
    assert_eq!(record["data"]["basic"]["tagItems"], json!(["old"]));
    assert_eq!(record["oip"]["recordType"], "post", "{r}");
    assert!(!r.to_string().contains("\"#\""), "no link stubs: {r}");
    assert!(
        r["resolution"]["fetched"].as_u64().unwrap() >= 4,
        "each part counted: {r}"
    );

    let hidden = ask(
        &service,
        &format!("did={}&resolveDepth=0", did("older-private")),
        None,
    )
    .await
    .json();
    assert_eq!(hidden["records"], json!([]), "{hidden}");
    let theirs = ask(
        &service,
        &format!("did={}&resolveDepth=0", did("older-private")),
        Some(&token(ALICE, 3600)),
    )
    .await
    .json();
    assert_eq!(
        theirs["records"][0]["data"]["basic"]["name"],
        "Older private"
    );

    let before = gets("plain").await;
    let plain = ask(
        &service,
        &format!("did={}&resolveDepth=0", did("plain")),
        None,
    )
    .await
    .json();
    assert_eq!(plain["records"][0]["data"]["basic"]["name"], "Plain");
    assert_eq!(
        gets("plain").await - before,
        1,
        "a plain record costs one read"
    );
}

/// A record kept in nodes of its own is judged whole or not at all: the budget running out
/// before its `accessControl` part, or that part missing from the relay, never leaves the rest
/// to read as public; and a part asked for as a record of its own is not one.
#[actix_web::test]
async fn a_record_read_in_part_is_never_served_and_a_part_is_not_a_record() {
    let relay = MockRelay::start();
    relay.set_miss_delay(10);
    let service = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.auth.jwt_secret = Some(SECRET.into());
        c.resolver.max_upstream_per_request = 4;
    }));
    let secret = json!({"basic": {"name": "SECRET title"}, "abstract": {"text": "SECRET"},
                        "accessControl": private(ALICE)});
    // As GUN keeps an object written whole: every category a node of its own.
    let url = relay.url();
    let split = |local: &str| {
        let (soul, url) = (format!("{PUB}:{local}"), url.clone());
        let node = json!({"data": secret, "oip": oip(local, "post").to_string()});
        async move {
            assert_eq!(put_node(&url, &soul, node, None).await.status, 200);
        }
    };
    split("split").await;
    let alice = token(ALICE, 3600);
    let asked = |local: &str, token: Option<&str>, depth: u32| {
        let query = format!("did={}&resolveDepth={depth}", did(local));
        let service = &service;
        let token = token.map(String::from);
        async move { ask(service, &query, token.as_deref()).await.json() }
    };
    // Root, data, then three categories: the budget of 4 runs out before the last part, and the
    // record is not served in part (a root cut short is 400 budget_exceeded). Its parts are
    // cached now, so its owner's next read fits the budget.
    let anonymous = asked("split", None, 0).await;
    assert!(!anonymous.to_string().contains("SECRET"), "{anonymous}");
    assert_eq!(anonymous["code"], "budget_exceeded", "{anonymous}");
    let theirs = asked("split", Some(&alice), 0).await;
    assert_eq!(theirs["records"][0]["data"]["abstract"]["text"], "SECRET");
    // As a reference, cut short it stays its DID, with reason budget.
    split("split-2").await;
    let holder = json!({"basic": {"name": "Holder"}, "post": {"ref": did("split-2")}});
    let holder_node = published("holder", "post", holder);
    assert_eq!(
        put_node(&url, &format!("{PUB}:holder"), holder_node, None)
            .await
            .status,
        200
    );
    let held = asked("holder", None, 1).await;
    assert!(!held.to_string().contains("SECRET"), "{held}");
    assert_eq!(held["records"][0]["data"]["post"]["ref"], did("split-2"));
    assert_eq!(reasons(&held), [(did("split-2"), "budget".into())]);

    // Its accessControl part not on the relay (yet): not served either.
    split("dangling").await;
    relay
        .state
        .nodes
        .lock()
        .unwrap()
        .remove(&format!("{PUB}:dangling/data/accessControl"));
    let service_room = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.auth.jwt_secret = Some(SECRET.into());
    }));
    let dangling = ask(
        &service_room,
        &format!("did={}&resolveDepth=0", did("dangling")),
        None,
    )
    .await
    .json();
    assert_eq!(dangling["records"], json!([]), "{dangling}");
    let whole = ask(
        &service_room,
        &format!("did={}&resolveDepth=0", did("split")),
        Some(&alice),
    )
    .await
    .json();
    assert_eq!(
        whole["records"][0]["data"]["abstract"]["text"], "SECRET",
        "{whole}"
    );

    // A part of a record asked for as a record: not one, and no request for it.
    let before = relay.total_gets();
    for part in ["split/data", "split/data/abstract", "split/meta"] {
        let r = ask(
            &service_room,
            &format!("did={}&resolveDepth=0", did(part)),
            None,
        )
        .await
        .json();
        assert_eq!(r["records"], json!([]), "{part}: {r}");
    }
    assert_eq!(relay.total_gets(), before);
}

/// An answer the access rules made empty reads like one about a missing record: the same
/// `X-Cache`, the same counts.
#[actix_web::test]
async fn a_record_hidden_from_the_caller_reads_like_a_missing_one() {
    let relay = MockRelay::start();
    relay.set_miss_delay(10);
    let service = TestApp::start(
        relay_config(&relay.url()).with(|c| c.auth.jwt_secret = Some(SECRET.into())),
    );
    let sealed = corpus()["put"].clone();
    let soul = sealed["soul"].as_str().unwrap();
    assert_eq!(
        put_node(&relay.url(), soul, sealed["data"].clone(), None)
            .await
            .status,
        200
    );
    let shape = |r: Reply| {
        let body = r.json();
        let figures = &body["resolution"];
        (
            r.header("x-cache"),
            body["records"].clone(),
            figures["fetched"].clone(),
            figures["fromCache"].clone(),
            figures["unresolved"][0]["reason"].clone(),
        )
    };
    let private = format!("did=did:gun:{soul}&resolveDepth=0");
    let missing = format!("did=did:gun:{PUB}:never-written&resolveDepth=0");
    for round in 0..3 {
        let (a, b) = (
            ask(&service, &private, None).await,
            ask(&service, &missing, None).await,
        );
        assert_eq!(shape(a), shape(b), "round {round}");
    }
}
