//! Why a write was refused, and what the writer is told.

use actix_web::{http::StatusCode, HttpResponseBuilder};

use crate::error::coded::{bearer_challenge, Coded};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("a write needs the admin token or a publisher's token (Authorization: Bearer)")]
    NoValidToken,
    #[error("this token's keys do not own souls with the prefix {0:?}")]
    NotThePublisher(String),
    #[error("writes are off: set auth.admin_token or auth.jwt_secret (or auth.open_writes for a trusted network)")]
    Disabled,
    /// The node links (or would be stored) outside the souls the token may write.
    #[error("{0}")]
    LinkOutside(String),
}

impl Coded for WriteError {
    fn status(&self) -> StatusCode {
        match self {
            WriteError::NoValidToken => StatusCode::UNAUTHORIZED,
            WriteError::NotThePublisher(_) | WriteError::LinkOutside(_) | WriteError::Disabled => {
                StatusCode::FORBIDDEN
            }
        }
    }

    fn code(&self) -> &'static str {
        match self {
            WriteError::NoValidToken => "unauthorized",
            WriteError::NotThePublisher(_) | WriteError::LinkOutside(_) => "forbidden",
            WriteError::Disabled => "writes_disabled",
        }
    }

    fn headers(&self, res: &mut HttpResponseBuilder) {
        if *self == WriteError::NoValidToken {
            bearer_challenge(res);
        }
    }
}
