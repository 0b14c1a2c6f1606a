//! The registry of open streams: admits a new one under `media.max_streams` and
//! `media.max_streams_per_client`, and hears from each body when it ends.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Instant,
};

use super::{
    error::MediaError,
    metrics::{MediaMetrics, StreamOutcome},
};

/// Every open stream, shared by the actor's threads and told by each body when it ends.
pub struct StreamRegistry {
    open: Mutex<OpenStreams>,
    /// `media.max_streams`: past it a new stream is refused, and the open ones go on.
    max: usize,
    /// `media.max_streams_per_client`: one client cannot take every stream from the others.
    per_client: usize,
    metrics: Arc<MediaMetrics>,
}

/// The streams open now: when each began and for whom, and how many each client has.
#[derive(Default)]
struct OpenStreams {
    streams: HashMap<u64, (Instant, IpAddr)>,
    by_client: HashMap<IpAddr, usize>,
}

impl StreamRegistry {
    pub fn new(max: usize, per_client: usize, metrics: Arc<MediaMetrics>) -> Self {
        Self {
            open: Mutex::default(),
            max,
            per_client,
            metrics,
        }
    }

    /// Registers a new stream of `client`'s, unless `max` are open already, or
    /// `max_streams_per_client` of theirs.
    pub fn admit(&self, id: u64, client: IpAddr) -> Result<(), MediaError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.streams.len() >= self.max {
            return Err(MediaError::TooManyStreams(self.max));
        }
        let theirs = open.by_client.entry(client).or_default();
        if *theirs >= self.per_client {
            return Err(MediaError::TooManyStreamsForClient(self.per_client));
        }
        *theirs += 1;
        open.streams.insert(id, (Instant::now(), client));
        self.metrics.set_active_streams(open.streams.len() as u64);
        Ok(())
    }

    /// Body bytes handed to the client.
    pub fn sent(&self, bytes: u64) {
        self.metrics.bytes_sent(bytes);
    }

    pub fn ended(&self, id: u64, outcome: StreamOutcome, bytes: u64) {
        let started = {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let started = open.streams.remove(&id);
            if let Some((_, client)) = started {
                if let Some(theirs) = open.by_client.get_mut(&client) {
                    *theirs -= 1;
                    if *theirs == 0 {
                        open.by_client.remove(&client);
                    }
                }
            }
            self.metrics.set_active_streams(open.streams.len() as u64);
            started.map(|(at, _)| at)
        };
        self.metrics.stream_ended(outcome);
        log::debug!(
            "media stream {id} ended {outcome:?} after {bytes} bytes in {:?}",
            started.map(|s| s.elapsed())
        );
    }
}
