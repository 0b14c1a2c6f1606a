//! Media: files by id (`media.root/<id>/original`, with its manifest's access rules) and by
//! the old service's paths (`media.legacy_api_root`, `media.legacy_static_root`), streamed with byte ranges.
//!
//! - `actor`: `MediaActor`, which opens files on threads of its own, and `Media`, what its
//!   threads and the HTTP workers share (roots, secret, open-file cache);
//! - `path`, `manifest`, `access`: what may be opened, what it is, who may read it;
//! - `range`: RFC 9110 ranges and conditional requests, planned before a byte is read;
//! - `stream`, `read`, `registry`: the body, its reads, and the open streams it reports to;
//! - `client`: what the routes ask of the feature; `routes`: the media URLs, old ones included.

pub mod access;
mod actor;
mod client;
pub mod config;
mod error;
pub mod manifest;
mod metrics;
pub mod path;
pub mod range;
mod read;
mod registry;
mod routes;
pub mod stream;

pub use actor::{Info, Media, MediaActor, MediaFile, Open, ReadChunk, Target};
pub use client::Client;
pub use error::MediaError;
pub use metrics::{MediaMetrics, StreamOutcome};
pub use routes::configure;
