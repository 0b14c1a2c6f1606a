//! Found records, kept for a short TTL and weighted by size, so repeat fetches of a popular
//! record (every workout that uses the same exercise) cost no relay round trip. Owned by the
//! fetcher: its actor thread is the only one that touches it, so it needs no locking.

use std::{
    sync::{atomic::Ordering::Relaxed, Arc},
    time::{Duration, Instant},
};

use quick_cache::{unsync::Cache, Weighter};

use super::record::FoundRecord;
use crate::metrics::Metrics;

#[derive(Clone)]
struct Entry {
    found: Arc<FoundRecord>,
    expires: Instant,
}

#[derive(Clone)]
struct BySize;

impl Weighter<String, Entry> for BySize {
    fn weight(&self, soul: &String, entry: &Entry) -> u64 {
        soul.len() as u64 + entry.found.weight()
    }
}

pub struct RecordCache {
    cache: Option<Cache<String, Entry, BySize>>,
    ttl: Duration,
    metrics: Arc<Metrics>,
}

impl RecordCache {
    /// `ttl` zero turns the cache off.
    pub fn new(ttl: Duration, capacity_bytes: u64, metrics: Arc<Metrics>) -> Self {
        let cache = (!ttl.is_zero()).then(|| {
            // A typical record answer is a few KB; the estimate only sizes the table up front.
            let estimated_items = (capacity_bytes / 4096).clamp(16, 1 << 20) as usize;
            Cache::with_weighter(estimated_items, capacity_bytes, BySize)
        });
        Self {
            cache,
            ttl,
            metrics,
        }
    }

    pub fn get(&mut self, soul: &str) -> Option<Arc<FoundRecord>> {
        let cache = self.cache.as_mut()?;
        let entry = cache.get(soul)?;
        if entry.expires > Instant::now() {
            return Some(entry.found.clone());
        }
        cache.remove(soul);
        self.update_gauge();
        None
    }

    pub fn insert(&mut self, soul: &str, found: Arc<FoundRecord>) {
        if let Some(cache) = self.cache.as_mut() {
            let expires = Instant::now() + self.ttl;
            cache.insert(soul.to_string(), Entry { found, expires });
            self.update_gauge();
        }
    }

    pub fn remove(&mut self, soul: &str) {
        if let Some(cache) = self.cache.as_mut() {
            cache.remove(soul);
            self.update_gauge();
        }
    }

    pub fn weight(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.weight())
    }

    fn update_gauge(&self) {
        self.metrics
            .record_cache_bytes
            .store(self.weight(), Relaxed);
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

    #[test]
    fn serves_until_ttl_then_forgets() {
        let mut c = RecordCache::new(Duration::from_millis(30), 1 << 20, Arc::default());
        c.insert("a:1", record("A"));
        assert!(c.get("a:1").is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(c.get("a:1").is_none());
        assert_eq!(c.weight(), 0);
    }

    #[test]
    fn zero_ttl_is_off() {
        let mut c = RecordCache::new(Duration::ZERO, 1 << 20, Arc::default());
        c.insert("a:1", record("A"));
        assert!(c.get("a:1").is_none());
    }

    #[test]
    fn stays_within_its_byte_budget() {
        let one = record("x").weight() + 8;
        let mut c = RecordCache::new(Duration::from_secs(60), one * 10, Arc::default());
        for i in 0..1000 {
            c.insert(&format!("s:{i:03}"), record("x"));
        }
        assert!(c.weight() <= one * 10, "{} > {}", c.weight(), one * 10);
    }

    #[test]
    fn remove_invalidates() {
        let mut c = RecordCache::new(Duration::from_secs(60), 1 << 20, Arc::default());
        c.insert("a:1", record("A"));
        c.remove("a:1");
        assert!(c.get("a:1").is_none());
    }
}
