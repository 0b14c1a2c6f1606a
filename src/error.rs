//! The one place where a failure becomes an HTTP status and a `{"error","code"}` body. Codes are
//! part of the contract: clients branch on them, so they never change once published.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};

use crate::{
    did::DidError,
    gun::{FetchError, SoulError},
    media::{access::AccessError, path::PathError, MediaError},
    resolver::ResolveError,
};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("query parameter `{0}` is required")]
    MissingParameter(&'static str),
    #[error("query parameter `{name}` is invalid: {reason}")]
    InvalidParameter { name: &'static str, reason: String },
    #[error("the query string is malformed: {0}")]
    InvalidQuery(String),
    #[error("invalid soul: {0}")]
    InvalidSoul(#[from] SoulError),
    #[error("invalid DID: {0}")]
    InvalidDid(DidError),
    #[error("the request body is invalid: {0}")]
    InvalidBody(String),
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("{0} is not enabled on this server")]
    NotConfigured(&'static str),
    #[error("Not found")]
    SoulNotFound,
    #[error("no route for {method} {path}")]
    RouteNotFound { method: String, path: String },
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Upstream(#[from] FetchError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("no part of the requested range lies within the file")]
    RangeNotSatisfiable(u64),
    #[error("the file has changed (If-Match)")]
    PreconditionFailed,
    #[error("the service is shutting down or overloaded")]
    Unavailable,
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MissingParameter(_) => "missing_parameter",
            ApiError::InvalidParameter { .. } => "invalid_parameter",
            ApiError::InvalidQuery(_) => "invalid_query",
            ApiError::InvalidSoul(_) => "invalid_soul",
            ApiError::InvalidDid(_) => "invalid_did",
            ApiError::InvalidBody(_) => "invalid_body",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotConfigured(_) => "not_configured",
            ApiError::SoulNotFound => "not_found",
            ApiError::RouteNotFound { .. } => "route_not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Upstream(e) | ApiError::Resolve(ResolveError::Upstream(_, e)) => {
                fetch_code(e)
            }
            ApiError::Resolve(e) => match e {
                ResolveError::NotFound(_) => "record_not_found",
                ResolveError::Unsupported(_) => "unsupported_did",
                ResolveError::Budget(_) => "budget_exceeded",
                ResolveError::Upstream(_, e) => fetch_code(e),
            },
            ApiError::Media(e) => match e {
                MediaError::Path(PathError::BadMediaId) => "invalid_media_id",
                MediaError::Path(PathError::BadPath) => "invalid_path",
                MediaError::Path(PathError::NotFound | PathError::Outside) => "media_not_found",
                MediaError::Access(AccessError::NoValidToken) => "unauthorized",
                MediaError::Access(AccessError::NotTheOwner) => "forbidden",
                MediaError::Access(AccessError::NoSecret) => "private_media_disabled",
                MediaError::NoManifest => "manifest_not_found",
                MediaError::Io => "media_unreadable",
            },
            ApiError::RangeNotSatisfiable(_) => "range_not_satisfiable",
            ApiError::PreconditionFailed => "precondition_failed",
            ApiError::Unavailable => "unavailable",
        }
    }
}

/// A relay or indexer failure, whether met by the relay proxy or while resolving a root.
fn fetch_code(e: &FetchError) -> &'static str {
    match e {
        FetchError::CircuitOpen => "relay_circuit_open",
        FetchError::Unreachable(_) => "relay_unreachable",
        FetchError::Timeout => "relay_timeout",
        FetchError::Status(_) => "relay_error",
        FetchError::TooLarge(_) => "relay_response_too_large",
        FetchError::Malformed(_) => "relay_bad_response",
        FetchError::Cancelled => "relay_unavailable",
        FetchError::Unsupported => "unsupported_did",
    }
}

fn fetch_status(e: &FetchError) -> StatusCode {
    match e {
        FetchError::CircuitOpen | FetchError::Unreachable(_) | FetchError::Cancelled => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        FetchError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        FetchError::Unsupported => StatusCode::BAD_REQUEST,
        FetchError::Status(_) | FetchError::TooLarge(_) | FetchError::Malformed(_) => {
            StatusCode::BAD_GATEWAY
        }
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(_: actix::MailboxError) -> Self {
        ApiError::Unavailable
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MissingParameter(_)
            | ApiError::InvalidParameter { .. }
            | ApiError::InvalidQuery(_)
            | ApiError::InvalidSoul(_)
            | ApiError::InvalidDid(_)
            | ApiError::InvalidBody(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotConfigured(_)
            | ApiError::SoulNotFound
            | ApiError::RouteNotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Upstream(e) => fetch_status(e),
            ApiError::Resolve(e) => match e {
                ResolveError::NotFound(_) => StatusCode::NOT_FOUND,
                ResolveError::Unsupported(_) | ResolveError::Budget(_) => StatusCode::BAD_REQUEST,
                ResolveError::Upstream(_, e) => fetch_status(e),
            },
            ApiError::Media(e) => match e {
                MediaError::Path(PathError::BadMediaId | PathError::BadPath) => {
                    StatusCode::BAD_REQUEST
                }
                // A path that leaves the root is answered like one that does not exist: the
                // client learns nothing about what lies outside.
                MediaError::Path(PathError::NotFound | PathError::Outside)
                | MediaError::NoManifest => StatusCode::NOT_FOUND,
                MediaError::Access(AccessError::NoValidToken) => StatusCode::UNAUTHORIZED,
                MediaError::Access(AccessError::NotTheOwner | AccessError::NoSecret) => {
                    StatusCode::FORBIDDEN
                }
                MediaError::Io => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unauthorized
            | ApiError::Media(MediaError::Access(AccessError::NoValidToken)) => {
                res.insert_header(("www-authenticate", "Bearer"));
            }
            ApiError::RangeNotSatisfiable(len) => {
                res.insert_header(("content-range", format!("bytes */{len}")));
            }
            _ => {}
        }
        res.json(serde_json::json!({"error": self.to_string(), "code": self.code()}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn upstream_failures_are_never_a_blanket_500() {
        for (e, status) in [
            (FetchError::CircuitOpen, 503),
            (FetchError::Unreachable("refused".into()), 503),
            (FetchError::Timeout, 504),
            (FetchError::Status(500), 502),
            (FetchError::TooLarge(10), 502),
            (FetchError::Malformed("x".into()), 502),
        ] {
            assert_eq!(ApiError::from(e).status_code().as_u16(), status);
        }
    }

    #[test]
    fn internal_failures_have_their_own_codes() {
        for (e, status, code) in [
            (ApiError::Unavailable, 503, "unavailable"),
            (FetchError::Cancelled.into(), 503, "relay_unavailable"),
            (MediaError::Io.into(), 500, "media_unreadable"),
        ] {
            assert_eq!(e.status_code().as_u16(), status, "{code}");
            assert_eq!(e.code(), code);
        }
    }

    #[test]
    fn body_is_error_and_code() {
        let res = ApiError::MissingParameter("soul").error_response();
        assert_eq!(res.status(), 400);
        let body = res.into_body().try_into_bytes().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "missing_parameter");
        assert_eq!(v["error"], "query parameter `soul` is required");
    }
}
