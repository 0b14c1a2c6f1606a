//! Where a failure becomes an HTTP status and a `{"error","code"}` body. Each feature's error
//! kinds say their own status, code and headers (`Coded`, beside their definitions); this only
//! composes them, so that a new kind touches its feature's file and nothing here.

pub mod coded;

use actix_web::{http::StatusCode, HttpResponse, ResponseError};

use self::coded::Coded;
use crate::{
    auth::WriteError, did::DidError, gun::FetchError, http::error::RequestError, media::MediaError,
    resolver::ResolveError, soul::SoulError,
};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Upstream(#[from] FetchError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl ApiError {
    fn kind(&self) -> &dyn Coded {
        match self {
            ApiError::Request(e) => e,
            ApiError::Upstream(e) => e,
            ApiError::Resolve(e) => e,
            ApiError::Media(e) => e,
            ApiError::Write(e) => e,
        }
    }

    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

impl From<SoulError> for ApiError {
    fn from(e: SoulError) -> Self {
        RequestError::from(e).into()
    }
}

impl From<DidError> for ApiError {
    fn from(e: DidError) -> Self {
        RequestError::from(e).into()
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        RequestError::from(e).into()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind().status()
    }

    fn error_response(&self) -> HttpResponse {
        let kind = self.kind();
        let mut res = HttpResponse::build(kind.status());
        kind.headers(&mut res);
        if kind.status().is_server_error() {
            log::debug!("answered {}: {self}", kind.status());
        }
        res.json(serde_json::json!({"error": kind.public(), "code": kind.code()}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn upstream_failures_are_never_a_blanket_500() {
        for (e, status) in [
            (FetchError::CircuitOpen, 503),
            (FetchError::Unreachable("refused".into()), 503),
            (FetchError::Timeout, 504),
            (FetchError::Status(500), 502),
            (FetchError::TooLarge(10), 502),
            (FetchError::Malformed("x".into()), 502),
        ] {
            assert_eq!(ApiError::from(e).status_code().as_u16(), status);
        }
    }

    #[test]
    fn internal_failures_have_their_own_codes() {
        for (e, status, code) in [
            (
                ApiError::from(RequestError::Unavailable),
                503,
                "unavailable",
            ),
            (FetchError::Cancelled.into(), 503, "relay_unavailable"),
            (MediaError::Io.into(), 500, "media_unreadable"),
        ] {
            assert_eq!(e.status_code().as_u16(), status, "{code}");
            assert_eq!(e.code(), code);
        }
    }

    #[test]
    fn upstream_details_stay_out_of_the_body() {
        let refused = "Failed to connect to host: Connection refused (os error 111)";
        for e in [
            ApiError::from(FetchError::Unreachable(refused.into())),
            ApiError::Resolve(ResolveError::Upstream(
                "did:gun:a:1".into(),
                FetchError::Malformed(refused.into()),
            )),
        ] {
            let body = e.error_response().into_body().try_into_bytes().unwrap();
            let text = String::from_utf8_lossy(&body);
            assert!(!text.contains("os error"), "{text}");
            assert!(text.contains("\"code\":\"relay_"), "{text}");
        }
    }

    #[test]
    fn body_is_error_and_code() {
        let res = ApiError::from(RequestError::MissingParameter("soul")).error_response();
        assert_eq!(res.status(), 400);
        let body = res.into_body().try_into_bytes().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "missing_parameter");
        assert_eq!(v["error"], "query parameter `soul` is required");
    }
}
