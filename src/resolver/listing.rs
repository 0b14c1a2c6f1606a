//! An indexer's listing, split into its envelope and the records it lists.

use std::{collections::BTreeMap, sync::Arc};

use serde_json::{Map, Value};

use crate::{
    did::Did,
    gun::{FetchError, FoundRecord},
};

/// What a listing's answer is made of: the envelope, the records it lists by their DIDs, and how
/// many it listed that could not be kept.
type Listed = (Map<String, Value>, Vec<(Did, Arc<FoundRecord>)>, usize);

/// Splits the indexer's answer into its envelope and its records, each by the DID it names
/// (`oip.did`, or the old `oip.didTx`). Only the first `max_records` are read (a 6 MB listing
/// parsed whole took 180 MB); a record past them, or one that names no DID, is left out and
/// counted so that the answer says so. `prepare` sees each record first.
pub(super) fn listed(
    answer: &[u8],
    max_records: usize,
    prepare: impl Fn(&mut Value),
) -> Result<Listed, FetchError> {
    use serde_json::value::RawValue;
    let bad = |why: &str| FetchError::Malformed(format!("the indexer's listing {why}"));
    let Ok(mut top) = serde_json::from_slice::<BTreeMap<String, &RawValue>>(answer) else {
        return Err(bad("is not a JSON object"));
    };
    let records = top
        .remove("records")
        .and_then(|r| serde_json::from_str::<Vec<&RawValue>>(r.get()).ok())
        .ok_or_else(|| bad("has no `records` array"))?;
    // The old indexer echoes the request in it, the caller's bearer token included.
    top.remove("queryParams");
    let envelope: Map<String, Value> = top
        .into_iter()
        .map(|(key, raw)| {
            let value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
            (key, value)
        })
        .collect();
    let mut roots = Vec::with_capacity(records.len().min(max_records));
    let mut left_out = records.len().saturating_sub(max_records);
    for raw in records.into_iter().take(max_records) {
        let Ok(mut record) = serde_json::from_str::<Value>(raw.get()) else {
            left_out += 1;
            continue;
        };
        let named = ["did", "didTx"]
            .iter()
            .find_map(|k| record.get("oip")?.get(*k)?.as_str())
            .and_then(|d| Did::parse(d).ok());
        prepare(&mut record);
        let raw = bytes::Bytes::copy_from_slice(raw.get().as_bytes());
        match (named, FoundRecord::from_listed(raw, record)) {
            (Some(did), Ok(found)) => roots.push((did, Arc::new(found))),
            _ => left_out += 1,
        }
    }
    Ok((envelope, roots, left_out))
}
