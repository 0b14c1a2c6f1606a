//! `MemoryMonitor`: samples resident memory and heap on an interval and reports them. It never
//! acts on its own: operators read a sawtooth as health and a ramp as a leak, and decide.

use std::{sync::Arc, time::Duration};

use actix::prelude::*;
use cap::Cap;

use crate::{
    config::MemoryMonitorConfig,
    metrics::{Metrics, ProcessFigures},
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
}

impl MemoryMonitor {
    pub fn new(config: MemoryMonitorConfig, metrics: Arc<Metrics>) -> Self {
        Self { config, metrics }
    }

    fn report(&self) {
        let figures = sample();
        let rss_mb = figures.rss_bytes / MB;
        log::info!(
            "[Memory Monitor] RSS: {rss_mb}MB, Heap: {}MB, Streams: {}, 404 cache: {} souls, Record cache: {}MB",
            figures.heap_bytes / MB,
            self.metrics.active_streams(),
            self.metrics.negative_entries(),
            self.metrics.record_cache_bytes() / MB,
        );
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
