//! `/metrics`: one prometheus-client registry, in which each feature registers its own series at
//! start-up (`gun::metrics`, `resolver::metrics`, `media::metrics`, `monitor::metrics`,
//! `http::metrics`), encoded in the Prometheus text format (0.0.4) that scrapers and the
//! contract's names (`..._total` on the `# TYPE` line too) expect.
//!
//! Help texts are given without their final period: the registry adds it.

pub use prometheus_client::registry::Registry;

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
