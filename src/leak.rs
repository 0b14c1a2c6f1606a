//! A leak on purpose, to prove that `make soak` catches one: every Nth answer's body size is
//! allocated, written and kept for good (N from `LEAK_INJECTION_EVERY`, 10 by default). Compiled only
//! with the `leak-injection` feature (`make soak-leak`), into the binary alone; no config key
//! or request reaches it.

use std::sync::{
    atomic::{AtomicU64, Ordering::Relaxed},
    Mutex, OnceLock,
};

static ANSWERS: AtomicU64 = AtomicU64::new(0);
static HELD: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// The service's hook for every answer: keeps a copy of every Nth one's size (16 KB when the
/// size is not known, 1 MB at most).
pub fn hold_every_nth(size: Option<u64>) {
    static EVERY: OnceLock<u64> = OnceLock::new();
    let every = *EVERY.get_or_init(|| {
        std::env::var("LEAK_INJECTION_EVERY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10)
    });
    if ANSWERS.fetch_add(1, Relaxed) % every.max(1) == 0 {
        let size = size.map_or(16 * 1024, |n| n as usize).min(1 << 20);
        HELD.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(vec![0x5a; size]);
    }
}
