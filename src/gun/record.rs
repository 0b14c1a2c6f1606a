//! The relay's node shape, decoded into a typed record.
//!
//! A record node is stored as `{"data": "<JSON string>", "oip": "<JSON string>", "meta": ...}`.
//! The relay parses `data` and `oip` back into objects, but the publisher stored arrays inside
//! `data` as JSON strings (`"exercise": "[\"did:gun:...\"]"`), and GUN cannot hold arrays, so those
//! stay strings. Decoding undoes both.

use bytes::Bytes;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// `{<category>: {<key>: value}}`, arrays decoded. A link (`{"#": "<soul>/data"}`) while
    /// the node GUN keeps it in has not been read (see `links`).
    pub data: Map<String, Value>,
    pub oip: Value,
    pub meta: Value,
    /// The node has `oip` but no `data`: a record GUN answered before its links were written.
    /// It is answered as missing, and not cached as if complete.
    pub partial: bool,
    /// What an indexer's listing adds beside `data` and `oip` (the old API's scores): kept on
    /// the records it lists, nothing for a relay's.
    pub extra: Map<String, Value>,
}

/// A record as the relay answered it: the raw answer (passed through byte for byte by the relay
/// proxy) and its decoded form (used by the resolver).
#[derive(Debug)]
pub struct FoundRecord {
    pub raw: Bytes,
    pub record: Record,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RecordError {
    #[error("the relay's answer is not JSON: {0}")]
    NotJson(String),
    #[error("the relay's answer has no record node under `data`")]
    NoNode,
    #[error("the record's `{field}` is not a JSON object: {reason}")]
    BadField { field: &'static str, reason: String },
}

impl FoundRecord {
    /// Decodes an OIP indexer answer `{"records":[record, ...]}`: the first record, or `None`
    /// when the list is empty (the indexer's way of saying "not found").
    pub fn from_indexer_answer(raw: Bytes) -> Result<Option<Self>, RecordError> {
        let answer: Value =
            serde_json::from_slice(&raw).map_err(|e| RecordError::NotJson(e.to_string()))?;
        let first = match answer {
            Value::Object(mut m) => match m.remove("records") {
                Some(Value::Array(records)) => records.into_iter().next(),
                _ => return Err(RecordError::NoNode),
            },
            _ => return Err(RecordError::NoNode),
        };
        first
            .map(|node| Record::from_node(node).map(|record| Self { raw, record }))
            .transpose()
    }

    /// A record as an indexer's listing holds it (the records of `{"records": [...]}`): its
    /// text and its parsed `node`.
    pub fn from_listed(raw: Bytes, mut node: Value) -> Result<Self, RecordError> {
        let extra = match node.as_object_mut() {
            Some(fields) => {
                let added: Vec<String> = fields
                    .keys()
                    .filter(|k| !["data", "oip", "meta"].contains(&k.as_str()))
                    .cloned()
                    .collect();
                added
                    .into_iter()
                    .filter_map(|k| fields.remove_entry(&k))
                    .collect()
            }
            None => Map::new(),
        };
        let mut record = Record::from_node(node)?;
        record.extra = extra;
        Ok(Self { raw, record })
    }

    /// Decodes a relay `/get` answer `{"success":true,"data":{node}}`.
    pub fn from_relay_answer(raw: Bytes) -> Result<Self, RecordError> {
        let answer: Value =
            serde_json::from_slice(&raw).map_err(|e| RecordError::NotJson(e.to_string()))?;
        let node = match answer {
            Value::Object(mut m) => m.remove("data").ok_or(RecordError::NoNode)?,
            _ => return Err(RecordError::NoNode),
        };
        let record = Record::from_node(node)?;
        Ok(Self { raw, record })
    }

    /// Builds the answer the relay would give for a stored node, so that a file source and a
    /// relay look the same to everything above them.
    pub fn from_stored_node(node: Value) -> Result<Self, RecordError> {
        let answer = serde_json::json!({"success": true, "data": relay_view(node)});
        let raw = Bytes::from(serde_json::to_vec(&answer).expect("a Value always serialises"));
        Self::from_relay_answer(raw)
    }

    /// The node as the relay answered it (GUN's `_` left out): what a part of a record kept in
    /// a node of its own holds.
    pub fn node(&self) -> Option<Value> {
        let answer: Value = serde_json::from_slice(&self.raw).ok()?;
        let mut node = answer.get("data")?.clone();
        if let Value::Object(m) = &mut node {
            m.remove("_");
        }
        Some(node)
    }

    /// A record made here (decrypted, or assembled from its parts): no relay answer of its own.
    pub fn made(record: Record) -> Self {
        Self {
            raw: Bytes::new(),
            record,
        }
    }

    /// What this entry costs in memory: the raw answer plus its decoded tree, which takes a few
    /// times the bytes of its text.
    pub fn weight(&self) -> u64 {
        (self.raw.len() as u64) * 4 + 256
    }
}

/// What the relay does to a stored node before answering: `data` and `oip` strings become objects.
pub fn relay_view(node: Value) -> Value {
    match node {
        Value::Object(mut m) => {
            for field in ["data", "oip"] {
                if let Some(Value::String(s)) = m.get(field) {
                    if let Ok(parsed @ Value::Object(_)) = serde_json::from_str::<Value>(s) {
                        m.insert(field.to_string(), parsed);
                    }
                }
            }
            Value::Object(m)
        }
        other => other,
    }
}

impl Record {
    pub fn from_node(node: Value) -> Result<Self, RecordError> {
        let mut node = match node {
            Value::Object(m) => m,
            _ => return Err(RecordError::NoNode),
        };
        let partial = !node.contains_key("data") && node.contains_key("oip");
        let mut data = match object_field(node.remove("data"), "data")? {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        decode_data(&mut data);
        let mut oip = object_field(node.remove("oip"), "oip")?;
        decode_creator(&mut oip);
        let meta = node
            .remove("meta")
            .unwrap_or_else(|| Value::Object(Map::new()));
        Ok(Self {
            data,
            oip,
            meta,
            partial,
            extra: Map::new(),
        })
    }

    /// The nodes of its own that GUN keeps parts of this record in, not read yet: a `data` or
    /// `oip` stored as an object (the publisher's encrypted `data`, records written before it
    /// stringified both) and what those hold in turn; `meta` only beside such a `data` (it says
    /// how that is encrypted), so a plain record costs no extra read. Only links under the
    /// record's own soul are followed: a link elsewhere is another record's, not a part.
    pub fn links(&self, soul: &str) -> Vec<String> {
        let mut out = Vec::new();
        let data = Value::Object(self.data.clone());
        let data_linked = as_link(&data).is_some();
        let mut parts = vec![&data, &self.oip];
        if data_linked {
            parts.push(&self.meta);
        }
        for part in parts {
            child_links(part, soul, &mut out);
        }
        out
    }

    /// The record with the child links of `links` replaced by the nodes `nodes` holds (by
    /// soul), as deep as they go; a link with no node is left out, or kept as it is while the
    /// record is still being read (`unread: Keep`). Arrays stored as strings in what came in
    /// are decoded.
    pub fn filled(
        &self,
        soul: &str,
        nodes: &impl Fn(&str) -> Option<Value>,
        unread: Unread,
    ) -> Self {
        let mut data = Value::Object(self.data.clone());
        let mut oip = self.oip.clone();
        let mut meta = self.meta.clone();
        for part in [&mut data, &mut oip, &mut meta] {
            fill(part, soul, nodes, unread);
        }
        let data = match data {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let mut filled = Self {
            data,
            oip,
            meta,
            partial: self.partial,
            extra: self.extra.clone(),
        };
        filled.decode_data();
        decode_creator(&mut filled.oip);
        filled
    }

    /// Arrays the publisher stored as strings, decoded.
    pub fn decode_data(&mut self) {
        decode_data(&mut self.data);
    }
}

/// The soul a GUN link `{"#": soul}` points at.
pub fn as_link(value: &Value) -> Option<&str> {
    match value {
        Value::Object(m) if m.len() == 1 => m.get("#")?.as_str(),
        _ => None,
    }
}

/// Links in `value` to nodes under `soul` (`<soul>/...`), in order.
fn child_links(value: &Value, soul: &str, out: &mut Vec<String>) {
    match as_link(value) {
        Some(link) if is_child(link, soul) => out.push(link.to_string()),
        Some(_) => {}
        None => {
            if let Value::Object(m) = value {
                for v in m.values() {
                    child_links(v, soul, out);
                }
            }
        }
    }
}

fn is_child(link: &str, soul: &str) -> bool {
    link.strip_prefix(soul)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// What `Record::filled` does with a link whose node has not been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unread {
    /// Kept as a link: the record is still being read, and it says what to read next.
    Keep,
    /// Left out: the record is as whole as it will get (an empty object for a whole part).
    Drop,
}

/// Replaces child links in `value` by their nodes, as deep as the nodes go.
fn fill(value: &mut Value, soul: &str, nodes: &impl Fn(&str) -> Option<Value>, unread: Unread) {
    if let Some(link) = as_link(value).filter(|l| is_child(l, soul)) {
        match (nodes(link), unread) {
            (Some(node), _) => *value = node,
            (None, Unread::Keep) => return,
            (None, Unread::Drop) => *value = Value::Object(Map::new()),
        }
    }
    let Value::Object(m) = value else { return };
    m.remove("_");
    let mut gone = Vec::new();
    for (key, v) in m.iter_mut() {
        if let Some(link) = as_link(v).filter(|l| is_child(l, soul)) {
            match (nodes(link), unread) {
                (Some(node), _) => *v = node,
                (None, Unread::Keep) => continue,
                (None, Unread::Drop) => {
                    gone.push(key.clone());
                    continue;
                }
            }
        }
        fill(v, soul, nodes, unread);
    }
    for key in gone {
        m.remove(&key);
    }
}

/// Takes an object, or a string holding one; absent becomes an empty object.
fn object_field(value: Option<Value>, field: &'static str) -> Result<Value, RecordError> {
    match value {
        None | Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(v @ Value::Object(_)) => Ok(v),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(&s) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) => Err(RecordError::BadField {
                field,
                reason: "the string does not hold an object".into(),
            }),
            Err(e) => Err(RecordError::BadField {
                field,
                reason: e.to_string(),
            }),
        },
        Some(_) => Err(RecordError::BadField {
            field,
            reason: "neither an object nor a string".into(),
        }),
    }
}

/// `oip.creator` as an object: publishers that wrote `oip` as a node of its own wrote the
/// creator in it as a JSON string, and the old indexer read it back into an object.
fn decode_creator(oip: &mut Value) {
    if let Some(creator) = oip.get_mut("creator") {
        if let Some(Ok(object @ Value::Object(_))) = creator.as_str().map(serde_json::from_str) {
            *creator = object;
        }
    }
}

/// Arrays the publisher stored as strings, decoded wherever they are in `data`.
fn decode_data(data: &mut Map<String, Value>) {
    data.values_mut().for_each(decode_arrays);
}

/// The old indexer's rule, at any depth of objects and arrays: a string that starts with `[` and
/// ends with `]` (untrimmed) and parses as JSON to an array becomes that array. The publisher
/// stringified every array whole, so a decoded array is not looked into again.
fn decode_arrays(value: &mut Value) {
    match value {
        Value::String(s) if s.starts_with('[') && s.ends_with(']') => {
            if let Ok(array @ Value::Array(_)) = serde_json::from_str::<Value>(s) {
                *value = array;
            }
        }
        Value::Object(fields) => fields.values_mut().for_each(decode_arrays),
        Value::Array(items) => items.iter_mut().for_each(decode_arrays),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_stored_strings_and_array_strings() {
        let node = json!({
            "data": "{\"workout\":{\"exercise\":\"[\\\"did:gun:abc:1\\\",\\\"did:arweave:x\\\"]\",\"total\":3}}",
            "oip": "{\"recordType\":\"workout\"}",
            "meta": {"#": "abc:1/meta"}
        });
        let found = FoundRecord::from_stored_node(node).unwrap();
        let r = &found.record;
        assert_eq!(
            r.data["workout"]["exercise"],
            json!(["did:gun:abc:1", "did:arweave:x"])
        );
        assert_eq!(r.data["workout"]["total"], json!(3));
        assert_eq!(r.oip, json!({"recordType": "workout"}));
        assert_eq!(r.meta, json!({"#": "abc:1/meta"}));
    }

    #[test]
    fn parts_kept_in_nodes_of_their_own_are_found_and_filled() {
        let node = json!({"data": {"#": "s:1/data"}, "oip": {"#": "s:1/oip"}, "meta": {"#": "s:1/meta"},
                          "ref": {"#": "other:2"}});
        let r = Record::from_node(node).unwrap();
        assert_eq!(r.links("s:1"), ["s:1/data", "s:1/oip", "s:1/meta"]);
        let plain = Record::from_node(json!({"data": "{}", "meta": {"#": "s:1/meta"}})).unwrap();
        assert!(
            plain.links("s:1").is_empty(),
            "a plain record's meta is not read"
        );
        let nodes = |soul: &str| match soul {
            "s:1/data" => Some(json!({"_": {"#": "s:1/data"}, "basic": {"#": "s:1/data/basic"}})),
            "s:1/data/basic" => Some(json!({"name": "n", "tags": "[\"a\"]"})),
            "s:1/oip" => Some(json!({"recordType": "post"})),
            _ => None,
        };
        let first = |soul: &str| {
            if soul == "s:1/data/basic" {
                None
            } else {
                nodes(soul)
            }
        };
        let so_far = r.filled("s:1", &first, Unread::Keep);
        assert_eq!(so_far.links("s:1"), ["s:1/data/basic"]);
        let whole = r.filled("s:1", &nodes, Unread::Drop);
        assert_eq!(whole.data["basic"], json!({"name": "n", "tags": ["a"]}));
        assert_eq!(whole.oip, json!({"recordType": "post"}));
        let legacy = |oip| {
            Record::from_node(json!({"data": "{}", "oip": oip}))
                .unwrap()
                .oip
        };
        assert_eq!(
            legacy(json!({"creator": "{\"publicKey\":\"k\"}"})),
            json!({"creator": {"publicKey": "k"}}),
            "a creator written as a string is read as the object it holds"
        );
        assert_eq!(legacy(json!({"creator": "k"})), json!({"creator": "k"}));
        assert_eq!(
            whole.meta,
            json!({}),
            "a part that is not there is left out"
        );
        let partial = r.filled("s:1", &first, Unread::Drop);
        assert!(partial.data.get("basic").is_none(), "{:?}", partial.data);
    }

    #[test]
    fn relay_answer_keeps_raw_bytes() {
        let raw = Bytes::from_static(
            br#"{"success":true,"data":{"data":{"basic":{"name":"Squat","tags":"[\"legs\"]"}},"oip":{}}}"#,
        );
        let found = FoundRecord::from_relay_answer(raw.clone()).unwrap();
        assert_eq!(found.raw, raw);
        assert_eq!(found.record.data["basic"]["tags"], json!(["legs"]));
        assert_eq!(found.record.meta, json!({}));
    }

    #[test]
    fn arrays_stored_as_strings_are_decoded_at_any_depth_by_the_old_rule() {
        let mut data = json!({
            "media": {
                "transport": {"http": "[\"https://a/v.mp4\"]", "bittorrent": {"trackers": "[\"udp://t\"]"}},
                "renditions": "[{\"h\":720,\"codecs\":[\"avc1\"]}]",
                "chapters": [["[1]"], "[2]"],
                "channels": "[1,2]",
                "label": "[1080p]",
                "padded": " [1]",
                "nested": "[\"[3]\"]",
                "a": "[not json", "b": "[1] and more", "c": "{\"x\":1}", "d": "[]"
            }
        });
        decode_data(data.as_object_mut().unwrap());
        let m = &data["media"];
        assert_eq!(m["transport"]["http"], json!(["https://a/v.mp4"]));
        assert_eq!(m["transport"]["bittorrent"]["trackers"], json!(["udp://t"]));
        assert_eq!(m["renditions"], json!([{"h": 720, "codecs": ["avc1"]}]));
        assert_eq!(
            m["chapters"],
            json!([[[1]], [2]]),
            "strings inside arrays too"
        );
        assert_eq!(
            m["channels"],
            json!([1, 2]),
            "a user's string that parses is an array, as before"
        );
        assert_eq!(m["label"], json!("[1080p]"));
        assert_eq!(m["padded"], json!(" [1]"), "no trimming");
        assert_eq!(
            m["nested"],
            json!(["[3]"]),
            "a decoded array is not decoded again"
        );
        assert_eq!(m["a"], json!("[not json"));
        assert_eq!(m["b"], json!("[1] and more"));
        assert_eq!(m["c"], json!("{\"x\":1}"));
        assert_eq!(m["d"], json!([]));
    }

    #[test]
    fn indexer_answers_give_their_first_record() {
        let raw = Bytes::from_static(
            br#"{"records":[{"data":{"basic":{"name":"Squat"}},"oip":{"did":"did:arweave:x"}},{"data":{}}]}"#,
        );
        let found = FoundRecord::from_indexer_answer(raw).unwrap().unwrap();
        assert_eq!(found.record.data["basic"]["name"], "Squat");
        let empty = Bytes::from_static(br#"{"records":[]}"#);
        assert!(FoundRecord::from_indexer_answer(empty).unwrap().is_none());
        let wrong = Bytes::from_static(br#"{"record":{}}"#);
        assert!(FoundRecord::from_indexer_answer(wrong).is_err());
    }

    #[test]
    fn malformed_answers_are_errors() {
        assert!(matches!(
            FoundRecord::from_relay_answer(Bytes::from_static(b"{\"succ")),
            Err(RecordError::NotJson(_))
        ));
        assert_eq!(
            FoundRecord::from_relay_answer(Bytes::from_static(b"{\"success\":true}")).unwrap_err(),
            RecordError::NoNode
        );
        assert!(matches!(
            FoundRecord::from_relay_answer(Bytes::from_static(b"{\"data\":{\"data\":\"{oops\"}}")),
            Err(RecordError::BadField { field: "data", .. })
        ));
    }
}
