//! How a fetch from a relay (or the indexer) fails, and what a client is told of it.

use actix_web::{http::StatusCode, HttpResponseBuilder};

use crate::error::coded::{retry_after, Coded};

/// Why a fetch produced no answer. A 404 is not among these: it is an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the relay circuit breaker is open after repeated failures")]
    CircuitOpen,
    #[error("the relay could not be reached: {0}")]
    Unreachable(String),
    #[error("the relay did not answer in time")]
    Timeout,
    #[error("the relay answered HTTP {0}")]
    Status(u16),
    #[error("the relay's answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the relay's answer could not be read: {0}")]
    Malformed(String),
    /// The relay answered 200 with a record that does not decode: that record's problem, not
    /// the relay's. Not retried, not counted against the relay, remembered for a while.
    #[error("the record the relay holds for this soul cannot be read: {0}")]
    RecordMalformed(String),
    #[error("the fetch was dropped before it finished")]
    Cancelled,
    #[error("no source is configured for this DID method")]
    Unsupported,
    #[error(
        "this request has used its budget of relay requests (resolver.max_upstream_per_request)"
    )]
    OverBudget,
    /// The URL answers, but not as the relay (or indexer) it should be: a wrong path, a
    /// certificate not trusted. Not retried there, not counted against its breaker.
    #[error("the upstream is misconfigured: {0}")]
    Misconfigured(String),
    #[error("the file source holds {0} bytes of writes already (gun.file_write_limit_bytes)")]
    StoreFull(u64),
    /// Every connection to the relay is busy and `gun.max_queued` requests wait for one: shed
    /// at once rather than left to time out. Not the relay's failure.
    #[error(
        "the relay is busy: every connection is in use and the queue is full; try again shortly"
    )]
    Overloaded,
}

impl FetchError {
    /// The relay could not answer at all (as opposed to answering 404, or with a bad record):
    /// what a stale record may stand in for.
    pub fn relay_unavailable(&self) -> bool {
        // Shed (`relay_busy`) is the relay unavailable too: during a miss flood, a record found
        // before is answered stale within its window rather than refused.
        self.is_transient() || matches!(self, FetchError::CircuitOpen | FetchError::Overloaded)
    }

    /// Worth asking another relay: this one could not answer, or is not a relay as configured.
    pub fn fails_over(&self) -> bool {
        self.is_transient() || matches!(self, FetchError::Misconfigured(_))
    }

    /// Worth another attempt: the relay may answer differently next time.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Unreachable(_) | FetchError::Timeout | FetchError::Malformed(_) => true,
            FetchError::Status(s) => *s >= 500,
            FetchError::CircuitOpen
            | FetchError::TooLarge(_)
            | FetchError::Cancelled
            | FetchError::Unsupported
            | FetchError::OverBudget
            | FetchError::StoreFull(_)
            | FetchError::Overloaded
            | FetchError::Misconfigured(_)
            | FetchError::RecordMalformed(_) => false,
        }
    }
}

impl Coded for FetchError {
    fn status(&self) -> StatusCode {
        use StatusCode as S;
        match self {
            FetchError::CircuitOpen
            | FetchError::Unreachable(_)
            | FetchError::Cancelled
            | FetchError::Overloaded => S::SERVICE_UNAVAILABLE,
            FetchError::Timeout => S::GATEWAY_TIMEOUT,
            FetchError::Unsupported | FetchError::OverBudget => S::BAD_REQUEST,
            FetchError::StoreFull(_) => S::INSUFFICIENT_STORAGE,
            FetchError::Misconfigured(_)
            | FetchError::Status(_)
            | FetchError::TooLarge(_)
            | FetchError::Malformed(_)
            | FetchError::RecordMalformed(_) => S::BAD_GATEWAY,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            FetchError::CircuitOpen => "relay_circuit_open",
            FetchError::Unreachable(_) => "relay_unreachable",
            FetchError::Cancelled => "relay_unavailable",
            FetchError::Timeout => "relay_timeout",
            FetchError::Unsupported => "unsupported_did",
            FetchError::OverBudget => "budget_exceeded",
            FetchError::StoreFull(_) => "store_full",
            FetchError::Overloaded => "relay_busy",
            FetchError::Misconfigured(_) => "relay_misconfigured",
            FetchError::Status(_) => "relay_error",
            FetchError::TooLarge(_) => "relay_response_too_large",
            FetchError::Malformed(_) => "relay_bad_response",
            FetchError::RecordMalformed(_) => "record_malformed",
        }
    }

    /// The kind of trouble, without the system's or the TLS library's words for it
    /// (`os error 111`, certificate internals), which go to the log.
    fn public(&self) -> String {
        match self {
            FetchError::Unreachable(_) => "the relay could not be reached".into(),
            FetchError::Malformed(_) => "the relay's answer could not be read".into(),
            FetchError::RecordMalformed(_) => {
                "the record the relay holds for this soul cannot be read".into()
            }
            other => other.to_string(),
        }
    }

    fn headers(&self, res: &mut HttpResponseBuilder) {
        if *self == FetchError::Overloaded {
            retry_after(res, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_relay_side_trouble_is_retried() {
        assert!(FetchError::Status(500).is_transient());
        assert!(FetchError::Status(503).is_transient());
        assert!(FetchError::Timeout.is_transient());
        assert!(!FetchError::Status(400).is_transient());
        assert!(!FetchError::CircuitOpen.is_transient());
        assert!(!FetchError::TooLarge(10).is_transient());
    }
}
