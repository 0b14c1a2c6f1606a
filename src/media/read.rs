//! Reading a media file: a chunk from the page cache without ever waiting for the disk, or
//! exactly a span, on a thread that may wait.

use std::{fs::File, io, os::unix::fs::FileExt};

use bytes::{Bytes, BytesMut};

/// What a stalled stream can pin besides the connection's write buffer: the body yields one
/// chunk and reads the next only when the connection has taken it.
pub const CHUNK: u64 = 32 * 1024;

/// Up to `n` bytes at `offset` if the page cache holds them, without ever waiting for the disk:
/// `None` when the kernel would have to read from disk (or cannot tell), and the caller reads
/// on a thread that may block.
pub fn read_cached(file: &File, offset: u64, n: usize) -> Option<io::Result<Bytes>> {
    let mut buf = BytesMut::zeroed(n);
    let read = rustix::io::preadv2(
        file,
        &mut [io::IoSliceMut::new(&mut buf)],
        offset,
        rustix::io::ReadWriteFlags::NOWAIT,
    );
    nowait_outcome(read.map_err(io::Error::from), buf)
}

/// What a read that must not wait for the disk said: bytes, or `None` for "read it on a thread
/// that may wait". Zero bytes is `None` too: a `RWF_NOWAIT` read may answer 0 for pages it
/// cannot hand over without waiting, and taking that for the end of the file ended a body
/// early (982,489 bytes of 1,000,000, under load). Only a read that may wait tells the end.
fn nowait_outcome(read: io::Result<usize>, mut buf: BytesMut) -> Option<io::Result<Bytes>> {
    match read {
        Ok(0) | Err(_) => None,
        Ok(k) => {
            buf.truncate(k);
            Some(Ok(buf.freeze()))
        }
    }
}

pub fn read_exact_at(file: &File, offset: u64, n: usize) -> io::Result<Bytes> {
    let mut buf = BytesMut::zeroed(n);
    let mut filled = 0;
    while filled < n {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file got shorter while it was being sent",
                ))
            }
            Ok(k) => filled += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_must_not_wait_never_tells_the_end_of_the_file() {
        let buf = || BytesMut::zeroed(8);
        assert!(
            nowait_outcome(Ok(0), buf()).is_none(),
            "0 bytes: read it again, waiting"
        );
        let would_block = io::Error::from(io::ErrorKind::WouldBlock);
        assert!(nowait_outcome(Err(would_block), buf()).is_none());
        let some = nowait_outcome(Ok(3), buf()).unwrap().unwrap();
        assert_eq!(some.len(), 3);
    }

    #[test]
    fn only_a_read_that_may_wait_tells_a_file_got_shorter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let file = File::open(&path).unwrap();
        assert!(
            read_cached(&file, 3, 10).is_none(),
            "at the end: not for this read to say"
        );
        let err = read_exact_at(&file, 2, 10).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
