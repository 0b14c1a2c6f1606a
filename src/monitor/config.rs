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
    /// How long the readings must span before a trend is said (`None`: three intervals, at most
    /// the window); until then it is `gathering`.
    pub trend_min_span_secs: Option<u64>,
}

impl Default for MemoryMonitorConfig {
    fn default() -> Self {
        Self {
            interval_secs: 300,
            rss_warn_mb: 1024,
            rss_critical_mb: 4096,
            trend_window_secs: 3600,
            trend_min_span_secs: None,
        }
    }
}

impl MemoryMonitorConfig {
    /// The span the readings need before a trend is said: three intervals unless set, within
    /// the window.
    pub fn min_span_secs(&self) -> u64 {
        self.trend_min_span_secs
            .unwrap_or((3 * self.interval_secs).min(self.trend_window_secs))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        positive(&[
            ("memory_monitor.interval_secs", self.interval_secs),
            ("memory_monitor.trend_window_secs", self.trend_window_secs),
        ])?;
        if self.min_span_secs() > self.trend_window_secs {
            return Err(invalid(
                "memory_monitor.trend_min_span_secs",
                format!(
                    "{} s is longer than memory_monitor.trend_window_secs {}: no trend would ever be said",
                    self.min_span_secs(),
                    self.trend_window_secs
                ),
            ));
        }
        if self.rss_critical_mb < self.rss_warn_mb {
            return Err(invalid(
                "memory_monitor.rss_critical_mb",
                "must not be smaller than memory_monitor.rss_warn_mb",
            ));
        }
        Ok(())
    }
}
