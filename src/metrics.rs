//! Every metric the service exports, declared in one place so the names in `/metrics`, in
//! DESIGN.md and in the code cannot drift apart.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::Duration,
};

pub const GUN_UPSTREAM_REQUESTS: &str = "oip_gun_upstream_requests_total";
pub const INDEXER_REQUESTS: &str = "oip_indexer_requests_total";
pub const GUN_RETRIES: &str = "oip_gun_retries_total";
pub const GUN_COALESCED: &str = "oip_gun_coalesced_requests_total";
pub const GUN_CIRCUIT_OPEN: &str = "oip_gun_circuit_open";
pub const GUN_FAILOVERS: &str = "oip_gun_failovers_total";
pub const GUN_SHED: &str = "oip_gun_shed_requests_total";
pub const GUN_RELAY_REQUESTS: &str = "oip_gun_relay_requests_total";
pub const GUN_RELAY_FAILURES: &str = "oip_gun_relay_failures_total";
pub const GUN_RELAY_CIRCUIT_OPEN: &str = "oip_gun_relay_circuit_open";
pub const GUN_WATCH_LIVE: &str = "oip_gun_watch_live";
pub const GUN_WATCH_FRAMES: &str = "oip_gun_watch_frames_total";
pub const GUN_WATCH_INVALIDATIONS: &str = "oip_gun_watch_invalidations_total";
pub const GUN_WATCH_RECONNECTS: &str = "oip_gun_watch_reconnects_total";
pub const GUN_MALFORMED_RECORDS: &str = "oip_gun_malformed_records_total";
pub const NEGATIVE_CACHE_LOOKUPS: &str = "oip_negative_cache_lookups_total";
pub const NEGATIVE_CACHE_HITS: &str = "oip_negative_cache_hits_total";
pub const NEGATIVE_CACHE_ENTRIES: &str = "oip_negative_cache_entries";
pub const RECORD_CACHE_HITS: &str = "oip_record_cache_hits_total";
pub const RECORD_CACHE_BYTES: &str = "oip_record_cache_bytes";
pub const RESOLVE_REQUESTS: &str = "oip_resolve_requests_total";
pub const ANSWER_CACHE_HITS: &str = "oip_answer_cache_hits_total";
pub const MEDIA_ACTIVE_STREAMS: &str = "oip_media_active_streams";
pub const MEDIA_STREAMS: &str = "oip_media_streams_total";
pub const MEDIA_BYTES_SENT: &str = "oip_media_bytes_sent_total";
pub const PROCESS_RSS: &str = "oip_process_resident_memory_bytes";
pub const HEAP_ALLOCATED: &str = "oip_heap_allocated_bytes";
pub const MEMORY_TREND: &str = "oip_process_resident_memory_trend_bytes_per_hour";
pub const HTTP_REQUEST_DURATION: &str = "oip_http_request_duration_seconds";
pub const BUILD_INFO: &str = "oip_build_info";

/// Upper bounds of the request-duration buckets, in seconds: from a cached answer (well under a
/// millisecond) to the relay's ~3 s miss and the resolver's deadline.
const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0,
];

/// The `status` label of the request-duration histogram.
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// How a media stream ended; the label of `oip_media_streams_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOutcome {
    Complete,
    Aborted,
    Error,
}

#[derive(Default)]
struct Histogram {
    buckets: [u64; DURATION_BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    upstream: Mutex<BTreeMap<String, u64>>,
    indexer: Mutex<BTreeMap<String, u64>>,
    gun_retries: AtomicU64,
    gun_coalesced: AtomicU64,
    gun_circuit_open: AtomicU64,
    gun_failovers: AtomicU64,
    gun_shed: AtomicU64,
    watch_frames: AtomicU64,
    watch_invalidations: AtomicU64,
    watch_reconnects: AtomicU64,
    /// One entry per configured relay, registered at start-up.
    relays: Mutex<Vec<Arc<RelayStats>>>,
    gun_malformed: AtomicU64,
    negative_lookups: AtomicU64,
    negative_hits: AtomicU64,
    negative_entries: AtomicU64,
    record_cache_hits: AtomicU64,
    record_cache_bytes: AtomicU64,
    resolve_requests: AtomicU64,
    answer_cache_hits: AtomicU64,
    media_active_streams: AtomicU64,
    media_streams: [AtomicU64; 3],
    media_bytes_sent: AtomicU64,
    /// The memory monitor's RSS slope, in bytes per hour, as `f64` bits.
    memory_trend: AtomicU64,
    /// By route template, then by status class (`1xx` to `5xx`).
    http: Mutex<BTreeMap<String, [Option<Histogram>; 5]>>,
}

/// One relay's own series: what was sent to it, what failed there, its breaker.
pub struct RelayStats {
    url: String,
    requests: AtomicU64,
    failures: AtomicU64,
    circuit_open: AtomicU64,
    watch_live: AtomicU64,
}

impl RelayStats {
    /// One request sent to this relay; `failed` when it could not answer as a relay (no
    /// answer, 5xx, unreadable, misconfigured); `open` is its breaker afterwards.
    pub fn attempt(&self, failed: bool, open: bool) {
        self.requests.fetch_add(1, Relaxed);
        if failed {
            self.failures.fetch_add(1, Relaxed);
        }
        self.circuit_open.store(open.into(), Relaxed);
    }

    pub fn set_watch_live(&self, live: bool) {
        self.watch_live.store(live.into(), Relaxed);
    }
}

/// The figures the status page draws, read at once.
pub struct Totals {
    pub negative_lookups: u64,
    pub negative_hits: u64,
    pub negative_entries: u64,
    pub record_cache_hits: u64,
    pub record_cache_bytes: u64,
    pub active_streams: u64,
    pub media_bytes_sent: u64,
    /// Requests answered, every route and status.
    pub requests: u64,
}

/// Process figures read at scrape time (they belong to the memory monitor, not to this module).
#[derive(Default)]
pub struct ProcessFigures {
    /// `None` when it could not be read.
    pub rss_bytes: Option<u64>,
    pub heap_bytes: u64,
}

impl Metrics {
    pub fn totals(&self) -> Totals {
        let requests = lock(&self.http)
            .values()
            .flat_map(|classes| classes.iter().flatten())
            .map(|h| h.count)
            .sum();
        Totals {
            negative_lookups: self.negative_lookups.load(Relaxed),
            negative_hits: self.negative_hits.load(Relaxed),
            negative_entries: self.negative_entries.load(Relaxed),
            record_cache_hits: self.record_cache_hits.load(Relaxed),
            record_cache_bytes: self.record_cache_bytes.load(Relaxed),
            active_streams: self.media_active_streams.load(Relaxed),
            media_bytes_sent: self.media_bytes_sent.load(Relaxed),
            requests,
        }
    }

    /// One request actually sent to the relay: `status` is its HTTP code, or `None` when no
    /// response came (refused, reset, timed out).
    pub fn upstream_request(&self, status: Option<u16>) {
        count_status(&self.upstream, status);
    }

    /// One request sent to the OIP indexer (`resolver.oip_api`), labelled like the relay's.
    pub fn indexer_request(&self, status: Option<u16>) {
        count_status(&self.indexer, status);
    }

    /// A relay request that repeats a failed attempt.
    pub fn retried(&self) {
        self.gun_retries.fetch_add(1, Relaxed);
    }

    /// A fetch that joined a request already on its way instead of sending its own.
    pub fn coalesced(&self) {
        self.gun_coalesced.fetch_add(1, Relaxed);
    }

    /// A relay answer (200) whose record could not be decoded.
    pub fn malformed_record(&self) {
        self.gun_malformed.fetch_add(1, Relaxed);
    }

    /// 1 while no relay's breaker lets a request through.
    pub fn set_circuit_open(&self, open: bool) {
        self.gun_circuit_open.store(open.into(), Relaxed);
    }

    /// A relay request shed: every connection busy and the queue full.
    pub fn shed(&self) {
        self.gun_shed.fetch_add(1, Relaxed);
    }

    /// A request that went on to the next relay after one failed.
    pub fn failed_over(&self) {
        self.gun_failovers.fetch_add(1, Relaxed);
    }

    /// The series of the relay at `url`: registered by the first to ask (its client or its
    /// write feed), shared with the other.
    pub fn relay(&self, url: &str) -> Arc<RelayStats> {
        let mut relays = lock(&self.relays);
        if let Some(found) = relays.iter().find(|r| r.url == url) {
            return found.clone();
        }
        let stats = Arc::new(RelayStats {
            url: url.to_string(),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            circuit_open: AtomicU64::new(0),
            watch_live: AtomicU64::new(0),
        });
        relays.push(stats.clone());
        stats
    }

    /// One message from a relay's write feed.
    pub fn watch_frame(&self) {
        self.watch_frames.fetch_add(1, Relaxed);
    }

    /// Souls a write feed dropped from the caches.
    pub fn watch_invalidated(&self, souls: u64) {
        self.watch_invalidations.fetch_add(souls, Relaxed);
    }

    /// A write feed that opened again after it was lost.
    pub fn watch_reconnected(&self) {
        self.watch_reconnects.fetch_add(1, Relaxed);
    }

    /// One check of the 404 cache, and whether it knew the soul missing.
    pub fn negative_lookup(&self, hit: bool) {
        self.negative_lookups.fetch_add(1, Relaxed);
        if hit {
            self.negative_hits.fetch_add(1, Relaxed);
        }
    }

    pub fn set_negative_entries(&self, entries: u64) {
        self.negative_entries.store(entries, Relaxed);
    }

    pub fn negative_entries(&self) -> u64 {
        self.negative_entries.load(Relaxed)
    }

    pub fn record_cache_hit(&self) {
        self.record_cache_hits.fetch_add(1, Relaxed);
    }

    pub fn set_record_cache_bytes(&self, bytes: u64) {
        self.record_cache_bytes.store(bytes, Relaxed);
    }

    pub fn record_cache_bytes(&self) -> u64 {
        self.record_cache_bytes.load(Relaxed)
    }

    pub fn resolve_requested(&self) {
        self.resolve_requests.fetch_add(1, Relaxed);
    }

    /// A resolution answered whole from the answer cache.
    pub fn answer_cache_hit(&self) {
        self.answer_cache_hits.fetch_add(1, Relaxed);
    }

    pub fn set_active_streams(&self, open: u64) {
        self.media_active_streams.store(open, Relaxed);
    }

    pub fn stream_ended(&self, outcome: StreamOutcome) {
        self.media_streams[outcome as usize].fetch_add(1, Relaxed);
    }

    pub fn active_streams(&self) -> u64 {
        self.media_active_streams.load(Relaxed)
    }

    pub fn set_memory_trend(&self, bytes_per_hour: f64) {
        self.memory_trend.store(bytes_per_hour.to_bits(), Relaxed);
    }

    pub fn media_bytes_sent(&self, bytes: u64) {
        self.media_bytes_sent.fetch_add(bytes, Relaxed);
    }

    /// `route` is the matched route template, never the raw path, so ids cannot explode the
    /// label set.
    pub fn observe_request(&self, route: &str, status: u16, elapsed: Duration) {
        let class = match status {
            100..=499 => usize::from(status / 100) - 1,
            _ => 4,
        };
        let secs = elapsed.as_secs_f64();
        let mut http = lock(&self.http);
        // Every request passes here: look the route up by reference, and allocate its key only
        // the first time it is seen.
        if !http.contains_key(route) {
            http.insert(route.to_string(), Default::default());
        }
        let classes = http.get_mut(route).expect("inserted above");
        let h = classes[class].get_or_insert_with(Histogram::default);
        for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.buckets[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    fn render_relays(&self, out: &mut String) {
        let relays = lock(&self.relays).clone();
        let series = [
            (GUN_RELAY_REQUESTS, "counter", "Requests sent to each relay."),
            (
                GUN_RELAY_FAILURES,
                "counter",
                "Requests to each relay that failed there (no answer, 5xx, unreadable, misconfigured).",
            ),
            (
                GUN_RELAY_CIRCUIT_OPEN,
                "gauge",
                "1 while this relay's circuit breaker is open or probing.",
            ),
            (
                GUN_WATCH_LIVE,
                "gauge",
                "1 while this relay's write feed is live (its canary write came back).",
            ),
        ];
        for (i, (name, kind, help)) in series.into_iter().enumerate() {
            header(out, name, kind, help);
            for relay in &relays {
                let value = [
                    &relay.requests,
                    &relay.failures,
                    &relay.circuit_open,
                    &relay.watch_live,
                ][i];
                let url = escape(&relay.url);
                let _ = writeln!(out, "{name}{{relay=\"{url}\"}} {}", value.load(Relaxed));
            }
        }
    }

    pub fn render(&self, process: &ProcessFigures) -> String {
        let mut out = String::with_capacity(4096);
        let by_status = [
            (
                GUN_UPSTREAM_REQUESTS,
                &self.upstream,
                "Requests actually sent to the GUN relay, by HTTP status (error: no response).",
            ),
            (
                INDEXER_REQUESTS,
                &self.indexer,
                "Requests actually sent to the OIP indexer, by HTTP status (error: no response).",
            ),
        ];
        for (name, counts, help) in by_status {
            header(&mut out, name, "counter", help);
            let counts = lock(counts).clone();
            for (status, n) in &counts {
                let _ = writeln!(out, "{name}{{status=\"{status}\"}} {n}");
            }
        }
        self.render_relays(&mut out);
        header(
            &mut out,
            PROCESS_RSS,
            "gauge",
            "Resident memory of the process (NaN when it could not be read).",
        );
        match process.rss_bytes {
            Some(rss) => writeln!(out, "{PROCESS_RSS} {rss}"),
            None => writeln!(out, "{PROCESS_RSS} NaN"),
        }
        .expect("writing to a String cannot fail");
        let plain: [(&str, &str, &str, u64); 20] = [
            (GUN_RETRIES, "counter", "Relay requests that were retries of a failed attempt.", self.gun_retries.load(Relaxed)),
            (GUN_COALESCED, "counter", "Fetches that joined an in-flight request for the same soul instead of sending their own.", self.gun_coalesced.load(Relaxed)),
            (GUN_CIRCUIT_OPEN, "gauge", "1 while the circuit breaker of every relay is open: no relay can be asked.", self.gun_circuit_open.load(Relaxed)),
            (GUN_FAILOVERS, "counter", "Relay requests sent to the next relay after one failed.", self.gun_failovers.load(Relaxed)),
            (GUN_SHED, "counter", "Relay requests shed at once (503 relay_busy): every connection in use and gun.max_queued waiting.", self.gun_shed.load(Relaxed)),
            (GUN_WATCH_FRAMES, "counter", "Messages received on the relays' write feeds.", self.watch_frames.load(Relaxed)),
            (GUN_WATCH_INVALIDATIONS, "counter", "Souls the write feeds dropped from the caches.", self.watch_invalidations.load(Relaxed)),
            (GUN_WATCH_RECONNECTS, "counter", "Write feeds opened again after they were lost.", self.watch_reconnects.load(Relaxed)),
            (GUN_MALFORMED_RECORDS, "counter", "Relay answers (200) whose record could not be decoded; the record's problem, not the relay's.", self.gun_malformed.load(Relaxed)),
            (NEGATIVE_CACHE_LOOKUPS, "counter", "Checks of the 404 cache.", self.negative_lookups.load(Relaxed)),
            (NEGATIVE_CACHE_HITS, "counter", "Checks of the 404 cache that found the soul known missing.", self.negative_hits.load(Relaxed)),
            (NEGATIVE_CACHE_ENTRIES, "gauge", "Souls currently known missing.", self.negative_entries.load(Relaxed)),
            (RECORD_CACHE_HITS, "counter", "Fetches answered from the record cache.", self.record_cache_hits.load(Relaxed)),
            (RECORD_CACHE_BYTES, "gauge", "Weighted size of the record cache.", self.record_cache_bytes.load(Relaxed)),
            (RESOLVE_REQUESTS, "counter", "Record resolutions requested.", self.resolve_requests.load(Relaxed)),
            (ANSWER_CACHE_HITS, "counter", "Resolutions answered whole from the answer cache (for the caller who asked).", self.answer_cache_hits.load(Relaxed)),
            (MEDIA_ACTIVE_STREAMS, "gauge", "Media streams currently open.", self.media_active_streams.load(Relaxed)),
            (MEDIA_BYTES_SENT, "counter", "Media body bytes handed to clients.", self.media_bytes_sent.load(Relaxed)),
            (HEAP_ALLOCATED, "gauge", "Bytes currently allocated on the heap.", process.heap_bytes),
            (BUILD_INFO, "gauge", "Version of the running service.", 1),
        ];
        for (name, kind, help, value) in plain {
            header(&mut out, name, kind, help);
            if name == BUILD_INFO {
                let _ = writeln!(
                    out,
                    "{name}{{version=\"{}\"}} {value}",
                    env!("CARGO_PKG_VERSION")
                );
            } else {
                let _ = writeln!(out, "{name} {value}");
            }
        }
        header(
            &mut out,
            MEMORY_TREND,
            "gauge",
            "Least-squares slope of resident memory over the memory monitor's trend window.",
        );
        let trend = f64::from_bits(self.memory_trend.load(Relaxed));
        let _ = writeln!(out, "{MEMORY_TREND} {trend:.0}");
        header(
            &mut out,
            MEDIA_STREAMS,
            "counter",
            "Media streams ended, by how they ended.",
        );
        for (outcome, i) in [("complete", 0), ("aborted", 1), ("error", 2)] {
            let n = self.media_streams[i].load(Relaxed);
            let _ = writeln!(out, "{MEDIA_STREAMS}{{outcome=\"{outcome}\"}} {n}");
        }
        header(
            &mut out,
            HTTP_REQUEST_DURATION,
            "histogram",
            "HTTP request duration by route template and status class.",
        );
        let http = lock(&self.http);
        let entries = http.iter().flat_map(|(route, classes)| {
            STATUS_CLASSES
                .iter()
                .zip(classes)
                .filter_map(move |(class, h)| Some((route, class, h.as_ref()?)))
        });
        for (route, class, h) in entries {
            let labels = format!("route=\"{}\",status=\"{class}\"", escape(route));
            for (bound, n) in DURATION_BUCKETS.iter().zip(h.buckets) {
                let _ = writeln!(
                    out,
                    "{HTTP_REQUEST_DURATION}_bucket{{{labels},le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "{HTTP_REQUEST_DURATION}_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "{HTTP_REQUEST_DURATION}_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "{HTTP_REQUEST_DURATION}_count{{{labels}}} {}", h.count);
        }
        out
    }
}

/// A poisoned lock still holds counts worth reporting.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn count_status(counts: &Mutex<BTreeMap<String, u64>>, status: Option<u16>) {
    let label = status.map_or_else(|| "error".to_string(), |s| s.to_string());
    *lock(counts).entry(label).or_default() += 1;
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures() -> ProcessFigures {
        ProcessFigures {
            rss_bytes: Some(10),
            heap_bytes: 5,
        }
    }

    #[test]
    fn upstream_counts_by_status() {
        let m = Metrics::default();
        m.upstream_request(Some(404));
        m.upstream_request(Some(404));
        m.upstream_request(None);
        let text = m.render(&figures());
        assert!(text.contains("oip_gun_upstream_requests_total{status=\"404\"} 2"));
        assert!(text.contains("oip_gun_upstream_requests_total{status=\"error\"} 1"));
    }

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::default();
        m.observe_request("/api/media/{mediaId}", 200, Duration::from_millis(3));
        m.observe_request("/api/media/{mediaId}", 206, Duration::from_secs(20));
        let text = m.render(&figures());
        let l = "route=\"/api/media/{mediaId}\",status=\"2xx\"";
        assert!(
            text.contains(&format!("_bucket{{{l},le=\"0.0025\"}} 0")),
            "{text}"
        );
        assert!(
            text.contains(&format!("_bucket{{{l},le=\"0.005\"}} 1")),
            "{text}"
        );
        assert!(
            text.contains(&format!("_bucket{{{l},le=\"15\"}} 1")),
            "{text}"
        );
        assert!(
            text.contains(&format!("_bucket{{{l},le=\"+Inf\"}} 2")),
            "{text}"
        );
        assert!(text.contains(&format!("_count{{{l}}} 2")), "{text}");
    }
}
