//! Failures met at the HTTP edge, before any feature is asked: a request that is malformed,
//! unauthorised, routed nowhere, or met while the service shuts down.

use actix_web::{http::StatusCode, HttpResponseBuilder};

use crate::{
    did::DidError,
    error::coded::{bearer_challenge, Coded},
    soul::SoulError,
};

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("query parameter `{0}` is required")]
    MissingParameter(&'static str),
    #[error("query parameter `{name}` is invalid: {reason}")]
    InvalidParameter { name: &'static str, reason: String },
    #[error("the query string is malformed: {0}")]
    InvalidQuery(String),
    #[error("invalid soul: {0}")]
    InvalidSoul(#[from] SoulError),
    #[error("invalid DID: {0}")]
    InvalidDid(#[from] DidError),
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
    NotFound,
    #[error("no route for {method} {path}")]
    RouteNotFound { method: String, path: String },
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    #[error("the service is shutting down or overloaded")]
    Unavailable,
    #[error("query parameter `did` is required: a listing (a query without `did`) needs resolver.oip_api")]
    ListingNeedsIndexer,
}

impl Coded for RequestError {
    fn status(&self) -> StatusCode {
        use StatusCode as S;
        match self {
            RequestError::MissingParameter(_)
            | RequestError::InvalidParameter { .. }
            | RequestError::InvalidQuery(_)
            | RequestError::InvalidSoul(_)
            | RequestError::InvalidDid(_)
            | RequestError::InvalidBody(_)
            | RequestError::ListingNeedsIndexer => S::BAD_REQUEST,
            RequestError::UnsupportedMediaType => S::UNSUPPORTED_MEDIA_TYPE,
            RequestError::PayloadTooLarge(_) => S::PAYLOAD_TOO_LARGE,
            RequestError::Unauthorized => S::UNAUTHORIZED,
            RequestError::NotConfigured(_)
            | RequestError::NotFound
            | RequestError::RouteNotFound { .. } => S::NOT_FOUND,
            RequestError::MethodNotAllowed(_) => S::METHOD_NOT_ALLOWED,
            RequestError::Unavailable => S::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            RequestError::MissingParameter(_) | RequestError::ListingNeedsIndexer => {
                "missing_parameter"
            }
            RequestError::InvalidParameter { .. } => "invalid_parameter",
            RequestError::InvalidQuery(_) => "invalid_query",
            RequestError::InvalidSoul(_) => "invalid_soul",
            RequestError::InvalidDid(_) => "invalid_did",
            RequestError::InvalidBody(_) => "invalid_body",
            RequestError::UnsupportedMediaType => "unsupported_media_type",
            RequestError::PayloadTooLarge(_) => "payload_too_large",
            RequestError::Unauthorized => "unauthorized",
            RequestError::NotConfigured(_) => "not_configured",
            RequestError::NotFound => "not_found",
            RequestError::RouteNotFound { .. } => "route_not_found",
            RequestError::MethodNotAllowed(_) => "method_not_allowed",
            RequestError::Unavailable => "unavailable",
        }
    }

    fn headers(&self, res: &mut HttpResponseBuilder) {
        if let RequestError::Unauthorized = self {
            bearer_challenge(res);
        }
    }
}

impl From<actix::MailboxError> for RequestError {
    fn from(_: actix::MailboxError) -> Self {
        RequestError::Unavailable
    }
}
