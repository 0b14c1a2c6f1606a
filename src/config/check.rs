//! What every section's settings share: the error that names a key, and the checks several
//! sections make. A leaf: sections import it, it imports none of them.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {key}: {message}")]
    Invalid { key: String, message: String },
}

/// The value of `key` is not acceptable, for the reason in `message`.
pub fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

/// Counts, sizes and intervals that must not be 0.
pub fn positive(values: &[(&str, u64)]) -> Result<(), ConfigError> {
    match values.iter().find(|(_, v)| *v == 0) {
        Some((key, _)) => Err(invalid(key, "must be greater than 0")),
        None => Ok(()),
    }
}

/// `url` must be `http://` or `https://` with a host.
pub fn http_url(key: &str, url: &str) -> Result<(), ConfigError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| invalid(key, format!("{url:?} must start with http:// or https://")))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(invalid(key, format!("{url:?} has no host")));
    }
    url.parse::<awc::http::Uri>()
        .map_err(|e| invalid(key, format!("{url:?} is not a valid URL: {e}")))?;
    Ok(())
}

/// A relative `path` taken from `base`, the config file's folder.
pub fn resolve(path: &mut PathBuf, base: &Path) {
    if path.is_relative() {
        *path = base.join(&*path);
    }
}
