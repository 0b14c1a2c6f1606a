//! `MediaActor`: maps media ids and legacy paths to files without leaving the media roots,
//! applies the manifests' access rules, and reads what a stream cannot read without waiting.
//!
//! Opening and reading files touch the disk, so `MediaActor` runs on a small, fixed pool of
//! threads of its own (a `SyncArbiter`) and does that work in place: one hop from the HTTP worker
//! and back, where an async actor would add a trip through the blocking pool, and no thread is
//! ever spawned per request (spawned threads, each with its own malloc arena, made resident
//! memory drift in the soak). Its instances share one `Media`: the roots, the JWT secret, the
//! stream registry and the open-file cache, from which HTTP workers answer a file opened lately
//! without the hop.

use std::{
    fs::File,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Instant, SystemTime},
};

use actix::prelude::*;
use bytes::Bytes;

use super::{
    access,
    config::MediaConfig,
    error::MediaError,
    manifest::{content_type, Manifest},
    metrics::MediaMetrics,
    path::{check_media_id, check_relative_path, open_under, PathError},
    range::{plan, Conditions, Plan, Validators},
    read::{read_cached, read_exact_at, CHUNK},
    registry::StreamRegistry,
};

/// What a request names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// `/api/media/{mediaId}`: `media.root/<mediaId>/original`.
    Media(String),
    /// One of the old service's URLs: a relative path under one of its two folders.
    Legacy(Folder, String),
}

/// The old service's two media folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Folder {
    /// `/api/media?id=`: its API's media folder, `media.legacy_api_root`.
    Api,
    /// `/media/<path>`: its static files, `media.legacy_static_root`.
    Static,
}

/// An open file and how to answer with it.
pub struct MediaFile {
    pub file: Arc<File>,
    pub len: u64,
    pub validators: Validators,
    pub content_type: String,
    /// Reading it needed a token: the answer must not be kept by shared caches.
    pub private: bool,
    /// Served from one of the old service's folders, by one of its URLs.
    pub legacy: bool,
    pub plan: Plan,
    /// The first chunk of the first range, read while the file was opened: a small range is
    /// answered without a second trip to the blocking pool.
    pub prefetched: Bytes,
    /// Where the stream made of this file reports.
    pub registry: Arc<StreamRegistry>,
}

/// Open a file for reading, after every check, and plan the answer to `conditions`.
#[derive(Message)]
#[rtype(result = "Result<MediaFile, MediaError>")]
pub struct Open {
    pub target: Target,
    pub token: Option<String>,
    pub conditions: Conditions,
    /// HEAD: plan, but read nothing.
    pub head: bool,
}

/// The manifest of `mediaId`, under the same access rules as the file.
#[derive(Message)]
#[rtype(result = "Result<Manifest, MediaError>")]
pub struct Info {
    pub id: String,
    pub token: Option<String>,
}

/// Read `len` bytes at `offset`, for a chunk the page cache did not hold.
#[derive(Message)]
#[rtype(result = "std::io::Result<Bytes>")]
pub struct ReadChunk {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: usize,
}

/// Canonical roots; `None` when the folder does not exist (every request is then a 404).
#[derive(Debug, Clone)]
struct Roots {
    media: Option<PathBuf>,
    legacy_api: Option<PathBuf>,
    legacy_static: Option<PathBuf>,
}

/// A target as opening it found it: kept in the open-file cache for `media.open_cache_secs`, so
/// a file asked for again and again costs no path checks, manifest read or `open`, and no trip
/// to the `MediaActor`'s threads (nginx's `open_file_cache`); one `fstat` on the kept handle
/// still catches a file written in place. Access is checked on every request, against the
/// manifest kept here.
struct Opened {
    file: Arc<File>,
    len: u64,
    modified: SystemTime,
    validators: Validators,
    content_type: String,
    manifest: Option<Manifest>,
    legacy: bool,
    until: Instant,
}

/// What every `MediaActor` thread and every HTTP worker shares.
pub struct Media {
    roots: Roots,
    jwt_secret: Option<String>,
    registry: Arc<StreamRegistry>,
    /// `None` when `media.open_cache_secs` is 0.
    opened: Option<quick_cache::sync::Cache<Target, Arc<Opened>>>,
    open_valid: std::time::Duration,
}

pub struct MediaActor {
    media: Arc<Media>,
}

impl MediaActor {
    pub fn new(media: Arc<Media>) -> Self {
        Self { media }
    }
}

impl Media {
    pub fn new(
        config: &MediaConfig,
        jwt_secret: Option<String>,
        metrics: Arc<MediaMetrics>,
    ) -> Self {
        let canonical = |p: &Path, key: &str| match p.canonicalize() {
            Ok(c) => Some(c),
            Err(e) => {
                log::warn!(
                    "{key} {} is not usable ({e}): its media will answer 404",
                    p.display()
                );
                None
            }
        };
        if jwt_secret.is_none() {
            log::warn!(
                "no JWT secret (auth.jwt_secret / JWT_SECRET): private media will not be served"
            );
        }
        Self {
            roots: Roots {
                media: canonical(&config.root, "media.root"),
                legacy_api: canonical(&config.legacy_api_root, "media.legacy_api_root"),
                legacy_static: canonical(&config.legacy_static_root, "media.legacy_static_root"),
            },
            jwt_secret,
            registry: Arc::new(StreamRegistry::new(
                config.max_streams,
                config.max_streams_per_client,
                metrics,
            )),
            opened: (config.open_cache_secs > 0)
                .then(|| quick_cache::sync::Cache::new(config.open_cache_entries)),
            open_valid: std::time::Duration::from_secs(config.open_cache_secs),
        }
    }

    /// The answer to `msg` from the open-file cache, on the caller's thread, when the target was
    /// opened less than `media.open_cache_secs` ago; `None` sends it to the `MediaActor`. The
    /// first chunk is read only if the page cache holds it (never waiting for the disk).
    pub fn open_cached(&self, msg: &Open) -> Option<Result<MediaFile, MediaError>> {
        let opened = self.opened.as_ref()?.get(&msg.target)?;
        if opened.until <= Instant::now() {
            return None;
        }
        // A file written in place since: one `fstat` on the handle, no path walk, tells.
        let meta = opened.file.metadata().ok()?;
        if meta.len() != opened.len || meta.modified().ok()? != opened.modified {
            return None;
        }
        Some(self.answer(&opened, msg, |file, offset, n| {
            read_cached(file, offset, n).unwrap_or(Ok(Bytes::new()))
        }))
    }

    /// Checks access against the manifest, plans the answer to the request's conditions and
    /// reads the first chunk with `read`.
    fn answer(
        &self,
        opened: &Opened,
        msg: &Open,
        read: impl Fn(&File, u64, usize) -> std::io::Result<Bytes>,
    ) -> Result<MediaFile, MediaError> {
        let secret = self.jwt_secret.as_deref();
        access::check(opened.manifest.as_ref(), msg.token.as_deref(), secret)?;
        let plan = plan(&msg.conditions, opened.len, &opened.validators);
        let first = match &plan {
            Plan::Full => Some((0, opened.len)),
            Plan::Partial(ranges) => ranges.first().map(|r| (r.start, r.size())),
            _ => None,
        };
        let prefetched = match (first, msg.head) {
            (Some((offset, n)), false) => {
                read(&opened.file, offset, n.min(CHUNK) as usize).map_err(|_| MediaError::Io)?
            }
            _ => Bytes::new(),
        };
        Ok(MediaFile {
            file: opened.file.clone(),
            len: opened.len,
            validators: opened.validators.clone(),
            content_type: opened.content_type.clone(),
            private: opened.manifest.as_ref().is_some_and(|m| !m.is_public()),
            legacy: opened.legacy,
            plan,
            prefetched,
            registry: self.registry.clone(),
        })
    }
}

impl Actor for MediaActor {
    type Context = SyncContext<Self>;
}

impl Handler<Open> for MediaActor {
    type Result = Result<MediaFile, MediaError>;

    fn handle(&mut self, msg: Open, _: &mut Self::Context) -> Self::Result {
        open(&self.media, msg)
    }
}

impl Handler<ReadChunk> for MediaActor {
    type Result = MessageResult<ReadChunk>;

    fn handle(&mut self, msg: ReadChunk, _: &mut Self::Context) -> Self::Result {
        MessageResult(read_exact_at(&msg.file, msg.offset, msg.len))
    }
}

impl Handler<Info> for MediaActor {
    type Result = Result<Manifest, MediaError>;

    fn handle(&mut self, msg: Info, _: &mut Self::Context) -> Self::Result {
        let media = &*self.media;
        check_media_id(&msg.id)?;
        let root = media.roots.media.as_deref().ok_or(PathError::NotFound)?;
        let manifest = Manifest::read(root, &msg.id)?.ok_or(MediaError::NoManifest)?;
        access::check(
            Some(&manifest),
            msg.token.as_deref(),
            media.jwt_secret.as_deref(),
        )?;
        Ok(manifest)
    }
}

/// Opens `msg`'s target after every check, keeps it in the open-file cache, and answers.
fn open(media: &Media, msg: Open) -> Result<MediaFile, MediaError> {
    let (roots, secret) = (&media.roots, media.jwt_secret.as_deref());
    let (opened_at, manifest) = match &msg.target {
        Target::Media(id) => {
            check_media_id(id)?;
            let root = roots.media.as_deref().ok_or(PathError::NotFound)?;
            let manifest = Manifest::read(root, id)?;
            access::check(manifest.as_ref(), msg.token.as_deref(), secret)?;
            // Under its own folder: a link into another id's folder would serve that id's file
            // under this id's manifest.
            (open_under(&root.join(id), Path::new("original"))?, manifest)
        }
        Target::Legacy(folder, rel) => {
            check_relative_path(rel)?;
            let root = match folder {
                Folder::Api => &roots.legacy_api,
                Folder::Static => &roots.legacy_static,
            };
            let root = root.as_deref().ok_or(PathError::NotFound)?;
            (open_under(root, Path::new(rel))?, None)
        }
    };
    let (file, path) = opened_at;
    let meta = file.metadata().map_err(|_| MediaError::Io)?;
    let len = meta.len();
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let opened = Arc::new(Opened {
        file: Arc::new(file),
        len,
        modified,
        validators: Validators::new(len, modified),
        content_type: content_type(manifest.as_ref(), &path),
        manifest,
        legacy: matches!(msg.target, Target::Legacy(..)),
        until: Instant::now() + media.open_valid,
    });
    if let Some(cache) = &media.opened {
        cache.insert(msg.target.clone(), opened.clone());
    }
    media.answer(&opened, &msg, read_exact_at)
}
