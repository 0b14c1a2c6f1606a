//! `MediaActor`: maps media ids and legacy paths to files without leaving the media roots,
//! applies the manifests' access rules, and keeps the registry of open streams, which hear back
//! from every body when it is dropped.

pub mod access;
pub mod path;
pub mod range;
pub mod stream;

use std::{
    collections::HashMap,
    fs::File,
    path::{Path, PathBuf},
    sync::{atomic::Ordering::Relaxed, Arc},
    time::SystemTime,
};

use actix::prelude::*;
use serde_json::Value;

use self::{
    access::AccessError,
    path::{check_media_id, check_relative_path, resolve_under, PathError},
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

/// An open file, ready to be answered with.
#[derive(Debug)]
pub struct MediaFile {
    pub file: File,
    pub len: u64,
    pub modified: SystemTime,
    pub content_type: String,
}

/// Open a file for reading, after every check.
#[derive(Message)]
#[rtype(result = "Result<MediaFile, MediaError>")]
pub struct Open {
    pub target: Target,
    pub token: Option<String>,
}

/// The manifest of `mediaId`, under the same access rules as the file.
#[derive(Message)]
#[rtype(result = "Result<Value, MediaError>")]
pub struct Info {
    pub id: String,
    pub token: Option<String>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct StreamStarted {
    pub id: u64,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct StreamEnded {
    pub id: u64,
    pub outcome: StreamOutcome,
    pub bytes: u64,
}

/// Canonical roots; `None` when the folder does not exist (every request is then a 404).
#[derive(Debug, Clone)]
struct Roots {
    media: Option<PathBuf>,
    legacy: Option<PathBuf>,
}

pub struct MediaActor {
    roots: Arc<Roots>,
    jwt_secret: Option<String>,
    /// Open streams: id and when each started. Entries leave when their body is dropped.
    streams: HashMap<u64, std::time::Instant>,
    metrics: Arc<Metrics>,
}

impl MediaActor {
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
            roots: Arc::new(Roots {
                media: canonical(&config.root, "media.root"),
                legacy: canonical(&config.legacy_root, "media.legacy_root"),
            }),
            jwt_secret,
            streams: HashMap::new(),
            metrics,
        }
    }
}

impl Actor for MediaActor {
    type Context = Context<Self>;
}

impl Handler<Open> for MediaActor {
    type Result = ResponseFuture<Result<MediaFile, MediaError>>;

    fn handle(&mut self, msg: Open, _: &mut Self::Context) -> Self::Result {
        let roots = self.roots.clone();
        let secret = self.jwt_secret.clone();
        // Canonicalising, reading the manifest and opening touch the disk: off the actor thread.
        Box::pin(async move {
            actix_web::web::block(move || open(&roots, msg, secret.as_deref()))
                .await
                .map_err(|_| MediaError::Io)?
        })
    }
}

impl Handler<Info> for MediaActor {
    type Result = ResponseFuture<Result<Value, MediaError>>;

    fn handle(&mut self, msg: Info, _: &mut Self::Context) -> Self::Result {
        let roots = self.roots.clone();
        let secret = self.jwt_secret.clone();
        Box::pin(async move {
            actix_web::web::block(move || {
                let root = roots.media.as_deref().ok_or(PathError::NotFound)?;
                check_media_id(&msg.id)?;
                let manifest = read_manifest(root, &msg.id)?.ok_or(MediaError::NoManifest)?;
                access::check(Some(&manifest), msg.token.as_deref(), secret.as_deref())?;
                Ok(manifest)
            })
            .await
            .map_err(|_| MediaError::Io)?
        })
    }
}

impl Handler<StreamStarted> for MediaActor {
    type Result = ();

    fn handle(&mut self, msg: StreamStarted, _: &mut Self::Context) {
        self.streams.insert(msg.id, std::time::Instant::now());
        self.metrics
            .media_active_streams
            .store(self.streams.len() as u64, Relaxed);
    }
}

impl Handler<StreamEnded> for MediaActor {
    type Result = ();

    fn handle(&mut self, msg: StreamEnded, _: &mut Self::Context) {
        let started = self.streams.remove(&msg.id);
        self.metrics
            .media_active_streams
            .store(self.streams.len() as u64, Relaxed);
        self.metrics.stream_ended(msg.outcome);
        log::debug!(
            "media stream {} ended {:?} after {} bytes in {:?}",
            msg.id,
            msg.outcome,
            msg.bytes,
            started.map(|s| s.elapsed())
        );
    }
}

fn open(roots: &Roots, msg: Open, secret: Option<&str>) -> Result<MediaFile, MediaError> {
    match msg.target {
        Target::Media(id) => {
            let root = roots.media.as_deref().ok_or(PathError::NotFound)?;
            check_media_id(&id)?;
            let manifest = read_manifest(root, &id)?;
            access::check(manifest.as_ref(), msg.token.as_deref(), secret)?;
            let path = resolve_under(root, &Path::new(&id).join("original"))?;
            open_file(&path, manifest.as_ref())
        }
        Target::Legacy(rel) => {
            let root = roots.legacy.as_deref().ok_or(PathError::NotFound)?;
            check_relative_path(&rel)?;
            let path = resolve_under(root, Path::new(&rel))?;
            open_file(&path, None)
        }
    }
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

fn open_file(path: &Path, manifest: Option<&Value>) -> Result<MediaFile, MediaError> {
    let file = File::open(path).map_err(|_| PathError::NotFound)?;
    let meta = file.metadata().map_err(|_| MediaError::Io)?;
    if !meta.is_file() {
        return Err(PathError::NotFound.into());
    }
    Ok(MediaFile {
        len: meta.len(),
        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        content_type: content_type(manifest, path),
        file,
    })
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
