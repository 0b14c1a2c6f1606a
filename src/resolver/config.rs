//! `resolver.*`: how far and how wide one resolution may go.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::check::{http_url, invalid, positive, resolve, ConfigError};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResolverConfig {
    pub default_depth: u32,
    pub max_depth: u32,
    pub max_records: usize,
    /// Bytes one answer may hold; past it references stay DIDs (reason `budget`).
    pub max_answer_bytes: usize,
    /// Relay (and indexer) requests one resolution may send; references past it stay DIDs with
    /// reason `budget`.
    pub max_upstream_per_request: usize,
    pub concurrency: usize,
    pub deadline_ms: u64,
    pub oip_api: Option<String>,
    /// Warm answers kept whole (bytes, by request): repeated resolutions answered as a copy of
    /// bytes until a record in them expires or is written. 0 turns it off.
    pub answer_cache_bytes: u64,
    /// Bytes of fresh answers alive at once, assembled and not yet sent; past it references stay
    /// DIDs (reason `budget`). Bounds what many clients asking large answers at once can hold.
    pub answers_in_flight_bytes: usize,
    /// PEM certificates trusted, besides the built-in roots, for an `https://` `oip_api`.
    pub ca_file: Option<PathBuf>,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        Self {
            default_depth: 0,
            max_depth: 5,
            max_records: 1000,
            max_answer_bytes: 8 * 1024 * 1024,
            max_upstream_per_request: 200,
            concurrency: 32,
            deadline_ms: 15_000,
            oip_api: None,
            answer_cache_bytes: 16 * 1024 * 1024,
            answers_in_flight_bytes: 24 * 1024 * 1024,
            ca_file: None,
        }
    }
}

impl ResolverConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(api) = &self.oip_api {
            http_url("resolver.oip_api", api)?;
            if let Some(ca) = &self.ca_file {
                crate::gun::tls::client_config(Some(ca))
                    .map_err(|e| invalid("resolver.ca_file", e.to_string()))?;
            }
        }
        positive(&[
            ("resolver.max_records", self.max_records as u64),
            ("resolver.max_answer_bytes", self.max_answer_bytes as u64),
            (
                "resolver.max_upstream_per_request",
                self.max_upstream_per_request as u64,
            ),
            ("resolver.concurrency", self.concurrency as u64),
            ("resolver.deadline_ms", self.deadline_ms),
        ])?;
        if self.answers_in_flight_bytes < self.max_answer_bytes {
            return Err(invalid(
                "resolver.answers_in_flight_bytes",
                format!(
                    "{} is less than resolver.max_answer_bytes {}: no answer could reach its size",
                    self.answers_in_flight_bytes, self.max_answer_bytes
                ),
            ));
        }
        if self.default_depth > self.max_depth {
            return Err(invalid(
                "resolver.default_depth",
                "must not be greater than resolver.max_depth",
            ));
        }
        Ok(())
    }

    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(ca) = &mut self.ca_file {
            resolve(ca, base);
        }
    }
}
