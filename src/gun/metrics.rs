//! What the gun feature counts: requests to the relays and the indexer, their failures and
//! breakers, the write feeds, and both caches.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;

use crate::metrics::{series, Count, Level, Listed, Registry};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    /// The HTTP status, or `error` when no response came.
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RelayLabel {
    relay: String,
}

series! {
    pub struct GunMetrics {
        upstream: Listed<StatusLabel, Count> => "oip_gun_upstream_requests",
            "Requests actually sent to the GUN relay, by HTTP status (error: no response)";
        indexer: Listed<StatusLabel, Count> => "oip_indexer_requests",
            "Requests actually sent to the OIP indexer, by HTTP status (error: no response)";
        relay_requests: Listed<RelayLabel, Count> => "oip_gun_relay_requests",
            "Requests sent to each relay";
        relay_failures: Listed<RelayLabel, Count> => "oip_gun_relay_failures",
            "Requests to each relay that failed there (no answer, 5xx, unreadable, misconfigured)";
        relay_circuit_open: Listed<RelayLabel, Level> => "oip_gun_relay_circuit_open",
            "1 while this relay's circuit breaker is open or probing";
        watch_live: Listed<RelayLabel, Level> => "oip_gun_watch_live",
            "1 while this relay's write feed is live (its canary write came back)";
        retries: Count => "oip_gun_retries",
            "Relay requests that were retries of a failed attempt";
        coalesced: Count => "oip_gun_coalesced_requests",
            "Fetches that joined an in-flight request for the same soul instead of sending their own";
        circuit_open: Level => "oip_gun_circuit_open",
            "1 while the circuit breaker of every relay is open: no relay can be asked";
        failovers: Count => "oip_gun_failovers",
            "Relay requests sent to the next relay after one failed";
        shed: Count => "oip_gun_shed_requests",
            "Relay requests shed at once (503 relay_busy): every connection in use and gun.max_queued waiting";
        watch_frames: Count => "oip_gun_watch_frames",
            "Messages received on the relays' write feeds";
        watch_invalidations: Count => "oip_gun_watch_invalidations",
            "Souls the write feeds dropped from the caches";
        watch_reconnects: Count => "oip_gun_watch_reconnects",
            "Write feeds opened again after they were lost";
        malformed: Count => "oip_gun_malformed_records",
            "Relay answers (200) whose record could not be decoded; the record's problem, not the relay's";
        negative_lookups: Count => "oip_negative_cache_lookups",
            "Checks of the 404 cache";
        negative_hits: Count => "oip_negative_cache_hits",
            "Checks of the 404 cache that found the soul known missing";
        negative_entries: Level => "oip_negative_cache_entries",
            "Souls currently known missing";
        record_cache_hits: Count => "oip_record_cache_hits",
            "Fetches answered from the record cache";
        record_cache_bytes: Level => "oip_record_cache_bytes",
            "Weighted size of the record cache";
    }
}

/// One relay's own series: what was sent to it, what failed there, its breaker, its feed.
pub struct RelayStats {
    requests: Count,
    failures: Count,
    circuit_open: Level,
    watch_live: Level,
}

impl RelayStats {
    /// One request sent to this relay; `failed` when it could not answer as a relay (no
    /// answer, 5xx, unreadable, misconfigured); `open` is its breaker afterwards.
    pub fn attempt(&self, failed: bool, open: bool) {
        self.requests.inc();
        if failed {
            self.failures.inc();
        }
        self.circuit_open.set(open.into());
    }

    pub fn set_watch_live(&self, live: bool) {
        self.watch_live.set(live.into());
    }
}

impl GunMetrics {
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        Arc::new(Self::registered(registry))
    }

    /// One request actually sent to the relay: `status` is its HTTP code, or `None` when no
    /// response came (refused, reset, timed out).
    pub fn upstream_request(&self, status: Option<u16>) {
        self.upstream.get_or_create(&status_label(status)).inc();
    }

    /// One request sent to the OIP indexer (`resolver.oip_api`), labelled like the relay's.
    pub fn indexer_request(&self, status: Option<u16>) {
        self.indexer.get_or_create(&status_label(status)).inc();
    }

    /// A relay request that repeats a failed attempt.
    pub fn retried(&self) {
        self.retries.inc();
    }

    /// A fetch that joined a request already on its way instead of sending its own.
    pub fn coalesced(&self) {
        self.coalesced.inc();
    }

    /// A relay answer (200) whose record could not be decoded.
    pub fn malformed_record(&self) {
        self.malformed.inc();
    }

    /// 1 while no relay's breaker lets a request through.
    pub fn set_circuit_open(&self, open: bool) {
        self.circuit_open.set(open.into());
    }

    /// A relay request shed: every connection busy and the queue full.
    pub fn shed(&self) {
        self.shed.inc();
    }

    /// A request that went on to the next relay after one failed.
    pub fn failed_over(&self) {
        self.failovers.inc();
    }

    /// The series of the relay at `url`, shared by its client and its write feed.
    pub fn relay(&self, url: &str) -> Arc<RelayStats> {
        let label = RelayLabel {
            relay: url.to_string(),
        };
        Arc::new(RelayStats {
            requests: self.relay_requests.get_or_create_owned(&label),
            failures: self.relay_failures.get_or_create_owned(&label),
            circuit_open: self.relay_circuit_open.get_or_create_owned(&label),
            watch_live: self.watch_live.get_or_create_owned(&label),
        })
    }

    /// One message from a relay's write feed.
    pub fn watch_frame(&self) {
        self.watch_frames.inc();
    }

    /// Souls a write feed dropped from the caches.
    pub fn watch_invalidated(&self, souls: u64) {
        self.watch_invalidations.inc_by(souls);
    }

    /// A write feed that opened again after it was lost.
    pub fn watch_reconnected(&self) {
        self.watch_reconnects.inc();
    }

    /// One check of the 404 cache, and whether it knew the soul missing.
    pub fn negative_lookup(&self, hit: bool) {
        self.negative_lookups.inc();
        if hit {
            self.negative_hits.inc();
        }
    }

    pub fn negative_lookups(&self) -> (u64, u64) {
        (self.negative_lookups.get(), self.negative_hits.get())
    }

    pub fn set_negative_entries(&self, entries: u64) {
        self.negative_entries.set(entries);
    }

    pub fn negative_entries(&self) -> u64 {
        self.negative_entries.get()
    }

    pub fn record_cache_hit(&self) {
        self.record_cache_hits.inc();
    }

    pub fn record_cache_hits(&self) -> u64 {
        self.record_cache_hits.get()
    }

    pub fn set_record_cache_bytes(&self, bytes: u64) {
        self.record_cache_bytes.set(bytes);
    }

    pub fn record_cache_bytes(&self) -> u64 {
        self.record_cache_bytes.get()
    }
}

fn status_label(status: Option<u16>) -> StatusLabel {
    StatusLabel {
        status: status.map_or_else(|| "error".to_string(), |s| s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_counts_by_status() {
        let mut registry = Registry::default();
        let m = GunMetrics::register(&mut registry);
        m.upstream_request(Some(404));
        m.upstream_request(Some(404));
        m.upstream_request(None);
        let text = crate::metrics::render(&registry);
        assert!(
            text.contains("oip_gun_upstream_requests_total{status=\"404\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("oip_gun_upstream_requests_total{status=\"error\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn a_relay_client_and_its_feed_share_its_series() {
        let mut registry = Registry::default();
        let m = GunMetrics::register(&mut registry);
        m.relay("http://a/gun").attempt(true, true);
        m.relay("http://a/gun").set_watch_live(true);
        let text = crate::metrics::render(&registry);
        for line in [
            "oip_gun_relay_requests_total{relay=\"http://a/gun\"} 1",
            "oip_gun_relay_failures_total{relay=\"http://a/gun\"} 1",
            "oip_gun_relay_circuit_open{relay=\"http://a/gun\"} 1",
            "oip_gun_watch_live{relay=\"http://a/gun\"} 1",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
