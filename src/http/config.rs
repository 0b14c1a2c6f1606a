//! `cors.*`, `log.*`, `ui.*`: what the HTTP edge answers browsers, logs, and shows.

use serde::{Deserialize, Serialize};

use crate::config::check::{invalid, ConfigError};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Exact origins, `scheme://host:*` for any port of a host, or `*`.
    pub allowed_origins: Vec<String>,
    pub allow_credentials: bool,
    pub max_age_secs: u64,
}

impl Default for CorsConfig {
    fn default() -> Self {
        // A page on another local port (a web app in development) can call `make run`.
        Self {
            allowed_origins: vec!["http://localhost:*".into(), "http://127.0.0.1:*".into()],
            allow_credentials: true,
            max_age_secs: 86_400,
        }
    }
}

impl CorsConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(bad) = self
            .allowed_origins
            .iter()
            .find(|o| !super::cors::valid_pattern(o))
        {
            return Err(invalid(
                "cors.allowed_origins",
                format!("{bad:?} is not an origin (http(s)://host[:port], http(s)://host:*, chrome-extension://<id or *>, or *)"),
            ));
        }
        if self.allow_credentials && self.allowed_origins.iter().any(|o| o == "*") {
            return Err(invalid(
                "cors.allowed_origins",
                "\"*\" with cors.allow_credentials would let any site read answers with its visitors' tokens: list the origins, or set cors.allow_credentials: false",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiConfig {
    /// The status page at `/` and its figures at `/status.json`; off, both are 404.
    pub enabled: bool,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub access: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { access: true }
    }
}
