//! A leak on purpose, to prove that `make soak` catches one: every Nth answer's body size is
//! allocated, written and kept for good (N from `LEAK_INJECTION_EVERY`, 10 by default). Compiled only
//! with the `leak-injection` feature (`make soak-leak`); no config key or request reaches it.

use std::sync::{
    atomic::{AtomicU64, Ordering::Relaxed},
    Mutex,
};

use actix_web::{
    dev::{Service, ServiceRequest, ServiceResponse},
    http::header,
};
use futures::FutureExt;

static ANSWERS: AtomicU64 = AtomicU64::new(0);
static HELD: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

pub fn hold_every_nth<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    static EVERY: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let every = *EVERY.get_or_init(|| {
        std::env::var("LEAK_INJECTION_EVERY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10)
    });
    srv.call(req).map(move |res| {
        if let Ok(res) = &res {
            if ANSWERS.fetch_add(1, Relaxed) % every.max(1) == 0 {
                let size = res
                    .headers()
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .unwrap_or(16 * 1024_usize)
                    .min(1 << 20);
                HELD.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(vec![0x5a; size]);
            }
        }
        res
    })
}
