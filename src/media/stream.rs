//! The body of a media response. It reads the file a small chunk at a time and holds nothing
//! beyond the chunk the connection is sending, so a client that stops reading (a paused player)
//! pins one chunk and the connection's write buffer, whatever the file's size. It reports to
//! the `MediaActor` when it is dropped — whether the client read everything, went away, or the
//! file failed — so the handle and its buffer are released the moment the connection is done
//! with them.
//!
//! Small chunks would cost a trip to the reader threads each; instead a chunk that is in the
//! page cache (the common case for media served again and again) is read right here, with
//! `RWF_NOWAIT` so the read can never wait for the disk. Only a chunk the kernel would have to
//! fetch from disk goes to the `MediaActor`'s threads.

use std::{
    collections::VecDeque,
    fs::File,
    future::Future,
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    task::{Context, Poll},
};

use bytes::Bytes;
use futures::Stream;

use actix::Addr;

use super::{
    actor::{MediaActor, ReadChunk},
    error::MediaError,
    metrics::StreamOutcome,
    read::{read_cached, CHUNK},
    registry::StreamRegistry,
};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One piece of the body: literal bytes (multipart headers, a prefetched chunk) or a span of
/// the file.
pub enum Part {
    Bytes(Bytes),
    File { offset: u64, len: u64 },
}

impl Part {
    pub fn size(&self) -> u64 {
        match self {
            Part::Bytes(b) => b.len() as u64,
            Part::File { len, .. } => *len,
        }
    }
}

type Read = Pin<Box<dyn Future<Output = Result<io::Result<Bytes>, actix::MailboxError>>>>;

pub struct FileStream {
    id: u64,
    /// Shared with the open-file cache and other streams of the same file: reads are
    /// positional, so they never disturb each other. Dropped when the stream ends.
    file: Option<Arc<File>>,
    parts: VecDeque<Part>,
    reading: Option<Read>,
    sent: u64,
    total: u64,
    failed: bool,
    registry: Arc<StreamRegistry>,
    reader: Addr<MediaActor>,
}

impl FileStream {
    /// A stream over `parts` of `file` for `client`, unless the registry has as many open as it
    /// allows (theirs, or all).
    pub fn new(
        file: Arc<File>,
        parts: Vec<Part>,
        registry: Arc<StreamRegistry>,
        reader: Addr<MediaActor>,
        client: std::net::IpAddr,
    ) -> Result<Self, MediaError> {
        let total = parts.iter().map(Part::size).sum();
        let id = NEXT_ID.fetch_add(1, Relaxed);
        registry.admit(id, client)?;
        Ok(Self {
            id,
            file: Some(file),
            parts: parts.into(),
            reading: None,
            sent: 0,
            total,
            failed: false,
            registry,
            reader,
        })
    }

    /// The exact length of the body, for `Content-Length`.
    pub fn content_length(&self) -> u64 {
        self.total
    }

    fn yielded(&mut self, bytes: Bytes) -> Poll<Option<Result<Bytes, io::Error>>> {
        self.sent += bytes.len() as u64;
        self.registry.sent(bytes.len() as u64);
        Poll::Ready(Some(Ok(bytes)))
    }

    fn fail(&mut self, e: io::Error) -> Poll<Option<Result<Bytes, io::Error>>> {
        self.failed = true;
        self.parts.clear();
        self.file = None;
        log::warn!("media stream {} failed: {e}", self.id);
        Poll::Ready(Some(Err(e)))
    }
}

impl Stream for FileStream {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(reading) = this.reading.as_mut() {
            let done = match reading.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(done) => done,
            };
            this.reading = None;
            return match done {
                Ok(Ok(bytes)) => this.yielded(bytes),
                Ok(Err(e)) => this.fail(e),
                Err(_) => this.fail(io::Error::other("the file read was cancelled")),
            };
        }
        match this.parts.pop_front() {
            None => {
                this.file = None;
                Poll::Ready(None)
            }
            Some(Part::Bytes(bytes)) => this.yielded(bytes),
            Some(Part::File { offset, len }) => {
                let Some(file) = this.file.clone() else {
                    return this.fail(io::Error::other("the file is already closed"));
                };
                let n = len.min(CHUNK);
                let cached = read_cached(&file, offset, n as usize);
                let got = match &cached {
                    Some(Ok(bytes)) => bytes.len() as u64,
                    _ => n,
                };
                if len > got {
                    this.parts.push_front(Part::File {
                        offset: offset + got,
                        len: len - got,
                    });
                }
                match cached {
                    Some(Ok(bytes)) => this.yielded(bytes),
                    Some(Err(e)) => this.fail(e),
                    None => {
                        this.reading = Some(Box::pin(this.reader.send(ReadChunk {
                            file,
                            offset,
                            len: n as usize,
                        })));
                        self.poll_next(cx)
                    }
                }
            }
        }
    }
}

impl Drop for FileStream {
    fn drop(&mut self) {
        let outcome = if self.failed {
            StreamOutcome::Error
        } else if self.sent == self.total {
            StreamOutcome::Complete
        } else {
            StreamOutcome::Aborted
        };
        self.registry.ended(self.id, outcome, self.sent);
    }
}
