//! CORS proven where it matters, in a browser: a page served from another origin (another
//! loopback port) fetches a resolution and a byte range of media with `fetch`; the same page
//! from an origin not allowed is blocked. Headless Chromium (Debian's package, installed by
//! `make test`); without it the test says SKIPPED, and under CI it fails instead.

mod common;

use std::{net::SocketAddr, sync::mpsc};

use actix_web::{web, App, HttpResponse, HttpServer};
use common::*;

/// A page on `ip` (a free port) that calls the API at `api` and writes what it saw.
fn serve_page(ip: &str, api: SocketAddr) -> (SocketAddr, actix_web::dev::ServerHandle) {
    let page = include_str!("browser_page.html").replace("API_BASE", &format!("http://{api}"));
    let (tx, rx) = mpsc::channel();
    let bind = format!("{ip}:0");
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let page = page.clone();
            let server = HttpServer::new(move || {
                let page = page.clone();
                App::new().route(
                    "/",
                    web::get().to(move || {
                        let page = page.clone();
                        async move { HttpResponse::Ok().content_type("text/html").body(page) }
                    }),
                )
            })
            .workers(1)
            .disable_signals()
            .bind(bind)
            .unwrap();
            let addr = server.addrs()[0];
            let server = server.run();
            tx.send((addr, server.handle())).unwrap();
            let _ = server.await;
        });
    });
    rx.recv().unwrap()
}

/// What the page wrote, after Chromium ran it.
fn run_page(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = chromium(profile.path())
        .args(["--virtual-time-budget=10000", "--dump-dom"])
        .arg(url)
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    let start = dom.find("<pre id=\"out\">").expect("the page's output") + 14;
    let end = dom[start..].find("</pre>").unwrap() + start;
    dom[start..end].to_string()
}

#[test]
fn a_page_on_another_origin_fetches_records_and_ranges_and_others_are_blocked() {
    if !chromium_present("browser test") {
        return;
    }
    let service = TestApp::start(test_config());
    let clip_len = std::fs::metadata(repo_path("data/media/demo-clip/original"))
        .unwrap()
        .len();

    // `http://localhost:*` is allowed by default.
    let (page, allowed) = serve_page("127.0.0.1", service.addr);
    let seen = run_page(&format!("http://localhost:{}/", page.port()));
    assert!(seen.contains("records 200 Leg Day"), "{seen}");
    assert!(
        seen.contains(&format!("media 206 100 bytes 0-99/{clip_len}")),
        "the range and its exposed Content-Range: {seen}"
    );

    // 127.0.0.2 is another origin, not on the list: the browser keeps the answers from it.
    let (page, blocked) = serve_page("127.0.0.2", service.addr);
    let seen = run_page(&format!("http://127.0.0.2:{}/", page.port()));
    assert!(seen.contains("records blocked"), "{seen}");
    assert!(seen.contains("media blocked"), "{seen}");
    for handle in [allowed, blocked] {
        futures::executor::block_on(handle.stop(false));
    }
}
