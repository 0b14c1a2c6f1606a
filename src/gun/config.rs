//! `gun.*`, `negative_cache.*`, `record_cache.*`: where records come from, how the relay is
//! protected, and what is remembered of its answers.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::check::{http_url, invalid, positive, resolve, ConfigError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GunSource {
    File,
    Relay,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GunConfig {
    pub source: GunSource,
    pub file: PathBuf,
    /// The one-relay form of `relay_urls`, used while that list is empty.
    pub relay_url: String,
    /// Several relays (they sync through GUN): the first usable one takes each request, the
    /// next ones stand by; a read that fails on one goes on to the next.
    pub relay_urls: Vec<String>,
    /// PEM certificates trusted, besides the built-in roots, for `https://` relays.
    pub ca_file: Option<PathBuf>,
    pub request_timeout_ms: u64,
    /// Attempts for non-404 failures; a 404 is never retried.
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// Retries may add at most this share (in percent) of first attempts to the relay's load.
    pub retry_budget_percent: u32,
    /// Consecutive failed attempts that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open before one probe request may try the relay again.
    pub breaker_open_ms: u64,
    /// Upper bound on open connections to each relay.
    pub max_connections: usize,
    /// Requests waiting for a connection to a relay, at most; past it a request is answered 503
    /// `relay_busy` at once. Time spent waiting is not held against the relay.
    pub max_queued: usize,
    /// A relay answer larger than this is refused rather than buffered.
    pub max_response_bytes: usize,
    /// How long a record whose stored form cannot be decoded is answered 502 without asking the
    /// relay again.
    pub malformed_ttl_secs: u64,
    /// Relay failures are summed up in one WARN line per this many seconds.
    pub failure_log_interval_secs: u64,
    /// With the file source, what writes may add in memory; past it a put is 507.
    pub file_write_limit_bytes: u64,
    /// Listen to each relay's write broadcast (`ws://<relay>/gun`) and drop what it names from
    /// both caches. Only with `source: relay`.
    pub watch: bool,
    /// The soul the feed's proof write goes to: written through the relay's `/put` after each
    /// connect, it must come back on the socket, or the relay does not broadcast.
    pub watch_canary_soul: String,
    /// A feed frame naming more souls than this drops both caches wholesale instead of soul by
    /// soul.
    pub watch_max_souls_per_frame: usize,
}

impl GunConfig {
    /// Whether the relays' write feeds are listened to: `watch`, with relays to listen to.
    pub fn watching(&self) -> bool {
        self.watch && self.source == GunSource::Relay
    }

    /// The relays, in order of preference: `relay_urls`, or `relay_url` while that is empty.
    pub fn relays(&self) -> Vec<&str> {
        if self.relay_urls.is_empty() {
            vec![self.relay_url.as_str()]
        } else {
            self.relay_urls.iter().map(String::as_str).collect()
        }
    }
}

impl Default for GunConfig {
    fn default() -> Self {
        Self {
            source: GunSource::File,
            file: PathBuf::from("data/demo/records.json"),
            relay_url: "http://127.0.0.1:8765".into(),
            relay_urls: Vec::new(),
            ca_file: None,
            request_timeout_ms: 20_000,
            max_attempts: 3,
            backoff_base_ms: 100,
            backoff_max_ms: 2_000,
            retry_budget_percent: 20,
            breaker_failures: 5,
            breaker_open_ms: 5_000,
            max_connections: 64,
            max_queued: 256,
            max_response_bytes: 8 * 1024 * 1024,
            malformed_ttl_secs: 60,
            failure_log_interval_secs: 60,
            file_write_limit_bytes: 64 * 1024 * 1024,
            watch: true,
            watch_canary_soul: "oip-resolver:watch-canary".into(),
            watch_max_souls_per_frame: 1000,
        }
    }
}

impl GunConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.source == GunSource::Relay {
            http_url("gun.relay_url", &self.relay_url)?;
            for url in &self.relay_urls {
                http_url("gun.relay_urls", url)?;
            }
            if let Some(ca) = &self.ca_file {
                super::tls::client_config(Some(ca))
                    .map_err(|e| invalid("gun.ca_file", e.to_string()))?;
            }
        }
        positive(&[
            ("gun.request_timeout_ms", self.request_timeout_ms),
            ("gun.max_attempts", self.max_attempts.into()),
            ("gun.breaker_failures", self.breaker_failures.into()),
            ("gun.max_connections", self.max_connections as u64),
            ("gun.max_response_bytes", self.max_response_bytes as u64),
            (
                "gun.failure_log_interval_secs",
                self.failure_log_interval_secs,
            ),
        ])?;
        if self.watch && self.watch_canary_soul.trim().is_empty() {
            return Err(invalid(
                "gun.watch_canary_soul",
                "must not be empty while gun.watch is on",
            ));
        }
        if self.backoff_max_ms < self.backoff_base_ms {
            return Err(invalid(
                "gun.backoff_max_ms",
                "must not be smaller than gun.backoff_base_ms",
            ));
        }
        Ok(())
    }

    pub fn resolve_paths(&mut self, base: &Path) {
        resolve(&mut self.file, base);
        if let Some(ca) = &mut self.ca_file {
            resolve(ca, base);
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NegativeCacheConfig {
    pub ttl_secs: u64,
    /// The TTL while no relay's write feed is live (`gun.watch` on, but down or unsupported):
    /// nothing would tell this cache that a missing soul was written meanwhile. Never longer
    /// than `ttl_secs`.
    pub ttl_without_watch_secs: u64,
    /// `forceRefresh` asks the relay again for a soul known missing only once its entry is this
    /// old, so clients that always ask for a refresh cannot undo the cache.
    pub refresh_after_secs: u64,
    pub sweep_interval_secs: u64,
    pub capacity: usize,
    pub log_every: u64,
}

impl Default for NegativeCacheConfig {
    fn default() -> Self {
        Self {
            ttl_secs: 3600,
            ttl_without_watch_secs: 300,
            refresh_after_secs: 60,
            sweep_interval_secs: 3600,
            capacity: 10_000,
            log_every: 100,
        }
    }
}

impl NegativeCacheConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, ttl) in [
            ("negative_cache.ttl_secs", self.ttl_secs),
            (
                "negative_cache.ttl_without_watch_secs",
                self.ttl_without_watch_secs,
            ),
        ] {
            if ttl == 0 {
                return Err(invalid(
                    key,
                    "must be greater than 0 (a 404 cache that forgets at once sends every miss to the relay)",
                ));
            }
        }
        positive(&[
            ("negative_cache.capacity", self.capacity as u64),
            ("negative_cache.log_every", self.log_every),
            (
                "negative_cache.sweep_interval_secs",
                self.sweep_interval_secs,
            ),
        ])
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordCacheConfig {
    /// 0 turns the record cache off.
    pub ttl_secs: u64,
    pub capacity_bytes: u64,
    /// Past its TTL a record is kept this much longer, and served only while the relay cannot
    /// answer (breaker open, no answer, 5xx), never after a 404.
    pub stale_secs: u64,
    /// `forceRefresh` asks the relay again for a record only once it was fetched this long ago
    /// (writes through the service and on the relays' feeds drop it from the cache at once).
    pub refresh_after_secs: u64,
}

impl Default for RecordCacheConfig {
    fn default() -> Self {
        Self {
            ttl_secs: 30,
            capacity_bytes: 64 * 1024 * 1024,
            stale_secs: 3600,
            refresh_after_secs: 10,
        }
    }
}
