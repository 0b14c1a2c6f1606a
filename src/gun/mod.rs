//! Everything that talks to the GUN relay: the fetcher, its caches and the resilience policy.

pub mod config;
pub mod fetcher;
pub mod negative_cache;
pub mod record;
pub mod record_cache;
pub mod resilience;
pub mod tls;
pub mod upstream;
pub mod watch;
pub mod write;

use std::sync::Arc;

pub use fetcher::{Fetch, GunFetcher, Put, RelayState, RelayStatus};
pub use negative_cache::NegativeCache;
pub use record::{FoundRecord, Record};

/// Where an answer came from; the relay proxy reports it as `X-Cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheSource {
    /// Served from the record cache.
    Hit,
    /// Fetched from the relay (or shared with a request that did).
    Miss,
    /// Known missing: answered by the negative cache with no upstream request.
    Negative,
    /// Past its TTL, served because the relay could not answer.
    Stale,
}

impl CacheSource {
    pub fn header_value(self) -> &'static str {
        match self {
            CacheSource::Hit => "HIT",
            CacheSource::Miss => "MISS",
            CacheSource::Negative => "NEGATIVE",
            CacheSource::Stale => "STALE",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Lookup {
    Found(Arc<FoundRecord>),
    NotFound,
}

#[derive(Debug, Clone)]
pub struct Fetched {
    pub lookup: Lookup,
    pub source: CacheSource,
}

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
    /// What a client is told: the kind of trouble, without the system's or the TLS library's
    /// words for it (`os error 111`, certificate internals), which go to the log.
    pub fn public(&self) -> String {
        match self {
            FetchError::Unreachable(_) => "the relay could not be reached".into(),
            FetchError::Malformed(_) => "the relay's answer could not be read".into(),
            FetchError::RecordMalformed(_) => {
                "the record the relay holds for this soul cannot be read".into()
            }
            other => other.to_string(),
        }
    }

    /// The relay could not answer at all (as opposed to answering 404, or with a bad record):
    /// what a stale record may stand in for.
    pub fn relay_unavailable(&self) -> bool {
        self.is_transient() || *self == FetchError::CircuitOpen
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

pub type FetchResult = Result<Fetched, FetchError>;

/// How many more lookups one request may send past the record cache (shared by the request's
/// concurrent fetches, and checked on the fetcher's thread).
#[derive(Debug, Clone)]
pub struct UpstreamBudget(Arc<std::sync::atomic::AtomicUsize>);

impl UpstreamBudget {
    pub fn new(requests: usize) -> Self {
        Self(Arc::new(requests.into()))
    }

    /// Takes one request from the budget; false when none is left.
    pub fn take(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        self.0
            .fetch_update(Relaxed, Relaxed, |left| left.checked_sub(1))
            .is_ok()
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
