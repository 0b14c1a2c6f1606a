//! Layered configuration: built-in defaults, then `config.yaml`, then the environment.
//!
//! Every key has a default so a file may hold any subset of keys. Unknown keys and invalid values
//! stop start-up with one line naming the key, because a typo that silently falls back to a
//! default is how services end up running with settings nobody chose.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use yaml_serde::{Mapping, Value};

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

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

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
    /// Each key the file or the environment set, and where it came from (`file`, or the
    /// variable's name), for the start-up summary.
    #[serde(skip)]
    pub sources: Vec<(String, String)>,
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GunSource {
    File,
    Relay,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GunConfig {
    pub source: GunSource,
    pub file: PathBuf,
    /// The one-relay form of `relay_urls`, used while that list is empty.
    pub relay_url: String,
    /// Several relays (they sync through GUN): the first usable one takes each request, the
    /// next ones stand by; a read that fails on one goes on to the next.
    pub relay_urls: Vec<String>,
    /// PEM certificates trusted, besides the built-in roots, for `https://` relays.
    pub ca_file: Option<PathBuf>,
    pub request_timeout_ms: u64,
    /// Attempts for non-404 failures; a 404 is never retried.
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// Retries may add at most this share (in percent) of first attempts to the relay's load.
    pub retry_budget_percent: u32,
    /// Consecutive failed attempts that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open before one probe request may try the relay again.
    pub breaker_open_ms: u64,
    /// Upper bound on open connections to each relay.
    pub max_connections: usize,
    /// Requests waiting for a connection to a relay, at most; past it a request is answered 503
    /// `relay_busy` at once. Time spent waiting is not held against the relay.
    pub max_queued: usize,
    /// A relay answer larger than this is refused rather than buffered.
    pub max_response_bytes: usize,
    /// How long a record whose stored form cannot be decoded is answered 502 without asking the
    /// relay again.
    pub malformed_ttl_secs: u64,
    /// Relay failures are summed up in one WARN line per this many seconds.
    pub failure_log_interval_secs: u64,
    /// With the file source, what writes may add in memory; past it a put is 507.
    pub file_write_limit_bytes: u64,
    /// Listen to each relay's write broadcast (`ws://<relay>/gun`) and drop what it names from
    /// both caches. Only with `source: relay`.
    pub watch: bool,
    /// The soul the feed's proof write goes to: written through the relay's `/put` after each
    /// connect, it must come back on the socket, or the relay does not broadcast.
    pub watch_canary_soul: String,
    /// A feed frame naming more souls than this drops both caches wholesale instead of soul by
    /// soul.
    pub watch_max_souls_per_frame: usize,
}

impl GunConfig {
    /// Whether the relays' write feeds are listened to: `watch`, with relays to listen to.
    pub fn watching(&self) -> bool {
        self.watch && self.source == GunSource::Relay
    }

    /// The relays, in order of preference: `relay_urls`, or `relay_url` while that is empty.
    pub fn relays(&self) -> Vec<&str> {
        if self.relay_urls.is_empty() {
            vec![self.relay_url.as_str()]
        } else {
            self.relay_urls.iter().map(String::as_str).collect()
        }
    }
}

impl Default for GunConfig {
    fn default() -> Self {
        Self {
            source: GunSource::File,
            file: PathBuf::from("data/demo/records.json"),
            relay_url: "http://127.0.0.1:8765".into(),
            relay_urls: Vec::new(),
            ca_file: None,
            request_timeout_ms: 20_000,
            max_attempts: 3,
            backoff_base_ms: 100,
            backoff_max_ms: 2_000,
            retry_budget_percent: 20,
            breaker_failures: 5,
            breaker_open_ms: 5_000,
            max_connections: 64,
            max_queued: 256,
            max_response_bytes: 8 * 1024 * 1024,
            malformed_ttl_secs: 60,
            failure_log_interval_secs: 60,
            file_write_limit_bytes: 64 * 1024 * 1024,
            watch: true,
            watch_canary_soul: "oip-resolver:watch-canary".into(),
            watch_max_souls_per_frame: 1000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NegativeCacheConfig {
    pub ttl_secs: u64,
    /// The TTL while no relay's write feed is live (`gun.watch` on, but down or unsupported):
    /// nothing would tell this cache that a missing soul was written meanwhile. Never longer
    /// than `ttl_secs`.
    pub ttl_without_watch_secs: u64,
    /// `forceRefresh` asks the relay again for a soul known missing only once its entry is this
    /// old, so clients that always ask for a refresh cannot undo the cache.
    pub refresh_after_secs: u64,
    pub sweep_interval_secs: u64,
    pub capacity: usize,
    pub log_every: u64,
}

impl Default for NegativeCacheConfig {
    fn default() -> Self {
        Self {
            ttl_secs: 3600,
            ttl_without_watch_secs: 300,
            refresh_after_secs: 60,
            sweep_interval_secs: 3600,
            capacity: 10_000,
            log_every: 100,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordCacheConfig {
    /// 0 turns the record cache off.
    pub ttl_secs: u64,
    pub capacity_bytes: u64,
    /// Past its TTL a record is kept this much longer, and served only while the relay cannot
    /// answer (breaker open, no answer, 5xx), never after a 404.
    pub stale_secs: u64,
    /// `forceRefresh` asks the relay again for a record only once it was fetched this long ago
    /// (writes through the service and on the relays' feeds drop it from the cache at once).
    pub refresh_after_secs: u64,
}

impl Default for RecordCacheConfig {
    fn default() -> Self {
        Self {
            ttl_secs: 30,
            capacity_bytes: 64 * 1024 * 1024,
            stale_secs: 3600,
            refresh_after_secs: 10,
        }
    }
}

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
    /// PEM certificates trusted, besides the built-in roots, for an `https://` `oip_api`.
    pub ca_file: Option<PathBuf>,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        Self {
            default_depth: 2,
            max_depth: 5,
            max_records: 1000,
            max_answer_bytes: 8 * 1024 * 1024,
            max_upstream_per_request: 200,
            concurrency: 32,
            deadline_ms: 15_000,
            oip_api: None,
            answer_cache_bytes: 16 * 1024 * 1024,
            ca_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    pub root: PathBuf,
    pub legacy_root: PathBuf,
    pub cache_control: String,
    pub stall_timeout_secs: u64,
    /// Media streams open at once; past it a new one is 503 `too_many_streams`.
    pub max_streams: usize,
    /// Media streams one client (peer address, or its `X-Forwarded-For` behind
    /// `server.trusted_proxies`) may have open; past it 429 `too_many_streams_for_client`.
    pub max_streams_per_client: usize,
    /// `Cache-Control` of images under `legacy_root` (the exercise GIFs).
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
            legacy_root: PathBuf::from("data/media/web"),
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

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub jwt_secret: Option<String>,
    pub admin_token: Option<String>,
    /// Lets anyone write through `/gun-relay/put`, for a trusted network only.
    pub open_writes: bool,
}

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
        set_items: &[String],
    ) -> Result<Self, ConfigError> {
        let mut tree = parse(text)?;
        let mut sources: Vec<(String, String)> = Vec::new();
        for (section, keys) in sections(&tree) {
            for key in keys {
                sources.push((format!("{section}.{key}"), "file".into()));
            }
        }
        let mut set = |tree: &mut Value, key: &str, value: Value, from: &str| {
            let (section, name) = key.split_once('.').expect("a section.key");
            let Value::Mapping(sections) = tree else {
                return;
            };
            let entry = sections
                .entry(Value::String(section.into()))
                .or_insert_with(|| Value::Mapping(Mapping::new()));
            if let Value::Mapping(keys) = entry {
                keys.insert(Value::String(name.into()), value);
            }
            sources.retain(|(k, _)| k != key);
            sources.push((key.to_string(), from.to_string()));
        };
        // The old service's variables first, then the general ones, so the specific one wins.
        if let Some(port) = env("PORT").filter(|p| !p.is_empty()) {
            set(
                &mut tree,
                "server.bind",
                Value::String(format!("0.0.0.0:{port}")),
                "PORT",
            );
        }
        let peers = env("GUN_PEERS").unwrap_or_default();
        if let Some(first) = comma_list(&peers).next() {
            set(
                &mut tree,
                "gun.relay_url",
                Value::String(first.into()),
                "GUN_PEERS",
            );
            let all = comma_list(&peers)
                .map(|p| Value::String(p.into()))
                .collect();
            set(
                &mut tree,
                "gun.relay_urls",
                Value::Sequence(all),
                "GUN_PEERS",
            );
            set(
                &mut tree,
                "gun.source",
                Value::String("relay".into()),
                "GUN_PEERS",
            );
        }
        if let Some(secret) = env("JWT_SECRET").filter(|s| !s.is_empty()) {
            set(
                &mut tree,
                "auth.jwt_secret",
                Value::String(secret),
                "JWT_SECRET",
            );
        }
        let variables = env_variables();
        for var in &variables {
            if let Some(raw) = env(&var.name) {
                set(&mut tree, &var.key, var.value(&raw), &var.name);
            }
        }
        for item in set_items {
            let (key, raw) = item
                .split_once('=')
                .ok_or_else(|| invalid(item, "--set wants section.key=value"))?;
            let var = variables
                .iter()
                .find(|v| v.key == key)
                .ok_or_else(|| invalid(key, "no such setting (--set wants section.key=value)"))?;
            set(&mut tree, key, var.value(raw), "--set");
        }
        // What the shipped config.yaml restates at its default is not news in the summary.
        let defaults = yaml_serde::to_value(Config::default()).expect("the defaults serialise");
        let at = |tree: &Value, key: &str| {
            let (section, name) = key.split_once('.')?;
            tree.get(section)?.get(name).cloned()
        };
        sources.retain(|(key, _)| at(&tree, key) != at(&defaults, key));
        let mut config = typed(tree, &sources)?;
        config.sources = sources;
        config.resolve_paths(base);
        config.validate()?;
        Ok(config)
    }

    /// Stops start-up on a variable named like a setting that does not exist (a typo would
    /// otherwise fall back to the default without a word).
    pub fn check_variable_names(names: impl Iterator<Item = String>) -> Result<(), ConfigError> {
        let known: Vec<String> = env_variables().into_iter().map(|v| v.name).collect();
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
        for var in env_variables() {
            out.push_str(&format!("  {:<44} {}\n", var.name, var.key));
        }
        out.push_str("  PORT                                         binds 0.0.0.0:PORT\n");
        out.push_str("  GUN_PEERS                                    relays, comma-separated: gun.relay_urls, gun.source relay\n");
        out.push_str("  JWT_SECRET                                   auth.jwt_secret\n");
        out.push_str("  RUST_LOG                                     log level (default info)\n");
        out
    }

    fn resolve_paths(&mut self, base: &Path) {
        let optional = [&mut self.gun.ca_file, &mut self.resolver.ca_file];
        for path in [
            &mut self.gun.file,
            &mut self.media.root,
            &mut self.media.legacy_root,
        ]
        .into_iter()
        .chain(optional.into_iter().flatten())
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// Checks what the types cannot: ranges, relations between keys, URLs. `from_yaml` calls it;
    /// a config built in code (the tests do) calls it too.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        if self.gun.source == GunSource::Relay {
            validate_http_url("gun.relay_url", &self.gun.relay_url)?;
            for url in &self.gun.relay_urls {
                validate_http_url("gun.relay_urls", url)?;
            }
            if let Some(ca) = &self.gun.ca_file {
                crate::gun::tls::client_config(Some(ca))
                    .map_err(|e| invalid("gun.ca_file", e.to_string()))?;
            }
        }
        if let Some(api) = &self.resolver.oip_api {
            validate_http_url("resolver.oip_api", api)?;
            if let Some(ca) = &self.resolver.ca_file {
                crate::gun::tls::client_config(Some(ca))
                    .map_err(|e| invalid("resolver.ca_file", e.to_string()))?;
            }
        }
        self.validate_positive()?;
        self.validate_relations()?;
        self.validate_access()
    }

    /// Counts, sizes and intervals that must not be 0.
    fn validate_positive(&self) -> Result<(), ConfigError> {
        let positive: [(&str, u64); 22] = [
            (
                "server.shutdown_timeout_secs",
                self.server.shutdown_timeout_secs,
            ),
            ("server.max_body_bytes", self.server.max_body_bytes as u64),
            ("server.max_connections", self.server.max_connections as u64),
            ("server.max_pipelined", self.server.max_pipelined as u64),
            ("media.max_streams", self.media.max_streams as u64),
            (
                "media.max_streams_per_client",
                self.media.max_streams_per_client as u64,
            ),
            (
                "server.request_head_timeout_ms",
                self.server.request_head_timeout_ms,
            ),
            ("gun.request_timeout_ms", self.gun.request_timeout_ms),
            ("gun.max_attempts", self.gun.max_attempts.into()),
            ("gun.breaker_failures", self.gun.breaker_failures.into()),
            ("gun.max_connections", self.gun.max_connections as u64),
            ("gun.max_response_bytes", self.gun.max_response_bytes as u64),
            (
                "gun.failure_log_interval_secs",
                self.gun.failure_log_interval_secs,
            ),
            (
                "negative_cache.capacity",
                self.negative_cache.capacity as u64,
            ),
            ("negative_cache.log_every", self.negative_cache.log_every),
            (
                "negative_cache.sweep_interval_secs",
                self.negative_cache.sweep_interval_secs,
            ),
            ("resolver.max_records", self.resolver.max_records as u64),
            (
                "resolver.max_answer_bytes",
                self.resolver.max_answer_bytes as u64,
            ),
            (
                "memory_monitor.trend_window_secs",
                self.memory_monitor.trend_window_secs,
            ),
            (
                "resolver.max_upstream_per_request",
                self.resolver.max_upstream_per_request as u64,
            ),
            ("resolver.concurrency", self.resolver.concurrency as u64),
            (
                "memory_monitor.interval_secs",
                self.memory_monitor.interval_secs,
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        Ok(())
    }

    /// Keys that only make sense together.
    fn validate_relations(&self) -> Result<(), ConfigError> {
        for (key, ttl) in [
            ("negative_cache.ttl_secs", self.negative_cache.ttl_secs),
            (
                "negative_cache.ttl_without_watch_secs",
                self.negative_cache.ttl_without_watch_secs,
            ),
        ] {
            if ttl == 0 {
                return Err(invalid(
                    key,
                    "must be greater than 0 (a 404 cache that forgets at once sends every miss to the relay)",
                ));
            }
        }
        if self.gun.watch && self.gun.watch_canary_soul.trim().is_empty() {
            return Err(invalid(
                "gun.watch_canary_soul",
                "must not be empty while gun.watch is on",
            ));
        }
        if self.gun.backoff_max_ms < self.gun.backoff_base_ms {
            return Err(invalid(
                "gun.backoff_max_ms",
                "must not be smaller than gun.backoff_base_ms",
            ));
        }
        if self.resolver.default_depth > self.resolver.max_depth {
            return Err(invalid(
                "resolver.default_depth",
                "must not be greater than resolver.max_depth",
            ));
        }
        if self.resolver.deadline_ms == 0 {
            return Err(invalid("resolver.deadline_ms", "must be greater than 0"));
        }
        if self.memory_monitor.rss_critical_mb < self.memory_monitor.rss_warn_mb {
            return Err(invalid(
                "memory_monitor.rss_critical_mb",
                "must not be smaller than memory_monitor.rss_warn_mb",
            ));
        }
        Ok(())
    }

    /// Who may reach what: secrets, origins, media roots.
    fn validate_access(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("auth.jwt_secret", &self.auth.jwt_secret),
            ("auth.admin_token", &self.auth.admin_token),
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
        if let Some(bad) = self
            .cors
            .allowed_origins
            .iter()
            .find(|o| !crate::http::cors::valid_pattern(o))
        {
            return Err(invalid(
                "cors.allowed_origins",
                format!("{bad:?} is not an origin (http(s)://host[:port], http(s)://host:* or *)"),
            ));
        }
        crate::http::client::Networks::parse(&self.server.trusted_proxies)
            .map_err(|e| invalid("server.trusted_proxies", e))?;
        if self.cors.allow_credentials && self.cors.allowed_origins.iter().any(|o| o == "*") {
            return Err(invalid(
                "cors.allowed_origins",
                "\"*\" with cors.allow_credentials would let any site read answers with its visitors' tokens: list the origins, or set cors.allow_credentials: false",
            ));
        }
        // A legacy root that is (or holds) the media root would serve private media by path,
        // with no token.
        let (media, legacy) = (real(&self.media.root), real(&self.media.legacy_root));
        if media.starts_with(&legacy) {
            return Err(invalid(
                "media.legacy_root",
                format!(
                    "{} is or contains media.root {}: private media would be served without a token",
                    self.media.legacy_root.display(),
                    self.media.root.display()
                ),
            ));
        }
        Ok(())
    }

    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.bind.parse().map_err(|e| {
            invalid(
                "server.bind",
                format!("{e} (expected host:port, e.g. 127.0.0.1:3005)"),
            )
        })
    }
}

/// The file as a tree of sections; a file of comments only is a valid "every default" file.
fn parse(text: &str) -> Result<Value, ConfigError> {
    let has_content = text
        .lines()
        .map(str::trim)
        .any(|l| !l.is_empty() && !l.starts_with('#') && l != "---");
    if !has_content {
        return Ok(Value::Mapping(Mapping::new()));
    }
    match yaml_serde::from_str::<Value>(text) {
        Ok(tree @ Value::Mapping(_)) => Ok(tree),
        Ok(_) => Err(invalid(
            "(top level)",
            "expected sections such as server: and gun:",
        )),
        Err(e) => Err(invalid("(top level)", e.to_string())),
    }
}

/// The tree as a `Config`. An invalid value names its key, and the variable that set it when
/// one did.
fn typed(tree: Value, sources: &[(String, String)]) -> Result<Config, ConfigError> {
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let key = e.path().to_string();
        let mut message = e.into_inner().to_string();
        // The YAML error names the path itself; the key is already in front of the line.
        if let Some((head, rest)) = message.split_once(": ") {
            if key.starts_with(head) {
                message = rest.to_string();
            }
        }
        let key = match sources.iter().find(|(k, from)| *k == key && from != "file") {
            Some((_, var)) => format!("{var} ({key})"),
            None if key == "." || key.is_empty() => "(top level)".to_string(),
            None => key,
        };
        invalid(&key, message)
    })
}

/// The sections of a tree and the keys each holds.
fn sections(tree: &Value) -> Vec<(String, Vec<String>)> {
    let name = |v: &Value| v.as_str().unwrap_or_default().to_string();
    match tree {
        Value::Mapping(sections) => sections
            .iter()
            .map(|(section, keys)| {
                let keys = match keys {
                    Value::Mapping(keys) => keys.keys().map(name).collect(),
                    _ => Vec::new(),
                };
                (name(section), keys)
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `OIP_<SECTION>_<KEY>`: a setting from the environment.
struct EnvVariable {
    name: String,
    key: String,
    default: Value,
}

impl EnvVariable {
    /// The variable's text as the key's type wants it: a list is comma-separated, a string
    /// (or a key whose default is null, such as a secret) is taken as written, anything else
    /// is read as YAML (numbers, true/false).
    fn value(&self, raw: &str) -> Value {
        match &self.default {
            Value::Sequence(_) => {
                Value::Sequence(comma_list(raw).map(|s| Value::String(s.into())).collect())
            }
            Value::Null if raw.is_empty() => Value::Null,
            Value::String(_) | Value::Null => Value::String(raw.into()),
            _ => yaml_serde::from_str(raw).unwrap_or_else(|_| Value::String(raw.into())),
        }
    }
}

/// The entries of a comma-separated list, trimmed, empty ones left out.
fn comma_list(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// One variable per key of the defaults: every key a file may set.
fn env_variables() -> Vec<EnvVariable> {
    let defaults = yaml_serde::to_value(Config::default()).expect("the defaults serialise");
    let Value::Mapping(sections) = defaults else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (section, keys) in sections {
        let (Some(section), Value::Mapping(keys)) = (section.as_str(), keys) else {
            continue;
        };
        for (key, default) in keys {
            let Some(key) = key.as_str() else { continue };
            out.push(EnvVariable {
                name: format!("OIP_{}_{}", section, key).to_ascii_uppercase(),
                key: format!("{section}.{key}"),
                default,
            });
        }
    }
    out
}

/// Shorter secrets are refused: an admin token or HMAC key of a few characters can be guessed.
pub const MIN_SECRET_BYTES: usize = 16;

/// `path` with its symlinks resolved where it exists, as written where it does not.
fn real(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

fn validate_http_url(key: &str, url: &str) -> Result<(), ConfigError> {
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
        assert_eq!(c.resolver.default_depth, 2);
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
            .sources
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
            ("media: { root: /m, legacy_root: /m }", "media.legacy_root"),
            (
                "media: { root: /m/private, legacy_root: /m }",
                "media.legacy_root",
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
            c.sources
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
            restated.sources.is_empty(),
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
    fn absolute_paths_stay() {
        let c = load("media:\n  root: /var/media\n").unwrap();
        assert_eq!(c.media.root, Path::new("/var/media"));
        assert_eq!(c.media.legacy_root, Path::new("/srv/oip/data/media/web"));
    }
}
