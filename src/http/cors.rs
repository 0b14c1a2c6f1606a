//! CORS for the web apps and players of other origins: `cors.allowed_origins` (exact origins,
//! `scheme://host:*` for any port of a host, `<scheme>://*` for every origin of a browser
//! extension's scheme, as the old service let its extension clients in, or `*`), credentials and max-age as configured. A
//! request from an origin not allowed is served as usual without CORS headers, so the browser
//! keeps its answer from the page: blocking it here would break nothing a browser allows.

use actix_cors::Cors;
use actix_web::http::header;

use crate::config::CorsConfig;

/// What a browser may send beyond the simple headers: tokens, JSON bodies, ranges, conditions.
const ALLOWED_HEADERS: [header::HeaderName; 7] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::RANGE,
    header::IF_NONE_MATCH,
    header::IF_RANGE,
    header::IF_MATCH,
    header::IF_MODIFIED_SINCE,
];

/// What a page's script may read of an answer: what players and the relay proxy's callers use.
const EXPOSED_HEADERS: [&str; 8] = [
    "content-range",
    "accept-ranges",
    "content-length",
    "etag",
    "x-cache",
    "retry-after",
    "content-disposition",
    "last-modified",
];

/// Schemes of browser extensions' pages, whose origins are `<scheme>://<extension id>`.
const EXTENSION_SCHEMES: [&str; 3] = ["chrome-extension", "moz-extension", "safari-web-extension"];

pub fn middleware(config: &CorsConfig) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "HEAD", "POST", "DELETE"])
        .allowed_headers(ALLOWED_HEADERS)
        .expose_headers(EXPOSED_HEADERS)
        .max_age(usize::try_from(config.max_age_secs).unwrap_or(usize::MAX))
        .block_on_origin_mismatch(false);
    if config.allowed_origins.iter().any(|o| o == "*") {
        // Never echoed (config refuses `*` with credentials): `null` and `file://` pages get
        // `*`, which lets them read nothing a cookie or token would have opened.
        cors = cors.allow_any_origin().send_wildcard();
    } else {
        let allowed = config.allowed_origins.clone();
        cors = cors.allowed_origin_fn(move |origin, _| {
            origin
                .to_str()
                .is_ok_and(|o| allowed.iter().any(|pattern| origin_matches(pattern, o)))
        });
    }
    if config.allow_credentials {
        cors = cors.supports_credentials();
    }
    cors
}

/// `pattern` is an exact origin, `scheme://host:*` for that host on any port (or none), or
/// `<scheme>://*` for any origin of that (extension) scheme.
pub fn origin_matches(pattern: &str, origin: &str) -> bool {
    if let Some(scheme) = pattern.strip_suffix("://*") {
        return origin
            .strip_prefix(scheme)
            .and_then(|rest| rest.strip_prefix("://"))
            .is_some_and(|id| !id.is_empty() && !id.contains('/'));
    }
    match pattern.strip_suffix(":*") {
        Some(host) => {
            origin == host
                || origin
                    .strip_prefix(host)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .is_some_and(|port| {
                        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                    })
        }
        None => pattern.eq_ignore_ascii_case(origin),
    }
}

/// A pattern the config may hold: `*`, `http(s)://host[:port|:*]` with no path, or an
/// extension scheme's origin (`chrome-extension://<id>`) or all of them (`chrome-extension://*`).
/// `http(s)://*` is not one: it would be `*` by another name, credentials and all.
pub fn valid_pattern(pattern: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some((scheme, rest)) = pattern.split_once("://") {
        let extension = EXTENSION_SCHEMES.contains(&scheme);
        if extension {
            return !rest.is_empty() && !rest.contains('/');
        }
    }
    let Some(rest) = pattern
        .strip_prefix("http://")
        .or_else(|| pattern.strip_prefix("https://"))
    else {
        return false;
    };
    !rest.is_empty() && !rest.contains('/') && !rest.starts_with(':') && !rest.starts_with('*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_or_on_any_port() {
        assert!(origin_matches(
            "http://localhost:*",
            "http://localhost:5173"
        ));
        assert!(origin_matches("http://localhost:*", "http://localhost"));
        assert!(!origin_matches(
            "http://localhost:*",
            "http://localhost.evil.com"
        ));
        assert!(!origin_matches(
            "http://localhost:*",
            "http://localhost:80x"
        ));
        assert!(!origin_matches(
            "http://localhost:*",
            "https://localhost:443"
        ));
        assert!(origin_matches(
            "https://app.example.com",
            "https://app.example.com"
        ));
        assert!(!origin_matches(
            "https://app.example.com",
            "https://app.example.com.evil"
        ));
        let any_extension = "chrome-extension://*";
        assert!(origin_matches(
            any_extension,
            "chrome-extension://abcdefghijklmnop"
        ));
        assert!(!origin_matches(any_extension, "chrome-extension://"));
        assert!(!origin_matches(
            any_extension,
            "moz-extension://abcdefghijklmnop"
        ));
        assert!(!origin_matches(
            any_extension,
            "https://chrome-extension.evil"
        ));
        assert!(!origin_matches(any_extension, "chrome-extension://a/b"));
    }

    #[test]
    fn patterns_are_origins() {
        for ok in [
            "*",
            "http://localhost:*",
            "https://app.example.com",
            "http://10.0.0.1:3000",
            "chrome-extension://*",
            "chrome-extension://abcdefghijklmnop",
            "moz-extension://*",
        ] {
            assert!(valid_pattern(ok), "{ok}");
        }
        for bad in [
            "",
            "localhost",
            "http://",
            "https://a.com/path",
            "ftp://a.com",
            "http://:80",
            "http://*",
            "https://*",
            "chrome-extension://",
            "chrome-extension://a/b",
            "ftp://*",
        ] {
            assert!(!valid_pattern(bad), "{bad}");
        }
    }
}
