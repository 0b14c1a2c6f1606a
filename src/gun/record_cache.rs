//! Found records, kept for a short TTL and weighted by size, so repeat fetches of a popular
//! record (every workout that uses the same exercise) cost no relay round trip. The fetcher
//! fills and invalidates it; resolvers on every worker read it directly, so a warm resolution
//! sends no message at all. Past its TTL a record is kept `stale_secs` more, for the fetcher to
//! answer with while the relay cannot.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use quick_cache::{sync::Cache, Weighter};

use super::metrics::GunMetrics;
use super::record::FoundRecord;
use crate::{config::RecordCacheConfig, did::Did};

#[derive(Clone)]
struct Entry {
    found: Arc<FoundRecord>,
    fetched: Instant,
    expires: Instant,
    stale_until: Instant,
}

#[derive(Clone)]
struct BySize;

impl Weighter<Did, Entry> for BySize {
    fn weight(&self, key: &Did, entry: &Entry) -> u64 {
        let key_len = match key {
            Did::Gun(s) | Did::Other(s) => s.len() as u64,
        };
        key_len + entry.found.weight()
    }
}

/// Every record that leaves the cache by eviction moves the epoch, as one removed does: an
/// answer kept whole may hold it, and would otherwise go on past a write to it that the cache,
/// no longer holding it, cannot see. A record replaced by its own refresh is not one that left:
/// each insert collects what it pushed out (`insert_with_lifecycle` hands it back), and
/// `insert` judges.
#[derive(Clone)]
struct Evictions;

impl quick_cache::Lifecycle<Did, Entry> for Evictions {
    type RequestState = Vec<Did>;

    fn begin_request(&self) -> Self::RequestState {
        Vec::new()
    }

    fn on_evict(&self, pushed_out: &mut Vec<Did>, key: Did, _: Entry) {
        pushed_out.push(key);
    }
}

type Records = Cache<Did, Entry, BySize, quick_cache::DefaultHashBuilder, Evictions>;

pub struct RecordCache {
    cache: Option<Records>,
    /// Moves whenever a record the cache held leaves it (a write, a write seen on a relay's
    /// feed, an operator's forget, a changed refresh, an eviction): what was built from records
    /// read before may be out of date. A write to a record the cache does not hold moves
    /// nothing: nothing built here can hold it.
    epoch: Arc<AtomicU64>,
    ttl: Duration,
    stale: Duration,
    /// A forced refresh goes to the relay only for a record fetched at least this long ago.
    refresh_after: Duration,
    metrics: Arc<GunMetrics>,
}

impl RecordCache {
    /// `ttl` zero turns the cache off; records are kept `stale` past it.
    pub fn new(
        ttl: Duration,
        stale: Duration,
        capacity_bytes: u64,
        metrics: Arc<GunMetrics>,
    ) -> Self {
        Self::with_refresh_floor(ttl, stale, Duration::ZERO, capacity_bytes, metrics)
    }

    /// As `new`, with forced refreshes answered from the cache for `refresh_after` after a
    /// record was fetched.
    pub fn with_refresh_floor(
        ttl: Duration,
        stale: Duration,
        refresh_after: Duration,
        capacity_bytes: u64,
        metrics: Arc<GunMetrics>,
    ) -> Self {
        let epoch = Arc::new(AtomicU64::new(0));
        let cache = (!ttl.is_zero()).then(|| {
            // A typical record answer is a few KB; the estimate only sizes the table up front.
            let estimated_items = (capacity_bytes / 4096).clamp(16, 1 << 20) as usize;
            Cache::with(
                estimated_items,
                capacity_bytes,
                BySize,
                quick_cache::DefaultHashBuilder::default(),
                Evictions,
            )
        });
        Self {
            cache,
            epoch,
            ttl,
            stale,
            refresh_after,
            metrics,
        }
    }

    /// The record of `key` if it was fetched too lately to be fetched again by a forced
    /// refresh: every client may ask for one, and one per request per soul made four clients
    /// send the relay 12,000 requests a second.
    pub fn refreshed_lately(&self, key: &Did) -> Option<Arc<FoundRecord>> {
        let entry = self.cache.as_ref()?.get(key)?;
        (entry.fetched + self.refresh_after > Instant::now()).then(|| {
            self.metrics.record_cache_hit();
            entry.found
        })
    }

    /// Changes whenever a record is removed: answers built before are not to be reused.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// When `key`'s record stops being fresh, while it is.
    pub fn expiry(&self, key: &Did) -> Option<Instant> {
        let entry = self.cache.as_ref()?.get(key)?;
        (entry.expires > Instant::now()).then_some(entry.expires)
    }

    /// A hit is counted in `oip_record_cache_hits_total`.
    pub fn get(&self, key: &Did) -> Option<Arc<FoundRecord>> {
        let cache = self.cache.as_ref()?;
        let entry = cache.get(key)?;
        let now = Instant::now();
        if entry.expires > now {
            self.metrics.record_cache_hit();
            return Some(entry.found);
        }
        if entry.stale_until <= now {
            cache.remove(key);
            self.update_gauge();
        }
        None
    }

    /// A record past its TTL but within `stale_secs`: what to answer with when the relay cannot.
    pub fn get_stale(&self, key: &Did) -> Option<Arc<FoundRecord>> {
        let entry = self.cache.as_ref()?.get(key)?;
        (entry.stale_until > Instant::now()).then_some(entry.found)
    }

    pub fn insert(&self, key: Did, found: Arc<FoundRecord>) {
        if let Some(cache) = self.cache.as_ref() {
            let fetched = Instant::now();
            let expires = fetched + self.ttl;
            let stale_until = expires + self.stale;
            let entry = Entry {
                found,
                fetched,
                expires,
                stale_until,
            };
            let pushed_out = cache.insert_with_lifecycle(key.clone(), entry);
            if pushed_out.iter().any(|k| *k != key) {
                self.epoch.fetch_add(1, Ordering::AcqRel);
            }
            self.update_gauge();
        }
    }

    /// Forgets `key`'s record; whether the cache held one.
    pub fn remove(&self, key: &Did) -> bool {
        let Some(cache) = self.cache.as_ref() else {
            return false;
        };
        let held = cache.remove(key).is_some();
        if held {
            self.update_gauge();
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
        held
    }

    /// Forgets every record.
    pub fn clear(&self) {
        if let Some(cache) = self.cache.as_ref() {
            cache.clear();
            self.update_gauge();
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// The cache the fetcher fills and the resolvers read, as `record_cache.*` configures it.
    pub fn from_config(config: &RecordCacheConfig, metrics: Arc<GunMetrics>) -> Self {
        Self::with_refresh_floor(
            Duration::from_secs(config.ttl_secs),
            Duration::from_secs(config.stale_secs),
            Duration::from_secs(config.refresh_after_secs),
            config.capacity_bytes,
            metrics,
        )
    }

    pub fn weight(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.weight())
    }

    fn update_gauge(&self) {
        self.metrics.set_record_cache_bytes(self.weight());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(name: &str) -> Arc<FoundRecord> {
        let node = json!({"data": {"basic": {"name": name}}, "oip": {}});
        Arc::new(FoundRecord::from_stored_node(node).unwrap())
    }

    fn soul(s: &str) -> Did {
        Did::Gun(s.to_string())
    }

    #[test]
    fn serves_until_ttl_then_forgets() {
        let metrics = Arc::new(GunMetrics::default());
        let c = RecordCache::new(
            Duration::from_millis(30),
            Duration::ZERO,
            1 << 20,
            metrics.clone(),
        );
        c.insert(soul("a:1"), record("A"));
        assert!(c.get(&soul("a:1")).is_some());
        assert_eq!(metrics.record_cache_hits(), 1);
        std::thread::sleep(Duration::from_millis(40));
        assert!(c.get(&soul("a:1")).is_none());
        assert_eq!(c.weight(), 0);
    }

    #[test]
    fn zero_ttl_is_off() {
        let c = RecordCache::new(Duration::ZERO, Duration::ZERO, 1 << 20, Arc::default());
        c.insert(soul("a:1"), record("A"));
        assert!(c.get(&soul("a:1")).is_none());
    }

    #[test]
    fn stays_within_its_byte_budget() {
        let one = record("x").weight() + 8;
        let c = RecordCache::new(
            Duration::from_secs(60),
            Duration::ZERO,
            one * 10,
            Arc::default(),
        );
        for i in 0..1000 {
            c.insert(soul(&format!("s:{i:03}")), record("x"));
        }
        assert!(c.weight() <= one * 10, "{} > {}", c.weight(), one * 10);
    }

    /// `oip_record_cache_bytes` and the budget count what a record costs: its soul and its
    /// bytes, no more and no less.
    #[test]
    fn a_record_weighs_its_soul_and_its_bytes() {
        let metrics = Arc::new(GunMetrics::default());
        let c = RecordCache::new(
            Duration::from_secs(60),
            Duration::ZERO,
            1 << 20,
            metrics.clone(),
        );
        c.insert(soul("s:001"), record("x"));
        c.insert(soul("s:0002"), record("yy"));
        let expected = 5 + record("x").weight() + 6 + record("yy").weight();
        assert_eq!(c.weight(), expected);
        assert_eq!(metrics.record_cache_bytes(), expected);
    }

    #[test]
    fn only_what_leaves_the_cache_moves_the_epoch() {
        let one = record("x").weight() + 8;
        let c = RecordCache::new(
            Duration::from_secs(60),
            Duration::ZERO,
            one * 4,
            Arc::default(),
        );
        c.insert(soul("a:1"), record("A"));
        let epoch = c.epoch();
        assert!(!c.remove(&soul("never:cached")));
        assert_eq!(
            c.epoch(),
            epoch,
            "a write to what nobody cached costs nothing"
        );
        assert!(c.remove(&soul("a:1")));
        assert_ne!(c.epoch(), epoch);
        c.insert(soul("a:1"), record("A"));
        let before = c.epoch();
        c.insert(soul("a:1"), record("A again"));
        assert_eq!(
            c.epoch(),
            before,
            "a record replaced by its refresh did not leave"
        );
        for i in 0..20 {
            c.insert(soul(&format!("e:{i}")), record("x"));
        }
        assert_ne!(c.epoch(), before, "evictions move it too");
    }

    #[test]
    fn remove_invalidates() {
        let c = RecordCache::new(
            Duration::from_secs(60),
            Duration::ZERO,
            1 << 20,
            Arc::default(),
        );
        c.insert(soul("a:1"), record("A"));
        c.remove(&soul("a:1"));
        assert!(c.get(&soul("a:1")).is_none());
    }
}
