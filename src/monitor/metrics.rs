//! What the memory monitor exports: resident memory and heap, read at scrape time, and the
//! slope of resident memory over its trend window.

use std::sync::Arc;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::gauge::{ConstGauge, Gauge},
};

use super::process::Process;
use crate::metrics::{series, Registry};

series! {
    pub struct MonitorMetrics {
        trend: Gauge<f64, std::sync::atomic::AtomicU64> =>
            "oip_process_resident_memory_trend_bytes_per_hour",
            "Least-squares slope of resident memory over the memory monitor's trend window";
    }
}

impl MonitorMetrics {
    pub fn register(registry: &mut Registry, process: Process) -> Arc<Self> {
        registry.register_collector(Box::new(process));
        Arc::new(Self::registered(registry))
    }

    pub fn set_trend(&self, bytes_per_hour: f64) {
        self.trend.set(bytes_per_hour);
    }
}

/// A figure that could not be read is exported as NaN, never as a 0 that would read as a fall.
fn figure(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: Option<u64>,
) -> Result<(), std::fmt::Error> {
    match value {
        Some(v) => {
            let gauge = ConstGauge::new(v as i64);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
        }
        None => {
            let gauge = ConstGauge::new(f64::NAN);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
        }
    }
}

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = self.sample();
        figure(
            &mut encoder,
            "oip_process_resident_memory_bytes",
            "Resident memory of the process (NaN when it could not be read).",
            now.rss_bytes,
        )?;
        figure(
            &mut encoder,
            "oip_heap_allocated_bytes",
            "Bytes currently allocated on the heap.",
            now.heap_bytes,
        )
    }
}
