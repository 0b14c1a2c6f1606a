//! The old API's answers, for the old API's records: a corpus written to the real GUN relay
//! exactly as the old publisher wrote it (`tests/corpus/old-api/records.json`: arrays
//! stringified, `data`/`oip` as JSON strings, `meta` an object GUN turns into a node, and one
//! older record whose `data` and `oip` are nodes of their own), the requests its clients send
//! (`requests.json`), and what the old API answered them (`golden/`), derived by running the old
//! code (`getRecords` → `resolveRecords`) over the same records on the node that published them.
//!
//! Every answer must equal the old one, key order aside and without the keys only the old
//! indexer could fill (`latestArweaveBlockInDB`, `indexingProgress`, `totalRecords`,
//! `queryParams`) or only this service adds (`resolution`). Where this service answers
//! differently on purpose, `deliberate` says how, and the rest of the answer must still equal.

mod common;

use common::{client, get, gun_relay::start_gun_relay, relay_config, repo_path, Served, TestApp};
use serde_json::{json, Value};

fn corpus(file: &str) -> Value {
    let path = repo_path(&format!("tests/corpus/old-api/{file}"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Where `ours` and `old` differ, as JSON paths (at most a few).
fn differences(path: &str, ours: &Value, old: &Value, out: &mut Vec<String>) {
    match (ours, old) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                let (x, y) = (a.get(key), b.get(key));
                match (x, y) {
                    (Some(x), Some(y)) => differences(&format!("{path}.{key}"), x, y, out),
                    _ => out.push(format!("{path}.{key}: ours {x:?}, old {y:?}")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ if ours == old => {}
        _ => out.push(format!("{path}: ours {ours}, old {old}")),
    }
}

/// What this service answers instead, where it differs from the old API on purpose (each in
/// the README's migration section): the old answer changed accordingly, or the error given.
enum Expected {
    Same(Value),
    Changed(&'static str, Value),
    Refused(u16, &'static str, &'static str),
}

/// Takes `signature` and `creator.publicKey` out of every `oip` in `value`, at any depth.
fn without_keys(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            if let Some(Value::Object(oip)) = fields.get_mut("oip") {
                oip.remove("signature");
                if let Some(Value::Object(creator)) = oip.get_mut("creator") {
                    creator.remove("publicKey");
                }
            }
            fields.values_mut().for_each(without_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(without_keys),
        _ => {}
    }
}

fn deliberate(name: &str, mut old: Value) -> Expected {
    match name {
        "notes-depth1" => {
            let field = &mut old["records"][0]["data"]["notes"]["transcript_full_text"];
            *field = field["oip"]["did"].clone();
            Expected::Changed("a reference the caller may not read stays a DID", old)
        }
        "workout-nosigs-nopubkeys" => {
            without_keys(&mut old["records"]);
            Expected::Changed("includeSigs/includePubKeys strip every record", old)
        }
        "recipe-summarize" => {
            let data = old["records"][0]["data"].as_object_mut().unwrap();
            data.retain(|k, _| !k.starts_with("calculatedSummary"));
            Expected::Changed("nutrition summaries come from the indexer", old)
        }
        "workout-depth2abc" | "workout-depth-neg1" => Expected::Refused(
            400,
            "invalid_parameter",
            "a depth that is not a whole number from 0 to max_depth is refused",
        ),
        "notes-listing" => Expected::Refused(
            400,
            "missing_parameter",
            "a listing comes from the indexer (resolver.oip_api)",
        ),
        _ => Expected::Same(old),
    }
}

#[actix_web::test]
async fn the_old_apis_clients_get_the_old_apis_answers() {
    let Some(relay) = start_gun_relay() else {
        return;
    };
    for record in corpus("records.json").as_array().unwrap() {
        let body = json!({"soul": record["soul"], "data": record["put"]});
        let res = client()
            .post(format!("{}/put", relay.url))
            .send_json(&body)
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "the relay stores {}", record["soul"]);
    }
    let service = TestApp::start(relay_config(&relay.url));
    let (mut report, mut differing, mut same) = (Vec::new(), Vec::new(), 0);
    let requests = corpus("requests.json");
    for request in requests.as_array().unwrap() {
        let name = request["name"].as_str().unwrap();
        let query = request["query"].as_str().unwrap();
        let reply = get(service.url(&format!("/api/records?{}", query.replace(' ', "%20")))).await;
        let mut ours = reply.json();
        if let Some(o) = ours.as_object_mut() {
            o.remove("resolution");
        }
        let (old, why) = match deliberate(name, corpus(&format!("golden/{name}.json"))) {
            Expected::Same(old) => {
                same += 1;
                (old, None)
            }
            Expected::Changed(why, old) => (old, Some(why)),
            Expected::Refused(status, code, why) => {
                if reply.status != status || ours["code"] != code {
                    report.push(format!("{name}: {} {} ({why})", reply.status, ours["code"]));
                }
                differing.push(format!("{name}: {why}"));
                continue;
            }
        };
        differing.extend(why.map(|why| format!("{name}: {why}")));
        let mut diffs = Vec::new();
        differences("", &ours, &old, &mut diffs);
        if !diffs.is_empty() {
            diffs.truncate(6);
            report.push(format!(
                "{name} ({}):\n  {}",
                reply.status,
                diffs.join("\n  ")
            ));
        }
    }
    eprintln!(
        "{same} of {} answers equal the old API's; on purpose, {} differ:\n  {}",
        same + differing.len(),
        differing.len(),
        differing.join("\n  ")
    );
    assert!(
        report.is_empty(),
        "{} of {} answers differ:\n{}",
        report.len(),
        requests.as_array().unwrap().len(),
        report.join("\n")
    );
}
