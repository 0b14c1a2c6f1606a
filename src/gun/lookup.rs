//! What a fetch answers: the record (or that there is none), where the answer came from, and
//! the budget a resolution's fetches share.

use std::sync::Arc;

use super::{error::FetchError, record::FoundRecord};

/// Where an answer came from; the relay proxy reports it as `X-Cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from the record cache.
    Hit,
    /// Fetched from the relay (or shared with a request that did).
    Miss,
    /// Known missing: answered by the negative cache with no upstream request.
    Negative,
    /// Past its TTL, served because the relay could not answer.
    Stale,
}

impl CacheStatus {
    pub fn header_value(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Negative => "NEGATIVE",
            CacheStatus::Stale => "STALE",
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
    pub cache: CacheStatus,
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

/// `None` is a definite "not found".
pub type GetResult = Result<Option<Arc<FoundRecord>>, FetchError>;
