//! What operators read: memory and its trend (`MemoryMonitor`, which never acts on its own: it
//! tells which shape it sees, and warns when a ramp would reach the critical threshold within a
//! day), health, the metrics every feature registers, and the status page.
//!
//! - `actor`: `MemoryMonitor`; `trend`: flat, sawtooth or ramp; `process`: RSS and heap now;
//! - `client`: `Monitor`, what the routes ask; `metrics`: the monitor's own series;
//! - `routes`: `/health*` and `/metrics`; `page`: `/` and `/status.json`.

mod actor;
mod client;
pub mod config;
mod metrics;
mod page;
mod process;
mod routes;
pub mod trend;

pub use actor::{MemoryMonitor, MemoryView, Readings, Watched};
pub use client::Monitor;
pub use page::configure as configure_page;
pub use process::{HeapReader, ProcessFigures};
pub use routes::configure;
