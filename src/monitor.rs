//! `MemoryMonitor`: samples resident memory and heap on an interval and reports them, with the
//! trend of the last `trend_window_secs` (flat, sawtooth or ramp, see `trend`). It never acts on
//! its own: it tells operators which shape it sees, and warns when a ramp would reach the
//! critical threshold within a day.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use actix::prelude::*;
use cap::Cap;

use crate::{
    config::MemoryMonitorConfig,
    metrics::{Metrics, ProcessFigures},
    trend::{self, Shape, Trend},
};

/// Counts every allocation so the heap figure is exact. Underneath, jemalloc rather than glibc's
/// malloc: glibc kept the pages of freed connection buffers (2,000 paused players left RSS at
/// 70 MB with 0.5 MB of heap in use, for good); jemalloc, as `.cargo/config.toml` builds it,
/// hands them back to the system within seconds.
#[global_allocator]
static ALLOCATOR: Cap<tikv_jemallocator::Jemalloc> =
    Cap::new(tikv_jemallocator::Jemalloc, usize::MAX);

const MB: u64 = 1024 * 1024;

/// Reads the figures now: resident memory from `/proc/self/status`, heap from the allocator.
pub fn sample() -> ProcessFigures {
    ProcessFigures {
        rss_bytes: resident_bytes().unwrap_or(0),
        heap_bytes: ALLOCATOR.allocated() as u64,
    }
}

fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub struct MemoryMonitor {
    config: MemoryMonitorConfig,
    metrics: Arc<Metrics>,
    /// RSS in MB, when it was sampled, over the trend window.
    window: VecDeque<(Instant, f64)>,
}

impl MemoryMonitor {
    pub fn new(config: MemoryMonitorConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            config,
            metrics,
            window: VecDeque::new(),
        }
    }

    /// Keeps `rss_mb` and drops what fell out of the window; the trend of what is left.
    fn observe(&mut self, now: Instant, rss_mb: f64) -> Option<Trend> {
        self.window.push_back((now, rss_mb));
        let window = Duration::from_secs(self.config.trend_window_secs);
        while self
            .window
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > window)
        {
            self.window.pop_front();
        }
        let first = self.window.front()?.0;
        let samples: Vec<(f64, f64)> = self
            .window
            .iter()
            .map(|(at, mb)| (at.duration_since(first).as_secs_f64(), *mb))
            .collect();
        trend::classify(&samples)
    }

    fn report(&mut self) {
        let figures = sample();
        let rss_mb = figures.rss_bytes / MB;
        let trend = self.observe(Instant::now(), figures.rss_bytes as f64 / MB as f64);
        let shown = match &trend {
            Some(t) => format!(
                "{:+.1}MB/h over {}m ({})",
                t.mb_per_hour,
                (t.span_secs / 60.0).round(),
                t.shape
            ),
            None => "gathering".to_string(),
        };
        self.metrics
            .set_memory_trend(trend.map_or(0.0, |t| t.mb_per_hour * MB as f64));
        log::info!(
            "[Memory Monitor] RSS: {rss_mb}MB, Heap: {}MB, Streams: {}, 404 cache: {} souls, Record cache: {}MB, Trend: {shown}",
            figures.heap_bytes / MB,
            self.metrics.active_streams(),
            self.metrics.negative_entries(),
            self.metrics.record_cache_bytes() / MB,
        );
        if let Some(t) = trend.filter(|t| t.shape == Shape::Ramp) {
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
        ctx.run_interval(Duration::from_secs(self.config.interval_secs), |this, _| {
            this.report()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_plausible() {
        let before = sample();
        let block = vec![1u8; 8 * MB as usize];
        let during = sample();
        assert!(before.rss_bytes > MB, "rss {}", before.rss_bytes);
        // Other tests allocate concurrently, so only a lower bound holds.
        assert!(during.heap_bytes >= 8 * MB, "heap {}", during.heap_bytes);
        drop(block);
    }
}
