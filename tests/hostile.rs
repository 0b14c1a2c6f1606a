//! Hostile input against every endpoint: each request gets a 4xx, nothing reaches the relay,
//! and the service keeps serving. What the application sees is answered with a JSON
//! `{"error","code"}`; only the cases listed in `PARSER_REFUSES` (a header block over its limit,
//! raw non-ASCII bytes in the request line, a request line too long to buffer, control bytes in
//! a header value) are refused by actix-http's parser before routing, with its own empty 400/431.

mod common;

use std::sync::atomic::Ordering::SeqCst;

use common::*;

struct Case {
    label: String,
    request: Vec<u8>,
}

/// The cases that never reach the application: there is no hook for their answer.
const PARSER_REFUSES: [&str; 4] = [
    "120 headers",
    "raw bytes in the URL",
    "100 KB request line",
    "control bytes in a header",
];

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |label: &str, request: Vec<u8>| {
        cases.push(Case {
            label: label.to_string(),
            request,
        })
    };
    let json = [("Content-Type", "application/json")];
    let long = "a".repeat(10_000);
    let thousand = vec!["did:gun:a:1"; 1000].join(",");

    // Query strings: malformed, duplicated, over-long, not UTF-8.
    for (name, q) in [
        ("no soul", ""),
        ("empty soul", "soul="),
        ("two souls", "soul=a:1&soul=a:2"),
        ("long soul", &*format!("soul={long}")),
        ("non-UTF-8 soul", "soul=%FF%FE"),
        ("overlong UTF-8", "soul=%C0%AE%C0%AE"),
        ("bad escape", "soul=%ZZ"),
        ("cut escape", "soul=a%2"),
        ("control char", "soul=a%0Db"),
        ("NUL", "soul=a%00b"),
    ] {
        add(
            &format!("get: {name}"),
            request_bytes("GET", &format!("/gun-relay/get?{q}"), &[], b""),
        );
    }
    for (name, q) in [
        ("no did", String::new()),
        ("not a did", "did=hello".into()),
        ("depth 99999", "did=did:gun:a:1&resolveDepth=99999".into()),
        ("depth -1", "did=did:gun:a:1&resolveDepth=-1".into()),
        ("depth 1e3", "did=did:gun:a:1&resolveDepth=1e3".into()),
        ("1000 DIDs", format!("did={thousand}")),
        ("two dids", "did=did:gun:a:1&did=did:gun:a:2".into()),
        ("non-UTF-8 did", "did=did:gun:%FF".into()),
        (
            "names maybe",
            "did=did:gun:a:1&resolveNamesOnly=maybe".into(),
        ),
        (
            "field injection",
            "did=did:gun:a:1&resolveFieldNames=a;b".into(),
        ),
        (
            "long field",
            format!("did=did:gun:a:1&resolveFieldNames={long}"),
        ),
        (
            "alias and name",
            "did=did:gun:a:1&resolveFieldName=a&resolveFieldNames=b".into(),
        ),
        (
            "huge query",
            format!("did=did:gun:a:1&x={}", "b".repeat(20_000)),
        ),
    ] {
        add(
            &format!("records: {name}"),
            request_bytes("GET", &format!("/api/records?{q}"), &[], b""),
        );
    }
    // Bodies: not JSON, wrong shape, too large, wrong content type.
    for (name, headers, body) in [
        ("not JSON", &json[..], b"{oops".to_vec()),
        ("array", &json[..], b"[]".to_vec()),
        ("no data", &json[..], br#"{"soul":"a:1"}"#.to_vec()),
        (
            "soul with newline",
            &json[..],
            br#"{"soul":"a\n1","data":{}}"#.to_vec(),
        ),
        (
            "2 MB",
            &json[..],
            format!(
                r#"{{"soul":"a:1","data":{{"x":"{}"}}}}"#,
                "y".repeat(2 << 20)
            )
            .into_bytes(),
        ),
        (
            "text/plain",
            &[("Content-Type", "text/plain")][..],
            br#"{"soul":"a:1","data":{}}"#.to_vec(),
        ),
        (
            "no content type",
            &[][..],
            br#"{"soul":"a:1","data":{}}"#.to_vec(),
        ),
        (
            "invalid UTF-8",
            &json[..],
            b"{\"soul\":\"\xff\xfe\",\"data\":{}}".to_vec(),
        ),
    ] {
        add(
            &format!("put: {name}"),
            request_bytes("POST", "/gun-relay/put", headers, &body),
        );
    }
    // Wrong methods, everywhere.
    for (method, path) in [
        ("POST", "/gun-relay/get?soul=a:1"),
        ("GET", "/gun-relay/put"),
        ("PUT", "/api/records?did=did:gun:a:1"),
        ("GET", "/api/cache/negative/a:1"),
        ("DELETE", "/api/media/clip"),
        ("POST", "/api/media/clip/info"),
        ("PATCH", "/media?id=a.txt"),
        ("POST", "/health"),
        ("DELETE", "/metrics"),
        ("BREW", "/api/records"),
    ] {
        add(
            &format!("{method} {path}"),
            request_bytes(method, path, &[], b""),
        );
    }
    // Admin without, or with a wrong, token.
    add(
        "admin: anonymous",
        request_bytes("DELETE", "/api/cache/negative/a:1", &[], b""),
    );
    add(
        "admin: wrong token",
        request_bytes(
            "DELETE",
            "/api/cache/negative/a:1",
            &[("Authorization", "Bearer nope")],
            b"",
        ),
    );
    add(
        "admin: basic auth",
        request_bytes(
            "DELETE",
            "/api/cache/negative/a:1",
            &[("Authorization", "Basic YWRtaW46YWRtaW4=")],
            b"",
        ),
    );
    // Media: bad ids, paths, ranges and tokens.
    for target in [
        "/api/media/..",
        "/api/media/%FF",
        "/api/media/a%2F..%2F..",
        "/media?id=../../etc/passwd",
        "/media?id=%FF",
        "/media?id=a&id=b",
        "/media",
        "/api/media/nothing/info",
    ] {
        add(
            &format!("media {target}"),
            request_bytes("GET", target, &[], b""),
        );
    }
    add(
        "media: unsatisfiable range",
        request_bytes(
            "GET",
            "/api/media/clip",
            &[("Range", "bytes=999999999-")],
            b"",
        ),
    );
    add(
        "media: garbage token on private",
        request_bytes(
            "GET",
            "/api/media/private",
            &[("Authorization", "Bearer %%%.$$$.!!!")],
            b"",
        ),
    );
    add(
        "control bytes in a header",
        request_bytes(
            "GET",
            "/api/media/private",
            &[("Authorization", "Bearer \u{1}\u{2}")],
            b"",
        ),
    );
    // What the HTTP parser refuses before routing.
    let many_headers: Vec<(String, String)> = (0..120)
        .map(|i| (format!("X-H{i}"), "v".repeat(500)))
        .collect();
    let header_refs: Vec<(&str, &str)> = many_headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    add(
        "120 headers",
        request_bytes("GET", "/health", &header_refs, b""),
    );
    add(
        "raw bytes in the URL",
        b"GET /health?\xff=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec(),
    );
    add(
        "100 KB request line",
        request_bytes(
            "GET",
            &format!("/gun-relay/get?soul={}", "a".repeat(100_000)),
            &[],
            b"",
        ),
    );
    cases
}

#[test]
fn every_hostile_request_gets_a_4xx_and_reaches_no_relay() {
    let relay = MockRelay::start();
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    for id in ["clip", "private"] {
        std::fs::create_dir_all(media.join(id)).unwrap();
        std::fs::write(media.join(id).join("original"), b"bytes").unwrap();
    }
    std::fs::write(
        media.join("private/manifest.json"),
        r#"{"accessLevel":"private","userPublicKey":"k"}"#,
    )
    .unwrap();
    let service = TestApp::start(relay_config(&relay.url()).with(|c| {
        c.media.root = media;
        c.auth.jwt_secret = Some("hostile-test-secret".into());
        c.auth.admin_token = Some("hostile-admin-token".into());
    }));
    let mut failures = Vec::new();
    let cases = cases();
    for case in &cases {
        let r = raw_send(service.addr, &case.request, false);
        let answered = if PARSER_REFUSES.contains(&case.label.as_str()) {
            r.body.is_empty() && matches!(r.status, 400 | 431)
        } else {
            serde_json::from_slice::<serde_json::Value>(&r.body)
                .is_ok_and(|v| v["code"].is_string() && v["error"].is_string())
        };
        if !(400..500).contains(&r.status) || !answered {
            failures.push(format!(
                "{}: {} {}",
                case.label,
                r.status,
                String::from_utf8_lossy(&r.body)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {}:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(relay.total_gets(), 0, "a hostile request reached the relay");
    assert_eq!(relay.state.puts.load(SeqCst), 0);
    let health = raw_request(service.addr, "GET", "/health", &[]);
    assert_eq!(
        health.status,
        200,
        "still serving after {} hostile requests",
        cases.len()
    );
}
