//! Everything that talks to the GUN relay: the fetcher, its caches and the resilience policy.

pub mod config;
pub mod error;
pub mod feed;
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

pub use error::FetchError;
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
