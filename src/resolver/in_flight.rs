//! The bytes of fresh answers alive at once (`resolver.answers_in_flight_bytes`): assembled and
//! not yet sent. An answer reserves its bytes as it grows; once the budget is spent, its
//! remaining references stay DIDs (reason `budget`). So many clients asking for large answers at
//! once, or asking and not reading, cannot grow the process past the budget: each answer's
//! reservation lives as long as its body. Answers served again from the answer cache share the
//! cache's bytes and reserve nothing.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Reservations are made in units of this many bytes: a large answer takes a few hundred, a
/// small one one.
const UNIT: usize = 64 * 1024;

#[derive(Clone)]
pub struct InFlight(Arc<Semaphore>);

impl InFlight {
    pub fn new(bytes: usize) -> Self {
        Self(Arc::new(Semaphore::new(bytes.div_ceil(UNIT).max(1))))
    }

    pub fn reservation(&self) -> Reservation {
        Reservation {
            budget: self.0.clone(),
            permit: None,
        }
    }

    /// Bytes not reserved by any answer now.
    #[cfg(test)]
    pub fn available(&self) -> usize {
        self.0.available_permits() * UNIT
    }
}

/// What one answer holds of the budget; given back when it is dropped (with the answer's body).
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Reservation {
    fn reserved(&self) -> usize {
        self.permit.as_ref().map_or(0, |p| p.num_permits() * UNIT)
    }

    /// Whether `len` bytes are covered, reserving what is missing; `false` when the budget
    /// cannot cover them now.
    pub fn cover(&mut self, len: usize) -> bool {
        let missing = len.saturating_sub(self.reserved()).div_ceil(UNIT);
        if missing == 0 {
            return true;
        }
        let Ok(more) = self.budget.clone().try_acquire_many_owned(missing as u32) else {
            return false;
        };
        match &mut self.permit {
            Some(permit) => permit.merge(more),
            None => self.permit = Some(more),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_reserve_as_they_grow_and_give_back_when_dropped() {
        let budget = InFlight::new(4 * UNIT);
        let mut first = budget.reservation();
        assert!(first.cover(1));
        assert!(first.cover(UNIT), "still the first unit");
        assert_eq!(budget.available(), 3 * UNIT);
        assert!(first.cover(3 * UNIT));
        let mut second = budget.reservation();
        assert!(second.cover(UNIT));
        assert!(!second.cover(2 * UNIT), "the budget is spent");
        assert!(!first.cover(5 * UNIT));
        drop(first);
        assert_eq!(budget.available(), 3 * UNIT);
        assert!(second.cover(4 * UNIT));
    }
}
