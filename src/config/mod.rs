//! Configuration: every section is its feature's (`server`, `gun`, `resolver`, `media`, `auth`,
//! `memory_monitor`, and the HTTP edge's `cors`, `log`, `ui`), with its defaults and its own
//! checks; this module only puts them together and layers their sources.
//!
//! - `layers`: defaults < `config.yaml` < the environment < `--set`, and where each value came
//!   from;
//! - `check`: the error that names a key, and checks sections share.
//!
//! Every key has a default so a file may hold any subset of keys. Unknown keys and invalid values
//! stop start-up with one line naming the key, because a typo that silently falls back to a
//! default is how services end up running with settings nobody chose.

pub mod check;
mod layers;

use std::{net::SocketAddr, path::Path};

use serde::{Deserialize, Serialize};

pub use crate::{
    auth::config::AuthConfig,
    gun::config::{GunConfig, GunSource, NegativeCacheConfig, RecordCacheConfig},
    http::config::{CorsConfig, LogConfig, UiConfig},
    media::config::MediaConfig,
    monitor::config::MemoryMonitorConfig,
    resolver::config::ResolverConfig,
    server::config::ServerConfig,
};
use check::invalid;
pub use check::ConfigError;
use layers::Layered;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub gun: GunConfig,
    pub negative_cache: NegativeCacheConfig,
    pub record_cache: RecordCacheConfig,
    pub resolver: ResolverConfig,
    pub media: MediaConfig,
    pub auth: AuthConfig,
    pub memory_monitor: MemoryMonitorConfig,
    pub log: LogConfig,
    pub cors: CorsConfig,
    pub ui: UiConfig,
    /// Each key the file, the environment or the command line set, and where it came from
    /// (`file`, the variable's name, `--set`), for the start-up summary.
    #[serde(skip)]
    pub origins: Vec<(String, String)>,
}

/// Every section and key with its default, as the layers see them.
fn defaults() -> yaml_serde::Value {
    yaml_serde::to_value(Config::default()).expect("the defaults serialise")
}

impl Config {
    /// Reads `path`, applies the environment (through `env`, so tests need not touch the
    /// process environment), then the command line's `--set section.key=value` items, and
    /// validates the result.
    pub fn load(
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
        set: &[String],
    ) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Self::from_layers(&text, base, env, set)
    }

    /// Defaults, then the file's `text`, then the environment (`env`), then validation. Relative
    /// paths are taken from `base`.
    pub fn from_yaml(
        text: &str,
        base: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::from_layers(text, base, env, &[])
    }

    /// `from_yaml`, then the command line's `section.key=value` items (`set`), which win.
    pub fn from_layers(
        text: &str,
        base: &Path,
        env: impl Fn(&str) -> Option<String>,
        set: &[String],
    ) -> Result<Self, ConfigError> {
        let mut layered = Layered::file(text, defaults())?;
        layered.environment(env);
        layered.command_line(set)?;
        let (mut config, origins) = layered.into_typed::<Config>()?;
        config.origins = origins;
        config.gun.resolve_paths(base);
        config.resolver.resolve_paths(base);
        config.media.resolve_paths(base);
        config.validate()?;
        Ok(config)
    }

    /// Stops start-up on a variable named like a setting that does not exist (a typo would
    /// otherwise fall back to the default without a word).
    pub fn check_variable_names(names: impl Iterator<Item = String>) -> Result<(), ConfigError> {
        let known: Vec<String> = layers::variable_names(&defaults())
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        match names
            .filter(|n| n.starts_with("OIP_"))
            .find(|n| !known.contains(n))
        {
            Some(unknown) => Err(invalid(
                &unknown,
                "no such setting (see --help for the OIP_<SECTION>_<KEY> variables)",
            )),
            None => Ok(()),
        }
    }

    /// The variables `--help` lists: one per key, with its default.
    pub fn variables_help() -> String {
        let mut out = String::from(
            "Every key of config.yaml can be set from the environment (defaults < file < environment < --set):\n",
        );
        for (name, key) in layers::variable_names(&defaults()) {
            out.push_str(&format!("  {name:<44} {key}\n"));
        }
        out.push_str("  PORT                                         binds 0.0.0.0:PORT\n");
        out.push_str("  GUN_PEERS                                    relays, comma-separated: gun.relay_urls, gun.source relay\n");
        out.push_str("  JWT_SECRET                                   auth.jwt_secret\n");
        out.push_str("  RUST_LOG                                     log level (default info)\n");
        out
    }

    /// Every section's own checks. `from_yaml` calls it; a config built in code (the tests do)
    /// calls it too.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.gun.validate()?;
        self.negative_cache.validate()?;
        self.resolver.validate()?;
        self.media.validate()?;
        self.auth.validate()?;
        self.memory_monitor.validate()?;
        self.cors.validate()
    }

    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.bind_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_yaml(text, Path::new("/srv/oip"), no_env)
    }

    #[test]
    fn empty_file_gives_every_default() {
        let c = load("# nothing here\n").unwrap();
        assert_eq!(c.server.bind, "127.0.0.1:3005");
        assert_eq!(c.gun.source, GunSource::File);
        assert_eq!(c.negative_cache.ttl_secs, 3600);
        assert_eq!(c.resolver.default_depth, 0);
        assert_eq!(c.gun.file, Path::new("/srv/oip/data/demo/records.json"));
    }

    #[test]
    fn subset_of_keys_keeps_other_defaults() {
        let c = load("gun:\n  max_attempts: 5\n").unwrap();
        assert_eq!(c.gun.max_attempts, 5);
        assert_eq!(c.gun.backoff_base_ms, 100);
        assert_eq!(c.record_cache.ttl_secs, 30);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load("gun:\n  max_attempt: 5\n").unwrap_err().to_string();
        assert!(
            err.starts_with("config gun.max_attempt: unknown field `max_attempt`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_section_is_named() {
        let err = load("relay:\n  url: x\n").unwrap_err().to_string();
        assert!(err.contains("relay"), "{err}");
    }

    #[test]
    fn invalid_value_is_named() {
        let err = load("negative_cache:\n  ttl_secs: soon\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("negative_cache.ttl_secs"), "{err}");
        let err = load("gun:\n  source: ipfs\n").unwrap_err().to_string();
        assert!(err.contains("gun.source"), "{err}");
        let err = load("server:\n  bind: nowhere\n").unwrap_err().to_string();
        assert!(err.contains("server.bind"), "{err}");
        let err = load("gun:\n  max_attempts: 0\n").unwrap_err().to_string();
        assert!(err.contains("gun.max_attempts"), "{err}");
        let err = load("resolver:\n  default_depth: 9\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("resolver.default_depth"), "{err}");
    }

    #[test]
    fn relay_url_must_be_http() {
        let err = load("gun:\n  source: relay\n  relay_url: ftp://x\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("gun.relay_url"), "{err}");
    }

    #[test]
    fn the_command_line_wins_over_the_environment() {
        let env = |k: &str| (k == "OIP_GUN_MAX_ATTEMPTS").then(|| "5".to_string());
        let set = ["gun.max_attempts=7".to_string()];
        let c = Config::from_layers("gun: { max_attempts: 3 }", Path::new("."), env, &set).unwrap();
        assert_eq!(c.gun.max_attempts, 7);
        assert!(c
            .origins
            .contains(&("gun.max_attempts".into(), "--set".into())));
        for (item, named) in [
            ("gun.max_attempts=zero", "--set (gun.max_attempts)"),
            ("gun.max_atempts=2", "gun.max_atempts"),
            ("gun.max_attempts", "gun.max_attempts"),
        ] {
            let err = Config::from_layers("", Path::new("."), no_env, &[item.to_string()])
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!("config {named}: ")),
                "{item}: {err}"
            );
        }
    }

    #[test]
    fn gun_peers_switches_to_relay_with_every_peer() {
        let env = |k: &str| match k {
            "GUN_PEERS" => Some("http://10.0.0.5:8765/gun, http://other:1".to_string()),
            "JWT_SECRET" => Some("s3cret-from-the-environment".to_string()),
            _ => None,
        };
        let c = Config::from_yaml("", Path::new("."), env).unwrap();
        assert_eq!(c.gun.source, GunSource::Relay);
        assert_eq!(c.gun.relay_url, "http://10.0.0.5:8765/gun");
        assert_eq!(
            c.gun.relays(),
            ["http://10.0.0.5:8765/gun", "http://other:1"]
        );
        assert_eq!(
            c.auth.jwt_secret.as_deref(),
            Some("s3cret-from-the-environment")
        );
    }

    #[test]
    fn footguns_are_refused_with_the_key_named() {
        for (yaml, key) in [
            ("auth: { jwt_secret: short }", "auth.jwt_secret"),
            ("cors: { allowed_origins: [\"*\"] }", "cors.allowed_origins"),
            ("auth: { admin_token: \"\" }", "auth.admin_token"),
            ("auth: { admin_token: fifteen-bytes!! }", "auth.admin_token"),
            (
                "media: { root: /m, legacy_root: /m }",
                "media.legacy_api_root",
            ),
            (
                "media: { root: /m/private, legacy_api_root: /m }",
                "media.legacy_api_root",
            ),
            (
                "media: { root: /m/private, legacy_static_root: /m }",
                "media.legacy_static_root",
            ),
            (
                "gun: { source: relay, relay_urls: [\"http://a:1\", \"ftp://b\"] }",
                "gun.relay_urls",
            ),
            (
                "gun: { source: relay, ca_file: /nowhere/ca.pem }",
                "gun.ca_file",
            ),
            (
                "resolver: { oip_api: \"https://api.oip.io\", ca_file: /nowhere/ca.pem }",
                "resolver.ca_file",
            ),
        ] {
            match load(yaml) {
                Ok(_) => assert!(key.is_empty(), "{yaml} was accepted"),
                Err(e) => {
                    assert!(!key.is_empty(), "{yaml}: {e}");
                    assert!(e.to_string().starts_with(&format!("config {key}: ")), "{e}");
                }
            }
        }
        assert!(load("auth: { jwt_secret: sixteen-bytes-ok }").is_ok());
        assert!(load("cors: { allowed_origins: [\"*\"], allow_credentials: false }").is_ok());
        assert!(load("media: { root: /m, legacy_root: /m/web }").is_ok());
        assert!(load("gun: { source: relay, relay_url: \"https://relay:8765\" }").is_ok());
        assert!(load("resolver: { oip_api: \"https://api.oip.io\" }").is_ok());
    }

    #[test]
    fn every_key_comes_from_the_environment_over_the_file() {
        let vars = std::collections::HashMap::from([
            ("OIP_NEGATIVE_CACHE_TTL_SECS", "600"),
            ("OIP_AUTH_ADMIN_TOKEN", "0123456789012345678"),
            ("OIP_LOG_ACCESS", "false"),
            (
                "OIP_CORS_ALLOWED_ORIGINS",
                "https://a.example, http://localhost:*",
            ),
            ("OIP_GUN_SOURCE", "relay"),
            ("OIP_GUN_RELAY_URL", "http://relay:8765"),
            ("PORT", "8080"),
        ]);
        let env = |k: &str| vars.get(k).map(|v| v.to_string());
        let c = Config::from_yaml(
            "negative_cache: { ttl_secs: 60, capacity: 50 }\n",
            Path::new("/srv"),
            env,
        )
        .unwrap();
        assert_eq!(
            c.negative_cache.ttl_secs, 600,
            "the environment over the file"
        );
        assert_eq!(c.negative_cache.capacity, 50, "the file over the defaults");
        assert_eq!(c.auth.admin_token.as_deref(), Some("0123456789012345678"));
        assert!(!c.log.access);
        assert_eq!(
            c.cors.allowed_origins,
            ["https://a.example", "http://localhost:*"]
        );
        assert_eq!(c.gun.source, GunSource::Relay);
        assert_eq!(c.server.bind, "0.0.0.0:8080");
        let from = |key: &str| {
            c.origins
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, f)| f.as_str())
        };
        assert_eq!(
            from("negative_cache.ttl_secs"),
            Some("OIP_NEGATIVE_CACHE_TTL_SECS")
        );
        let restated =
            Config::from_yaml("gun: { max_attempts: 3 }\n", Path::new("."), no_env).unwrap();
        assert!(
            restated.origins.is_empty(),
            "a default restated is not a change"
        );
        assert_eq!(from("negative_cache.capacity"), Some("file"));
        assert_eq!(from("server.bind"), Some("PORT"));
        assert_eq!(from("resolver.max_depth"), None);

        let bind = |k: &str| match k {
            "PORT" => Some("8080".to_string()),
            "OIP_SERVER_BIND" => Some("127.0.0.1:9000".to_string()),
            _ => None,
        };
        let c = Config::from_yaml("", Path::new("."), bind).unwrap();
        assert_eq!(
            c.server.bind, "127.0.0.1:9000",
            "the specific variable wins over PORT"
        );
    }

    #[test]
    fn a_bad_variable_is_named() {
        let bad = |k: &str| (k == "OIP_GUN_MAX_ATTEMPTS").then(|| "zero".to_string());
        let err = Config::from_yaml("", Path::new("."), bad)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("config OIP_GUN_MAX_ATTEMPTS (gun.max_attempts): "),
            "{err}"
        );
        let zero = |k: &str| (k == "OIP_GUN_MAX_ATTEMPTS").then(|| "0".to_string());
        let err = Config::from_yaml("", Path::new("."), zero)
            .unwrap_err()
            .to_string();
        assert!(err.contains("gun.max_attempts"), "{err}");
        let names = ["OIP_GUN_MAX_ATEMPTS".to_string(), "HOME".into()];
        let err = Config::check_variable_names(names.into_iter())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("config OIP_GUN_MAX_ATEMPTS: no such setting"),
            "{err}"
        );
        assert!(
            Config::check_variable_names(["OIP_AUTH_OPEN_WRITES".to_string()].into_iter()).is_ok()
        );
    }

    #[test]
    fn media_legacy_root_is_still_read_as_the_api_folder() {
        let c = load("media: { legacy_root: /srv/old/media }\n").unwrap();
        assert_eq!(c.media.legacy_api_root, Path::new("/srv/old/media"));
        let env = |name: &str| (name == "OIP_MEDIA_LEGACY_ROOT").then(|| "/env/media".to_string());
        let c = Config::from_layers("", Path::new("/srv/oip"), env, &[]).unwrap();
        assert_eq!(c.media.legacy_api_root, Path::new("/env/media"));
        let set = ["media.legacy_root=/set/media".to_string()];
        let c = Config::from_layers("", Path::new("/srv/oip"), no_env, &set).unwrap();
        assert_eq!(c.media.legacy_api_root, Path::new("/set/media"));
        let both = "media: { legacy_root: /old, legacy_api_root: /new }\n";
        assert_eq!(load(both).unwrap().media.legacy_api_root, Path::new("/new"));
    }

    #[test]
    fn absolute_paths_stay() {
        let c = load("media:\n  root: /var/media\n").unwrap();
        assert_eq!(c.media.root, Path::new("/var/media"));
        assert_eq!(
            c.media.legacy_static_root,
            Path::new("/srv/oip/data/media/web")
        );
    }
}
