//! How the fetcher treats a relay in trouble: jittered backoff between attempts, a retry budget so
//! that retries cannot multiply the load of a struggling relay, and a circuit breaker so that a
//! relay that is down costs callers milliseconds, not timeouts.
//!
//! Pure logic, driven by the caller's clock, so it is tested without sleeping.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

/// Full-jitter exponential backoff: a uniform delay in `[0, min(max, base * 2^(retry-1))]`, which
/// spreads the retries of many callers instead of synchronising them.
pub fn backoff(retry: u32, base: Duration, max: Duration, unit_random: f64) -> Duration {
    let exp = base.saturating_mul(
        1u32.checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX),
    );
    exp.min(max).mul_f64(unit_random.clamp(0.0, 1.0))
}

/// A token bucket filled by first attempts and drained by retries: retries can add at most
/// `ratio` of the first attempts, plus a small reserve so a quiet service can still retry.
#[derive(Debug)]
pub struct RetryBudget {
    tokens: f64,
    ratio: f64,
    reserve: f64,
}

impl RetryBudget {
    pub const RESERVE: f64 = 10.0;

    pub fn new(percent: u32) -> Self {
        Self {
            tokens: Self::RESERVE,
            ratio: f64::from(percent) / 100.0,
            reserve: Self::RESERVE,
        }
    }

    pub fn on_first_attempt(&mut self) {
        self.tokens = (self.tokens + self.ratio).min(self.reserve);
    }

    pub fn try_retry(&mut self) -> bool {
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// What a failed attempt says about the relay.
#[derive(Debug, Clone, Copy)]
pub enum Failure<'a> {
    /// No connection, or it broke: no record causes that, so each one counts.
    Connection,
    /// A 5xx, a timeout or a garbled answer for this soul: it may be the record, so a soul
    /// counts once however often it fails.
    Soul(&'a str),
}

/// Opens after `threshold` failures with no success between them, where one soul failing again
/// and again counts once: a record the relay chokes on cannot open the breaker for everyone,
/// while a relay that is down fails every soul, or every connection, and opens it. While open
/// every call fails at once; after `open_for` one probe may go through, and its outcome closes or
/// re-opens the breaker.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    connection_failures: u32,
    failed_souls: HashSet<String>,
    open_until: Option<Instant>,
    probe_in_flight: bool,
}

/// How an outcome moved the breaker, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    Opened,
    Closed,
}

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold,
            open_for,
            connection_failures: 0,
            failed_souls: HashSet::new(),
            open_until: None,
            probe_in_flight: false,
        }
    }

    pub fn state(&self, now: Instant) -> BreakerState {
        match self.open_until {
            None => BreakerState::Closed,
            Some(until) if now < until => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// Asks to send one attempt. In half-open state only one probe at a time is let through.
    pub fn try_acquire(&mut self, now: Instant) -> bool {
        match self.state(now) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen if self.probe_in_flight => false,
            BreakerState::HalfOpen => {
                self.probe_in_flight = true;
                true
            }
        }
    }

    /// The relay answered (any answer that is not its own trouble).
    pub fn on_success(&mut self) -> Transition {
        let was_open = self.open_until.take().is_some();
        self.connection_failures = 0;
        self.failed_souls.clear();
        self.probe_in_flight = false;
        if was_open {
            Transition::Closed
        } else {
            Transition::None
        }
    }

    pub fn on_failure(&mut self, now: Instant, failure: Failure<'_>) -> Transition {
        match failure {
            Failure::Connection => {
                self.connection_failures = self.connection_failures.saturating_add(1)
            }
            // Bounded: past the threshold the breaker is open anyway.
            Failure::Soul(soul) if self.failures() < self.threshold => {
                self.failed_souls.insert(soul.to_string());
            }
            Failure::Soul(_) => {}
        }
        let probing = std::mem::take(&mut self.probe_in_flight);
        let was_closed = self.open_until.is_none();
        if probing || self.failures() >= self.threshold {
            self.open_until = Some(now + self.open_for);
            if was_closed {
                return Transition::Opened;
            }
        }
        Transition::None
    }

    /// Failures since the last success, one per distinct soul.
    pub fn failures(&self) -> u32 {
        self.connection_failures
            .saturating_add(self.failed_souls.len() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn backoff_grows_then_caps_and_jitters() {
        assert_eq!(backoff(1, 100 * MS, 2000 * MS, 1.0), 100 * MS);
        assert_eq!(backoff(2, 100 * MS, 2000 * MS, 1.0), 200 * MS);
        assert_eq!(backoff(3, 100 * MS, 2000 * MS, 1.0), 400 * MS);
        assert_eq!(backoff(10, 100 * MS, 2000 * MS, 1.0), 2000 * MS);
        assert_eq!(backoff(60, 100 * MS, 2000 * MS, 1.0), 2000 * MS);
        assert_eq!(backoff(3, 100 * MS, 2000 * MS, 0.5), 200 * MS);
        assert_eq!(backoff(3, 100 * MS, 2000 * MS, 0.0), Duration::ZERO);
    }

    #[test]
    fn budget_limits_retries_to_a_share_of_first_attempts() {
        let mut b = RetryBudget::new(20);
        let mut retries = 0;
        for _ in 0..1000 {
            b.on_first_attempt();
            if b.try_retry() {
                retries += 1;
            }
        }
        // 20% of 1000 plus at most the reserve.
        assert!(retries <= 200 + RetryBudget::RESERVE as i32, "{retries}");
        assert!(retries >= 190, "{retries}");
    }

    #[test]
    fn breaker_opens_fails_fast_and_probes_once() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, 1000 * MS);
        for soul in ["a:1", "a:2"] {
            assert!(b.try_acquire(t0));
            assert_eq!(b.on_failure(t0, Failure::Soul(soul)), Transition::None);
        }
        assert_eq!(b.state(t0), BreakerState::Closed);
        assert!(b.try_acquire(t0));
        assert_eq!(b.on_failure(t0, Failure::Connection), Transition::Opened);
        assert_eq!(b.state(t0), BreakerState::Open);
        assert!(!b.try_acquire(t0 + 999 * MS));

        let later = t0 + 1000 * MS;
        assert_eq!(b.state(later), BreakerState::HalfOpen);
        assert!(b.try_acquire(later), "one probe goes through");
        assert!(!b.try_acquire(later), "a second caller waits for the probe");
        b.on_failure(later, Failure::Soul("a:1"));
        assert_eq!(
            b.state(later),
            BreakerState::Open,
            "a failed probe re-opens"
        );

        let again = later + 1000 * MS;
        assert!(b.try_acquire(again));
        assert_eq!(b.on_success(), Transition::Closed);
        assert_eq!(b.state(again), BreakerState::Closed);
        assert!(b.try_acquire(again));
    }

    #[test]
    fn success_resets_the_failure_count() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, 1000 * MS);
        b.on_failure(t0, Failure::Connection);
        b.on_failure(t0, Failure::Soul("a:1"));
        assert_eq!(b.on_success(), Transition::None);
        b.on_failure(t0, Failure::Connection);
        b.on_failure(t0, Failure::Soul("a:1"));
        assert_eq!(b.state(t0), BreakerState::Closed);
    }

    #[test]
    fn one_soul_failing_forever_never_opens_it() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, 1000 * MS);
        for _ in 0..1000 {
            assert_eq!(
                b.on_failure(t0, Failure::Soul("poison:1")),
                Transition::None
            );
        }
        assert_eq!(b.state(t0), BreakerState::Closed);
        assert_eq!(b.failures(), 1);
        b.on_failure(t0, Failure::Soul("a:2"));
        assert_eq!(b.on_failure(t0, Failure::Soul("a:3")), Transition::Opened);
    }
}
