//! Fleet surge: many sessions reaching one resource class at once, and the circuit
//! breaker that holds new sessions in that class until an operator resets it.
//!
//! An *arrival* is a session touching a class for the first time. Each class counts
//! arrivals in a one-minute window of six 10-second buckets, and keeps its usual
//! arrivals per minute as an exponentially weighted mean of the buckets that leave the
//! window. A window that is both large (`surge_arrivals_min`) and far above usual
//! (`surge_factor`) trips the breaker.

use crate::finding::BreakerState;
use crate::limits::{FLEET_CLASSES_MAX, SURGE_BUCKET_MS, SURGE_BUCKETS};

/// One resource class's arrivals and breaker.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClassState {
    /// The class's interned id.
    pub(crate) class: u32,
    /// Absolute number of the newest bucket (`unix_ms / SURGE_BUCKET_MS`).
    pub(crate) head: i64,
    /// Arrivals per bucket, indexed by bucket number modulo `SURGE_BUCKETS`.
    pub(crate) buckets: [u32; SURGE_BUCKETS],
    /// Usual arrivals per minute.
    pub(crate) usual_per_minute: f32,
    pub(crate) breaker: BreakerState,
}

/// What one arrival did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// Counted; nothing unusual.
    Admitted,
    /// This arrival tripped the breaker.
    Tripped { arrivals: u32, usual_per_minute: u32 },
    /// The breaker was already open: hold the new session.
    Held { since_unix_ms: i64 },
}

/// Every tracked class; a class's position is its fleet slot.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Fleet {
    // INVARIANT: at most FLEET_CLASSES_MAX; a class never moves (sessions hold slot bits).
    pub(crate) classes: Vec<ClassState>,
}

impl Fleet {
    /// The slot of `class`, assigning one if there is room.
    pub(crate) fn slot(&mut self, class: u32) -> Option<usize> {
        if let Some(at) = self.classes.iter().position(|c| c.class == class) {
            return Some(at);
        }
        if self.classes.len() >= FLEET_CLASSES_MAX {
            return None;
        }
        self.classes.push(ClassState {
            class,
            head: 0,
            buckets: [0; SURGE_BUCKETS],
            usual_per_minute: 0.0,
            breaker: BreakerState::Closed,
        });
        Some(self.classes.len() - 1)
    }

    pub(crate) fn state(&self, class: u32) -> BreakerState {
        self.classes.iter().find(|c| c.class == class).map_or(BreakerState::Closed, |c| c.breaker)
    }

    /// Closes the breaker; true if it was open.
    pub(crate) fn reset(&mut self, class: u32) -> bool {
        match self.classes.iter_mut().find(|c| c.class == class) {
            Some(c) if c.breaker != BreakerState::Closed => {
                c.breaker = BreakerState::Closed;
                // The surge that tripped it is over as far as the operator is concerned.
                c.buckets = [0; SURGE_BUCKETS];
                true
            }
            _ => false,
        }
    }

    /// Records a new session reaching the class in `slot` at `now_ms`.
    pub(crate) fn arrive(&mut self, slot: usize, now_ms: i64, min: u32, factor: f32, alpha: f32) -> Arrival {
        let Some(c) = self.classes.get_mut(slot) else { return Arrival::Admitted };
        if let BreakerState::Tripped { since_unix_ms, .. } = c.breaker {
            return Arrival::Held { since_unix_ms };
        }
        c.advance(now_ms.div_euclid(SURGE_BUCKET_MS), alpha);
        let index = c.head.rem_euclid(SURGE_BUCKETS as i64) as usize;
        if let Some(b) = c.buckets.get_mut(index) {
            *b = b.saturating_add(1);
        }
        let arrivals: u32 = c.buckets.iter().fold(0u32, |sum, b| sum.saturating_add(*b));
        if arrivals >= min && arrivals as f32 >= factor * c.usual_per_minute.max(1.0) {
            c.breaker = BreakerState::Tripped { since_unix_ms: now_ms, arrivals };
            return Arrival::Tripped { arrivals, usual_per_minute: c.usual_per_minute.round() as u32 };
        }
        Arrival::Admitted
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.classes.capacity() * size_of::<ClassState>()
    }
}

impl ClassState {
    /// Moves the window so `bucket` is its newest, folding buckets that leave it into
    /// the usual rate (one step per bucket, idle buckets counting as zero).
    fn advance(&mut self, bucket: i64, alpha: f32) {
        if bucket <= self.head {
            return; // late or same-bucket arrivals count in the newest bucket
        }
        let steps = bucket - self.head;
        let fold = steps.min(SURGE_BUCKETS as i64);
        for k in 1..=fold {
            let index = (self.head + k).rem_euclid(SURGE_BUCKETS as i64) as usize;
            if let Some(b) = self.buckets.get_mut(index) {
                let per_minute = *b as f32 * SURGE_BUCKETS as f32;
                self.usual_per_minute += alpha * (per_minute - self.usual_per_minute);
                *b = 0;
            }
        }
        // Idle buckets beyond the window each pull the usual rate towards zero.
        let idle = (steps - fold).min(100_000) as i32;
        self.usual_per_minute *= (1.0 - alpha).powi(idle);
        self.head = bucket;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sudden_crowd_trips_and_reset_closes() {
        let mut fleet = Fleet::default();
        let slot = fleet.slot(7).unwrap_or(usize::MAX);
        // A steady trickle: one arrival a minute for a day.
        for minute in 0..1_440i64 {
            assert_eq!(fleet.arrive(slot, minute * 60_000, 100, 5.0, 0.02), Arrival::Admitted);
        }
        let start = 1_440 * 60_000;
        let mut tripped = None;
        for i in 0..150i64 {
            if let Arrival::Tripped { arrivals, .. } = fleet.arrive(slot, start + i * 100, 100, 5.0, 0.02) {
                tripped = Some((i, arrivals));
                break;
            }
        }
        assert_eq!(tripped.map(|(_, a)| a), Some(100));
        assert!(matches!(fleet.state(7), BreakerState::Tripped { arrivals: 100, .. }));
        assert!(matches!(fleet.arrive(slot, start + 20_000, 100, 5.0, 0.02), Arrival::Held { .. }));
        assert!(fleet.reset(7));
        assert_eq!(fleet.state(7), BreakerState::Closed);
        assert!(!fleet.reset(7));
        assert_eq!(fleet.arrive(slot, start + 30_000, 100, 5.0, 0.02), Arrival::Admitted);
    }
}
