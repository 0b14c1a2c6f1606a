//! `server.*`: where and how the HTTP server listens, and what one connection may hold.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::config::check::{invalid, positive, ConfigError};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    /// 0 means one worker per core.
    pub workers: usize,
    pub shutdown_timeout_secs: u64,
    /// Largest request body accepted (a put through the relay proxy).
    pub max_body_bytes: usize,
    /// How long an idle keep-alive connection stays open.
    pub keep_alive_secs: u64,
    /// How long a client may take to send a request's head (slowloris guard).
    pub request_head_timeout_ms: u64,
    /// Connections open at once, over all workers; past it new ones wait to be accepted.
    pub max_connections: usize,
    /// Requests read ahead of the one being answered, per connection; past it the connection is
    /// not read until they are taken.
    pub max_pipelined: usize,
    /// Proxies (addresses, or networks as `10.0.0.0/8`) whose `X-Forwarded-For` names the
    /// client: the last address in it that is not one of them.
    pub trusted_proxies: Vec<String>,
    /// JSON answers larger than this go out uncompressed, whatever the client asks.
    pub compress_max_bytes: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:3005".into(),
            workers: 0,
            shutdown_timeout_secs: 30,
            max_body_bytes: 1024 * 1024,
            keep_alive_secs: 5,
            request_head_timeout_ms: 5_000,
            max_connections: 10_000,
            max_pipelined: 16,
            trusted_proxies: Vec::new(),
            compress_max_bytes: 1024 * 1024,
        }
    }
}

impl ServerConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        crate::http::client::Networks::parse(&self.trusted_proxies)
            .map_err(|e| invalid("server.trusted_proxies", e))?;
        positive(&[
            ("server.shutdown_timeout_secs", self.shutdown_timeout_secs),
            ("server.max_body_bytes", self.max_body_bytes as u64),
            ("server.max_connections", self.max_connections as u64),
            ("server.max_pipelined", self.max_pipelined as u64),
            (
                "server.request_head_timeout_ms",
                self.request_head_timeout_ms,
            ),
        ])
    }

    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.bind.parse().map_err(|e| {
            invalid(
                "server.bind",
                format!("{e} (expected host:port, e.g. 127.0.0.1:3005)"),
            )
        })
    }
}
