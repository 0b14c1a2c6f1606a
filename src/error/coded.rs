//! What a failure says about itself to a client: each feature's error kinds implement `Coded`
//! beside their definition, so that adding a kind touches one file. `ApiError` only composes.

use actix_web::{http::StatusCode, HttpResponseBuilder};

pub trait Coded: std::fmt::Display {
    fn status(&self) -> StatusCode;

    /// Part of the contract: clients branch on it, so it never changes once published.
    fn code(&self) -> &'static str;

    /// The `error` of the body, for a person. Kinds whose message carries the system's words
    /// (an OS error, a TLS library's) say less here and leave the rest to the log.
    fn public(&self) -> String {
        self.to_string()
    }

    /// Headers the answer needs beside the body (`WWW-Authenticate`, `Retry-After`, ...).
    fn headers(&self, _res: &mut HttpResponseBuilder) {}
}

/// `Retry-After`, in seconds.
pub fn retry_after(res: &mut HttpResponseBuilder, seconds: u32) {
    res.insert_header(("retry-after", seconds.to_string()));
}

/// The challenge of a 401: the bearer token it needs.
pub fn bearer_challenge(res: &mut HttpResponseBuilder) {
    res.insert_header(("www-authenticate", "Bearer"));
}
