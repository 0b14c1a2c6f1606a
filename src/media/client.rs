//! `Client`: what the routes ask of the media feature, and `start`, which builds it: the shared
//! `Media` and the `MediaActor`'s threads.

use std::sync::Arc;

use actix::{Addr, SyncArbiter};

use super::{
    actor::{Info, Media, MediaActor, MediaFile, Open},
    config::MediaConfig,
    error::MediaError,
    manifest::Manifest,
    metrics::MediaMetrics,
};
use crate::{
    config::{check::ConfigError, Config},
    http::client::Networks,
    metrics::Registry,
};

#[derive(Clone)]
pub struct Client {
    actor: Addr<MediaActor>,
    files: Arc<Media>,
    config: Arc<MediaConfig>,
    metrics: Arc<MediaMetrics>,
    /// `server.trusted_proxies`: who may say, in `X-Forwarded-For`, which client a stream is for.
    trusted_proxies: Arc<Networks>,
}

impl Client {
    /// Starts the feature from `config`. Must run inside an actix system.
    pub fn start(config: &Config, registry: &mut Registry) -> Result<Self, ConfigError> {
        let trusted_proxies =
            Networks::parse(&config.server.trusted_proxies).map_err(|message| {
                ConfigError::Invalid {
                    key: "server.trusted_proxies".into(),
                    message,
                }
            })?;
        let metrics = MediaMetrics::register(registry);
        let files = Arc::new(Media::new(
            &config.media,
            config.auth.jwt_secret.clone(),
            metrics.clone(),
        ));
        let actor = {
            let shared = files.clone();
            // Enough threads that a slow disk on one file does not queue every other open.
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
            SyncArbiter::start(threads.max(4), move || MediaActor::new(shared.clone()))
        };
        Ok(Self {
            actor,
            files,
            config: Arc::new(config.media.clone()),
            metrics,
            trusted_proxies: Arc::new(trusted_proxies),
        })
    }

    /// The file `msg` names, opened and planned: from the open-file cache on the caller's
    /// thread when it was opened lately, else by the actor.
    pub async fn open(&self, msg: Open) -> Result<MediaFile, MediaError> {
        match self.files.open_cached(&msg) {
            Some(answered) => answered,
            None => self
                .actor
                .send(msg)
                .await
                .map_err(|_| MediaError::Unavailable)?,
        }
    }

    /// The manifest of media `id`, if `token` may read it.
    pub async fn info(&self, id: String, token: Option<String>) -> Result<Manifest, MediaError> {
        self.actor
            .send(Info { id, token })
            .await
            .map_err(|_| MediaError::Unavailable)?
    }

    /// Where a stream reads what the page cache does not hold.
    pub fn actor(&self) -> Addr<MediaActor> {
        self.actor.clone()
    }

    pub fn metrics(&self) -> &Arc<MediaMetrics> {
        &self.metrics
    }

    pub fn config(&self) -> &MediaConfig {
        &self.config
    }

    pub fn trusted_proxies(&self) -> &Networks {
        &self.trusted_proxies
    }
}
