//! One GUN relay (or the indexer) over HTTP(S): its breaker, retries, failure tally and the
//! request it sends.

use std::{
    cell::RefCell,
    sync::Arc,
    time::{Duration, Instant},
};

use awc::{
    error::{PayloadError, SendRequestError},
    Client, Connector,
};
use bytes::Bytes;
use serde_json::Value;

use super::{
    error::FetchError,
    lookup::GetResult,
    record::FoundRecord,
    resilience::{Breaker, BreakerState, Failure, Transition},
    tls,
};
use crate::{
    config::GunConfig,
    gun::metrics::{GunMetrics, RelayStats},
};

/// One relay (or indexer) as the breaker and the last answers see it: asking sends nothing.
#[derive(Debug, Clone)]
pub struct UpstreamReport {
    pub url: String,
    pub circuit: BreakerState,
    /// Why the last answers say this URL is not usable as configured (a wrong path, a
    /// certificate that is not trusted), while they do.
    pub misconfigured: Option<String>,
}

/// Which HTTP service a source talks to: they differ in URL, answer shape and metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpKind {
    /// The GUN relay: `GET {base}/get?soul=S`.
    Relay,
    /// An OIP indexer: `GET {base}/api/records?did=D&resolveDepth=0`, first of `records`.
    Indexer,
}

impl HttpKind {
    fn name(self) -> &'static str {
        match self {
            HttpKind::Relay => "relay",
            HttpKind::Indexer => "indexer",
        }
    }
}

/// One HTTP upstream with its own circuit breaker; what it counts is its own too.
pub struct HttpUpstream {
    kind: HttpKind,
    client: Client,
    base: String,
    /// `base` without credentials: what logs, metrics and `/health` show.
    shown: String,
    config: GunConfig,
    metrics: Arc<GunMetrics>,
    /// This relay's series in `/metrics` (`None` for the indexer).
    stats: Option<Arc<RelayStats>>,
    breaker: RefCell<Breaker>,
    /// One permit per connection: awc's pool then never makes a request wait, so the request
    /// timeout is the relay's own time.
    connections: tokio::sync::Semaphore,
    /// Requests waiting for a permit.
    queued: std::cell::Cell<usize>,
    failures: RefCell<FailureTally>,
    misconfigured: RefCell<Option<&'static str>>,
}

/// The relay's own answer for a soul it does not hold: `{"error": "Not found"}`.
fn is_relay_not_found(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .is_ok_and(|v| v.get("error").and_then(Value::as_str) == Some("Not found"))
}

/// Failed attempts since the last summary line, by kind.
#[derive(Debug, Default)]
struct FailureTally {
    timeouts: u64,
    server_errors: u64,
    unreachable: u64,
    unreadable: u64,
    misconfigured: u64,
}

impl FailureTally {
    fn count(&mut self, e: &FetchError) {
        match e {
            FetchError::Timeout => self.timeouts += 1,
            FetchError::Status(_) => self.server_errors += 1,
            FetchError::Unreachable(_) => self.unreachable += 1,
            FetchError::Misconfigured(_) => self.misconfigured += 1,
            _ => self.unreadable += 1,
        }
    }

    fn total(&self) -> u64 {
        self.timeouts + self.server_errors + self.unreachable + self.unreadable + self.misconfigured
    }
}

impl HttpUpstream {
    pub(super) fn new(
        kind: HttpKind,
        base: &str,
        config: &GunConfig,
        tls: Arc<rustls::ClientConfig>,
        metrics: Arc<GunMetrics>,
    ) -> Self {
        let client = client(config, tls);
        let Endpoint { base, shown } = Endpoint::new(base);
        let stats = (kind == HttpKind::Relay).then(|| metrics.relay(&shown));
        Self {
            kind,
            client,
            base,
            shown,
            config: config.clone(),
            metrics,
            stats,
            breaker: RefCell::new(Breaker::new(
                config.breaker_failures,
                Duration::from_millis(config.breaker_open_ms),
            )),
            connections: tokio::sync::Semaphore::new(config.max_connections),
            queued: std::cell::Cell::new(0),
            failures: RefCell::default(),
            misconfigured: RefCell::default(),
        }
    }

    pub(super) async fn list(
        &self,
        target: &str,
        authorization: Option<&str>,
    ) -> Result<Bytes, FetchError> {
        let mut request = self.client.get(format!("{}{target}", self.base));
        if let Some(value) = authorization {
            request = request.insert_header((awc::http::header::AUTHORIZATION, value));
        }
        self.success_body(request.send()).await
    }

    /// Sends one request, counted once (with its status, or as `error` when no answer came).
    async fn send(
        &self,
        request: awc::SendClientRequest,
    ) -> Result<awc::ClientResponse, FetchError> {
        let mut sent = self.count_once();
        let res = request.await.map_err(|e| self.send_error(e))?;
        sent.response(res.status().as_u16());
        Ok(res)
    }

    /// An answer's body, within `max_response_bytes`.
    async fn body(&self, res: &mut awc::ClientResponse) -> Result<Bytes, FetchError> {
        let limit = self.config.max_response_bytes;
        res.body()
            .limit(limit)
            .await
            .map_err(|e| payload_error(e, limit))
    }

    /// The body of a 2xx answer to `request`, else `Status`.
    async fn success_body(&self, request: awc::SendClientRequest) -> Result<Bytes, FetchError> {
        let mut res = self.send(request).await?;
        let body = self.body(&mut res).await?;
        let status = res.status().as_u16();
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(FetchError::Status(status))
        }
    }

    /// `key` is a soul for the relay, a whole DID for an indexer.
    pub(super) async fn get(&self, key: &str) -> GetResult {
        let url = match self.kind {
            HttpKind::Relay => format!("{}/get?soul={}", self.base, encode_query_value(key)),
            HttpKind::Indexer => format!(
                "{}/api/records?did={}&resolveDepth=0",
                self.base,
                encode_query_value(key)
            ),
        };
        self.attempt_get(&url).await
    }

    pub(super) async fn put(&self, soul: &str, body: Bytes) -> Result<Bytes, FetchError> {
        let request = self
            .client
            .post(format!("{}/put", self.base))
            .insert_header(("content-type", "application/json"))
            .send_body(body);
        log::debug!("put {soul} to {}", self.shown);
        self.success_body(request).await
    }

    /// Runs one attempt for `key` under the breaker and the request timeout, and tells the
    /// breaker how the relay behaved: only trouble on the relay's side (no answer, 5xx, a garbled
    /// answer) counts against it, a soul at most once (see `Breaker`). Breaker transitions are
    /// logged when they happen; failures are summed up by `log_failures`.
    pub(super) async fn guarded<T>(
        &self,
        key: Option<&str>,
        attempt: impl std::future::Future<Output = Result<T, FetchError>>,
    ) -> Result<T, FetchError> {
        let _connection = match self.connections.try_acquire() {
            Ok(permit) => permit,
            Err(_) if self.queued.get() >= self.config.max_queued => {
                self.metrics.shed();
                return Err(FetchError::Overloaded);
            }
            Err(_) => {
                self.queued.set(self.queued.get() + 1);
                let permit = self.connections.acquire().await;
                self.queued.set(self.queued.get() - 1);
                permit.expect("the semaphore is never closed")
            }
        };
        if !self.breaker.borrow_mut().try_acquire(Instant::now()) {
            return Err(FetchError::CircuitOpen);
        }
        let timeout = Duration::from_millis(self.config.request_timeout_ms);
        let result = match actix_web::rt::time::timeout(timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout),
        };
        if result.is_ok() {
            // It answered as what it is configured to be.
            self.misconfigured.take();
        }
        self.record_outcome(key, &result);
        result
    }

    /// Tells the breaker, the failure tally, the log and the relay's figures how an attempt went.
    fn record_outcome<T>(&self, key: Option<&str>, result: &Result<T, FetchError>) {
        let mut breaker = self.breaker.borrow_mut();
        let transition = match result {
            Err(e @ FetchError::Misconfigured(_)) => {
                self.failures.borrow_mut().count(e);
                Transition::None
            }
            Err(e) if e.is_transient() => {
                self.failures.borrow_mut().count(e);
                let failure = match e {
                    FetchError::Unreachable(_) => Failure::Connection,
                    _ => key.map_or(Failure::Connection, Failure::Soul),
                };
                breaker.on_failure(Instant::now(), failure)
            }
            _ => breaker.on_success(),
        };
        match (transition, result) {
            (Transition::Opened, Err(e)) => log::warn!(
                "[GUN Relay] {} {}: circuit open after {} failures across souls and connections (last: {e}); failing fast for {} ms",
                self.kind.name(),
                self.shown,
                breaker.failures(),
                self.config.breaker_open_ms
            ),
            (Transition::Closed, _) => log::warn!(
                "[GUN Relay] {} {}: answering again; circuit closed",
                self.kind.name(),
                self.shown
            ),
            _ => {}
        }
        if let Some(stats) = &self.stats {
            let open = breaker.state(Instant::now()) != BreakerState::Closed;
            stats.attempt(matches!(result, Err(e) if e.fails_over()), open);
        }
    }

    pub(super) fn circuit_closed(&self, now: Instant) -> bool {
        self.breaker.borrow().state(now) == BreakerState::Closed
    }

    pub(super) fn report(&self) -> UpstreamReport {
        UpstreamReport {
            url: self.shown.clone(),
            circuit: self.breaker.borrow().state(Instant::now()),
            misconfigured: self.misconfigured.borrow().map(String::from),
        }
    }

    /// Marks this URL misconfigured: `problem` is what clients and `/health` are told,
    /// `detail` what the log says (WARN once, until an answer clears it).
    fn misconfigured_by(&self, problem: &'static str, detail: String) -> FetchError {
        let mut current = self.misconfigured.borrow_mut();
        if current.is_none() {
            log::warn!(
                "[GUN Relay] {} {}: {detail}; reads answer 502 relay_misconfigured until it is fixed",
                self.kind.name(),
                self.shown
            );
        }
        *current = Some(problem);
        FetchError::Misconfigured(problem.into())
    }

    fn send_error(&self, e: SendRequestError) -> FetchError {
        if let Some(reason) = tls::handshake_failure(&e) {
            let (setting, problem) = match self.kind {
                HttpKind::Relay => ("gun.ca_file", "TLS handshake failed: the relay's certificate is not trusted (is its issuer in gun.ca_file?)"),
                HttpKind::Indexer => ("resolver.ca_file", "TLS handshake failed: the indexer's certificate is not trusted (is its issuer in resolver.ca_file?)"),
            };
            return self.misconfigured_by(
                problem,
                format!(
                    "TLS handshake failed ({reason}); is the certificate's issuer in {setting}?"
                ),
            );
        }
        match e {
            SendRequestError::Timeout => FetchError::Timeout,
            other => FetchError::Unreachable(other.to_string()),
        }
    }

    /// One WARN line with the failures since the last one, if there were any.
    pub fn log_failures(&self) {
        let tally = std::mem::take(&mut *self.failures.borrow_mut());
        if tally.total() > 0 {
            log::warn!(
                "[GUN Relay] {} {}: {} failed requests in the last {}s (timeouts {}, 5xx {}, unreachable {}, unreadable answers {}, misconfigured {})",
                self.kind.name(),
                self.shown,
                tally.total(),
                self.config.failure_log_interval_secs,
                tally.timeouts,
                tally.server_errors,
                tally.unreachable,
                tally.unreadable,
                tally.misconfigured
            );
        }
    }

    async fn attempt_get(&self, url: &str) -> GetResult {
        let mut res = self.send(self.client.get(url).send()).await?;
        match res.status().as_u16() {
            200 => {
                let body = self.body(&mut res).await?;
                let found = match self.kind {
                    HttpKind::Relay => FoundRecord::from_relay_answer(body).map(Some),
                    HttpKind::Indexer => FoundRecord::from_indexer_answer(body),
                };
                // A 200 is the relay's answer, whatever the record in it holds.
                self.misconfigured.take();
                match found {
                    Ok(found) => Ok(found.map(Arc::new)),
                    Err(e) => {
                        self.metrics.malformed_record();
                        Err(FetchError::RecordMalformed(e.to_string()))
                    }
                }
            }
            404 if self.kind == HttpKind::Relay => {
                let body = res.body().limit(4096).await.unwrap_or_default();
                if is_relay_not_found(&body) {
                    return Ok(None);
                }
                // Not the relay's answer: a wrong path (`.../gun`), a proxy, another service.
                // Caching it would mark every soul missing for an hour.
                Err(self.misconfigured_by(
                    "the URL answers 404s that are not the relay's (is it the relay's base URL?)",
                    "a 404 that is not the relay's record-not-found answer (is the URL right? the relay serves /get and /put)".into(),
                ))
            }
            404 => Ok(None),
            other => Err(FetchError::Status(other)),
        }
    }

    fn count_once(&self) -> SentRequest<'_> {
        SentRequest {
            metrics: &self.metrics,
            kind: self.kind,
            counted: false,
        }
    }
}

/// Counts one relay request exactly once: with its status when a response head arrives, or as
/// `error` when it is dropped without one (refused, reset, timed out).
struct SentRequest<'a> {
    metrics: &'a GunMetrics,
    kind: HttpKind,
    counted: bool,
}

impl SentRequest<'_> {
    fn count(&self, status: Option<u16>) {
        match self.kind {
            HttpKind::Relay => self.metrics.upstream_request(status),
            HttpKind::Indexer => self.metrics.indexer_request(status),
        }
    }

    fn response(&mut self, status: u16) {
        self.count(Some(status));
        self.counted = true;
    }
}

impl Drop for SentRequest<'_> {
    fn drop(&mut self) {
        if !self.counted {
            self.count(None);
        }
    }
}

fn payload_error(e: PayloadError, limit: usize) -> FetchError {
    match e {
        PayloadError::Overflow => FetchError::TooLarge(limit),
        other => FetchError::Malformed(format!("body cut short: {other}")),
    }
}

/// An HTTP client for one upstream: its TLS roots, `gun.max_connections`, the request timeout,
/// and no redirects. Not `Send`: build it on the thread that uses it.
pub fn client(config: &GunConfig, tls: Arc<rustls::ClientConfig>) -> Client {
    let timeout = Duration::from_millis(config.request_timeout_ms);
    let connector = Connector::new()
        .rustls_0_23(tls)
        .limit(config.max_connections)
        .timeout(timeout.min(Duration::from_secs(5)));
    Client::builder()
        .connector(connector)
        .timeout(timeout)
        .disable_redirects()
        .finish()
}

/// A relay's (or indexer's) base URL as requests use it, and as logs, metrics and `/health`
/// show it: without a `user:password@` part.
pub struct Endpoint {
    pub base: String,
    pub shown: String,
}

impl Endpoint {
    pub fn new(url: &str) -> Self {
        let base = url.trim_end_matches('/').to_string();
        let shown = without_credentials(&base);
        Self { base, shown }
    }
}

/// `url` without a `user:password@` part.
fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// Percent-encodes a query value; `:` stays readable since souls are full of them.
pub fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_not_shown() {
        assert_eq!(
            without_credentials("https://u:p@relay:8765/x@y"),
            "https://relay:8765/x@y"
        );
        assert_eq!(
            without_credentials("http://relay:8765"),
            "http://relay:8765"
        );
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode_query_value("abc:h:01"), "abc:h:01");
        assert_eq!(encode_query_value("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
