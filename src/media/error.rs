//! How serving media fails, and what a client is told of it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use actix_web::{http::StatusCode, HttpResponseBuilder};

use super::{access::AccessError, path::PathError};
use crate::error::coded::{bearer_challenge, retry_after, Coded};

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
    #[error("{0} media streams are open, the most this server serves at once: try again shortly")]
    TooManyStreams(usize),
    #[error("{0} media streams of yours are open, the most one client may have: try again once one ends")]
    TooManyStreamsForClient(usize),
    /// Carries the file's length, which the answer's `Content-Range` names.
    #[error("no part of the requested range lies within the file")]
    RangeNotSatisfiable(u64),
    #[error("the file has changed (If-Match)")]
    PreconditionFailed,
    /// The media threads are gone: the service is shutting down.
    #[error("the service is shutting down or overloaded")]
    Unavailable,
}

impl Coded for MediaError {
    fn status(&self) -> StatusCode {
        use StatusCode as S;
        match self {
            MediaError::Path(PathError::BadMediaId | PathError::BadPath) => S::BAD_REQUEST,
            MediaError::Path(PathError::NotFound | PathError::Unreadable)
            | MediaError::NoManifest => S::NOT_FOUND,
            MediaError::Path(PathError::NoDescriptors)
            | MediaError::TooManyStreams(_)
            | MediaError::Unavailable => S::SERVICE_UNAVAILABLE,
            MediaError::Access(AccessError::NoValidToken) => S::UNAUTHORIZED,
            MediaError::Access(AccessError::NotTheOwner | AccessError::NoSecret) => S::FORBIDDEN,
            MediaError::Io => S::INTERNAL_SERVER_ERROR,
            MediaError::TooManyStreamsForClient(_) => S::TOO_MANY_REQUESTS,
            MediaError::RangeNotSatisfiable(_) => S::RANGE_NOT_SATISFIABLE,
            MediaError::PreconditionFailed => S::PRECONDITION_FAILED,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            MediaError::Path(PathError::BadMediaId) => "invalid_media_id",
            MediaError::Path(PathError::BadPath) => "invalid_path",
            // A path that leaves the root is answered like one that does not exist: the client
            // learns nothing about what lies outside.
            MediaError::Path(PathError::NotFound | PathError::Unreadable) => "media_not_found",
            MediaError::Path(PathError::NoDescriptors) => "too_many_open_files",
            MediaError::Access(AccessError::NoValidToken) => "unauthorized",
            MediaError::Access(AccessError::NotTheOwner) => "forbidden",
            MediaError::Access(AccessError::NoSecret) => "private_media_disabled",
            MediaError::NoManifest => "manifest_not_found",
            MediaError::Io => "media_unreadable",
            MediaError::TooManyStreams(_) => "too_many_streams",
            MediaError::TooManyStreamsForClient(_) => "too_many_streams_for_client",
            MediaError::RangeNotSatisfiable(_) => "range_not_satisfiable",
            MediaError::PreconditionFailed => "precondition_failed",
            MediaError::Unavailable => "unavailable",
        }
    }

    fn headers(&self, res: &mut HttpResponseBuilder) {
        match self {
            MediaError::Access(AccessError::NoValidToken) => bearer_challenge(res),
            MediaError::TooManyStreams(_) | MediaError::TooManyStreamsForClient(_) => {
                retry_after(res, 5)
            }
            MediaError::Path(PathError::NoDescriptors) => {
                warn_once_a_minute(
                    &NO_DESCRIPTORS_LOGGED,
                    "the process has no file descriptor left: media answer 503 too_many_open_files (lower server.max_connections or media.max_streams, or raise ulimit -n)",
                );
                retry_after(res, 1);
            }
            MediaError::RangeNotSatisfiable(len) => {
                res.insert_header(("content-range", format!("bytes */{len}")));
            }
            _ => {}
        }
    }
}

/// When running out of descriptors was last logged: every request meets it while it lasts, and
/// the operator needs one line a minute, not thousands.
static NO_DESCRIPTORS_LOGGED: AtomicU64 = AtomicU64::new(0);

fn warn_once_a_minute(last: &AtomicU64, message: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let before = last.load(Relaxed);
    if now >= before + 60 && last.compare_exchange(before, now, Relaxed, Relaxed).is_ok() {
        log::warn!("{message}");
    }
}
