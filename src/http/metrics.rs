//! What the HTTP edge counts: every request's duration, by route template and status class,
//! and the version that answers.

use std::{sync::Arc, time::Duration};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
};

use crate::metrics::{Listed, Registry};

/// Upper bounds of the request-duration buckets, in seconds: from a cached answer (well under a
/// millisecond) to the relay's ~3 s miss and the resolver's deadline.
const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The matched route template, never the raw path, so ids cannot explode the label set.
    route: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

pub struct HttpMetrics {
    durations: Listed<RequestLabels, Histogram>,
    /// Every request answered, for the status page (the histogram's own counts are per series).
    answered: Counter,
}

impl HttpMetrics {
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let durations = Listed::from(Family::new_with_constructor(
            (|| Histogram::new(DURATION_BUCKETS)) as fn() -> Histogram,
        ));
        registry.register(
            "oip_http_request_duration_seconds",
            "HTTP request duration by route template and status class",
            durations.clone(),
        );
        let build = Family::<VersionLabel, Gauge>::default();
        build
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("oip_build_info", "Version of the running service", build);
        Arc::new(Self {
            durations,
            answered: Counter::default(),
        })
    }

    pub fn observe_request(&self, route: String, status: u16, elapsed: Duration) {
        let status = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.durations
            .get_or_create(&RequestLabels { route, status })
            .observe(elapsed.as_secs_f64());
        self.answered.inc();
    }

    pub fn requests(&self) -> u64 {
        self.answered.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let mut registry = Registry::default();
        let m = HttpMetrics::register(&mut registry);
        m.observe_request("/api/media/{mediaId}".into(), 200, Duration::from_millis(3));
        m.observe_request("/api/media/{mediaId}".into(), 206, Duration::from_secs(20));
        let text = crate::metrics::render(&registry);
        let l = "route=\"/api/media/{mediaId}\",status=\"2xx\"";
        for line in [
            format!("_bucket{{{l},le=\"0.0025\"}} 0"),
            format!("_bucket{{{l},le=\"0.005\"}} 1"),
            format!("_bucket{{{l},le=\"15\"}} 1"),
            format!("_bucket{{{l},le=\"+Inf\"}} 2"),
            format!("_count{{{l}}} 2"),
        ] {
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert_eq!(m.requests(), 2);
    }
}
