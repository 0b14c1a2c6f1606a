//! `Monitor`: what the operations routes ask of the monitor feature (readings, the process's
//! figures now, the exposition, uptime), and `start`, which starts the `MemoryMonitor` with the
//! registry every other feature has registered its series in.

use std::time::{Duration, Instant};

use actix::{Actor, Addr, MailboxError};

use super::{
    actor::{MemoryMonitor, MemoryView, Readings, Watched},
    config::MemoryMonitorConfig,
    metrics::MonitorMetrics,
    process::{HeapReader, Process, ProcessFigures},
};
use crate::metrics::{self, Registry};

pub struct Monitor {
    actor: Addr<MemoryMonitor>,
    process: Process,
    registry: Registry,
    watched: Watched,
    started: Instant,
}

impl Monitor {
    /// Starts the monitor, last: `registry` is complete once every other feature has started.
    /// `heap` reads the binary's allocator; without it the heap figures are unknown.
    pub fn start(
        config: &MemoryMonitorConfig,
        mut registry: Registry,
        heap: Option<HeapReader>,
        watched: Watched,
    ) -> Self {
        let process = Process::new(heap);
        let metrics = MonitorMetrics::register(&mut registry, process);
        let actor = MemoryMonitor::new(config.clone(), process, metrics, watched.clone()).start();
        Self {
            actor,
            process,
            registry,
            watched,
            started: Instant::now(),
        }
    }

    /// The monitor's window as the status page draws it.
    pub async fn readings(&self) -> Result<MemoryView, MailboxError> {
        self.actor.send(Readings).await
    }

    pub fn sample(&self) -> ProcessFigures {
        self.process.sample()
    }

    /// Every feature's series, in the Prometheus text format.
    pub fn exposition(&self) -> String {
        metrics::render(&self.registry)
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn watched(&self) -> &Watched {
        &self.watched
    }
}
