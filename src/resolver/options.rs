//! What a request asks of a resolution: how deep, names only or not, which fields, and what
//! to leave out of each `oip` block.

#[derive(Debug, Clone)]
pub struct Options {
    pub depth: u32,
    pub names_only: bool,
    pub fields: FieldFilter,
    /// `forceRefresh=true`: every lookup goes past the record and negative caches.
    pub force_refresh: bool,
    /// `includeSigs=false` drops `signature` from every `oip` block.
    pub include_sigs: bool,
    /// `includePubKeys=false` drops `creator.publicKey` from every `oip` block.
    pub include_pub_keys: bool,
    /// `hideNullValues=true`: null members and null array elements left out, at any depth.
    pub hide_nulls: bool,
    /// Listed records get `basic.dateReadable` (unless `hideDateReadable=true`).
    pub date_readable: bool,
    /// `recordType` and `source` with a DID: a listed record of another type or DID method is
    /// not in the answer, as the old API's query filtered it.
    pub roots: RootFilter,
}

#[cfg(test)]
impl Options {
    /// What a request that gives only `resolveDepth` asks for.
    pub(super) fn plain(depth: u32) -> Self {
        Self {
            depth,
            names_only: false,
            fields: FieldFilter::default(),
            force_refresh: false,
            include_sigs: true,
            include_pub_keys: true,
            hide_nulls: false,
            date_readable: true,
            roots: RootFilter::default(),
        }
    }
}

/// What a listed record must be to be answered: of `record_type` (compared as the old index's
/// analysed field did, without regard to case) and with a DID of method `method`.
#[derive(Debug, Clone, Default)]
pub struct RootFilter {
    pub record_type: Option<String>,
    pub method: Option<String>,
}

impl RootFilter {
    pub fn admits(&self, did: &str, oip: &serde_json::Value) -> bool {
        let method_ok = self.method.as_deref().is_none_or(|m| {
            did.strip_prefix("did:")
                .and_then(|rest| rest.strip_prefix(m))
                .is_some_and(|rest| rest.starts_with(':'))
        });
        let type_ok = self.record_type.as_deref().is_none_or(|t| {
            oip.get("recordType")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|r| r.eq_ignore_ascii_case(t))
        });
        method_ok && type_ok
    }
}

/// Which fields' references are resolved (`resolveFieldNames`); `None` means all of them.
#[derive(Debug, Clone, Default)]
pub struct FieldFilter(Option<Vec<String>>);

impl FieldFilter {
    pub fn only(entries: Vec<String>) -> Self {
        Self(Some(entries))
    }

    /// An entry selects field `c.k` when it equals `c.k` or `data.c.k`, or is a dotted prefix of
    /// either (`workout` selects the whole category, `data` everything).
    pub fn selects(&self, category: &str, key: &str) -> bool {
        let Some(entries) = &self.0 else {
            return true;
        };
        entries.iter().any(|e| {
            dotted_prefix(e, &[category, key]) || dotted_prefix(e, &["data", category, key])
        })
    }
}

/// Whether `entry` equals `parts` joined with dots, or is a prefix of that ending at a dot.
/// Called for every field of every record while resolving: it compares without building the
/// joined name.
fn dotted_prefix(entry: &str, parts: &[&str]) -> bool {
    let mut joined = parts
        .iter()
        .enumerate()
        .flat_map(|(i, p)| (if i == 0 { "" } else { "." }).bytes().chain(p.bytes()));
    entry.bytes().all(|b| joined.next() == Some(b)) && matches!(joined.next(), None | Some(b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_match_without_allocating_the_same_way() {
        assert!(dotted_prefix("a.b", &["a", "b"]));
        assert!(dotted_prefix("a", &["a", "b"]));
        assert!(dotted_prefix("data.a", &["data", "a", "b"]));
        assert!(!dotted_prefix("a.", &["a", "b"]));
        assert!(!dotted_prefix("a.bc", &["a", "b"]));
        assert!(!dotted_prefix("ab", &["a", "b"]));
        assert!(!dotted_prefix("a.b.c", &["a", "b"]));
        // A key holding a dot still matches by prefix, as a plain string comparison would.
        assert!(dotted_prefix("c.a", &["c", "a.b"]));
    }
}
