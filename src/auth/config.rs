//! `auth.*`: the secrets that prove who asks, and whether writes are open.

use serde::{Deserialize, Serialize};

use crate::config::check::{invalid, ConfigError};

/// Shorter secrets are refused: an admin token or HMAC key of a few characters can be guessed.
pub const MIN_SECRET_BYTES: usize = 16;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub jwt_secret: Option<String>,
    pub admin_token: Option<String>,
    /// Lets anyone write through `/gun-relay/put`, for a trusted network only.
    pub open_writes: bool,
}

impl AuthConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("auth.jwt_secret", &self.jwt_secret),
            ("auth.admin_token", &self.admin_token),
        ] {
            if value.as_ref().is_some_and(|v| v.len() < MIN_SECRET_BYTES) {
                return Err(invalid(
                    key,
                    format!(
                        "must be at least {MIN_SECRET_BYTES} bytes, or left out (null) to disable: a short secret can be guessed"
                    ),
                ));
            }
        }
        Ok(())
    }
}
