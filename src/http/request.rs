//! What every feature's routes share at the HTTP edge: the bearer token of a request, a resource
//! whose other methods answer a JSON 405, a compressed one, and a body read within a limit.

use actix_web::{dev::ServiceResponse, web, HttpRequest, HttpResponse};
use futures::StreamExt;

use super::{compress, error::RequestError};
use crate::error::ApiError;

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(RequestError::MethodNotAllowed(req.method().to_string()).into())
}

/// The token of an `Authorization: Bearer` header; the scheme is case-insensitive (RFC 9110).
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A resource whose other methods answer a JSON 405 rather than actix's empty 404.
pub fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// A JSON (or text) resource: its answers, errors included, are compressed as the client's
/// `Accept-Encoding` asks (brotli or gzip). Media resources are plain `resource`s: a media body
/// is never compressed, so byte ranges keep meaning bytes of the file.
pub fn compressed(
    path: &str,
) -> actix_web::Resource<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    resource(path).wrap_fn(compress::compress)
}

/// Reads a request body up to `limit` bytes, refusing more before buffering it.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(RequestError::PayloadTooLarge(limit).into());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| RequestError::InvalidBody(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(RequestError::PayloadTooLarge(limit).into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
