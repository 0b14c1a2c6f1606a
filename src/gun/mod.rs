//! Everything that talks to the GUN relay: the fetcher, its caches and the resilience policy.

mod client;
pub mod config;
pub mod error;
pub mod feed;
pub mod fetcher;
mod file_store;
mod http_upstream;
mod lookup;
pub mod metrics;
pub mod negative_cache;
pub mod record;
pub mod record_cache;
pub mod resilience;
mod routes;
pub mod tls;
pub mod upstream;
pub mod watch;
pub mod write;

pub use client::{CacheFigures, Client, StartError, Started};
pub use error::FetchError;
pub use fetcher::{Fetch, GunFetcher, Put, RelayState, RelayStatus};
pub use lookup::{CacheStatus, FetchResult, Fetched, Lookup, UpstreamBudget};
pub use negative_cache::NegativeCache;
pub use record::{FoundRecord, Record};
pub use routes::configure;
