//! What the resolver counts.

use std::sync::Arc;

use crate::metrics::{series, Count, Registry};

series! {
    pub struct ResolverMetrics {
        requests: Count => "oip_resolve_requests", "Record resolutions requested";
        answer_cache_hits: Count => "oip_answer_cache_hits",
            "Resolutions answered whole from the answer cache (for the caller who asked)";
    }
}

impl ResolverMetrics {
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        Arc::new(Self::registered(registry))
    }

    pub fn resolve_requested(&self) {
        self.requests.inc();
    }

    /// A resolution answered whole from the answer cache.
    pub fn answer_cache_hit(&self) {
        self.answer_cache_hits.inc();
    }
}
