//! The old API's access rules for one record (`getRecords`' filter, read from its code), as a
//! pure function of the record and the caller's key.
//!
//! - `data.accessControl.access_level` absent, empty or `public`, and not a legacy private
//!   session (`data.conversationSession.is_private: true`): anyone.
//! - Any other level (`private`, `shared`, `organization`, or one this code does not know) and
//!   legacy private sessions: the owner only, where the owner is the first of
//!   `accessControl.owner_public_key`, `accessControl.created_by`,
//!   `conversationSession.owner_public_key` that is set, compared exactly. The old API checked
//!   `organization` members against organization records in its own search index, with a
//!   domain rule read from headers the caller sends; neither can be done faithfully here, so
//!   such records are their owner's.
//! - Encrypted (`meta.encrypted`, or a `data` that is a ciphertext): only `meta.encryptedBy`,
//!   for whom it is decrypted.

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Anyone may read it.
    Public,
    /// Only its owner may, and the caller is the owner.
    Owner,
    /// Encrypted for the caller: readable once decrypted with the caller's key.
    Decrypt,
    /// Not for this caller.
    Forbidden,
}

/// What `caller` (its key, `None` when anonymous) may do with a record of `data` and `meta`.
pub fn judge(data: &Map<String, Value>, meta: &Value, caller: Option<&str>) -> Verdict {
    if is_encrypted(data, meta) {
        let by = meta.get("encryptedBy").and_then(Value::as_str);
        return match (by, caller) {
            (Some(by), Some(caller)) if by == caller => Verdict::Decrypt,
            _ => Verdict::Forbidden,
        };
    }
    // A category stored as a JSON string still says what it says.
    let parsed = |name: &str| match data.get(name) {
        Some(Value::String(text)) => serde_json::from_str::<Value>(text).ok(),
        other => other.cloned(),
    };
    let (control, session) = (parsed("accessControl"), parsed("conversationSession"));
    let (control, session) = (control.as_ref(), session.as_ref());
    let level = control.and_then(|c| c.get("access_level"));
    let open_level = match level {
        None | Some(Value::Null) => true,
        Some(Value::String(l)) => l.is_empty() || l == "public",
        Some(Value::Bool(b)) => !b,
        Some(_) => false,
    };
    let private_session = session
        .and_then(|s| s.get("is_private"))
        .is_some_and(|p| *p == Value::Bool(true));
    if open_level && !private_session {
        return Verdict::Public;
    }
    let owner = [
        control.and_then(|c| c.get("owner_public_key")),
        control.and_then(|c| c.get("created_by")),
        session.and_then(|s| s.get("owner_public_key")),
    ]
    .into_iter()
    .flatten()
    .filter_map(Value::as_str)
    .find(|k| !k.is_empty());
    match (owner, caller) {
        (Some(owner), Some(caller)) if owner == caller => Verdict::Owner,
        _ => Verdict::Forbidden,
    }
}

/// Whether a record's `data` is a ciphertext: its `meta` says so, or `data` has the shape the
/// publisher writes one in (`{encrypted, iv, tag}`), whatever `meta` says.
pub fn is_encrypted(data: &Map<String, Value>, meta: &Value) -> bool {
    meta.get("encrypted") == Some(&Value::Bool(true))
        || (data.get("encrypted").is_some_and(Value::is_string)
            && data.get("iv").is_some_and(Value::is_string))
}

/// Replaces each record resolved inside `record` (by an indexer that resolved without regard
/// to who asks, as the old API did) that `caller` may not read by its DID, as this service's own
/// resolution leaves such a reference. Readable ones are looked into in turn.
pub fn redact_embedded(record: &mut Value, caller: Option<&str>) {
    let Some(Value::Object(categories)) = record.get_mut("data") else {
        return;
    };
    for fields in categories.values_mut().filter_map(Value::as_object_mut) {
        for value in fields.values_mut() {
            match value {
                Value::Array(items) => items.iter_mut().for_each(|i| redact_one(i, caller)),
                other => redact_one(other, caller),
            }
        }
    }
}

fn redact_one(value: &mut Value, caller: Option<&str>) {
    let (Some(Value::Object(data)), Some(oip)) = (value.get("data"), value.get("oip")) else {
        return;
    };
    let did = ["did", "didTx"]
        .iter()
        .find_map(|k| oip.get(*k)?.as_str())
        .map(String::from);
    match judge(data, &Value::Null, caller) {
        Verdict::Public | Verdict::Owner => redact_embedded(value, caller),
        Verdict::Decrypt | Verdict::Forbidden => *value = did.map_or(Value::Null, Value::String),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn verdict(data: Value, meta: Value, caller: Option<&str>) -> Verdict {
        judge(data.as_object().unwrap(), &meta, caller)
    }

    #[test]
    fn public_records_are_anyones() {
        for data in [
            json!({"basic": {"name": "x"}}),
            json!({"accessControl": {"access_level": "public", "owner_public_key": "o"}}),
            json!({"accessControl": {"access_level": ""}}),
            json!({"accessControl": {"access_level": null}}),
            json!({"conversationSession": {"is_private": false}}),
            json!({"conversationSession": {"is_private": "true"}}),
        ] {
            for caller in [None, Some("o"), Some("someone")] {
                assert_eq!(
                    verdict(data.clone(), json!({}), caller),
                    Verdict::Public,
                    "{data}"
                );
            }
        }
    }

    #[test]
    fn every_other_level_is_its_owners_only() {
        for level in ["private", "shared", "organization", "unlisted", "Public"] {
            let data = json!({"accessControl": {"access_level": level, "owner_public_key": "o"}});
            assert_eq!(
                verdict(data.clone(), json!({}), Some("o")),
                Verdict::Owner,
                "{level}"
            );
            for caller in [None, Some("someone"), Some("O"), Some("")] {
                assert_eq!(
                    verdict(data.clone(), json!({}), caller),
                    Verdict::Forbidden,
                    "{level}"
                );
            }
        }
        let numeric = json!({"accessControl": {"access_level": 1, "created_by": "o"}});
        assert_eq!(verdict(numeric, json!({}), None), Verdict::Forbidden);
    }

    #[test]
    fn the_owner_is_the_first_owner_field_that_is_set() {
        let data = json!({"accessControl": {"access_level": "private", "owner_public_key": "a", "created_by": "b"}});
        assert_eq!(verdict(data.clone(), json!({}), Some("a")), Verdict::Owner);
        assert_eq!(verdict(data, json!({}), Some("b")), Verdict::Forbidden);
        let created = json!({"accessControl": {"access_level": "shared", "owner_public_key": "", "created_by": "b"}});
        assert_eq!(verdict(created, json!({}), Some("b")), Verdict::Owner);
        let session = json!({"accessControl": {"access_level": "private"}, "conversationSession": {"owner_public_key": "c"}});
        assert_eq!(verdict(session, json!({}), Some("c")), Verdict::Owner);
        let ownerless = json!({"accessControl": {"access_level": "private"}});
        assert_eq!(
            verdict(ownerless, json!({}), Some("anyone")),
            Verdict::Forbidden
        );
    }

    #[test]
    fn access_control_kept_as_a_string_still_counts() {
        let data =
            json!({"accessControl": "{\"access_level\":\"private\",\"owner_public_key\":\"o\"}"});
        assert_eq!(verdict(data.clone(), json!({}), None), Verdict::Forbidden);
        assert_eq!(verdict(data, json!({}), Some("o")), Verdict::Owner);
    }

    #[test]
    fn a_legacy_private_session_is_its_owners_only() {
        let data = json!({"conversationSession": {"is_private": true, "owner_public_key": "o"}});
        assert_eq!(verdict(data.clone(), json!({}), Some("o")), Verdict::Owner);
        assert_eq!(
            verdict(data.clone(), json!({}), Some("other")),
            Verdict::Forbidden
        );
        assert_eq!(verdict(data, json!({}), None), Verdict::Forbidden);
    }

    #[test]
    fn encrypted_records_are_their_encrypters_only() {
        let sealed = json!({"encrypted": "AAAA", "iv": "BBBB", "tag": "CCCC"});
        let meta = json!({"encrypted": true, "encryptionType": "per-user", "encryptedBy": "o"});
        assert_eq!(
            verdict(sealed.clone(), meta.clone(), Some("o")),
            Verdict::Decrypt
        );
        assert_eq!(verdict(sealed.clone(), meta, Some("p")), Verdict::Forbidden);
        // The shape alone says ciphertext, whatever meta says (or does not say).
        assert_eq!(
            verdict(sealed.clone(), json!({}), Some("o")),
            Verdict::Forbidden
        );
        assert_eq!(
            verdict(sealed, json!({"encrypted": false}), None),
            Verdict::Forbidden
        );
        let org = json!({"encrypted": true, "encryptionType": "organization"});
        assert_eq!(verdict(json!({}), org, Some("o")), Verdict::Forbidden);
    }

    #[test]
    fn records_resolved_by_the_indexer_that_the_caller_may_not_read_become_their_dids() {
        let private = |owner: &str, did: &str| {
            json!({"data": {"accessControl": {"access_level": "private", "owner_public_key": owner},
                            "basic": {"name": "secret"}},
                   "oip": {"did": did}})
        };
        let public_with_private_inside = json!({
            "data": {"basic": {"name": "p"}, "notes": {"ref": private("alice", "did:gun:a:2")}},
            "oip": {"did": "did:gun:a:3"}
        });
        let mut note = json!({
            "data": {"notes": {
                "transcript": private("alice", "did:gun:a:1"),
                "list": [private("bob", "did:gun:b:1"), "did:gun:c:1", public_with_private_inside]
            }},
            "oip": {"did": "did:gun:a:0"}
        });
        let mut for_alice = note.clone();
        redact_embedded(&mut note, None);
        assert_eq!(note["data"]["notes"]["transcript"], "did:gun:a:1");
        assert_eq!(note["data"]["notes"]["list"][0], "did:gun:b:1");
        assert_eq!(note["data"]["notes"]["list"][1], "did:gun:c:1");
        assert_eq!(
            note["data"]["notes"]["list"][2]["data"]["notes"]["ref"],
            "did:gun:a:2"
        );
        redact_embedded(&mut for_alice, Some("alice"));
        assert_eq!(
            for_alice["data"]["notes"]["transcript"]["data"]["basic"]["name"],
            "secret"
        );
        assert_eq!(for_alice["data"]["notes"]["list"][0], "did:gun:b:1");
    }
}
