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

use super::metrics::GunMetrics;
use crate::{config::NegativeCacheConfig, did::Did};

/// When an entry was recorded and when it expires: its TTL depends on whether a write feed was
/// live at the time.
#[derive(Clone, Copy)]
struct Entry {
    recorded: Instant,
    expires: Instant,
}

pub struct NegativeCache {
    souls: Cache<Did, Entry>,
    ttl: Duration,
    ttl_without_watch: Duration,
    /// A relay's write feed is live: a soul written elsewhere would be forgotten at once.
    feed_live: bool,
    /// When the last live feed went down, while none is live.
    down_at: Option<Instant>,
    refresh_after: Duration,
    sweep_every: Duration,
    log_every: u64,
    lookups: u64,
    hits: u64,
    metrics: Arc<GunMetrics>,
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

/// A relay's write feed proved live or stopped being live: `live` is whether any feed is live
/// now, `missed` whether writes may have gone unseen while none was (a gap longer than the
/// feed's silence limit, or the first time one goes live). Going down, every entry expires
/// within `ttl_without_watch_secs` (writes from now on go unseen); going live again, what was
/// recorded while no feed listened goes (a soul asked about during the gap is the one likely
/// written during it), and after a gap that may have missed more, everything goes. A
/// reconnect within the silence limit (a proxy that drops idle sockets) costs no miss storm.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FeedChanged {
    pub live: bool,
    pub missed: bool,
}

/// Anything may have been written: every entry goes.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForgetAll;

impl Handler<ForgetAll> for NegativeCache {
    type Result = ();

    fn handle(&mut self, _: ForgetAll, _: &mut Self::Context) {
        self.souls.clear();
        self.update_gauge();
    }
}

/// The soul was written, found, or forgotten by an operator. Answers whether it was cached.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Forget(pub Did);

impl NegativeCache {
    /// `watching`: write feeds will be listened to; until one proves live, entries get
    /// `ttl_without_watch_secs`.
    pub fn new(config: &NegativeCacheConfig, watching: bool, metrics: Arc<GunMetrics>) -> Self {
        Self {
            souls: Cache::new(config.capacity),
            ttl: Duration::from_secs(config.ttl_secs),
            ttl_without_watch: Duration::from_secs(
                config.ttl_without_watch_secs.min(config.ttl_secs),
            ),
            feed_live: !watching,
            down_at: None,
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
        self.souls.retain(|_, entry| entry.expires > now);
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
        let missing = match self.souls.get(&soul) {
            Some(entry) if entry.expires > now => {
                !refresh || entry.recorded + self.refresh_after > now
            }
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
        let recorded = Instant::now();
        let ttl = if self.feed_live {
            self.ttl
        } else {
            self.ttl_without_watch
        };
        let expires = recorded + ttl;
        self.souls.insert(soul, Entry { recorded, expires });
        self.update_gauge();
    }
}

impl Handler<FeedChanged> for NegativeCache {
    type Result = ();

    fn handle(&mut self, FeedChanged { live, missed }: FeedChanged, _: &mut Self::Context) {
        self.feed_live = live;
        if !live {
            let now = Instant::now();
            self.down_at = Some(now);
            let cap = now + self.ttl_without_watch;
            let later: Vec<Did> = self
                .souls
                .iter()
                .filter(|(_, entry)| entry.expires > cap)
                .map(|(soul, _)| soul.clone())
                .collect();
            for soul in later {
                if let Some(mut entry) = self.souls.peek_mut(&soul) {
                    entry.expires = cap;
                }
            }
        } else if missed {
            self.souls.clear();
        } else if let Some(down_at) = self.down_at.take() {
            self.souls.retain(|_, entry| entry.recorded < down_at);
        }
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
            ttl_without_watch_secs: 1,
            refresh_after_secs: 1,
            sweep_interval_secs: 3600,
            capacity: 100,
            log_every: 100,
        }
    }

    #[actix_web::test]
    async fn remembers_forgets_and_counts() {
        let mut registry = crate::metrics::Registry::default();
        let metrics = GunMetrics::register(&mut registry);
        let cache = NegativeCache::new(&config(60), false, metrics.clone()).start();
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
        let text = crate::metrics::render(&registry);
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
        let mut cache = NegativeCache::new(&config(60), false, Arc::default());
        let new = Did::Gun("new".into());
        let now = Instant::now();
        let entry = |expires| Entry {
            recorded: now,
            expires,
        };
        cache.souls.insert(Did::Gun("old".into()), entry(now));
        cache
            .souls
            .insert(new.clone(), entry(now + Duration::from_secs(60)));
        cache.sweep();
        assert_eq!(cache.souls.len(), 1);
        assert!(cache.souls.get(&new).is_some());
    }

    #[test]
    fn capacity_bounds_the_entries() {
        let mut cache = NegativeCache::new(&config(60), false, Arc::default());
        let now = Instant::now();
        for i in 0..10_000 {
            let entry = Entry {
                recorded: now,
                expires: now + Duration::from_secs(60),
            };
            cache.souls.insert(Did::Gun(format!("s:{i}")), entry);
        }
        assert!(cache.souls.len() <= 100, "{}", cache.souls.len());
    }

    #[actix_web::test]
    async fn a_refresh_goes_past_an_entry_only_once_it_is_old_enough() {
        let cache = NegativeCache::new(&config(60), false, Arc::default()).start();
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

    #[actix_web::test]
    async fn a_feed_going_down_shortens_entries_and_only_a_gap_that_missed_writes_drops_them() {
        let cache = NegativeCache::new(&config(60), true, Arc::default()).start();
        let soul = |s: &str| Did::Gun(s.into());
        let missing = |s: &str| IsMissing {
            soul: soul(s),
            refresh: false,
        };
        let changed = |live, missed| FeedChanged { live, missed };
        cache.send(changed(true, true)).await.unwrap();
        cache.send(RecordMissing(soul("a:1"))).await.unwrap();
        cache.send(changed(false, false)).await.unwrap();
        assert!(
            cache.send(missing("a:1")).await.unwrap(),
            "not dropped going down"
        );
        cache.send(changed(true, false)).await.unwrap();
        assert!(
            cache.send(missing("a:1")).await.unwrap(),
            "a short gap drops nothing"
        );
        std::thread::sleep(Duration::from_millis(1100));
        assert!(
            !cache.send(missing("a:1")).await.unwrap(),
            "but what was cached when it went down lasts ttl_without_watch_secs (1 s) at most"
        );
        cache.send(RecordMissing(soul("b:1"))).await.unwrap();
        cache.send(changed(true, true)).await.unwrap();
        assert!(
            !cache.send(missing("b:1")).await.unwrap(),
            "a gap that missed writes drops all"
        );
    }

    #[actix_web::test]
    async fn without_a_live_feed_entries_are_short_and_a_feed_change_drops_them() {
        let cache = NegativeCache::new(&config(60), true, Arc::default()).start();
        let soul = || Did::Gun("a:1".into());
        let missing = || IsMissing {
            soul: soul(),
            refresh: false,
        };
        cache.send(RecordMissing(soul())).await.unwrap();
        assert!(cache.send(missing()).await.unwrap());
        std::thread::sleep(Duration::from_millis(1100));
        assert!(
            !cache.send(missing()).await.unwrap(),
            "no feed yet: ttl_without_watch_secs (1 s)"
        );
        cache
            .send(FeedChanged {
                live: true,
                missed: true,
            })
            .await
            .unwrap();
        cache.send(RecordMissing(soul())).await.unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert!(
            cache.send(missing()).await.unwrap(),
            "a live feed: ttl_secs"
        );
    }
}
