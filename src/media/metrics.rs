//! What media streaming counts.

use std::sync::Arc;

use prometheus_client::{encoding::EncodeLabelSet, metrics::family::Family};

use crate::metrics::{series, Count, Level, Registry};

/// How a media stream ended; the label of `oip_media_streams_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOutcome {
    Complete,
    Aborted,
    Error,
}

impl StreamOutcome {
    const ALL: [StreamOutcome; 3] = [Self::Complete, Self::Aborted, Self::Error];

    fn label(self) -> OutcomeLabel {
        OutcomeLabel {
            outcome: match self {
                StreamOutcome::Complete => "complete",
                StreamOutcome::Aborted => "aborted",
                StreamOutcome::Error => "error",
            },
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

series! {
    pub struct MediaMetrics {
        active_streams: Level => "oip_media_active_streams", "Media streams currently open";
        streams: Family<OutcomeLabel, Count> => "oip_media_streams",
            "Media streams ended, by how they ended";
        bytes_sent: Count => "oip_media_bytes_sent", "Media body bytes handed to clients";
    }
}

impl MediaMetrics {
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let m = Self::registered(registry);
        // Every outcome from the start, at 0: a rate over a series that appears only with its
        // first abort misses that abort.
        for outcome in StreamOutcome::ALL {
            drop(m.streams.get_or_create(&outcome.label()));
        }
        Arc::new(m)
    }

    pub fn set_active_streams(&self, open: u64) {
        self.active_streams.set(open);
    }

    pub fn active_streams(&self) -> u64 {
        self.active_streams.get()
    }

    pub fn stream_ended(&self, outcome: StreamOutcome) {
        self.streams.get_or_create(&outcome.label()).inc();
    }

    pub fn bytes_sent(&self, bytes: u64) {
        self.bytes_sent.inc_by(bytes);
    }

    pub fn total_bytes_sent(&self) -> u64 {
        self.bytes_sent.get()
    }
}
