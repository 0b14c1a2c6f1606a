//! `Guard`: every connection's socket, as actix-http sees it.
//!
//! - **Stalls.** A write pending longer than the stall timeout fails.
//! - **Pipelining.** actix-http parses every request whose bytes it holds and queues them all: a
//!   client pipelining 5,000 requests on each of 40 connections made it hold 200,000 parsed
//!   requests (995 MB). Here the bytes a client sends wait in the socket until they are wanted:
//!   a request is handed over only while fewer than `max_pipelined` wait for the application
//!   (counted by `Framer` coming in, and by `Pipeline::taken` as the application takes each).
//!   Answers need no bound of their own: actix-http takes no request off its queue while its
//!   write buffer waits for a client that does not read.

use std::{
    cell::{Cell, RefCell},
    future::Future,
    io,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll, Waker},
    time::Duration,
};

use actix_codec::{AsyncRead, AsyncWrite, ReadBuf};
use actix_web::rt::{
    net::TcpStream,
    time::{sleep, Sleep},
};
use bytes::{Buf, BytesMut};

use super::framer::Framer;

/// What one read from the socket takes at most: requests wait in the socket, not here.
const READ_BYTES: usize = 16 * 1024;

/// What a connection and the requests read from it share: how many the application took, and
/// the reader to wake when that frees a slot. The application finds it in the request's
/// connection data.
#[derive(Default)]
pub struct Pipeline {
    taken: Cell<u64>,
    parked: RefCell<Option<Waker>>,
}

impl Pipeline {
    /// The application took one request: one more may be read.
    pub fn taken(&self) {
        self.taken.set(self.taken.get() + 1);
        if let Some(waker) = self.parked.borrow_mut().take() {
            waker.wake();
        }
    }
}

pub struct Guard {
    io: TcpStream,
    stall_limit: Duration,
    /// Armed when a write first finds the socket full; cleared by any progress.
    stalled: Option<Pin<Box<Sleep>>>,
    max_pipelined: u64,
    framer: Framer,
    /// Read from the socket, not handed over yet.
    pending: BytesMut,
    pipeline: Rc<Pipeline>,
}

impl Guard {
    pub fn new(io: TcpStream, stall_limit: Duration, max_pipelined: usize) -> Self {
        Self {
            io,
            stall_limit,
            stalled: None,
            max_pipelined: max_pipelined as u64,
            framer: Framer::default(),
            pending: BytesMut::with_capacity(READ_BYTES),
            pipeline: Rc::default(),
        }
    }

    /// What the requests of this connection carry, for the application to say it took one.
    pub fn pipeline(&self) -> Rc<Pipeline> {
        self.pipeline.clone()
    }

    fn track<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let limit = self.stall_limit;
                let timer = self.stalled.get_or_insert_with(|| Box::pin(sleep(limit)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client stopped reading",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    /// Waits for a slot: the application taking a request wakes it.
    fn park(&self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        *self.pipeline.parked.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncRead for Guard {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.pending.is_empty() {
            // Empty, so this keeps the buffer it had: one read takes at most `READ_BYTES`.
            this.pending.reserve(READ_BYTES);
            let n = futures::ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut this.io),
                cx,
                &mut this.pending
            ))?;
            if n == 0 {
                return Poll::Ready(Ok(()));
            }
        }
        let waiting = this.framer.heads() - this.pipeline.taken.get();
        let slots = this.max_pipelined.saturating_sub(waiting);
        let offered = this.pending.len().min(buf.remaining());
        let taken = this.framer.feed(&this.pending[..offered], slots);
        if taken == 0 {
            return this.park(cx);
        }
        buf.put_slice(&this.pending[..taken]);
        this.pending.advance(taken);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Guard {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.track(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.track(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_flush(cx);
        self.track(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
