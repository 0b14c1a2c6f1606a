//! `memory_monitor.*`: how often memory is read, when it warns, what its trend is read from.

use serde::{Deserialize, Serialize};

use crate::config::check::{invalid, positive, ConfigError};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryMonitorConfig {
    pub interval_secs: u64,
    pub rss_warn_mb: u64,
    pub rss_critical_mb: u64,
    /// The samples the trend (flat, sawtooth, ramp) is read from.
    pub trend_window_secs: u64,
}

impl Default for MemoryMonitorConfig {
    fn default() -> Self {
        Self {
            interval_secs: 300,
            rss_warn_mb: 1024,
            rss_critical_mb: 4096,
            trend_window_secs: 3600,
        }
    }
}

impl MemoryMonitorConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive(&[
            ("memory_monitor.interval_secs", self.interval_secs),
            ("memory_monitor.trend_window_secs", self.trend_window_secs),
        ])?;
        if self.rss_critical_mb < self.rss_warn_mb {
            return Err(invalid(
                "memory_monitor.rss_critical_mb",
                "must not be smaller than memory_monitor.rss_warn_mb",
            ));
        }
        Ok(())
    }
}
