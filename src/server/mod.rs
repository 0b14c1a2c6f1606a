//! The HTTP server: actix-web's application on actix-server, with two things `HttpServer` does not
//! offer.
//!
//! - **Every connection in a `Guard`** (`guard.rs`): a write pending longer than
//!   `media.stall_timeout_secs` fails (a paused player, a stuck proxy: the dispatcher then drops
//!   the connection and its body, which closes the file and frees its buffer); and no more than
//!   `server.max_pipelined` requests are read ahead of the one being answered (`framer.rs`
//!   counts requests in the bytes).
//! - **Signals.** SIGTERM or SIGINT stops accepting and lets in-flight requests and streams finish
//!   for up to `server.shutdown_timeout_secs`; a second signal exits at once.

use std::{
    io,
    net::{SocketAddr, TcpListener},
    time::Duration,
};

use actix_http::{HttpService, KeepAlive};
use actix_server::{Server, ServerBuilder, ServerHandle};
use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_web::{
    body::MessageBody,
    dev::{AppConfig, ServiceFactory, ServiceRequest, ServiceResponse},
    rt::{
        net::TcpStream,
        signal::unix::{signal, SignalKind},
    },
    App, Error,
};
use futures::{channel::oneshot, future::Shared, FutureExt};

use crate::config::Config;

pub mod config;
pub mod descriptors;
mod framer;
mod guard;

pub use guard::{Guard, Pipeline};

/// See `h1_write_buffer_size` below.
const WRITE_BUFFER_BYTES: usize = 1024;

pub struct Settings {
    pub workers: usize,
    pub shutdown_timeout: Duration,
    pub stall_timeout: Duration,
    pub keep_alive: Duration,
    pub request_head_timeout: Duration,
    pub max_connections: usize,
    pub max_pipelined: usize,
    /// Off in the in-process tests: the test process keeps its own signals.
    pub handle_signals: bool,
}

impl Settings {
    pub fn new(config: &Config) -> Self {
        Self {
            workers: config.server.workers,
            shutdown_timeout: Duration::from_secs(config.server.shutdown_timeout_secs),
            stall_timeout: Duration::from_secs(config.media.stall_timeout_secs),
            keep_alive: Duration::from_secs(config.server.keep_alive_secs),
            request_head_timeout: Duration::from_millis(config.server.request_head_timeout_ms),
            max_connections: config.server.max_connections,
            max_pipelined: config.server.max_pipelined,
            handle_signals: true,
        }
    }
}

/// A bound, running server.
pub struct Running {
    pub addr: SocketAddr,
    pub server: Server,
}

/// Serves the apps `factory` builds (one per worker) on `listener`.
pub fn start<F, T, B>(listener: TcpListener, settings: Settings, factory: F) -> io::Result<Running>
where
    F: Fn() -> App<T> + Send + Clone + 'static,
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    let local = listener.local_addr()?;
    // Idle keep-alive connections close when shutdown begins, so they do not hold it up.
    let (stopping_tx, stopping_rx) = oneshot::channel::<()>();
    let stopping: Shared<oneshot::Receiver<()>> = stopping_rx.shared();
    let stall = settings.stall_timeout;
    let max_pipelined = settings.max_pipelined;
    let server = server_builder(&settings)
        .listen("oip-resolver", listener, move || {
            let stopping = stopping.clone();
            let h1 = HttpService::build()
                .keep_alive(KeepAlive::Timeout(settings.keep_alive))
                .client_request_timeout(settings.request_head_timeout)
                // The body is asked for more only once the connection has written out what it
                // holds: a client that stops reading pins one body chunk, not a chunk on top of
                // a 32 KB buffer.
                .h1_write_buffer_size(WRITE_BUFFER_BYTES)
                // The requests of a connection carry its `Pipeline`: the application says
                // there when it takes one (`http::observe`).
                .on_connect_ext(|io: &Guard, data: &mut actix_http::Extensions| {
                    data.insert(io.pipeline());
                })
                .local_addr(local)
                .graceful_shutdown_signal(move || until_sent(stopping.clone()))
                // actix-web keeps the constructor that takes the real address crate-private;
                // the app only uses it for `ConnectionInfo` of requests without a Host header,
                // which nothing here reads, so the public default serves.
                .h1(map_config(factory().into_factory(), |_| {
                    AppConfig::default()
                }));
            fn_service(move |io| accept(io, stall, max_pipelined)).and_then(h1)
        })?
        .run();
    if settings.handle_signals {
        actix_web::rt::spawn(handle_signals(
            server.handle(),
            stopping_tx,
            settings.shutdown_timeout,
        ));
    }
    Ok(Running {
        addr: local,
        server,
    })
}

/// Each connection in its `Guard`, with its peer's address for the app.
async fn accept(
    io: TcpStream,
    stall: Duration,
    max_pipelined: usize,
) -> Result<(Guard, Option<SocketAddr>), actix_http::error::DispatchError> {
    let peer = io.peer_addr().ok();
    let _ = io.set_nodelay(true);
    Ok((Guard::new(io, stall, max_pipelined), peer))
}

/// actix-server with the service's worker count and connection bound (counted per worker),
/// and no signal handling of its own.
fn server_builder(settings: &Settings) -> ServerBuilder {
    let workers = match settings.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    Server::build()
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        .disable_signals()
        .workers(workers)
        .max_concurrent_connections(settings.max_connections.div_ceil(workers))
}

/// Resolves when shutdown was signalled. Only a sent signal means shutdown: a dropped sender (no
/// signal handling, as in the in-process tests) must not close every connection at once.
async fn until_sent(stopping: Shared<oneshot::Receiver<()>>) {
    if stopping.await.is_err() {
        futures::future::pending::<()>().await;
    }
}

async fn handle_signals(server: ServerHandle, stopping: oneshot::Sender<()>, grace: Duration) {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        log::error!("cannot listen for SIGTERM/SIGINT: stop the service with SIGKILL");
        return;
    };
    let name = first_signal(&mut term, &mut int).await;
    log::info!(
        "{name} received: no new connections; in-flight requests and streams have {}s to finish (send it again to exit now)",
        grace.as_secs()
    );
    let _ = stopping.send(());
    actix_web::rt::spawn(server.stop(true));
    let again = first_signal(&mut term, &mut int).await;
    log::warn!("{again} received again: exiting now");
    std::process::exit(1);
}

/// Waits for whichever signal comes first and names it.
async fn first_signal(
    term: &mut actix_web::rt::signal::unix::Signal,
    int: &mut actix_web::rt::signal::unix::Signal,
) -> &'static str {
    let term = Box::pin(term.recv());
    let int = Box::pin(int.recv());
    match futures::future::select(term, int).await {
        futures::future::Either::Left(_) => "SIGTERM",
        futures::future::Either::Right(_) => "SIGINT",
    }
}
