//! `media.*`: the media folders, and what streaming them may hold.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::check::{invalid, positive, resolve, ConfigError};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    pub root: PathBuf,
    /// The old service's API media folder (`/api/media?id=`); `media.legacy_root` is its old
    /// name, still read.
    pub legacy_api_root: PathBuf,
    /// The old service's static folder (`/media/<path>`: the exercise GIFs, narrations).
    pub legacy_static_root: PathBuf,
    pub cache_control: String,
    pub stall_timeout_secs: u64,
    /// Media streams open at once; past it a new one is 503 `too_many_streams`.
    pub max_streams: usize,
    /// Media streams one client (peer address, or its `X-Forwarded-For` behind
    /// `server.trusted_proxies`) may have open; past it 429 `too_many_streams_for_client`.
    pub max_streams_per_client: usize,
    /// `Cache-Control` of images under the legacy folders (the exercise GIFs).
    pub legacy_cache_control: String,
    /// How long an opened file (its handle, length, validators, manifest) is reused without
    /// looking at the disk again, like nginx's `open_file_cache_valid`; 0 turns it off. A file
    /// replaced or a manifest changed is seen within this.
    pub open_cache_secs: u64,
    /// Files kept open by that cache at most (each holds a descriptor).
    pub open_cache_entries: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            root: PathBuf::from("data/media"),
            legacy_api_root: PathBuf::from("media"),
            legacy_static_root: PathBuf::from("data/media/web"),
            cache_control: "public, max-age=3600".into(),
            stall_timeout_secs: 60,
            max_streams: 4096,
            max_streams_per_client: 64,
            legacy_cache_control: "public, max-age=31536000, immutable".into(),
            open_cache_secs: 10,
            open_cache_entries: 256,
        }
    }
}

impl MediaConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive(&[
            ("media.max_streams", self.max_streams as u64),
            (
                "media.max_streams_per_client",
                self.max_streams_per_client as u64,
            ),
        ])?;
        // A legacy root that is (or holds) the media root would serve private media by path,
        // with no token.
        let real = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        for (key, legacy) in [
            ("media.legacy_api_root", &self.legacy_api_root),
            ("media.legacy_static_root", &self.legacy_static_root),
        ] {
            if real(&self.root).starts_with(real(legacy)) {
                return Err(invalid(
                    key,
                    format!(
                        "{} is or contains media.root {}: private media would be served without a token",
                        legacy.display(),
                        self.root.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn resolve_paths(&mut self, base: &Path) {
        resolve(&mut self.root, base);
        resolve(&mut self.legacy_api_root, base);
        resolve(&mut self.legacy_static_root, base);
    }
}
