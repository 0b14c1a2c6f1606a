//! The one place where a failure becomes an HTTP status and a `{"error","code"}` body. Codes are
//! part of the contract: clients branch on them, so they never change once published.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};

use crate::{
    auth::WriteError,
    did::DidError,
    gun::FetchError,
    media::{access::AccessError, path::PathError, MediaError},
    resolver::ResolveError,
    soul::SoulError,
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
    #[error("query parameter `did` is required: a listing (a query without `did`) needs resolver.oip_api")]
    ListingNeedsIndexer,
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        self.describe().1
    }

    /// The `error` of the body: what went wrong, for a person, without the system's details of
    /// an upstream failure (those are logged).
    fn public(&self) -> String {
        match self {
            ApiError::Upstream(e) => e.public(),
            ApiError::Resolve(ResolveError::Upstream(did, e)) => {
                format!("{} (while fetching {did})", e.public())
            }
            other => other.to_string(),
        }
    }

    /// The status and the stable code of every failure, side by side in one match.
    fn describe(&self) -> (StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            ApiError::MissingParameter(_) => (S::BAD_REQUEST, "missing_parameter"),
            ApiError::InvalidParameter { .. } => (S::BAD_REQUEST, "invalid_parameter"),
            ApiError::InvalidQuery(_) => (S::BAD_REQUEST, "invalid_query"),
            ApiError::InvalidSoul(_) => (S::BAD_REQUEST, "invalid_soul"),
            ApiError::InvalidDid(_) => (S::BAD_REQUEST, "invalid_did"),
            ApiError::InvalidBody(_) => (S::BAD_REQUEST, "invalid_body"),
            ApiError::UnsupportedMediaType => (S::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::PayloadTooLarge(_) => (S::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Unauthorized => (S::UNAUTHORIZED, "unauthorized"),
            ApiError::NotConfigured(_) => (S::NOT_FOUND, "not_configured"),
            ApiError::SoulNotFound => (S::NOT_FOUND, "not_found"),
            ApiError::RouteNotFound { .. } => (S::NOT_FOUND, "route_not_found"),
            ApiError::MethodNotAllowed(_) => (S::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Upstream(e) => fetch_failure(e),
            ApiError::Resolve(e) => match e {
                ResolveError::Unsupported(_) => (S::BAD_REQUEST, "unsupported_did"),
                ResolveError::Budget(_) => (S::BAD_REQUEST, "budget_exceeded"),
                ResolveError::Upstream(_, e) => fetch_failure(e),
            },
            ApiError::Media(e) => match e {
                MediaError::Path(PathError::BadMediaId) => (S::BAD_REQUEST, "invalid_media_id"),
                MediaError::Path(PathError::BadPath) => (S::BAD_REQUEST, "invalid_path"),
                // A path that leaves the root is answered like one that does not exist: the
                // client learns nothing about what lies outside.
                MediaError::Path(PathError::NotFound | PathError::Unreadable) => {
                    (S::NOT_FOUND, "media_not_found")
                }
                MediaError::Path(PathError::NoDescriptors) => {
                    (S::SERVICE_UNAVAILABLE, "too_many_open_files")
                }
                MediaError::Access(AccessError::NoValidToken) => (S::UNAUTHORIZED, "unauthorized"),
                MediaError::Access(AccessError::NotTheOwner) => (S::FORBIDDEN, "forbidden"),
                MediaError::Access(AccessError::NoSecret) => {
                    (S::FORBIDDEN, "private_media_disabled")
                }
                MediaError::NoManifest => (S::NOT_FOUND, "manifest_not_found"),
                MediaError::Io => (S::INTERNAL_SERVER_ERROR, "media_unreadable"),
                MediaError::TooManyStreams(_) => (S::SERVICE_UNAVAILABLE, "too_many_streams"),
                MediaError::TooManyStreamsForClient(_) => {
                    (S::TOO_MANY_REQUESTS, "too_many_streams_for_client")
                }
            },
            ApiError::RangeNotSatisfiable(_) => (S::RANGE_NOT_SATISFIABLE, "range_not_satisfiable"),
            ApiError::PreconditionFailed => (S::PRECONDITION_FAILED, "precondition_failed"),
            ApiError::Unavailable => (S::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::ListingNeedsIndexer => (S::BAD_REQUEST, "missing_parameter"),
            ApiError::Write(e) => match e {
                WriteError::NoValidToken => (S::UNAUTHORIZED, "unauthorized"),
                WriteError::NotThePublisher(_) | WriteError::LinkOutside(_) => {
                    (S::FORBIDDEN, "forbidden")
                }
                WriteError::Disabled => (S::FORBIDDEN, "writes_disabled"),
            },
        }
    }
}

/// A relay or indexer failure, whether met by the relay proxy or while resolving a root.
fn fetch_failure(e: &FetchError) -> (StatusCode, &'static str) {
    use StatusCode as S;
    match e {
        FetchError::CircuitOpen => (S::SERVICE_UNAVAILABLE, "relay_circuit_open"),
        FetchError::Unreachable(_) => (S::SERVICE_UNAVAILABLE, "relay_unreachable"),
        FetchError::Cancelled => (S::SERVICE_UNAVAILABLE, "relay_unavailable"),
        FetchError::Timeout => (S::GATEWAY_TIMEOUT, "relay_timeout"),
        FetchError::Unsupported => (S::BAD_REQUEST, "unsupported_did"),
        FetchError::OverBudget => (S::BAD_REQUEST, "budget_exceeded"),
        FetchError::StoreFull(_) => (S::INSUFFICIENT_STORAGE, "store_full"),
        FetchError::Overloaded => (S::SERVICE_UNAVAILABLE, "relay_busy"),
        FetchError::Misconfigured(_) => (S::BAD_GATEWAY, "relay_misconfigured"),
        FetchError::Status(_) => (S::BAD_GATEWAY, "relay_error"),
        FetchError::TooLarge(_) => (S::BAD_GATEWAY, "relay_response_too_large"),
        FetchError::Malformed(_) => (S::BAD_GATEWAY, "relay_bad_response"),
        FetchError::RecordMalformed(_) => (S::BAD_GATEWAY, "record_malformed"),
    }
}

static NO_DESCRIPTORS_LOGGED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Logs `message` at WARN unless it was logged (by the same `last`) within the last minute.
fn log_once_a_minute(last: &std::sync::atomic::AtomicU64, message: &str) {
    use std::sync::atomic::Ordering::Relaxed;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let before = last.load(Relaxed);
    if now >= before + 60 && last.compare_exchange(before, now, Relaxed, Relaxed).is_ok() {
        log::warn!("{message}");
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(_: actix::MailboxError) -> Self {
        ApiError::Unavailable
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.describe().0
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unauthorized
            | ApiError::Write(WriteError::NoValidToken)
            | ApiError::Media(MediaError::Access(AccessError::NoValidToken)) => {
                res.insert_header(("www-authenticate", "Bearer"));
            }
            ApiError::Media(
                MediaError::TooManyStreams(_) | MediaError::TooManyStreamsForClient(_),
            ) => {
                res.insert_header(("retry-after", "5"));
            }
            ApiError::Media(MediaError::Path(PathError::NoDescriptors)) => {
                log_once_a_minute(
                    &NO_DESCRIPTORS_LOGGED,
                    "the process has no file descriptor left: media answer 503 too_many_open_files (lower server.max_connections or media.max_streams, or raise ulimit -n)",
                );
                res.insert_header(("retry-after", "1"));
            }
            ApiError::Upstream(FetchError::Overloaded)
            | ApiError::Resolve(ResolveError::Upstream(_, FetchError::Overloaded)) => {
                res.insert_header(("retry-after", "1"));
            }
            ApiError::RangeNotSatisfiable(len) => {
                res.insert_header(("content-range", format!("bytes */{len}")));
            }
            _ => {}
        }
        if self.status_code().is_server_error() {
            log::debug!("answered {}: {self}", self.status_code());
        }
        res.json(serde_json::json!({"error": self.public(), "code": self.code()}))
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
    fn upstream_details_stay_out_of_the_body() {
        let refused = "Failed to connect to host: Connection refused (os error 111)";
        for e in [
            ApiError::from(FetchError::Unreachable(refused.into())),
            ApiError::Resolve(ResolveError::Upstream(
                "did:gun:a:1".into(),
                FetchError::Malformed(refused.into()),
            )),
        ] {
            let body = e.error_response().into_body().try_into_bytes().unwrap();
            let text = String::from_utf8_lossy(&body);
            assert!(!text.contains("os error"), "{text}");
            assert!(text.contains("\"code\":\"relay_"), "{text}");
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
