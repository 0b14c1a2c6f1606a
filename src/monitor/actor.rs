//! `MemoryMonitor`, the actor: samples resident memory and heap on an interval and logs them
//! with the figures that explain them (streams, caches), keeps the trend window, and warns.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use actix::prelude::*;

use super::{
    config::MemoryMonitorConfig,
    metrics::MonitorMetrics,
    process::Process,
    trend::{self, Shape},
};
use crate::{gun::metrics::GunMetrics, http::metrics::HttpMetrics, media::MediaMetrics};

const MB: u64 = 1024 * 1024;

/// The figures beside memory that the monitor reports (what holds memory) and the status page
/// draws.
#[derive(Clone)]
pub struct Watched {
    pub gun: Arc<GunMetrics>,
    pub media: Arc<MediaMetrics>,
    pub http: Arc<HttpMetrics>,
}

/// A heap figure as the line says it: whole MB, or `unknown` without the binary's allocator.
fn in_mb(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "unknown".into(), |b| format!("{}MB", b / MB))
}

/// One reading of the monitor: when, resident memory in MB, heap in bytes.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at: Instant,
    rss_mb: f64,
    heap_bytes: Option<u64>,
}

pub struct MemoryMonitor {
    config: MemoryMonitorConfig,
    process: Process,
    metrics: Arc<MonitorMetrics>,
    watched: Watched,
    /// The readings of the trend window.
    window: VecDeque<Reading>,
    trend: trend::Reading,
}

/// The monitor's window as the status page draws it.
#[derive(Message)]
#[rtype(result = "MemoryView")]
pub struct Readings;

pub struct MemoryView {
    pub window_secs: u64,
    pub interval_secs: u64,
    /// Seconds ago, resident bytes, heap bytes (`None` when unknown): oldest first.
    pub samples: Vec<(f64, u64, Option<u64>)>,
    pub trend: trend::Reading,
}

impl MemoryMonitor {
    pub fn new(
        config: MemoryMonitorConfig,
        process: Process,
        metrics: Arc<MonitorMetrics>,
        watched: Watched,
    ) -> Self {
        let needed_secs = config.min_span_secs() as f64;
        Self {
            config,
            process,
            metrics,
            watched,
            window: VecDeque::new(),
            trend: trend::Reading::Gathering {
                span_secs: 0.0,
                needed_secs,
            },
        }
    }

    /// Keeps `reading` and drops what fell out of the window; the trend of what is left.
    fn keep(&mut self, reading: Reading) -> trend::Reading {
        let now = reading.at;
        self.window.push_back(reading);
        let window = Duration::from_secs(self.config.trend_window_secs);
        while self
            .window
            .front()
            .is_some_and(|r| now.duration_since(r.at) > window)
        {
            self.window.pop_front();
        }
        let first = self.window.front().map_or(now, |r| r.at);
        let samples: Vec<(f64, f64)> = self
            .window
            .iter()
            .map(|r| (r.at.duration_since(first).as_secs_f64(), r.rss_mb))
            .collect();
        trend::read(&samples, self.config.min_span_secs() as f64)
    }

    fn report(&mut self) {
        let figures = self.process.sample();
        // A reading that could not be taken (no descriptor left to read /proc with) is said as
        // such, and kept out of the trend: never a 0 MB that would read as a fall.
        let Some(rss_bytes) = figures.rss_bytes else {
            log::warn!(
                "[Memory Monitor] RSS: unknown (/proc/self/status could not be read), Heap: {}, Streams: {}",
                in_mb(figures.heap_bytes),
                self.watched.media.active_streams(),
            );
            return;
        };
        let rss_mb = rss_bytes / MB;
        let trend = self.keep(Reading {
            at: Instant::now(),
            rss_mb: rss_bytes as f64 / MB as f64,
            heap_bytes: figures.heap_bytes,
        });
        self.trend = trend;
        // No slope is exported while the readings are too short to give one.
        self.metrics.set_trend(
            trend
                .trend()
                .map_or(f64::NAN, |t| t.mb_per_hour * MB as f64),
        );
        log::info!(
            "[Memory Monitor] RSS: {rss_mb}MB, Heap: {}, Streams: {}, 404 cache: {} souls, Record cache: {}MB, Trend: {trend}",
            in_mb(figures.heap_bytes),
            self.watched.media.active_streams(),
            self.watched.gun.negative_entries(),
            self.watched.gun.record_cache_bytes() / MB,
        );
        if let Some(t) = trend.trend().filter(|t| t.shape == Shape::Ramp) {
            let critical = self.config.rss_critical_mb as f64;
            if let Some(hours) = t.hours_to(critical).filter(|h| *h < 24.0) {
                log::warn!(
                    "[Memory Monitor] WARNING: RSS ramp {:+.1} MB/h, critical in ~{} h",
                    t.mb_per_hour,
                    hours.ceil()
                );
            }
        }
        if rss_mb > self.config.rss_critical_mb {
            log::error!(
                "[Memory Monitor] CRITICAL: RSS {rss_mb}MB over {}MB",
                self.config.rss_critical_mb
            );
        } else if rss_mb > self.config.rss_warn_mb {
            log::warn!(
                "[Memory Monitor] WARNING: RSS {rss_mb}MB over {}MB",
                self.config.rss_warn_mb
            );
        }
    }
}

impl Actor for MemoryMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // A first reading at start-up: where memory began is what a trend is judged against.
        self.report();
        ctx.run_interval(Duration::from_secs(self.config.interval_secs), |this, _| {
            this.report()
        });
    }
}

impl Handler<Readings> for MemoryMonitor {
    type Result = MessageResult<Readings>;

    fn handle(&mut self, _: Readings, _: &mut Self::Context) -> Self::Result {
        let now = Instant::now();
        let samples = self
            .window
            .iter()
            .map(|r| {
                let ago = now.duration_since(r.at).as_secs_f64();
                (ago, (r.rss_mb * MB as f64) as u64, r.heap_bytes)
            })
            .collect();
        MessageResult(MemoryView {
            window_secs: self.config.trend_window_secs,
            interval_secs: self.config.interval_secs,
            samples,
            trend: self.trend,
        })
    }
}
