//! Query strings parsed strictly: a malformed escape, bytes that are not UTF-8 or a parameter
//! given twice is a 400 naming the problem. actix's `web::Query` decodes lossily (an invalid
//! byte becomes U+FFFD), which would let a garbled soul through to the relay.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, FromRequest, HttpRequest};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::RequestError;
use crate::error::ApiError;

/// Longer than any legitimate query (50 DIDs and every option fit in a few KB).
const MAX_QUERY_BYTES: usize = 16 * 1024;

pub struct StrictQuery<T>(pub T);

impl<T> StrictQuery<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned> FromRequest for StrictQuery<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            parse(req.query_string())
                .and_then(|map| {
                    serde_json::from_value(Value::Object(map))
                        .map(StrictQuery)
                        .map_err(|e| RequestError::InvalidQuery(e.to_string()))
                })
                .map_err(ApiError::from),
        )
    }
}

/// Every parameter as a string, each name at most once.
pub fn parse(query: &str) -> Result<Map<String, Value>, RequestError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(RequestError::InvalidQuery(format!(
            "longer than {MAX_QUERY_BYTES} bytes"
        )));
    }
    let mut map = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(name)?;
        let value = decode(value)?;
        if map.insert(name.clone(), Value::String(value)).is_some() {
            return Err(RequestError::InvalidQuery(format!(
                "`{}` is given more than once",
                name.chars().take(64).collect::<String>()
            )));
        }
    }
    Ok(map)
}

/// A name or value of a query, percent-decoded (`+` is a space) and checked to be UTF-8.
pub fn decode(s: &str) -> Result<String, RequestError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| RequestError::InvalidQuery("a malformed %-escape".into()))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| RequestError::InvalidQuery("a parameter is not valid UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_browsers_send() {
        let m = parse("soul=a1%3Ab+c&x=&flag&did=did:gun:a:1,did:gun:b:2").unwrap();
        assert_eq!(m["soul"], "a1:b c");
        assert_eq!(m["x"], "");
        assert_eq!(m["flag"], "");
        assert_eq!(m["did"], "did:gun:a:1,did:gun:b:2");
        assert_eq!(parse("name=%C3%A9").unwrap()["name"], "é");
    }

    #[test]
    fn refuses_garbled_or_repeated_input() {
        for q in [
            "soul=%FF%FE",
            "soul=%C0%AE",
            "soul=%ZZ",
            "soul=%4",
            "soul=%",
            "a=1&a=2",
            "%FF=1",
        ] {
            assert!(parse(q).is_err(), "{q}");
        }
        assert!(parse(&"a".repeat(MAX_QUERY_BYTES + 1)).is_err());
    }
}
