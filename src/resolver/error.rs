//! Why a resolution returned no root, and what a client is told of it.

use actix_web::{http::StatusCode, HttpResponseBuilder};

use crate::{error::coded::Coded, gun::FetchError};

/// No root could be returned.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{0} uses a DID method this server cannot fetch (set resolver.oip_api)")]
    Unsupported(String),
    #[error("resolving {0} would exceed the budget of one request (resolver.max_records, max_upstream_per_request, max_answer_bytes)")]
    Budget(String),
    #[error("{1} (while fetching {0})")]
    Upstream(String, FetchError),
}

impl Coded for ResolveError {
    fn status(&self) -> StatusCode {
        match self {
            ResolveError::Unsupported(_) | ResolveError::Budget(_) => StatusCode::BAD_REQUEST,
            ResolveError::Upstream(_, e) => e.status(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ResolveError::Unsupported(_) => "unsupported_did",
            ResolveError::Budget(_) => "budget_exceeded",
            ResolveError::Upstream(_, e) => e.code(),
        }
    }

    fn public(&self) -> String {
        match self {
            ResolveError::Upstream(did, e) => format!("{} (while fetching {did})", e.public()),
            other => other.to_string(),
        }
    }

    fn headers(&self, res: &mut HttpResponseBuilder) {
        if let ResolveError::Upstream(_, e) = self {
            e.headers(res);
        }
    }
}
