//! Calls in flight per session, for the `in_flight_max` budget.
//!
//! Counted in memory on this node: a call is in flight from the moment it is
//! allowed until its [`InFlightGuard`] drops (the proxied upstream answered, or
//! the decision API returned).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Counts of calls in flight, by session id.
#[derive(Debug, Default)]
pub struct InFlight {
    // INVARIANT: an entry exists only while its count is above zero.
    counts: Mutex<HashMap<String, u64>>,
}

/// One call in flight; dropping it ends the call.
#[derive(Debug)]
pub struct InFlightGuard {
    owner: Arc<InFlight>,
    session: String,
}

impl InFlight {
    /// Calls of `session` in flight now.
    pub fn current(&self, session: &str) -> u64 {
        self.counts.lock().map_or(0, |c| c.get(session).copied().unwrap_or(0))
    }

    /// Starts a call of `session` unless `max` calls are already in flight, in which
    /// case it returns `None`.
    pub fn try_enter(self: &Arc<Self>, session: &str, max: Option<u64>) -> Option<InFlightGuard> {
        let mut counts = self.counts.lock().ok()?;
        let count = counts.entry(session.to_owned()).or_insert(0);
        if max.is_some_and(|m| *count >= m) {
            if *count == 0 {
                counts.remove(session);
            }
            return None;
        }
        *count += 1;
        Some(InFlightGuard { owner: Arc::clone(self), session: session.to_owned() })
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.owner.counts.lock()
            && let Some(count) = counts.get_mut(&self.session)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.session);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_of_two_admits_two_until_one_ends() {
        let inflight = Arc::new(InFlight::default());
        let a = inflight.try_enter("sess_a", Some(2));
        let b = inflight.try_enter("sess_a", Some(2));
        assert!(a.is_some() && b.is_some());
        assert!(inflight.try_enter("sess_a", Some(2)).is_none());
        assert!(inflight.try_enter("sess_b", Some(2)).is_some(), "other sessions are not affected");
        drop(a);
        assert_eq!(inflight.current("sess_a"), 1);
        assert!(inflight.try_enter("sess_a", Some(2)).is_some());
        drop(b);
        assert!(inflight.try_enter("sess_a", None).is_some());
    }
}
