//! What a put may hold, and how it is sent so that GUN stores it where its writer may write.
//!
//! GUN follows the graph a write describes wherever it points: a field holding `{"#": S}` links
//! the node to soul `S`, a nested object whose `_` names a soul is stored *as* that soul, and a
//! nested object under a key that already links somewhere is merged into the node linked to.
//! Tried against a real relay, each of the three let a publisher's token overwrite another
//! publisher's record. So a put is checked and rewritten before it leaves:
//!
//! - GUN's metadata (`_`) is the service's to write, at any depth: a client's is refused;
//! - a link must point under the writer's own prefix;
//! - every nested object is sent with its soul pinned to `<parent soul>/<key>`, the soul GUN
//!   would give it on a first write, so it lands there whatever the key linked to before;
//! - nested objects are capped per put (8,000 took a relay 6.5 s and 745 MB).

use serde_json::{Map, Value};

/// Nested objects one put may hold. The old publisher writes one (`meta`).
pub const MAX_NESTED_NODES: usize = 64;

/// Why a put is refused before the relay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    #[error("`{0}` is GUN metadata, which only the service writes")]
    Metadata(String),
    #[error("`{at}` links to {soul:?}, outside the souls this token may write")]
    LinkOutside { at: String, soul: String },
    #[error("the node holds more than {MAX_NESTED_NODES} nested objects")]
    TooManyNested,
    #[error("`{0}` is an array, which the relay cannot store (store it as a JSON string)")]
    Array(String),
    #[error("`{0}` is an empty object, which the relay never acknowledges")]
    Empty(String),
    #[error("`data` must hold at least one field")]
    NoFields,
    #[error("`data.{0}` must be a string holding a JSON object, as OIP publishes it")]
    NotAJsonString(&'static str),
}

impl NodeError {
    /// A link out of the writer's souls is a matter of authority, not of form.
    pub fn is_authority(&self) -> bool {
        matches!(self, NodeError::LinkOutside { .. })
    }
}

/// The soul prefix a write may link into: a publisher's own, or any (`None`: the admin token,
/// or `auth.open_writes`).
pub type Owner<'a> = Option<&'a str>;

/// Checks a node for a put: `data` and `oip` strings holding objects (as OIP publishes them),
/// other fields scalars, links under `owner`'s prefix, or non-empty objects of the same.
pub fn check_node(node: &Map<String, Value>, owner: Owner<'_>) -> Result<(), NodeError> {
    if node.is_empty() {
        return Err(NodeError::NoFields);
    }
    for field in ["data", "oip"] {
        match node.get(field) {
            None => {}
            Some(Value::String(text))
                if serde_json::from_str::<Value>(text).is_ok_and(|v| v.is_object()) => {}
            Some(_) => return Err(NodeError::NotAJsonString(field)),
        }
    }
    let mut nested = 0;
    check_fields("data", node, owner, &mut nested)
}

fn check_fields(
    at: &str,
    fields: &Map<String, Value>,
    owner: Owner<'_>,
    nested: &mut usize,
) -> Result<(), NodeError> {
    for (key, value) in fields {
        let here = || format!("{at}.{key}");
        if key == "_" {
            return Err(NodeError::Metadata(here()));
        }
        match value {
            Value::Array(_) => return Err(NodeError::Array(here())),
            Value::Object(child) if child.is_empty() => return Err(NodeError::Empty(here())),
            Value::Object(child) => match link(child) {
                Some(soul) => {
                    if owner.is_some_and(|prefix| prefix_of(soul) != prefix) {
                        return Err(NodeError::LinkOutside {
                            at: here(),
                            soul: soul.chars().take(120).collect(),
                        });
                    }
                }
                None => {
                    *nested += 1;
                    if *nested > MAX_NESTED_NODES {
                        return Err(NodeError::TooManyNested);
                    }
                    check_fields(&here(), child, owner, nested)?;
                }
            },
            _ => {}
        }
    }
    Ok(())
}

/// The publisher prefix of a soul: what comes before its first `:`.
pub fn prefix_of(soul: &str) -> &str {
    soul.split(':').next().unwrap_or_default()
}

/// `{"#": "<soul>"}`: how GUN points at another node.
fn link(object: &Map<String, Value>) -> Option<&str> {
    match (object.len(), object.get("#")) {
        (1, Some(Value::String(soul))) => Some(soul),
        _ => None,
    }
}

/// Gives every nested object of a checked node its soul, `<parent>/<key>`, so that GUN stores it
/// there rather than wherever the key linked before.
pub fn pin_nested(soul: &str, node: &mut Map<String, Value>) {
    for (key, value) in node.iter_mut() {
        if let Value::Object(child) = value {
            if link(child).is_none() {
                let child_soul = format!("{soul}/{key}");
                pin_nested(&child_soul, child);
                child.insert("_".into(), serde_json::json!({ "#": child_soul }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn node(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("tests pass objects"),
        }
    }

    #[test]
    fn what_oip_publishes_is_accepted() {
        for good in [
            json!({"data": "{\"basic\":{}}", "oip": "{\"recordType\":\"x\"}"}),
            json!({"data": "{}", "meta": {"#": "aaaaaaaaaaaa:1/meta"}}),
            json!({"data": "{}", "meta": {"publishedBy": "p", "version": 1}}),
            json!({"name": "registry entry", "count": 3, "live": true, "gone": null}),
        ] {
            assert_eq!(
                check_node(&node(good.clone()), Some("aaaaaaaaaaaa")),
                Ok(()),
                "{good}"
            );
        }
    }

    #[test]
    fn metadata_links_out_and_too_many_nodes_are_refused() {
        let own = Some("aaaaaaaaaaaa");
        let refused = |v: Value| check_node(&node(v), own).unwrap_err();
        assert_eq!(
            refused(json!({"data": "{}", "_": {"#": "vvvvvvvvvvvv:rec"}})),
            NodeError::Metadata("data._".into())
        );
        assert_eq!(
            refused(json!({"meta": {"_": {"#": "vvvvvvvvvvvv:rec"}, "data": "{}"}})),
            NodeError::Metadata("data.meta._".into())
        );
        let out = refused(json!({"meta": {"#": "vvvvvvvvvvvv:rec"}}));
        assert!(out.is_authority(), "{out}");
        let deep = refused(json!({"meta": {"x": {"#": "vvvvvvvvvvvv:rec"}}}));
        assert!(deep.is_authority(), "{deep}");
        let mut many = Map::new();
        for i in 0..=MAX_NESTED_NODES {
            many.insert(format!("k{i}"), json!({"v": i}));
        }
        assert_eq!(check_node(&many, own), Err(NodeError::TooManyNested));
        many.remove("k0");
        assert_eq!(check_node(&many, own), Ok(()));
        assert_eq!(
            check_node(&node(json!({"meta": {"#": "vvvvvvvvvvvv:rec"}})), None),
            Ok(()),
            "the admin token links anywhere"
        );
        assert_eq!(
            check_node(&node(json!({"meta": {"#": "aaaaaaaaaaab:rec"}})), own)
                .map_err(|e| e.is_authority()),
            Err(true),
            "a prefix is compared exactly"
        );
    }

    #[test]
    fn what_gun_cannot_store_is_refused() {
        let refused = |v: Value| check_node(&node(v), None).unwrap_err().to_string();
        for (bad, names) in [
            (json!({}), "at least one field"),
            (json!({"data": {"basic": {}}}), "data.data"),
            (json!({"data": "not json"}), "data.data"),
            (json!({"data": "[1,2]"}), "data.data"),
            (json!({"oip": {}}), "data.oip"),
            (json!({"data": "{}", "tags": ["a"]}), "data.tags"),
            (json!({"data": "{}", "meta": {}}), "data.meta"),
            (
                json!({"data": "{}", "meta": {"deep": {"list": [1]}}}),
                "data.meta.deep.list",
            ),
        ] {
            assert!(refused(bad.clone()).contains(names), "{bad}");
        }
    }

    #[test]
    fn nested_objects_are_pinned_under_their_parent() {
        let mut n = node(json!({
            "data": "{}",
            "meta": {"v": 1, "deep": {"k": 2}},
            "link": {"#": "aaaaaaaaaaaa:x"}
        }));
        pin_nested("aaaaaaaaaaaa:r", &mut n);
        assert_eq!(n["meta"]["_"], json!({"#": "aaaaaaaaaaaa:r/meta"}));
        assert_eq!(
            n["meta"]["deep"]["_"],
            json!({"#": "aaaaaaaaaaaa:r/meta/deep"})
        );
        assert_eq!(
            n["link"],
            json!({"#": "aaaaaaaaaaaa:x"}),
            "links stay links"
        );
        assert_eq!(n["data"], "{}");
    }
}
