//! `/metrics`: one prometheus-client registry, in which each feature registers its own series at
//! start-up (`gun::metrics`, `resolver::metrics`, `media::metrics`, `monitor::metrics`,
//! `http::metrics`), encoded in the Prometheus text format (0.0.4) that scrapers and the
//! contract's names (`..._total` on the `# TYPE` line too) expect.
//!
//! Help texts are given without their final period: the registry adds it.

pub use prometheus_client::registry::Registry;
use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder},
    metrics::{
        family::{Family, MetricConstructor},
        MetricType, TypedMetric,
    },
};

pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

pub fn render(registry: &Registry) -> String {
    let mut out = String::with_capacity(8 * 1024);
    prometheus_client::encoding::prometheus_text::encode(&mut out, registry)
        .expect("writing to a String cannot fail");
    out
}

/// Declares a feature's series: each field beside the name it is exported under and its help,
/// so that the three cannot drift apart, and `registered`, which adds every one to the registry
/// (the feature's `register` calls it, and adds what is not a plain series).
macro_rules! series {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$fmeta:meta])* $field:ident: $ty:ty => $metric:literal, $help:literal;)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Default)]
        pub struct $name {
            $($(#[$fmeta])* $field: $ty,)*
        }

        impl $name {
            fn registered(registry: &mut $crate::metrics::Registry) -> Self {
                let m = Self::default();
                $(registry.register($metric, $help, m.$field.clone());)*
                m
            }
        }
    };
}
pub(crate) use series;

/// A counter of events.
pub type Count = prometheus_client::metrics::counter::Counter<u64>;
/// A gauge of a quantity that is never negative.
pub type Level = prometheus_client::metrics::gauge::Gauge<u64, std::sync::atomic::AtomicU64>;

/// A labelled family that is listed (its `# HELP` and `# TYPE`) before its first sample, as the
/// contract's names always were: the registry leaves out empty families, and a scraper or an
/// alert looking for a name must find it on a process that has not yet needed the series.
pub struct Listed<S, M, C = fn() -> M>(Family<S, M, C>);

impl<S: Clone + std::hash::Hash + Eq, M: Default> Default for Listed<S, M> {
    fn default() -> Self {
        Self(Family::default())
    }
}

impl<S, M, C> From<Family<S, M, C>> for Listed<S, M, C> {
    fn from(family: Family<S, M, C>) -> Self {
        Self(family)
    }
}

impl<S, M, C: Clone> Clone for Listed<S, M, C> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<S, M, C> std::ops::Deref for Listed<S, M, C> {
    type Target = Family<S, M, C>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<S, M, C> EncodeMetric for Listed<S, M, C>
where
    S: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug,
    M: EncodeMetric + TypedMetric + std::fmt::Debug,
    C: MetricConstructor<M>,
{
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        M::TYPE
    }
}

impl<S, M, C> std::fmt::Debug for Listed<S, M, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Listed")
    }
}
