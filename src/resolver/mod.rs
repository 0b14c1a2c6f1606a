//! `Resolver`: a record together with the records it references, to a chosen depth.
//!
//! Resolution runs in two phases. **Gather** (`walk`) walks the reference graph level by level:
//! every reference found at one level is fetched concurrently (bounded by `resolver.concurrency`),
//! each distinct DID once per request, so a depth-N answer costs N + 1 relay round trips in time.
//! **Assemble** (`assembler`) then writes the answer from what arrived, applying the depth,
//! names-only, field and cycle rules; it is pure, so those rules are unit-tested without a relay.
//!
//! One `Resolver` runs on every HTTP worker: assembling is CPU work, and it spreads over the
//! cores that way. Found records are read from the shared record cache first, so a warm
//! resolution sends no message to the fetcher at all.
//!
//! - `actor`: the `Resolver` and its messages, and `Resolvers`, what every worker's shares;
//! - `walk`: the gather phase; `state`: what it learnt of each DID;
//! - `assembler`: the assemble phase; `resolution`: the answer and its summary;
//! - `options`, `references`: what a request asks, and what counts as a reference;
//! - `answers`: warm answers kept whole; `listing`: an indexer's listing taken apart;
//! - `routes`: `GET /api/records`.

mod actor;
mod answers;
mod assembler;
pub mod config;
mod error;
mod filters;
mod in_flight;
mod listing;
mod metrics;
mod old_rules;
mod options;
mod references;
mod resolution;
mod routes;
mod state;
mod walk;

pub use actor::{Resolve, ResolveListing, Resolver, Resolvers};
pub use error::ResolveError;
pub use options::{FieldFilter, Options, RootFilter};
pub use resolution::{Reason, Resolution, Summary, Unresolved};
pub use routes::configure;
