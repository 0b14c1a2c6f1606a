//! Each relay's write feed, as its `Watch` last saw it: read by health, the fetcher and the
//! negative cache, written only by the feeds.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

/// Stored as its discriminant in `FeedStates`; `from_u8` reads it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FeedState {
    /// `gun.watch` is off, or the source is the file.
    Off = 0,
    Down = 1,
    Live = 2,
    /// Connected, but the canary never came back: the relay does not broadcast every write.
    Unsupported = 3,
    /// Not connected yet since start-up: shown as `down`, and its first outcome is logged.
    Connecting = 4,
}

impl FeedState {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedState::Off => "off",
            FeedState::Connecting | FeedState::Down => "down",
            FeedState::Live => "live",
            FeedState::Unsupported => "unsupported",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => FeedState::Down,
            2 => FeedState::Live,
            3 => FeedState::Unsupported,
            4 => FeedState::Connecting,
            _ => FeedState::Off,
        }
    }
}

/// Each relay's feed state, by the relay's position in `gun.relays()`: written by its `Watch`,
/// read by health and the negative cache's messages.
pub struct FeedStates(Vec<AtomicU8>);

impl FeedStates {
    pub fn new(relays: usize, watching: bool) -> Self {
        let initial = if watching {
            FeedState::Connecting
        } else {
            FeedState::Off
        };
        Self((0..relays).map(|_| AtomicU8::new(initial as u8)).collect())
    }

    pub fn get(&self, slot: usize) -> FeedState {
        self.0
            .get(slot)
            .map_or(FeedState::Off, |s| FeedState::from_u8(s.load(Relaxed)))
    }

    pub(super) fn set(&self, slot: usize, state: FeedState) {
        self.0[slot].store(state as u8, Relaxed);
    }

    pub fn any_live(&self) -> bool {
        (0..self.0.len()).any(|i| self.get(i) == FeedState::Live)
    }

    /// The service's view: live while any feed is (relays sync, so one feed sees every write).
    pub fn overall(&self) -> FeedState {
        let states: Vec<FeedState> = (0..self.0.len()).map(|i| self.get(i)).collect();
        let any = |s| states.contains(&s);
        if states.iter().all(|s| *s == FeedState::Off) {
            FeedState::Off
        } else if any(FeedState::Live) {
            FeedState::Live
        } else if any(FeedState::Unsupported) {
            FeedState::Unsupported
        } else {
            FeedState::Down
        }
    }
}
