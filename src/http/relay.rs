//! `/gun-relay/*`: the relay's own API, passed through the fetcher so that reads are coalesced
//! and cached and writes invalidate the caches.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{bearer, compressed, read_body, AppState, StrictQuery};
use crate::{
    auth::may_write,
    did::Did,
    error::ApiError,
    gun::{Lookup, Put},
    soul::validate_soul,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(compressed("/gun-relay/get").route(web::get().to(get)))
        .service(compressed("/gun-relay/put").route(web::post().to(put)));
}

#[derive(Deserialize)]
struct SoulQuery {
    soul: Option<String>,
}

async fn get(
    state: web::Data<AppState>,
    query: StrictQuery<SoulQuery>,
) -> Result<HttpResponse, ApiError> {
    let soul = query
        .into_inner()
        .soul
        .filter(|s| !s.is_empty())
        .ok_or(ApiError::MissingParameter("soul"))?;
    validate_soul(&soul)?;
    let fetched = state.gun.fetch(Did::Gun(soul), None, false).await?;
    let x_cache = ("x-cache", fetched.source.header_value());
    Ok(match fetched.lookup {
        Lookup::Found(found) => HttpResponse::Ok()
            .insert_header(x_cache)
            .content_type("application/json")
            .body(found.raw.clone()),
        Lookup::NotFound => {
            let mut res = actix_web::ResponseError::error_response(&ApiError::SoulNotFound);
            res.headers_mut().insert(
                header::HeaderName::from_static("x-cache"),
                header::HeaderValue::from_static(x_cache.1),
            );
            res
        }
    })
}

async fn put(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let auth = &state.config.auth;
    let token = bearer(&req);
    // Nobody without a token reads the body, let alone reaches the relay.
    if token.is_none() && !auth.open_writes {
        may_write("", None, auth)?;
    }
    let body = read_body(&req, payload, state.config.server.max_body_bytes).await?;
    let (soul, node) = parse_put(&body)?;
    may_write(&soul, token, auth)?;
    let answer = state.gun.fetcher.send(Put { soul, node }).await??;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(answer))
}

/// A put is `{"soul": S, "data": {node}}` with a node the relay can store; anything else never
/// reaches the relay.
fn parse_put(body: &[u8]) -> Result<(String, Map<String, Value>), ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::InvalidBody(format!("not JSON: {e}")))?;
    let Value::Object(mut put) = value else {
        return Err(ApiError::InvalidBody(
            "expected an object {\"soul\", \"data\"}".into(),
        ));
    };
    let soul = match put.remove("soul") {
        Some(Value::String(s)) => s,
        _ => return Err(ApiError::InvalidBody("`soul` must be a string".into())),
    };
    validate_soul(&soul)?;
    match put.remove("data") {
        Some(Value::Object(node)) => {
            check_node(&node)?;
            Ok((soul, node))
        }
        _ => Err(ApiError::InvalidBody("`data` must be an object".into())),
    }
}

/// What GUN can store, as OIP publishes it: `data` and `oip` as strings holding a JSON object,
/// other fields scalars, links (`{"#": soul}`) or non-empty objects of the same (GUN keeps those
/// as linked nodes, as the publisher's `meta`). GUN answers an array with an error, and never
/// acknowledges an empty object while still storing it: both are refused here, before the relay.
fn check_node(node: &Map<String, Value>) -> Result<(), ApiError> {
    if node.is_empty() {
        return Err(ApiError::InvalidBody(
            "`data` must hold at least one field".into(),
        ));
    }
    for field in ["data", "oip"] {
        match node.get(field) {
            None => {}
            Some(Value::String(text))
                if serde_json::from_str::<Value>(text).is_ok_and(|v| v.is_object()) => {}
            Some(_) => {
                return Err(ApiError::InvalidBody(format!(
                    "`data.{field}` must be a string holding a JSON object, as OIP publishes it"
                )))
            }
        }
    }
    check_fields("data", node)
}

fn check_fields(at: &str, fields: &Map<String, Value>) -> Result<(), ApiError> {
    for (key, value) in fields {
        match value {
            Value::Array(_) => {
                return Err(ApiError::InvalidBody(format!(
                    "`{at}.{key}` is an array, which the relay cannot store (store it as a JSON string)"
                )))
            }
            Value::Object(child) if child.is_empty() => {
                return Err(ApiError::InvalidBody(format!(
                    "`{at}.{key}` is an empty object, which the relay never acknowledges"
                )))
            }
            Value::Object(child) if is_link(child) => {}
            Value::Object(child) => check_fields(&format!("{at}.{key}"), child)?,
            _ => {}
        }
    }
    Ok(())
}

/// `{"#": "<soul>"}`: how GUN points at another node.
fn is_link(object: &Map<String, Value>) -> bool {
    object.len() == 1 && object.get("#").is_some_and(Value::is_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_bodies_are_checked() {
        assert!(parse_put(br#"{"soul":"a:1","data":{"data":"{}"}}"#).is_ok());
        for bad in [
            &b"not json"[..],
            br#"[1,2]"#,
            br#"{"data":{}}"#,
            br#"{"soul":5,"data":{}}"#,
            br#"{"soul":"","data":{}}"#,
            br#"{"soul":"a:1","data":"x"}"#,
        ] {
            assert!(parse_put(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn only_what_the_relay_can_store_is_accepted() {
        let ok = |node: &str| parse_put(format!(r#"{{"soul":"a:1","data":{node}}}"#).as_bytes());
        for good in [
            r#"{"data":"{\"basic\":{}}","oip":"{\"recordType\":\"x\"}"}"#,
            r##"{"data":"{}","meta":{"#":"a:1/meta"}}"##,
            r#"{"data":"{}","meta":{"publishedBy":"p","version":1}}"#,
            r#"{"name":"registry entry","count":3,"live":true,"gone":null}"#,
        ] {
            assert!(ok(good).is_ok(), "{good}");
        }
        for (bad, names) in [
            (r#"{}"#, "at least one field"),
            (r#"{"data":{"basic":{}}}"#, "data.data"),
            (r#"{"data":"not json"}"#, "data.data"),
            (r#"{"data":"[1,2]"}"#, "data.data"),
            (r#"{"oip":{}}"#, "data.oip"),
            (r#"{"data":"{}","tags":["a"]}"#, "data.tags"),
            (r#"{"data":"{}","meta":{}}"#, "data.meta"),
            (
                r#"{"data":"{}","meta":{"deep":{"list":[1]}}}"#,
                "data.meta.deep.list",
            ),
        ] {
            let err = ok(bad).expect_err(bad);
            assert_eq!(err.code(), "invalid_body");
            assert!(err.to_string().contains(names), "{bad}: {err}");
        }
    }
}
