//! What the gather phase learnt about each DID, as the caller may see it.

use std::sync::Arc;

use super::resolution::Reason;
use crate::gun::{FetchError, FoundRecord};

/// What the gather phase learnt about one DID, as the caller may see it.
#[derive(Debug, Clone)]
pub(super) enum State {
    Found(Arc<FoundRecord>),
    /// The caller's own record, still encrypted: returned as stored, its references unread.
    Sealed(Arc<FoundRecord>),
    Missing(Reason),
    Failed(FetchError),
}

impl State {
    pub(super) fn reason(&self) -> Option<Reason> {
        match self {
            State::Found(_) => None,
            State::Sealed(_) => Some(Reason::Encrypted),
            State::Missing(r) => Some(*r),
            State::Failed(FetchError::Timeout) => Some(Reason::Timeout),
            State::Failed(FetchError::Unsupported) => Some(Reason::Unsupported),
            State::Failed(_) => Some(Reason::Error),
        }
    }
}
