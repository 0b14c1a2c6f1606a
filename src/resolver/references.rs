//! What counts as a reference: a string starting with `did:`, as a field's value or an element
//! of one, in the fields the request selects.

use serde_json::{Map, Value};

use super::options::FieldFilter;

/// A reference: a string that starts with `did:` (as a field's value, or an element of one).
pub(super) fn as_reference(value: &Value) -> Option<&str> {
    value.as_str().filter(|s| s.starts_with("did:"))
}

/// Calls `f` with every reference in the selected fields of `data`.
pub(super) fn for_each_reference(
    data: &Map<String, Value>,
    fields: &FieldFilter,
    mut f: impl FnMut(&str),
) {
    for (category, value) in data {
        let Value::Object(entries) = value else {
            continue;
        };
        for (key, value) in entries {
            if !fields.selects(category, key) {
                continue;
            }
            match value {
                Value::Array(items) => items.iter().filter_map(as_reference).for_each(&mut f),
                other => as_reference(other).into_iter().for_each(&mut f),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_found_in_strings_and_arrays_of_selected_fields() {
        let data = json!({"a": {"x": "did:gun:1", "y": ["did:gun:2", 3, "plain"], "z": "no"}, "b": "did:gun:9"});
        let mut seen = Vec::new();
        for_each_reference(data.as_object().unwrap(), &FieldFilter::default(), |r| {
            seen.push(r.to_string())
        });
        assert_eq!(seen, ["did:gun:1", "did:gun:2"]);
    }
}
