//! The souls the relay definitely answered 404 for. Each miss costs the relay ~3 s, so a soul
//! known missing is answered here, with no upstream request, until its entry expires.
//!
//! Only definite 404s enter: a timeout or a 5xx says nothing about whether the record exists.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use actix::prelude::*;
use quick_cache::unsync::Cache;

use crate::{config::NegativeCacheConfig, did::Did, metrics::Metrics};

pub struct NegativeCache {
    souls: Cache<Did, Instant>,
    ttl: Duration,
    refresh_after: Duration,
    sweep_every: Duration,
    log_every: u64,
    lookups: u64,
    hits: u64,
    metrics: Arc<Metrics>,
}

/// "Is this soul known missing?" Counted as one lookup. With `refresh` (a `forceRefresh`
/// request) an entry counts only until it is `refresh_after_secs` old: a client that asks for a
/// refresh on every request must not cost the relay a miss on every request.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct IsMissing {
    pub soul: Did,
    pub refresh: bool,
}

/// The relay answered a definite 404 for this soul.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RecordMissing(pub Did);

/// The soul was written, found, or forgotten by an operator. Answers whether it was cached.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Forget(pub Did);

impl NegativeCache {
    pub fn new(config: &NegativeCacheConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            souls: Cache::new(config.capacity),
            ttl: Duration::from_secs(config.ttl_secs),
            refresh_after: Duration::from_secs(config.refresh_after_secs),
            sweep_every: Duration::from_secs(config.sweep_interval_secs),
            log_every: config.log_every,
            lookups: 0,
            hits: 0,
            metrics,
        }
    }

    fn sweep(&mut self) {
        let now = Instant::now();
        let before = self.souls.len();
        self.souls.retain(|_, expires| *expires > now);
        let removed = before - self.souls.len();
        self.update_gauge();
        if removed > 0 {
            log::info!(
                "[GUN Cache] Cleaned {removed} expired entries (404: {})",
                self.souls.len()
            );
        }
    }

    fn update_gauge(&self) {
        self.metrics.set_negative_entries(self.souls.len() as u64);
    }
}

impl Actor for NegativeCache {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.sweep_every, |this, _| this.sweep());
    }
}

impl Handler<IsMissing> for NegativeCache {
    type Result = bool;

    fn handle(&mut self, IsMissing { soul, refresh }: IsMissing, _: &mut Self::Context) -> bool {
        let now = Instant::now();
        // An entry was recorded `ttl` before it expires; it is young for `refresh_after`.
        let young = |expires: Instant| expires + self.refresh_after > now + self.ttl;
        let missing = match self.souls.get(&soul) {
            Some(expires) if *expires > now => !refresh || young(*expires),
            Some(_) => {
                self.souls.remove(&soul);
                self.update_gauge();
                false
            }
            None => false,
        };
        self.lookups += 1;
        self.metrics.negative_lookup(missing);
        if missing {
            self.hits += 1;
        }
        if self.lookups % self.log_every == 0 {
            log::info!(
                "[GUN 404 Cache] {}/{} hits ({:.1}% cache hit rate, {} cached souls)",
                self.hits,
                self.lookups,
                self.hits as f64 * 100.0 / self.lookups as f64,
                self.souls.len()
            );
        }
        missing
    }
}

impl Handler<RecordMissing> for NegativeCache {
    type Result = ();

    fn handle(&mut self, RecordMissing(soul): RecordMissing, _: &mut Self::Context) {
        self.souls.insert(soul, Instant::now() + self.ttl);
        self.update_gauge();
    }
}

impl Handler<Forget> for NegativeCache {
    type Result = bool;

    fn handle(&mut self, Forget(soul): Forget, _: &mut Self::Context) -> bool {
        let was_cached = self.souls.remove(&soul).is_some();
        self.update_gauge();
        was_cached
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(ttl_secs: u64) -> NegativeCacheConfig {
        NegativeCacheConfig {
            ttl_secs,
            refresh_after_secs: 1,
            sweep_interval_secs: 3600,
            capacity: 100,
            log_every: 100,
        }
    }

    #[actix_web::test]
    async fn remembers_forgets_and_counts() {
        let metrics = Arc::new(Metrics::default());
        let cache = NegativeCache::new(&config(60), metrics.clone()).start();
        let soul = || Did::Gun("a:1".into());
        assert!(!cache
            .send(IsMissing {
                soul: soul(),
                refresh: false
            })
            .await
            .unwrap());
        cache.send(RecordMissing(soul())).await.unwrap();
        assert!(cache
            .send(IsMissing {
                soul: soul(),
                refresh: false
            })
            .await
            .unwrap());
        assert!(cache.send(Forget(soul())).await.unwrap());
        assert!(!cache
            .send(IsMissing {
                soul: soul(),
                refresh: false
            })
            .await
            .unwrap());
        let text = metrics.render(&Default::default());
        for sample in [
            "oip_negative_cache_lookups_total 3\n",
            "oip_negative_cache_hits_total 1\n",
            "oip_negative_cache_entries 0\n",
        ] {
            assert!(text.contains(sample), "{sample}in {text}");
        }
    }

    #[test]
    fn sweep_removes_only_expired() {
        let mut cache = NegativeCache::new(&config(60), Arc::default());
        let new = Did::Gun("new".into());
        cache.souls.insert(Did::Gun("old".into()), Instant::now());
        cache
            .souls
            .insert(new.clone(), Instant::now() + Duration::from_secs(60));
        cache.sweep();
        assert_eq!(cache.souls.len(), 1);
        assert!(cache.souls.get(&new).is_some());
    }

    #[test]
    fn capacity_bounds_the_entries() {
        let mut cache = NegativeCache::new(&config(60), Arc::default());
        for i in 0..10_000 {
            cache.souls.insert(
                Did::Gun(format!("s:{i}")),
                Instant::now() + Duration::from_secs(60),
            );
        }
        assert!(cache.souls.len() <= 100, "{}", cache.souls.len());
    }

    #[actix_web::test]
    async fn a_refresh_goes_past_an_entry_only_once_it_is_old_enough() {
        let cache = NegativeCache::new(&config(60), Arc::default()).start();
        let ask = |refresh| IsMissing {
            soul: Did::Gun("a:1".into()),
            refresh,
        };
        cache
            .send(RecordMissing(Did::Gun("a:1".into())))
            .await
            .unwrap();
        assert!(cache.send(ask(true)).await.unwrap(), "young: still missing");
        std::thread::sleep(Duration::from_millis(1100));
        assert!(
            !cache.send(ask(true)).await.unwrap(),
            "old enough: ask the relay"
        );
        assert!(
            cache.send(ask(false)).await.unwrap(),
            "without a refresh it is still known"
        );
    }
}
