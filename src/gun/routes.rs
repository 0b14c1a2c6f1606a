//! The gun feature's routes: `/gun-relay/*`, the relay's own API passed through the fetcher
//! (reads coalesced and cached, writes checked and invalidating the caches), and the operator's
//! `DELETE /api/cache/negative/{soul}`, behind `auth.admin_token`.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{client::Client, lookup::Lookup, write::check_node};
use crate::{
    auth::{may_write, same_secret, WriteError},
    config::Config,
    did::Did,
    error::ApiError,
    http::{
        error::RequestError,
        query::StrictQuery,
        request::{bearer, compressed, read_body},
    },
    soul::validate_soul,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(compressed("/gun-relay/get").route(web::get().to(get)))
        .service(compressed("/gun-relay/put").route(web::post().to(put)))
        .service(compressed("/api/cache/negative/{soul}").route(web::delete().to(forget_missing)));
}

#[derive(Deserialize)]
struct SoulQuery {
    soul: Option<String>,
}

async fn get(
    gun: web::Data<Client>,
    query: StrictQuery<SoulQuery>,
) -> Result<HttpResponse, ApiError> {
    let soul = query
        .into_inner()
        .soul
        .filter(|s| !s.is_empty())
        .ok_or(RequestError::MissingParameter("soul"))?;
    validate_soul(&soul)?;
    let fetched = gun.fetch(Did::Gun(soul), None, false).await?;
    let x_cache = ("x-cache", fetched.cache.header_value());
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
    gun: web::Data<Client>,
    config: web::Data<Config>,
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
    let auth = &config.auth;
    let token = bearer(&req);
    // Nobody without a token reads the body, let alone reaches the relay.
    if token.is_none() && !auth.open_writes {
        may_write("", None, auth)?;
    }
    let body = read_body(&req, payload, config.server.max_body_bytes).await?;
    let (soul, node) = parse_put(&body)?;
    let authority = may_write(&soul, token, auth)?;
    check_node(&node, authority.owner()).map_err(|e| {
        if e.is_authority() {
            ApiError::Write(WriteError::LinkOutside(e.to_string()))
        } else {
            RequestError::InvalidBody(e.to_string()).into()
        }
    })?;
    let answer = gun.put(soul, node).await?;
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

async fn forget_missing(
    gun: web::Data<Client>,
    config: web::Data<Config>,
    req: HttpRequest,
    soul: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let Some(token) = config.auth.admin_token.as_deref() else {
        return Err(RequestError::NotConfigured("the admin API (auth.admin_token)").into());
    };
    if !bearer(&req).is_some_and(|given| same_secret(given, token)) {
        return Err(RequestError::Unauthorized.into());
    }
    let soul = soul.into_inner();
    // A DID of another method (cached from the indexer) can be forgotten by its full name.
    let key = if soul.starts_with("did:") {
        Did::parse(&soul)?
    } else {
        validate_soul(&soul)?;
        Did::Gun(soul.clone())
    };
    // Through the fetcher, as a write: out of every cache and of its memory of malformed
    // records, and a fetch of it on its way caches nothing.
    let forgotten = gun.forget(key).await?;
    log::info!("[GUN 404 Cache] operator forgot {soul} (was cached: {forgotten})");
    Ok(HttpResponse::Ok().json(serde_json::json!({"soul": soul, "forgotten": forgotten})))
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
