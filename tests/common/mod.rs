//! Test harness: a mock GUN relay that counts requests per soul, behaves like GUN where the
//! service can tell (the real relay's miss delay, GUN's rules for writes), and can be slow, fail,
//! hang or go away; the application started in this process (`TestApp`) or as the real binary (`Service`)
//! on a free port against it, from a typed `Config`; and one set of HTTP helpers, from awc to
//! requests written byte by byte.

#![allow(dead_code)] // each test binary uses its own part of the harness

pub mod gun_relay;

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Read, Write},
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst},
        mpsc, Arc, Mutex,
    },
    time::{Duration, Instant},
};

use actix_web::{web, App, HttpResponse, HttpServer};
use oip_resolver::config::{Config, GunSource};
use serde_json::{json, Value};

/// How the mock answers a `/get`.
#[derive(Clone, Debug)]
pub enum Mode {
    /// 200 with the stored node, or 404 after `miss_delay`.
    Normal,
    /// This status with a JSON error body.
    Status(u16),
    /// Accepts the request and never answers.
    Hang,
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with a valid answer of about this many bytes.
    Huge(usize),
}

#[derive(Default)]
pub struct RelayState {
    pub gets: Mutex<HashMap<String, u64>>,
    pub puts: AtomicU64,
    pub bad_requests: AtomicU64,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    /// `/get`s that arrived so far, and how many must have before any is answered (0: none
    /// waits): a barrier that shows requests overlap however slow the machine is.
    pub arrived: AtomicUsize,
    pub barrier: AtomicUsize,
    pub latency_ms: AtomicU64,
    pub miss_delay_ms: AtomicU64,
    /// Share of `/get`s (in percent) answered 500, whatever the mode.
    pub fault_percent: AtomicU64,
    pub nodes: Mutex<HashMap<String, Value>>,
    /// What the indexer answers a listing (a `/api/records` without `did`) with.
    pub listing: Mutex<Option<(u16, Value)>>,
    /// The query string of every listing asked for.
    pub listing_queries: Mutex<Vec<String>>,
    /// The `Authorization` header of every listing asked for.
    pub listing_authorizations: Mutex<Vec<Option<String>>>,
    /// The query string of every request by DID the indexer was asked.
    pub did_queries: Mutex<Vec<String>>,
    pub mode: Mutex<Option<Mode>>,
    pub soul_modes: Mutex<HashMap<String, Mode>>,
}

impl RelayState {
    fn mode_for(&self, soul: &str) -> Mode {
        if let Some(m) = self.soul_modes.lock().unwrap().get(soul) {
            return m.clone();
        }
        self.mode.lock().unwrap().clone().unwrap_or(Mode::Normal)
    }
}

pub struct MockRelay {
    pub addr: SocketAddr,
    pub state: Arc<RelayState>,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    connections: Arc<AtomicUsize>,
}

/// Lives in a connection's extensions, so it drops when the worker lets the connection go.
struct ConnectionGuard(Arc<AtomicUsize>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

struct InFlightGuard<'a>(&'a RelayState);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, SeqCst);
    }
}

async fn mock_get(
    state: web::Data<Arc<RelayState>>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let Some(soul) = query.get("soul").cloned() else {
        state.bad_requests.fetch_add(1, SeqCst);
        return HttpResponse::BadRequest().json(json!({"error": "soul required"}));
    };
    *state.gets.lock().unwrap().entry(soul.clone()).or_default() += 1;
    let now = state.in_flight.fetch_add(1, SeqCst) + 1;
    state.max_in_flight.fetch_max(now, SeqCst);
    let _guard = InFlightGuard(&state);
    state.arrived.fetch_add(1, SeqCst);
    let barrier = state.barrier.load(SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    while state.arrived.load(SeqCst) < barrier && Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    let latency = state.latency_ms.load(SeqCst);
    if latency > 0 {
        actix_web::rt::time::sleep(Duration::from_millis(latency)).await;
    }
    let fault = state.fault_percent.load(SeqCst);
    if fault > 0 && fastrand::u64(0..100) < fault {
        return HttpResponse::InternalServerError().json(json!({"error": "injected fault"}));
    }
    match state.mode_for(&soul) {
        Mode::Normal => {
            let node = state.nodes.lock().unwrap().get(&soul).cloned();
            match node {
                Some(node) => {
                    HttpResponse::Ok().json(json!({"success": true, "data": relay_view(node)}))
                }
                None => {
                    let delay = state.miss_delay_ms.load(SeqCst);
                    actix_web::rt::time::sleep(Duration::from_millis(delay)).await;
                    HttpResponse::NotFound().json(json!({"error": "Not found"}))
                }
            }
        }
        Mode::Status(code) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap())
                .json(json!({"error": "injected failure"}))
        }
        Mode::Hang => {
            actix_web::rt::time::sleep(Duration::from_secs(3600)).await;
            HttpResponse::Ok().finish()
        }
        Mode::Garbage => HttpResponse::Ok()
            .content_type("application/json")
            .body("{\"success\":tru<html>"),
        Mode::Huge(n) => {
            let filler = "x".repeat(n);
            HttpResponse::Ok().json(
                json!({"success": true, "data": {"data": {"basic": {"name": filler}}, "oip": {}}}),
            )
        }
    }
}

/// What the real relay does before answering: `data`/`oip` strings become objects.
fn relay_view(mut node: Value) -> Value {
    for field in ["data", "oip"] {
        if let Some(Value::String(s)) = node.get(field) {
            if let Ok(v) = serde_json::from_str::<Value>(s) {
                node[field] = v;
            }
        }
    }
    node
}

/// The OIP indexer's `/api/records?did=D&resolveDepth=0`: nodes are looked up by the whole DID.
/// Without `did` it is a listing, answered with what `set_listing` set.
async fn mock_indexer(
    req: actix_web::HttpRequest,
    state: web::Data<Arc<RelayState>>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let Some(did) = query.get("did").cloned() else {
        state
            .listing_queries
            .lock()
            .unwrap()
            .push(req.query_string().to_string());
        let authorization = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        state
            .listing_authorizations
            .lock()
            .unwrap()
            .push(authorization);
        let latency = state.latency_ms.load(SeqCst);
        if latency > 0 {
            actix_web::rt::time::sleep(Duration::from_millis(latency)).await;
        }
        return match state.listing.lock().unwrap().clone() {
            Some((status, body)) => {
                HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                    .json(body)
            }
            None => {
                state.bad_requests.fetch_add(1, SeqCst);
                HttpResponse::BadRequest().json(json!({"error": "did required"}))
            }
        };
    };
    *state.gets.lock().unwrap().entry(did.clone()).or_default() += 1;
    state
        .did_queries
        .lock()
        .unwrap()
        .push(req.query_string().to_string());
    if let Some(Mode::Status(code)) = state.soul_modes.lock().unwrap().get(&did) {
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(*code).unwrap()).finish();
    }
    let node = state.nodes.lock().unwrap().get(&did).cloned();
    let records: Vec<Value> = node.into_iter().map(relay_view).collect();
    HttpResponse::Ok().json(json!({"records": records}))
}

/// The old indexer's count of records by type.
async fn mock_record_types(state: web::Data<Arc<RelayState>>) -> HttpResponse {
    state
        .listing_queries
        .lock()
        .unwrap()
        .push("recordTypes".into());
    HttpResponse::Ok().json(RECORD_TYPES.clone())
}

pub static RECORD_TYPES: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
    json!({"message": "Record types retrieved successfully", "totalRecords": 3, "recordTypeCount": 2,
           "recordTypes": [{"recordType": "workout", "count": 2}, {"recordType": "recipe", "count": 1}]})
});

async fn mock_put(state: web::Data<Arc<RelayState>>, body: web::Json<Value>) -> HttpResponse {
    state.puts.fetch_add(1, SeqCst);
    let (Some(soul), Some(Value::Object(data))) = (body["soul"].as_str(), body.get("data")) else {
        state.bad_requests.fetch_add(1, SeqCst);
        return HttpResponse::BadRequest().json(json!({"error": "soul and data required"}));
    };
    match gun_check(soul, data) {
        Err(GunRefusal::Array(at)) => HttpResponse::InternalServerError()
            .json(json!({"error": format!("Invalid data: Array at {at}")})),
        Err(GunRefusal::Empty) => {
            // GUN never acknowledges a write holding an empty object (it stores it, though).
            actix_web::rt::time::sleep(Duration::from_secs(3600)).await;
            HttpResponse::Ok().finish()
        }
        Ok(()) => {
            gun_write(&mut state.nodes.lock().unwrap(), soul, data);
            HttpResponse::Ok().json(json!({"success": true, "soul": soul}))
        }
    }
}

enum GunRefusal {
    Array(String),
    Empty,
}

/// What GUN refuses in a write: an array anywhere (an error), an empty object anywhere (no
/// acknowledgement, ever).
fn gun_check(at: &str, node: &serde_json::Map<String, Value>) -> Result<(), GunRefusal> {
    if node.is_empty() {
        return Err(GunRefusal::Empty);
    }
    for (key, value) in node {
        match value {
            Value::Array(_) => return Err(GunRefusal::Array(format!("{at}.{key}"))),
            Value::Object(child) if !child.contains_key("#") => {
                gun_check(&format!("{at}/{key}"), child)?
            }
            _ => {}
        }
    }
    Ok(())
}

/// A write as GUN stores it: fields merge into the node already there, and a nested object
/// becomes a node of its own (`soul/key`) with a link `{"#": "soul/key"}` in its place.
fn gun_write(
    nodes: &mut HashMap<String, Value>,
    soul: &str,
    node: &serde_json::Map<String, Value>,
) {
    let mut merged = match nodes.remove(soul) {
        Some(Value::Object(existing)) => existing,
        _ => serde_json::Map::new(),
    };
    for (key, value) in node {
        let stored = match value {
            Value::Object(child) if !child.contains_key("#") => {
                let child_soul = format!("{soul}/{key}");
                gun_write(nodes, &child_soul, child);
                json!({"#": child_soul})
            }
            other => other.clone(),
        };
        merged.insert(key.clone(), stored);
    }
    nodes.insert(soul.to_string(), Value::Object(merged));
}

/// What the real relay waits before it answers a miss (its peers and disk had their chance).
pub const RELAY_MISS_DELAY_MS: u64 = 3000;

impl MockRelay {
    /// A relay that behaves like the production one where it matters: a miss costs
    /// `RELAY_MISS_DELAY_MS`, and puts follow GUN's rules (see `gun_write`).
    pub fn start() -> Self {
        let state = RelayState::default();
        state.miss_delay_ms.store(RELAY_MISS_DELAY_MS, SeqCst);
        Self::start_at("127.0.0.1:0".parse().unwrap(), Arc::new(state))
    }

    /// Starts on `addr` (to come back where a stopped relay was) with `state` (to keep its
    /// counters and records).
    pub fn start_at(addr: SocketAddr, state: Arc<RelayState>) -> Self {
        let (tx, rx) = mpsc::channel();
        let shared = state.clone();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let thread = std::thread::spawn(move || {
            let sys = actix_web::rt::System::new();
            sys.block_on(async move {
                let data = web::Data::new(shared);
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .route("/get", web::get().to(mock_get))
                        .route("/put", web::post().to(mock_put))
                        .route("/api/records", web::get().to(mock_indexer))
                        .route("/api/records/recordTypes", web::get().to(mock_record_types))
                })
                .on_connect(move |_, extensions| {
                    counted.fetch_add(1, SeqCst);
                    extensions.insert(ConnectionGuard(counted.clone()));
                })
                .workers(2)
                .shutdown_timeout(0)
                .disable_signals()
                .bind(addr)
                .expect("mock relay binds");
                let bound = server.addrs()[0];
                let server = server.run();
                tx.send((bound, server.handle())).unwrap();
                let _ = server.await;
            });
        });
        let (addr, handle) = rx.recv().expect("mock relay started");
        Self {
            addr,
            state,
            handle,
            thread: Some(thread),
            connections,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stores `node` as the relay holds it (and answers it), bypassing GUN's write rules: the
    /// shape a publisher's earlier writes left behind.
    pub fn insert(&self, soul: &str, node: Value) {
        self.state
            .nodes
            .lock()
            .unwrap()
            .insert(soul.to_string(), node);
    }

    /// Loads every node of a `{soul: node}` file, like the demo graph.
    pub fn load(&self, path: &std::path::Path) {
        let text = std::fs::read_to_string(path).unwrap();
        let nodes: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
        for (soul, node) in nodes {
            self.insert(&soul, node);
        }
    }

    /// What the indexer answers listings with from now on.
    pub fn set_listing(&self, status: u16, body: Value) {
        *self.state.listing.lock().unwrap() = Some((status, body));
    }

    pub fn listing_queries(&self) -> Vec<String> {
        self.state.listing_queries.lock().unwrap().clone()
    }

    pub fn did_queries(&self) -> Vec<String> {
        self.state.did_queries.lock().unwrap().clone()
    }

    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(SeqCst)
    }

    pub fn gets(&self, soul: &str) -> u64 {
        self.state
            .gets
            .lock()
            .unwrap()
            .get(soul)
            .copied()
            .unwrap_or(0)
    }

    pub fn total_gets(&self) -> u64 {
        self.state.gets.lock().unwrap().values().sum()
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = Some(mode);
    }

    pub fn set_soul_mode(&self, soul: &str, mode: Mode) {
        self.state
            .soul_modes
            .lock()
            .unwrap()
            .insert(soul.to_string(), mode);
    }

    pub fn set_miss_delay(&self, ms: u64) {
        self.state.miss_delay_ms.store(ms, SeqCst);
    }

    pub fn set_fault_percent(&self, percent: u64) {
        self.state.fault_percent.store(percent, SeqCst);
    }

    /// No `/get` is answered before `n` have arrived (or 10 s have passed).
    pub fn set_barrier(&self, n: usize) {
        self.state.barrier.store(n, SeqCst);
    }

    pub fn set_latency(&self, ms: u64) {
        self.state.latency_ms.store(ms, SeqCst);
    }

    /// The relay goes away: its port refuses connections from now on.
    pub fn stop(mut self) -> (SocketAddr, Arc<RelayState>) {
        self.shutdown();
        (self.addr, self.state.clone())
    }

    /// A forced stop returns once the listener is closed, while each worker thread is still
    /// dropping its connections: a keep-alive connection the service pooled could be answered
    /// after `stop`. So this waits until the last one is gone.
    fn shutdown(&mut self) {
        if let Some(thread) = self.thread.take() {
            futures::executor::block_on(self.handle.stop(false));
            let _ = thread.join();
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.connections.load(SeqCst) > 0 {
                // A second panic while a failed test unwinds would abort the whole binary.
                if Instant::now() > deadline {
                    assert!(
                        std::thread::panicking(),
                        "the mock relay still holds {} connections 10 s after it stopped",
                        self.connections.load(SeqCst)
                    );
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

impl Drop for MockRelay {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A stored node in the relay's shape, as the publisher wrote it: `data` and `oip` as JSON
/// strings, arrays inside `data` as JSON strings too.
pub fn node(data: Value, oip: Value) -> Value {
    let mut data = data;
    if let Value::Object(cats) = &mut data {
        for cat in cats.values_mut() {
            if let Value::Object(fields) = cat {
                for v in fields.values_mut() {
                    if v.is_array() {
                        *v = Value::String(v.to_string());
                    }
                }
            }
        }
    }
    json!({"data": data.to_string(), "oip": oip.to_string(), "meta": {"v": 1}})
}

/// The admin token of `test_config`: writes through the service carry it.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A config for tests: a free loopback port, two workers, quick backoff, quiet access log, the
/// repository's demo data and media (absolute paths, so no config file folder is needed), and
/// `ADMIN_TOKEN`.
pub fn test_config() -> Config {
    let mut c = Config::default();
    c.auth.admin_token = Some(ADMIN_TOKEN.into());
    c.server.bind = "127.0.0.1:0".into();
    c.server.workers = 2;
    c.server.shutdown_timeout_secs = 2;
    c.gun.file = repo_path("data/demo/records.json");
    c.gun.backoff_base_ms = 5;
    c.gun.backoff_max_ms = 20;
    c.media.root = repo_path("data/media");
    c.media.legacy_api_root = repo_path("data/media/web");
    c.media.legacy_static_root = repo_path("data/media/web");
    c.log.access = false;
    c
}

/// `test_config` reading from the relay at `url`. The mock relay has no websocket to broadcast
/// writes on, so the write feed is off: it would only add its connection attempts to the
/// requests the tests count. The real relay's tests turn it on.
pub fn relay_config(url: &str) -> Config {
    test_config().with(|c| {
        c.gun.source = GunSource::Relay;
        c.gun.relay_url = url.to_string();
        c.gun.watch = false;
    })
}

pub trait ConfigExt {
    /// The config with `change` applied: `relay_config(url).with(|c| c.gun.max_attempts = 1)`.
    fn with(self, change: impl FnOnce(&mut Config)) -> Self;
}

impl ConfigExt for Config {
    fn with(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self);
        self
    }
}

/// Anything serving the API on a loopback port: the in-process app or the binary.
pub trait Served {
    fn addr(&self) -> SocketAddr;

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr(), path)
    }
}

/// The application in this process: the same `start` and `app` the binary runs, served by the
/// same server (stall guard included) on a thread of its own, without the signal handling.
pub struct TestApp {
    pub addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestApp {
    pub fn start(config: Config) -> Self {
        config.validate().expect("the test config is valid");
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let sys = actix_web::rt::System::new();
            sys.block_on(async move {
                let started =
                    oip_resolver::start(config, Default::default()).expect("the features start");
                let config = &started.shared.config;
                let mut settings = oip_resolver::server::Settings::new(config);
                settings.handle_signals = false;
                let bind = config.bind_addr().expect("a valid bind address");
                let listener = std::net::TcpListener::bind(bind).expect("a free port");
                let running = oip_resolver::server::start(listener, settings, {
                    let shared = started.shared.clone();
                    move || oip_resolver::app(shared.clone())
                })
                .expect("the test app binds");
                tx.send((running.addr, running.server.handle())).unwrap();
                let _ = running.server.await;
                for thread in &started.threads {
                    thread.stop();
                }
            });
        });
        let (addr, handle) = rx.recv().expect("the test app started");
        Self {
            addr,
            handle,
            thread: Some(thread),
        }
    }
}

impl Served for TestApp {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            futures::executor::block_on(self.handle.stop(false));
            let _ = thread.join();
        }
    }
}

/// The real binary, for what needs a process of its own: signals, log lines, descriptor and
/// memory counts.
pub struct Service {
    pub addr: SocketAddr,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Service {
    /// Starts the binary with `config` written as its config file.
    pub fn start(config: &Config) -> Self {
        Self::try_start(config).unwrap_or_else(|lines| panic!("service did not start:\n{lines}"))
    }

    pub fn try_start(config: &Config) -> Result<Self, String> {
        Self::try_start_with_env(config, &[])
    }

    /// Starts the binary with `config` and the variables `env` set, as an operator's container
    /// would.
    pub fn try_start_with_env(config: &Config, env: &[(&str, &str)]) -> Result<Self, String> {
        let yaml = yaml_serde::to_string(config).expect("a config serialises");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, yaml).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_oip-resolver"))
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info")
            .env_remove("GUN_PEERS")
            .env_remove("JWT_SECRET")
            .env_remove("PORT")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(addr.trim().to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => Ok(Self {
                addr: addr.parse().unwrap(),
                child,
                lines,
                _dir: dir,
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(lines.lock().unwrap().join("\n"))
            }
        }
    }

    pub fn log(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits up to `within` for a log line containing `needle`.
    pub fn wait_for_line(&self, needle: &str, within: Duration) -> Option<String> {
        self.wait_for_line_after(0, needle, within)
    }

    /// The same, among the lines after the first `skip` (`log().len()` taken earlier).
    pub fn wait_for_line_after(
        &self,
        skip: usize,
        needle: &str,
        within: Duration,
    ) -> Option<String> {
        let end = Instant::now() + within;
        loop {
            if let Some(l) = self
                .log()
                .into_iter()
                .skip(skip)
                .find(|l| l.contains(needle))
            {
                return Some(l);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (or SIGINT), as an orchestrator stopping the service would.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits up to `within` for the process to exit and returns its status.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Served for Service {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .connector(awc::Connector::new().limit(200))
        .finish()
}

pub struct Reply {
    pub status: u16,
    pub headers: awc::http::header::HeaderMap,
    pub body: bytes::Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
}

pub async fn get(url: impl AsRef<str>) -> Reply {
    send(client().get(url.as_ref())).await
}

pub async fn send(req: awc::ClientRequest) -> Reply {
    let mut res = req.send().await.expect("request sent");
    let body = res.body().limit(64 << 20).await.expect("body read");
    Reply {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body,
    }
}

/// `claims` signed as an HS256 JWT with `secret`, as the OIP apps' tokens are.
pub fn jwt(claims: &Value, secret: &str) -> String {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use hmac::Mac;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{header}.{payload}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{payload}.{signature}")
}

/// `POST {base}/put` of `{"soul", "data": node}`, with `token` as the bearer: the service's put
/// (`base` = its `/gun-relay`) or a relay's own.
pub async fn put_node(base: &str, soul: &str, node: Value, token: Option<&str>) -> Reply {
    let mut req = client()
        .post(format!("{base}/put"))
        .insert_header(("content-type", "application/json"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    send_body(req, json!({"soul": soul, "data": node}).to_string()).await
}

pub async fn send_body(req: awc::ClientRequest, body: impl Into<bytes::Bytes>) -> Reply {
    let mut res = req.send_body(body.into()).await.expect("request sent");
    let body = res.body().limit(64 << 20).await.expect("body read");
    Reply {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body,
    }
}

/// The value of one sample line of `/metrics`, e.g. `oip_negative_cache_hits_total`.
pub async fn metric(service: &impl Served, sample: &str) -> Option<f64> {
    let text = get(&service.url("/metrics")).await;
    sample_value(&String::from_utf8_lossy(&text.body), sample)
}

/// The value of one sample line of a Prometheus text, e.g. `oip_media_active_streams` or
/// `oip_media_streams_total{outcome="aborted"}`.
pub fn sample_value(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

/// The same, scraped over a fresh connection (no pooled connection is left open, so descriptor
/// counts stay exact).
pub fn scrape(addr: SocketAddr, sample: &str) -> Option<f64> {
    let r = raw_request(addr, "GET", "/metrics", &[]);
    sample_value(&String::from_utf8_lossy(&r.body), sample)
}

/// A number from the environment, for the benchmarks' settings.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A relay that misbehaves below HTTP: it speaks raw TCP, so it can cut a body short, drip it,
/// never answer, or answer with something that is not HTTP at all.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// A 200 head announcing 1000 bytes, 20 of them, then the connection closes.
    Truncated,
    /// A 200 head, then one byte of body a second.
    Drip,
    /// Reads the request and never answers.
    Silent,
    /// Answers with bytes that are not HTTP, then closes.
    NotHttp,
    /// Closes the connection as soon as the request arrives.
    Hangup,
}

pub struct FaultRelay {
    pub addr: SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
    pub accepted: Arc<AtomicU64>,
}

impl FaultRelay {
    pub fn start(fault: Fault) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let (stop_flag, count) = (stop.clone(), accepted.clone());
        std::thread::spawn(move || {
            while !stop_flag.load(SeqCst) {
                let Ok((mut s, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                count.fetch_add(1, SeqCst);
                let stop_conn = stop_flag.clone();
                std::thread::spawn(move || {
                    let _ = s.set_nonblocking(false);
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n";
                    match fault {
                        Fault::Truncated => {
                            let _ = s.write_all(head.as_bytes());
                            let _ = s.write_all(b"{\"success\":true,\"da");
                        }
                        Fault::Drip => {
                            let _ = s.write_all(head.as_bytes());
                            for _ in 0..30 {
                                if stop_conn.load(SeqCst) || s.write_all(b" ").is_err() {
                                    break;
                                }
                                std::thread::sleep(Duration::from_secs(1));
                            }
                        }
                        Fault::Silent => {
                            for _ in 0..300 {
                                if stop_conn.load(SeqCst) {
                                    break;
                                }
                                std::thread::sleep(Duration::from_millis(100));
                            }
                        }
                        Fault::NotHttp => {
                            let _ = s.write_all(b"SSH-2.0-OpenSSH\r\n\r\n");
                        }
                        Fault::Hangup => {}
                    }
                });
            }
        });
        Self {
            addr,
            stop,
            accepted,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FaultRelay {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
    }
}

pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// What each of `pid`'s descriptors is: a TCP socket as `tcp <local port> -> <remote port>`
/// (0 when listening), any other socket as `socket`, everything else as its link (a file's
/// path, `pipe:[…]`, `anon_inode:[eventpoll]`). Read twice, the two tell what was added.
pub fn descriptors(pid: u32) -> Vec<String> {
    let port_of = |address: Option<&&str>| {
        address
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    let mut tcp = HashMap::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if let (Some(local), Some(remote), Some(inode)) = (
                port_of(fields.get(1)),
                port_of(fields.get(2)),
                fields.get(9),
            ) {
                tcp.insert(
                    format!("socket:[{inode}]"),
                    format!("tcp {local} -> {remote}"),
                );
            }
        }
    }
    let mut all: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|target| {
                    let target = target.to_string_lossy().into_owned();
                    match tcp.get(&target) {
                        Some(described) => described.clone(),
                        None if target.starts_with("socket:") => "socket".into(),
                        None => target,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    all.sort();
    all
}

pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A request written by hand (`Connection: close`, and `Content-Length` when there is a body):
/// the target reaches the server exactly as typed.
pub fn request_bytes(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    let mut bytes = r.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// One request written by hand on a fresh connection, read to the end.
pub fn raw_request(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Raw {
    raw_send(
        addr,
        &request_bytes(method, target, headers, b""),
        method == "HEAD",
    )
}

/// A connection with `GET target` sent and nothing read yet: for clients that read slowly, stop
/// reading, or go away mid-body.
pub fn open_get(addr: SocketAddr, target: &str) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(&request_bytes("GET", target, &[], b""))
        .unwrap();
    s
}

/// A player's `GET target` (keep-alive, as players keep their connection) from a client whose
/// receive window is a few KB, as over a slow link: the server's writes stall after a few KB
/// whatever the size of the body, and what it handed the connection beyond that stays pinned.
pub fn open_get_small_window(addr: SocketAddr, target: &str) -> std::net::TcpStream {
    use rustix::net::{connect, socket, sockopt, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    sockopt::set_socket_recv_buffer_size(&fd, 4096).unwrap();
    connect(&fd, &addr).unwrap();
    let mut s = std::net::TcpStream::from(fd);
    s.write_all(format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .unwrap();
    s
}

/// Sends `request` exactly as given and reads the answer until the server closes.
pub fn raw_send(addr: SocketAddr, request: &[u8], head: bool) -> Raw {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may answer (and close) before reading everything: a refusal is still read.
    let _ = s.write_all(request);
    let mut all = Vec::new();
    if let Err(e) = s.read_to_end(&mut all) {
        // A short body then says why it is short: reset, timed out, or closed by the server.
        eprintln!(
            "raw_send: reading the answer failed after {} bytes: {e}",
            all.len()
        );
    }
    parse_raw(&all, head)
}

fn parse_raw(all: &[u8], head: bool) -> Raw {
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(all)));
    let head_text = String::from_utf8_lossy(&all[..split]).to_string();
    let mut lines = head_text.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = match (head, chunked) {
        (true, _) => Vec::new(),
        (false, true) => dechunk(&all[split + 4..]),
        (false, false) => all[split + 4..].to_vec(),
    };
    Raw {
        status,
        headers,
        body,
    }
}

/// The payload of a `Transfer-Encoding: chunked` body.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("a hexadecimal chunk size");
        rest = &rest[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Whether Chromium is here for `test` to run; if not, the test says SKIPPED and why, except
/// under CI, where a browser test skipped would pass unseen: there it fails.
pub fn chromium_present(test: &str) -> bool {
    if Command::new("chromium").arg("--version").output().is_ok() {
        return true;
    }
    let why = "chromium is not installed (make test installs Debian's package)";
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("SKIPPED {test}: {why}");
    false
}

/// Headless Chromium as this machine's closed network needs it (no background connections, a
/// profile of its own in `profile`), for the browser tests to add their own flags to.
pub fn chromium(profile: &std::path::Path) -> Command {
    let mut command = Command::new("chromium");
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
    command
}
