//! `MediaActor`: maps media ids and legacy paths to files without leaving the media roots,
//! applies the manifests' access rules, and keeps the registry of open streams, which hears back
//! from every body when it is dropped.
//!
//! Opening and reading files touch the disk, so `MediaActor` runs on a small, fixed pool of
//! threads of its own (a `SyncArbiter`) and does that work in place: one hop from the HTTP worker
//! and back, where an async actor would add a trip through the blocking pool, and no thread is
//! ever spawned per request (spawned threads, each with its own malloc arena, made resident
//! memory drift in the soak). Its instances share one `Media`: the roots, the JWT secret and the
//! stream registry.

pub mod access;
pub mod path;
pub mod range;
pub mod stream;

use std::{
    collections::HashMap,
    fs::File,
    path::{Path, PathBuf},
    sync::{atomic::Ordering::Relaxed, Arc, Mutex},
    time::{Instant, SystemTime},
};

use actix::prelude::*;
use bytes::Bytes;
use serde_json::Value;

use self::{
    access::AccessError,
    path::{check_media_id, check_relative_path, resolve_under, PathError},
    range::{plan, Conditions, Plan, Validators},
};
use crate::{
    config::MediaConfig,
    metrics::{Metrics, StreamOutcome},
};

/// A manifest is a few hundred bytes; one far larger is not a manifest.
const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("this media has no manifest")]
    NoManifest,
    #[error("the media could not be read")]
    Io,
}

/// What a request names.
#[derive(Debug, Clone)]
pub enum Target {
    /// `/api/media/{mediaId}`: `media.root/<mediaId>/original`.
    Media(String),
    /// `/media?id=<relative path>`: a file under `media.legacy_root`.
    Legacy(String),
}

/// An open file and how to answer with it.
pub struct MediaFile {
    pub file: File,
    pub len: u64,
    pub validators: Validators,
    pub content_type: String,
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
#[rtype(result = "Result<Value, MediaError>")]
pub struct Info {
    pub id: String,
    pub token: Option<String>,
}

/// Read `len` bytes at `offset`. The file travels with the message and comes back with the
/// bytes, so a stream dropped mid-read still closes it, on this side.
#[derive(Message)]
#[rtype(result = "(File, std::io::Result<Bytes>)")]
pub struct ReadChunk {
    pub file: File,
    pub offset: u64,
    pub len: usize,
}

/// Every open stream, shared by the actor's threads and told by each body when it ends.
pub struct StreamRegistry {
    open: Mutex<HashMap<u64, Instant>>,
    metrics: Arc<Metrics>,
}

impl StreamRegistry {
    pub fn started(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.insert(id, Instant::now());
        self.metrics
            .media_active_streams
            .store(open.len() as u64, Relaxed);
    }

    /// Body bytes handed to the client.
    pub fn sent(&self, bytes: u64) {
        self.metrics.media_bytes_sent.fetch_add(bytes, Relaxed);
    }

    pub fn ended(&self, id: u64, outcome: StreamOutcome, bytes: u64) {
        let started = {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let started = open.remove(&id);
            self.metrics
                .media_active_streams
                .store(open.len() as u64, Relaxed);
            started
        };
        self.metrics.stream_ended(outcome);
        log::debug!(
            "media stream {id} ended {outcome:?} after {bytes} bytes in {:?}",
            started.map(|s| s.elapsed())
        );
    }
}

/// Canonical roots; `None` when the folder does not exist (every request is then a 404).
#[derive(Debug, Clone)]
struct Roots {
    media: Option<PathBuf>,
    legacy: Option<PathBuf>,
}

/// What every `MediaActor` thread shares.
pub struct Media {
    roots: Roots,
    jwt_secret: Option<String>,
    registry: Arc<StreamRegistry>,
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
    pub fn new(config: &MediaConfig, jwt_secret: Option<String>, metrics: Arc<Metrics>) -> Self {
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
                legacy: canonical(&config.legacy_root, "media.legacy_root"),
            },
            jwt_secret,
            registry: Arc::new(StreamRegistry {
                open: Mutex::new(HashMap::new()),
                metrics,
            }),
        }
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
        let bytes = stream::read_exact_at(&msg.file, msg.offset, msg.len);
        MessageResult((msg.file, bytes))
    }
}

impl Handler<Info> for MediaActor {
    type Result = Result<Value, MediaError>;

    fn handle(&mut self, msg: Info, _: &mut Self::Context) -> Self::Result {
        let media = &*self.media;
        check_media_id(&msg.id)?;
        let root = media.roots.media.as_deref().ok_or(PathError::NotFound)?;
        let manifest = read_manifest(root, &msg.id)?.ok_or(MediaError::NoManifest)?;
        access::check(
            Some(&manifest),
            msg.token.as_deref(),
            media.jwt_secret.as_deref(),
        )?;
        Ok(manifest)
    }
}

fn open(media: &Media, msg: Open) -> Result<MediaFile, MediaError> {
    let (roots, secret) = (&media.roots, media.jwt_secret.as_deref());
    let (path, manifest) = match msg.target {
        Target::Media(id) => {
            check_media_id(&id)?;
            let root = roots.media.as_deref().ok_or(PathError::NotFound)?;
            let manifest = read_manifest(root, &id)?;
            access::check(manifest.as_ref(), msg.token.as_deref(), secret)?;
            (
                resolve_under(root, &Path::new(&id).join("original"))?,
                manifest,
            )
        }
        Target::Legacy(rel) => {
            check_relative_path(&rel)?;
            let root = roots.legacy.as_deref().ok_or(PathError::NotFound)?;
            (resolve_under(root, Path::new(&rel))?, None)
        }
    };
    let file = File::open(&path).map_err(|_| PathError::NotFound)?;
    let meta = file.metadata().map_err(|_| MediaError::Io)?;
    if !meta.is_file() {
        return Err(PathError::NotFound.into());
    }
    let len = meta.len();
    let validators = Validators::new(len, meta.modified().unwrap_or(SystemTime::UNIX_EPOCH));
    let plan = plan(&msg.conditions, len, &validators);
    let first = match &plan {
        Plan::Full => Some((0, len)),
        Plan::Partial(ranges) => ranges.first().map(|r| (r.start, r.size())),
        _ => None,
    };
    let prefetched = match (first, msg.head) {
        (Some((offset, n)), false) => {
            stream::read_exact_at(&file, offset, n.min(stream::CHUNK) as usize)
                .map_err(|_| MediaError::Io)?
        }
        _ => Bytes::new(),
    };
    Ok(MediaFile {
        len,
        validators,
        content_type: content_type(manifest.as_ref(), &path),
        file,
        plan,
        prefetched,
        registry: media.registry.clone(),
    })
}

/// `None` when there is no manifest. One that cannot be read as a JSON object is treated as a
/// manifest without `accessLevel`: private, and so served to no one, rather than public by
/// accident.
fn read_manifest(root: &Path, id: &str) -> Result<Option<Value>, MediaError> {
    let path = match resolve_under(root, &Path::new(id).join("manifest.json")) {
        Ok(path) => path,
        Err(PathError::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let parsed = std::fs::metadata(&path)
        .ok()
        .filter(|m| m.is_file() && m.len() <= MAX_MANIFEST_BYTES)
        .and_then(|_| std::fs::read(&path).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .filter(Value::is_object);
    Ok(Some(parsed.unwrap_or_else(|| {
        log::warn!(
            "media {id}: manifest.json is not a readable JSON object; treating it as private"
        );
        serde_json::json!({})
    })))
}

/// The manifest's `mimeType`, else the extension of its `originalName`, else of the file's own
/// name, else `application/octet-stream`.
pub fn content_type(manifest: Option<&Value>, path: &Path) -> String {
    let field = |k: &str| manifest.and_then(|m| m.get(k)).and_then(Value::as_str);
    if let Some(mime) = field("mimeType").filter(|m| is_mime(m)) {
        return mime.to_string();
    }
    let by_ext = |name: &str| {
        Path::new(name)
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| actix_files::file_extension_to_mime(e).to_string())
            .filter(|m| m != "application/octet-stream")
    };
    field("originalName")
        .and_then(by_ext)
        .or_else(|| path.file_name().and_then(|n| n.to_str()).and_then(by_ext))
        .unwrap_or_else(|| "application/octet-stream".to_string())
}

fn is_mime(m: &str) -> bool {
    m.len() <= 127
        && m.split_once('/')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
        && m.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_type_precedence() {
        let p = Path::new("/m/x/original");
        assert_eq!(
            content_type(
                Some(&json!({"mimeType": "video/webm", "originalName": "a.mp4"})),
                p
            ),
            "video/webm"
        );
        assert_eq!(
            content_type(Some(&json!({"originalName": "clip.mp4"})), p),
            "video/mp4"
        );
        assert_eq!(
            content_type(
                Some(&json!({"mimeType": "nonsense"})),
                Path::new("/w/a.png")
            ),
            "image/png"
        );
        assert_eq!(content_type(None, p), "application/octet-stream");
        assert_eq!(
            content_type(Some(&json!({"mimeType": "text/html\r\nX-Evil: 1"})), p),
            "application/octet-stream"
        );
    }
}
