//! The access log, with secrets taken out: players pass their JWT as `?token=` (they cannot set
//! headers), and a log line must never hand it to whoever reads the logs.

use actix_web::{dev::ServiceRequest, http::header, middleware::Logger};

/// Query parameters whose values are never logged.
const SECRET_PARAMETERS: [&str; 3] = ["token", "access_token", "jwt"];

/// actix-web's default line, with the request line and the referrer redacted.
pub fn logger() -> Logger {
    Logger::new(r#"%a "%{request}xi" %s %b "%{referer}xi" "%{User-Agent}i" %T"#)
        .custom_request_replace("request", |req| {
            let target = req
                .uri()
                .path_and_query()
                .map_or_else(|| req.path().to_string(), |pq| redact(pq.as_str()));
            format!("{} {target} {:?}", req.method(), req.version())
        })
        .custom_request_replace("referer", referer)
}

fn referer(req: &ServiceRequest) -> String {
    req.headers()
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| "-".to_string(), redact)
}

/// `target` with the value of every secret parameter replaced by `[redacted]`. Names are
/// compared decoded, as the handlers read them (`%74oken` is `token`); a name that does not
/// decode has its value redacted too.
pub fn redact(target: &str) -> String {
    let Some((path, query)) = target.split_once('?') else {
        return target.to_string();
    };
    let secret = |name: &str| match super::query::decode(name) {
        Ok(name) => SECRET_PARAMETERS
            .iter()
            .any(|s| name.eq_ignore_ascii_case(s)),
        Err(_) => true,
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if secret(name) => format!("{name}=[redacted]"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_parameters_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact("/api/media/x?token=eyJ.abc.def&download=1"),
            "/api/media/x?token=[redacted]&download=1"
        );
        assert_eq!(
            redact("/a?TOKEN=x&jwt=y&b=2"),
            "/a?TOKEN=[redacted]&jwt=[redacted]&b=2"
        );
        assert_eq!(redact("/a?tokens=x"), "/a?tokens=x");
        assert_eq!(
            redact("/a?%74oken=x&t%6Fken=y&jw%74=z&%ZZ=w&ok=1"),
            "/a?%74oken=[redacted]&t%6Fken=[redacted]&jw%74=[redacted]&%ZZ=[redacted]&ok=1"
        );
        assert_eq!(redact("/health"), "/health");
        assert_eq!(
            redact("https://app/p?access_token=s"),
            "https://app/p?access_token=[redacted]"
        );
    }
}
