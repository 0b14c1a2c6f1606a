//! The real GUN relay (`tests/relay/relay.js` on node, with the `gun` package `make test`
//! installs) as a process of its own, for the tests that check the service against GUN itself.
//! Without node or the package a test says SKIPPED and why; under CI it fails instead.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::repo_path;

/// How a test relay is started: its port (0: any), the GUN peers it syncs with, and a PEM
/// certificate and key to serve HTTPS with.
#[derive(Clone, Default)]
pub struct RelaySetup {
    pub port: u16,
    pub peers: Vec<String>,
    pub tls: Option<(PathBuf, PathBuf)>,
    /// How long a miss takes (300 ms when `None`).
    pub miss_wait_ms: Option<u64>,
    /// GUN's AXE routing, as older relays ran it: writes reach only peers that asked for them.
    pub axe: bool,
}

/// A relay process on its own storage; `stop` and `start_again` keep both port and storage, as
/// a restarted relay would.
pub struct GunRelay {
    child: Option<Child>,
    pub url: String,
    setup: RelaySetup,
    storage: tempfile::TempDir,
}

impl Drop for GunRelay {
    fn drop(&mut self) {
        self.stop();
    }
}

impl GunRelay {
    fn spawn(setup: &RelaySetup, storage: &Path) -> (Child, String) {
        let mut command = Command::new("node");
        command
            .arg(repo_path("tests/relay/relay.js"))
            .arg(storage)
            .env(
                "MISS_WAIT_MS",
                setup.miss_wait_ms.unwrap_or(300).to_string(),
            )
            .env("AXE", if setup.axe { "1" } else { "0" })
            .env("PORT", setup.port.to_string())
            .env("PEERS", setup.peers.join(","))
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some((cert, key)) = &setup.tls {
            command.env("TLS_CERT", cert).env("TLS_KEY", key);
        }
        let mut child = command.spawn().expect("node starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the relay said {line:?}"))
            .to_string();
        (child, url)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn start_again(&mut self) {
        self.stop();
        let port = self.url.rsplit(':').next().unwrap().parse().unwrap();
        let setup = RelaySetup {
            port,
            ..self.setup.clone()
        };
        let (child, url) = Self::spawn(&setup, self.storage.path());
        assert_eq!(url, self.url, "the relay came back on its port");
        self.child = Some(child);
    }

    /// `ws://` form of the relay's GUN peer URL, for another relay's `PEERS`.
    pub fn peer_url(&self) -> String {
        format!("{}/gun", self.url)
    }
}

/// Says why the test skips on the real stderr: the test harness would swallow `eprintln!` of a
/// passing test, and a skip must be seen. Under CI there is no skipping.
fn skip(why: &str) -> Option<GunRelay> {
    if std::env::var_os("CI").is_some() {
        panic!("the real-relay interop test cannot run under CI: {why}");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED gun_relay interop test: {why}");
    None
}

pub fn start_gun_relay() -> Option<GunRelay> {
    start_relay_with(RelaySetup::default())
}

pub fn start_relay_with(setup: RelaySetup) -> Option<GunRelay> {
    if Command::new("node").arg("--version").output().is_err() {
        return skip("node is not installed");
    }
    if !repo_path("tests/relay/node_modules/gun").exists() {
        return skip(
            "the gun package is missing; `make test` installs it into tests/relay/node_modules",
        );
    }
    let storage = tempfile::tempdir().unwrap();
    let (child, url) = GunRelay::spawn(&setup, storage.path());
    Some(GunRelay {
        child: Some(child),
        url,
        setup,
        storage,
    })
}

/// Waits up to 15 s for `/health` to say the write feed is `state`.
pub async fn wait_for_watch(service: &impl super::Served, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let health = super::get(service.url("/health")).await.json();
        if health["watch"] == state {
            return;
        }
        assert!(Instant::now() < deadline, "watch never {state}: {health}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}
