//! Mapping request ids to files without ever leaving the media roots.
//!
//! Input is checked three times: syntactically (no `..`, separators, hidden names, NULs or
//! control characters ever reach the filesystem), then by canonicalising the final path and
//! requiring it to lie under the canonical root, which also refuses symlinks that point outside,
//! and last on what was actually opened: a path swapped for a symlink between the check and the
//! open (a race a client with write access to the folder can win) is caught by where the open
//! descriptor leads. Only regular files are served; anything else, and anything outside, reads
//! exactly like a missing file.

use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the media id must be one path segment of letters, digits, '.', '_' or '-'")]
    BadMediaId,
    #[error("the path must be relative, with segments that are not empty, '.', '..' or hidden")]
    BadPath,
    /// Missing, outside the root, or not a regular file: the client is told nothing more.
    #[error("no such media")]
    NotFound,
    /// The process has no descriptor left to open it with: a moment's trouble of the server's,
    /// never a reason to read a file (or a manifest) as missing.
    #[error("the server cannot open more files right now")]
    NoDescriptors,
    /// There, but not ours to serve: it leads outside the root, is not a regular file, or could
    /// not be opened (or checked once open). To the client, missing; to a manifest, private.
    #[error("no such media")]
    Unreadable,
}

const MAX_ID_LEN: usize = 255;
const MAX_PATH_LEN: usize = 1024;

/// `mediaId`: one segment of `[A-Za-z0-9._-]`, not hidden (so neither `.` nor `..`), as the
/// legacy paths' segments.
pub fn check_media_id(id: &str) -> Result<(), PathError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    ok.then_some(()).ok_or(PathError::BadMediaId)
}

/// A relative path for the legacy route: `/`-separated segments, none empty, `.`, `..` or
/// hidden, and no backslash, NUL or control character anywhere.
pub fn check_relative_path(path: &str) -> Result<(), PathError> {
    let ok = !path.is_empty()
        && path.len() <= MAX_PATH_LEN
        && !path.starts_with('/')
        && !path.chars().any(|c| c == '\\' || c.is_control())
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && !seg.starts_with('.'));
    ok.then_some(()).ok_or(PathError::BadPath)
}

/// Opens `root.join(rel)` (with `root` already canonical) for reading, only if it is a regular
/// file under `root`, and gives its path (for its name) with the open file.
pub fn open_under(root: &Path, rel: &Path) -> Result<(std::fs::File, PathBuf), PathError> {
    let path = resolve_under(root, rel)?;
    let file = open_beneath(root, &path)?;
    Ok((file, path))
}

/// Opens a checked `path` and accepts what was opened only if it lies under `root`: the
/// kernel's own name for the descriptor, not the path that was checked, decides.
fn open_beneath(root: &Path, path: &Path) -> Result<std::fs::File, PathError> {
    let file = open_regular(path)?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    let opened =
        std::fs::read_link(format!("/proc/self/fd/{fd}")).map_err(|_| PathError::Unreadable)?;
    if opened.starts_with(root) {
        Ok(file)
    } else {
        Err(PathError::Unreadable)
    }
}

/// Resolves `root.join(rel)` (with `root` already canonical) and accepts it only under `root`.
/// A path that does not exist, or leaves the root by a symlink, is `NotFound`.
///
/// `rel` was checked to hold plain segments only, so the joined path can leave the root only
/// through a symlink below it: each component is looked at with `lstat`, and only when one is a
/// link is the whole path canonicalised and compared. That is a few system calls per request
/// instead of one per component of the root's own path as well.
fn resolve_under(root: &Path, rel: &Path) -> Result<PathBuf, PathError> {
    let mut path = root.to_path_buf();
    for component in rel.components() {
        let Component::Normal(segment) = component else {
            return canonical_under(root, rel);
        };
        path.push(segment);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => return canonical_under(root, rel),
            Ok(_) => {}
            Err(_) => return Err(PathError::NotFound),
        }
    }
    Ok(path)
}

fn canonical_under(root: &Path, rel: &Path) -> Result<PathBuf, PathError> {
    // Whatever stops canonicalising (missing, not a directory, no permission) looks the same to
    // the client: there is nothing to serve, and the reason is the server's business.
    let real = root
        .join(rel)
        .canonicalize()
        .map_err(|_| PathError::NotFound)?;
    if real.starts_with(root) {
        Ok(real)
    } else {
        Err(PathError::Unreadable)
    }
}

/// Opens `path` for reading only if it is a regular file. The type is checked before the open,
/// and the open does not block either way: opening a FIFO for reading waits for a writer, and
/// would hold a media thread until one came.
fn open_regular(path: &Path) -> Result<std::fs::File, PathError> {
    use std::os::unix::fs::OpenOptionsExt;
    let regular = |meta: std::fs::Metadata| meta.is_file().then_some(());
    let meta = std::fs::metadata(path).map_err(|_| PathError::NotFound)?;
    regular(meta).ok_or(PathError::Unreadable)?;
    // Between the check and the open the path could be swapped for a FIFO: O_NONBLOCK makes that
    // open return at once, and the type is checked again on what was opened. On a regular file
    // the flag changes nothing.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| open_failure(&e))?;
    file.metadata()
        .ok()
        .and_then(regular)
        .ok_or(PathError::Unreadable)?;
    Ok(file)
}

/// Why an open failed, as far as the client is concerned.
fn open_failure(e: &std::io::Error) -> PathError {
    use rustix::io::Errno;
    match Errno::from_io_error(e) {
        Some(Errno::MFILE | Errno::NFILE) => PathError::NoDescriptors,
        _ => PathError::Unreadable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_ids() {
        for ok in ["abc", "a.b-c_d", "QmXyZ123", "a..b", "a."] {
            assert_eq!(check_media_id(ok), Ok(()), "{ok}");
        }
        let long = "a".repeat(256);
        for bad in [
            "",
            ".",
            "..",
            "..a",
            ".hidden",
            "a/b",
            "a\\b",
            "a b",
            "a%2F",
            "a\0",
            "é",
            long.as_str(),
        ] {
            assert_eq!(check_media_id(bad), Err(PathError::BadMediaId), "{bad:?}");
        }
    }

    #[test]
    fn relative_paths() {
        for ok in ["a.mp4", "videos/2026/a b.mp4", "x/y/z"] {
            assert_eq!(check_relative_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            ".env",
            "a/.git/config",
            "a\\..\\b",
            "a\0b",
            "a\nb",
            "..",
        ] {
            assert_eq!(check_relative_path(bad), Err(PathError::BadPath), "{bad:?}");
        }
    }

    #[test]
    fn an_open_that_fails_for_want_of_descriptors_says_so() {
        let emfile = std::io::Error::from_raw_os_error(rustix::io::Errno::MFILE.raw_os_error());
        assert_eq!(open_failure(&emfile), PathError::NoDescriptors);
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(open_failure(&denied), PathError::Unreadable);
    }

    #[test]
    fn only_regular_files_open_and_a_fifo_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        assert_eq!(open_regular(&fifo).err(), Some(PathError::Unreadable));
        assert_eq!(open_regular(dir.path()).err(), Some(PathError::Unreadable));
        assert_eq!(
            open_regular(Path::new("/dev/null")).err(),
            Some(PathError::Unreadable)
        );
        assert_eq!(
            open_regular(&dir.path().join("nope")).err(),
            Some(PathError::NotFound)
        );
        std::fs::write(dir.path().join("f"), "x").unwrap();
        assert!(open_regular(&dir.path().join("f")).is_ok());
    }

    #[test]
    fn symlinks_out_of_the_root_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        let root = tempfile::tempdir().unwrap();
        let root_path = root.path().canonicalize().unwrap();
        std::fs::write(root_path.join("inside"), "i").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root_path.join("link")).unwrap();
        std::os::unix::fs::symlink(root_path.join("inside"), root_path.join("ok-link")).unwrap();
        assert!(resolve_under(&root_path, Path::new("inside")).is_ok());
        assert!(resolve_under(&root_path, Path::new("ok-link")).is_ok());
        assert_eq!(
            resolve_under(&root_path, Path::new("link")),
            Err(PathError::Unreadable)
        );
        assert_eq!(
            resolve_under(&root_path, Path::new("nope")),
            Err(PathError::NotFound)
        );
        assert_eq!(
            resolve_under(&root_path, Path::new("inside/x")),
            Err(PathError::NotFound)
        );
        // A linked folder pointing inside is fine; one pointing out is not.
        std::os::unix::fs::symlink(outside.path(), root_path.join("dir-out")).unwrap();
        assert_eq!(
            resolve_under(&root_path, Path::new("dir-out/secret")),
            Err(PathError::Unreadable)
        );
        std::fs::create_dir(root_path.join("real")).unwrap();
        std::fs::write(root_path.join("real/f"), "f").unwrap();
        std::os::unix::fs::symlink(root_path.join("real"), root_path.join("dir-in")).unwrap();
        assert!(resolve_under(&root_path, Path::new("dir-in/f")).is_ok());
        assert!(open_under(&root_path, Path::new("dir-in/f")).is_ok());
        assert!(open_under(&root_path, Path::new("ok-link")).is_ok());
    }

    /// A file swapped for a symlink out of the root after the path was checked: what the open
    /// descriptor leads to is outside, so nothing is served.
    #[test]
    fn a_symlink_swapped_in_after_the_check_is_caught_on_the_descriptor() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        let root = tempfile::tempdir().unwrap();
        let root_path = root.path().canonicalize().unwrap();
        let checked = root_path.join("media.mp4");
        std::fs::write(&checked, "m").unwrap();
        assert_eq!(
            resolve_under(&root_path, Path::new("media.mp4")),
            Ok(checked.clone())
        );
        std::fs::remove_file(&checked).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), &checked).unwrap();
        assert!(
            open_regular(&checked).is_ok(),
            "the open itself follows the link"
        );
        let opened = open_beneath(&root_path, &checked);
        assert_eq!(opened.err(), Some(PathError::Unreadable));
    }
}
