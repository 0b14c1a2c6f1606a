//! Byte ranges and conditional requests (RFC 9110 §13 and §14), as pure functions of the request
//! headers and the file's length, modification time and entity tag.

use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::header::HttpDate;

/// More ranges than this in one request is either a broken client or a resource-exhaustion
/// attempt; the whole file is cheaper to send than a multipart answer of thousands of parts.
pub const MAX_RANGES: usize = 16;

/// An inclusive byte range `start..=end` within the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    /// Bytes in the range; never zero, the range being inclusive.
    pub fn size(&self) -> u64 {
        self.end - self.start + 1
    }

    pub fn content_range(&self, total: u64) -> String {
        format!("bytes {}-{}/{total}", self.start, self.end)
    }
}

/// Interprets a `Range` header against a file of `len` bytes. A header that does not parse is
/// ignored (the whole file is sent), as RFC 9110 allows; so are ranges that overlap or are too
/// many, which would make the multipart answer larger than the file.
pub fn decide(header: Option<&str>, len: u64) -> Plan {
    let Some(header) = header else {
        return Plan::Full;
    };
    let Some(specs) = strip_unit(header) else {
        return Plan::Full;
    };
    let mut ranges = Vec::new();
    let mut any_spec = false;
    for spec in specs.split(',') {
        let spec = spec.trim_matches(|c| c == ' ' || c == '\t');
        if spec.is_empty() {
            continue;
        }
        any_spec = true;
        match parse_spec(spec) {
            None => return Plan::Full,
            Some(Spec::From(first, last)) => {
                if first < len {
                    let end = last.map_or(len - 1, |l| l.min(len - 1));
                    ranges.push(ByteRange { start: first, end });
                }
            }
            Some(Spec::Suffix(n)) => {
                if n > 0 && len > 0 {
                    ranges.push(ByteRange {
                        start: len.saturating_sub(n),
                        end: len - 1,
                    });
                }
            }
        }
        if ranges.len() > MAX_RANGES {
            return Plan::Full;
        }
    }
    if !any_spec {
        return Plan::Full;
    }
    if ranges.is_empty() {
        return Plan::Unsatisfiable;
    }
    ranges.sort_by_key(|r| r.start);
    if ranges.windows(2).any(|w| w[1].start <= w[0].end) {
        return Plan::Full;
    }
    Plan::Partial(ranges)
}

enum Spec {
    From(u64, Option<u64>),
    Suffix(u64),
}

fn strip_unit(header: &str) -> Option<&str> {
    let header = header.trim();
    let (unit, rest) = header.split_once('=')?;
    unit.trim().eq_ignore_ascii_case("bytes").then_some(rest)
}

fn parse_spec(spec: &str) -> Option<Spec> {
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return digits(last).map(Spec::Suffix);
    }
    let first = digits(first)?;
    if last.is_empty() {
        return Some(Spec::From(first, None));
    }
    let last = digits(last)?;
    (first <= last).then_some(Spec::From(first, Some(last)))
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // A number past u64 still names a position past any file.
    Some(s.parse().unwrap_or(u64::MAX))
}

/// The request headers that decide how a file is answered.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
}

/// How to answer, from the headers and the file's length and validators. `decide` yields the
/// last three; `plan` all five.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// 412: `If-Match` names another version.
    PreconditionFailed,
    /// 304.
    NotModified,
    /// 416.
    Unsatisfiable,
    /// 200 with the whole file.
    Full,
    /// 206 with these ranges (several: multipart).
    Partial(Vec<ByteRange>),
}

/// A file's validators, computed once per open and sent as `ETag` and `Last-Modified`.
#[derive(Debug, Clone)]
pub struct Validators {
    pub etag: String,
    pub last_modified: String,
    /// Modification time at `Last-Modified`'s one-second precision.
    modified_secs: SystemTime,
}

impl Validators {
    pub fn new(len: u64, modified: SystemTime) -> Self {
        let since_epoch = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            // Strong: what changes when the file changes, its length and its modification time
            // to the nanosecond.
            etag: format!("\"{len:x}-{:x}\"", since_epoch.as_nanos()),
            last_modified: HttpDate::from(modified).to_string(),
            modified_secs: UNIX_EPOCH + std::time::Duration::from_secs(since_epoch.as_secs()),
        }
    }
}

/// RFC 9110 §13.2.2: `If-Match`, then `If-None-Match` (or `If-Modified-Since` without it), then
/// `Range` under `If-Range`.
pub fn plan(c: &Conditions, len: u64, v: &Validators) -> Plan {
    let tag = &v.etag;
    if let Some(list) = &c.if_match {
        if !tag_list_matches(list, tag, false) {
            return Plan::PreconditionFailed;
        }
    }
    let not_modified = match &c.if_none_match {
        Some(list) => tag_list_matches(list, tag, true),
        None => c
            .if_modified_since
            .as_deref()
            .and_then(|d| d.parse::<HttpDate>().ok())
            .is_some_and(|since| SystemTime::from(since) >= v.modified_secs),
    };
    if not_modified {
        return Plan::NotModified;
    }
    let range = c
        .range
        .as_deref()
        .filter(|_| if_range_allows(c.if_range.as_deref(), tag, &v.last_modified));
    decide(range, len)
}

/// Does an `If-None-Match` / `If-Match` list hold `tag`? `weak` compares ignoring `W/`.
pub fn tag_list_matches<'a>(list: &'a str, tag: &'a str, weak: bool) -> bool {
    list.split(',').map(str::trim).any(|candidate| {
        if candidate == "*" {
            return true;
        }
        let opaque = |t: &'a str| t.strip_prefix("W/").unwrap_or(t);
        if weak {
            opaque(candidate) == opaque(tag)
        } else {
            !candidate.starts_with("W/") && candidate == tag
        }
    })
}

/// Whether a `Range` may be honoured given `If-Range`: only when the validator matches the
/// current representation exactly (a strong ETag, or the exact Last-Modified date).
pub fn if_range_allows(if_range: Option<&str>, tag: &str, last_modified: &str) -> bool {
    match if_range.map(str::trim) {
        None => true,
        Some(v) if v.starts_with('"') => v == tag,
        Some(v) if v.starts_with("W/") => false,
        Some(v) => v == last_modified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    fn partial(h: &str, len: u64) -> Vec<ByteRange> {
        match decide(Some(h), len) {
            Plan::Partial(v) => v,
            other => panic!("{h}: {other:?}"),
        }
    }

    #[test]
    fn every_single_range_form() {
        assert_eq!(partial("bytes=0-99", 1000), [r(0, 99)]);
        assert_eq!(partial("bytes=500-", 1000), [r(500, 999)]);
        assert_eq!(partial("bytes=-100", 1000), [r(900, 999)]);
        assert_eq!(partial("bytes=0-1", 1000), [r(0, 1)], "Safari's probe");
        assert_eq!(partial("bytes=0-", 1000), [r(0, 999)]);
        assert_eq!(
            partial("bytes=900-5000", 1000),
            [r(900, 999)],
            "end clamped"
        );
        assert_eq!(
            partial("bytes=-5000", 1000),
            [r(0, 999)],
            "suffix longer than file"
        );
        assert_eq!(partial("bytes=999-999", 1000), [r(999, 999)]);
        assert_eq!(partial("BYTES = 1-2", 1000), [r(1, 2)]);
    }

    #[test]
    fn unsatisfiable_ranges() {
        for h in [
            "bytes=1000-",
            "bytes=1000-2000",
            "bytes=-0",
            "bytes=5000-6000, 2000-",
        ] {
            assert_eq!(decide(Some(h), 1000), Plan::Unsatisfiable, "{h}");
        }
        assert_eq!(decide(Some("bytes=0-"), 0), Plan::Unsatisfiable);
        assert_eq!(
            decide(Some("bytes=99999999999999999999999-"), 10),
            Plan::Unsatisfiable
        );
    }

    #[test]
    fn malformed_headers_are_ignored() {
        for h in [
            "bytes=abc",
            "bytes=5-1",
            "bytes=--1",
            "bytes=1-2-3",
            "items=0-1",
            "bytes",
            "bytes=",
            "bytes=,",
            "0-1",
            "bytes=0x10-",
            "bytes=-",
            "bytes=+1-2",
        ] {
            assert_eq!(decide(Some(h), 1000), Plan::Full, "{h}");
        }
        assert_eq!(decide(None, 1000), Plan::Full);
    }

    #[test]
    fn several_ranges_are_sorted_or_refused() {
        assert_eq!(
            partial("bytes=500-599, 0-99", 1000),
            [r(0, 99), r(500, 599)]
        );
        assert_eq!(partial("bytes=0-0,-1", 1000), [r(0, 0), r(999, 999)]);
        assert_eq!(
            decide(Some("bytes=0-500,400-600"), 1000),
            Plan::Full,
            "overlap"
        );
        let many = (0..17)
            .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(decide(Some(&format!("bytes={many}")), 1000), Plan::Full);
        assert_eq!(
            partial("bytes=0-1, 5000-6000", 1000),
            [r(0, 1)],
            "unsatisfiable part dropped"
        );
    }

    #[test]
    fn etags_compare_strongly_and_weakly() {
        let t = Validators::new(10, UNIX_EPOCH + std::time::Duration::from_nanos(77)).etag;
        assert_eq!(t, "\"a-4d\"");
        assert!(tag_list_matches("\"x\", \"a-4d\"", &t, false));
        assert!(!tag_list_matches("W/\"a-4d\"", &t, false));
        assert!(tag_list_matches("W/\"a-4d\"", &t, true));
        assert!(tag_list_matches("*", &t, true));
        assert!(!tag_list_matches("\"b\"", &t, true));
    }

    #[test]
    fn conditionals_come_before_ranges() {
        let modified = UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let v = Validators::new(100, modified);
        let (tag, lm) = (v.etag.clone(), HttpDate::from(modified).to_string());
        let c = |f: fn(&mut Conditions, &str, &str)| {
            let mut c = Conditions::default();
            f(&mut c, &tag, &lm);
            plan(&c, 100, &v)
        };
        assert_eq!(c(|_, _, _| {}), Plan::Full);
        assert_eq!(
            c(|c, t, _| c.if_none_match = Some(t.into())),
            Plan::NotModified
        );
        assert_eq!(
            c(|c, _, l| c.if_modified_since = Some(l.into())),
            Plan::NotModified
        );
        assert_eq!(
            c(|c, _, _| c.if_modified_since = Some("Thu, 01 Jan 1970 00:00:00 GMT".into())),
            Plan::Full
        );
        assert_eq!(
            c(|c, _, _| c.if_match = Some("\"old\"".into())),
            Plan::PreconditionFailed
        );
        assert_eq!(
            c(|c, t, _| {
                c.range = Some("bytes=0-1".into());
                c.if_range = Some(t.into());
            }),
            Plan::Partial(vec![r(0, 1)])
        );
        assert_eq!(
            c(|c, _, _| {
                c.range = Some("bytes=0-1".into());
                c.if_range = Some("\"old\"".into());
            }),
            Plan::Full
        );
        assert_eq!(
            c(|c, _, _| c.range = Some("bytes=100-".into())),
            Plan::Unsatisfiable
        );
    }

    #[test]
    fn if_range_needs_an_exact_validator() {
        let lm = "Sat, 28 Nov 2026 10:00:00 GMT";
        assert!(if_range_allows(None, "\"a\"", lm));
        assert!(if_range_allows(Some("\"a\""), "\"a\"", lm));
        assert!(!if_range_allows(Some("\"b\""), "\"a\"", lm));
        assert!(!if_range_allows(Some("W/\"a\""), "\"a\"", lm));
        assert!(if_range_allows(Some(lm), "\"a\"", lm));
        assert!(!if_range_allows(
            Some("Sat, 28 Nov 2026 09:00:00 GMT"),
            "\"a\"",
            lm
        ));
    }
}
