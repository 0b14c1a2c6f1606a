//! Everything that talks to the GUN relay: the fetcher, its caches and the resilience policy.

pub mod fetcher;
pub mod negative_cache;
pub mod record;
pub mod record_cache;
pub mod resilience;
pub mod upstream;

use std::sync::Arc;

pub use fetcher::{Fetch, GunFetcher, Put, RelayState, RelayStatus};
pub use negative_cache::NegativeCache;
pub use record::{FoundRecord, Record};

/// Longest soul accepted; real souls are well under 100 bytes, and anything near this is abuse.
pub const MAX_SOUL_BYTES: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoulError {
    #[error("soul is empty")]
    Empty,
    #[error("soul is longer than {MAX_SOUL_BYTES} bytes")]
    TooLong,
    #[error("soul contains a control character")]
    ControlCharacter,
}

/// Souls are opaque (they may contain `:`), so only what can never be a soul is refused.
pub fn validate_soul(soul: &str) -> Result<(), SoulError> {
    if soul.is_empty() {
        return Err(SoulError::Empty);
    }
    if soul.len() > MAX_SOUL_BYTES {
        return Err(SoulError::TooLong);
    }
    if soul.chars().any(char::is_control) {
        return Err(SoulError::ControlCharacter);
    }
    Ok(())
}

/// Where an answer came from; the relay proxy reports it as `X-Cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheSource {
    /// Served from the record cache.
    Hit,
    /// Fetched from the relay (or shared with a request that did).
    Miss,
    /// Known missing: answered by the negative cache with no upstream request.
    Negative,
}

impl CacheSource {
    pub fn header_value(self) -> &'static str {
        match self {
            CacheSource::Hit => "HIT",
            CacheSource::Miss => "MISS",
            CacheSource::Negative => "NEGATIVE",
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
    #[error("the fetch was dropped before it finished")]
    Cancelled,
    #[error("no source is configured for this DID method")]
    Unsupported,
}

impl FetchError {
    /// Worth another attempt: the relay may answer differently next time.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Unreachable(_) | FetchError::Timeout | FetchError::Malformed(_) => true,
            FetchError::Status(s) => *s >= 500,
            FetchError::CircuitOpen
            | FetchError::TooLarge(_)
            | FetchError::Cancelled
            | FetchError::Unsupported => false,
        }
    }
}

pub type FetchResult = Result<Fetched, FetchError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn souls_with_colons_are_fine() {
        for soul in [
            "a1b2c3d4e5f6:workout1",
            "a1b2c3d4e5f6:h:0123456789ab",
            "a1b2c3d4e5f6:t:kx9z",
            "oip:registry:index:workout",
        ] {
            assert_eq!(validate_soul(soul), Ok(()), "{soul}");
        }
    }

    #[test]
    fn impossible_souls_are_refused() {
        assert_eq!(validate_soul(""), Err(SoulError::Empty));
        assert_eq!(validate_soul(&"a".repeat(513)), Err(SoulError::TooLong));
        assert_eq!(validate_soul(&"a".repeat(512)), Ok(()));
        assert_eq!(validate_soul("a\nb"), Err(SoulError::ControlCharacter));
        assert_eq!(validate_soul("a\0b"), Err(SoulError::ControlCharacter));
    }

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
