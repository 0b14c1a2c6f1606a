//! `/gun-relay/*`: the relay's own API, passed through the fetcher so that reads are coalesced
//! and cached and writes invalidate the caches.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{bearer, compressed, read_body, AppState, StrictQuery};
use crate::{
    auth::{may_write, WriteError},
    did::Did,
    error::ApiError,
    gun::{write::check_node, Lookup, Put},
    http::error::RequestError,
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
        .ok_or(RequestError::MissingParameter("soul"))?;
    validate_soul(&soul)?;
    let fetched = state.gun.fetch(Did::Gun(soul), None, false).await?;
    let x_cache = ("x-cache", fetched.source.header_value());
    Ok(match fetched.lookup {
        Lookup::Found(found) => HttpResponse::Ok()
            .insert_header(x_cache)
            .content_type("application/json")
            .body(found.raw.clone()),
        Lookup::NotFound => {
            let mut res =
                actix_web::ResponseError::error_response(&ApiError::from(RequestError::NotFound));
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
        return Err(RequestError::UnsupportedMediaType.into());
    }
    let auth = &state.config.auth;
    let token = bearer(&req);
    // Nobody without a token reads the body, let alone reaches the relay.
    if token.is_none() && !auth.open_writes {
        may_write("", None, auth)?;
    }
    let body = read_body(&req, payload, state.config.server.max_body_bytes).await?;
    let (soul, node) = parse_put(&body)?;
    let authority = may_write(&soul, token, auth)?;
    check_node(&node, authority.owner()).map_err(|e| {
        if e.is_authority() {
            ApiError::Write(WriteError::LinkOutside(e.to_string()))
        } else {
            RequestError::InvalidBody(e.to_string()).into()
        }
    })?;
    let answer = state.gun.fetcher.send(Put { soul, node }).await??;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(answer))
}

/// A put is `{"soul": S, "data": {node}}`; what the node may hold is `check_node`'s to say.
fn parse_put(body: &[u8]) -> Result<(String, Map<String, Value>), ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| RequestError::InvalidBody(format!("not JSON: {e}")))?;
    let Value::Object(mut put) = value else {
        return Err(
            RequestError::InvalidBody("expected an object {\"soul\", \"data\"}".into()).into(),
        );
    };
    let soul = match put.remove("soul") {
        Some(Value::String(s)) => s,
        _ => return Err(RequestError::InvalidBody("`soul` must be a string".into()).into()),
    };
    validate_soul(&soul)?;
    match put.remove("data") {
        Some(Value::Object(node)) => Ok((soul, node)),
        _ => Err(RequestError::InvalidBody("`data` must be an object".into()).into()),
    }
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
}
