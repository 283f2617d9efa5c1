//! Recent actions per session, kept in memory for evidence packets: what a
//! session did just before the action an approver is asked about.
//!
//! Bounded twice: at most [`RECENT_ACTIONS_MAX`] actions per session (a ring, the
//! oldest dropped first) and at most [`ACTIVITY_SESSIONS_MAX`] sessions (the one
//! that acted least recently is evicted first). Counted on this node only; the
//! log holds the authoritative, complete history.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;

/// Actions remembered per session.
pub const RECENT_ACTIONS_MAX: usize = 20;
/// Sessions remembered at once.
pub const ACTIVITY_SESSIONS_MAX: usize = 10_000;
/// Longest intent, resource or decision id kept (longer values are cut, on a
/// character boundary), so a session's ring stays small whatever it sends.
const FIELD_CHARS_MAX: usize = 256;

/// One decided action of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecentAction {
    /// The decision's id (`dec_…`).
    pub decision_id: String,
    /// The intent.
    pub intent: String,
    /// The destination's id.
    pub resource: String,
    /// The decision tier: `allow`, `confirm`, `approve` or `deny`.
    pub decision: String,
    /// Unix seconds.
    pub at: i64,
}

#[derive(Debug, Default)]
struct Inner {
    // INVARIANT: `by_age` holds exactly one entry per session in `sessions`, keyed
    // by that session's `touched` stamp.
    sessions: HashMap<String, Ring>,
    by_age: BTreeMap<u64, String>,
    next_stamp: u64,
}

#[derive(Debug)]
struct Ring {
    touched: u64,
    actions: VecDeque<RecentAction>,
}

/// Recent actions of every session this node decided for recently.
#[derive(Debug, Default)]
pub struct Activity {
    inner: Mutex<Inner>,
}

fn cut(s: &str) -> String {
    match s.char_indices().nth(FIELD_CHARS_MAX) {
        Some((at, _)) => s.get(..at).unwrap_or_default().to_owned(),
        None => s.to_owned(),
    }
}

impl Activity {
    /// Remembers one decided action of `session`.
    pub fn record(
        &self,
        session: &str,
        decision_id: &str,
        intent: &str,
        resource: &str,
        decision: &str,
        at: i64,
    ) {
        let action = RecentAction {
            decision_id: cut(decision_id),
            intent: cut(intent),
            resource: cut(resource),
            decision: cut(decision),
            at,
        };
        let Ok(mut inner) = self.inner.lock() else { return };
        let inner = &mut *inner;
        let stamp = inner.next_stamp;
        inner.next_stamp = inner.next_stamp.wrapping_add(1);
        if let Some(ring) = inner.sessions.get_mut(session) {
            inner.by_age.remove(&ring.touched);
            ring.touched = stamp;
            if ring.actions.len() >= RECENT_ACTIONS_MAX {
                ring.actions.pop_front();
            }
            ring.actions.push_back(action);
            inner.by_age.insert(stamp, session.to_owned());
            return;
        }
        while inner.sessions.len() >= ACTIVITY_SESSIONS_MAX {
            let Some((_, oldest)) = inner.by_age.pop_first() else { break };
            inner.sessions.remove(&oldest);
        }
        let mut actions = VecDeque::with_capacity(RECENT_ACTIONS_MAX);
        actions.push_back(action);
        inner.sessions.insert(session.to_owned(), Ring { touched: stamp, actions });
        inner.by_age.insert(stamp, session.to_owned());
    }

    /// The remembered actions of `session`, oldest first.
    pub fn recent(&self, session: &str) -> Vec<RecentAction> {
        self.inner
            .lock()
            .ok()
            .and_then(|inner| inner.sessions.get(session).map(|r| r.actions.iter().cloned().collect()))
            .unwrap_or_default()
    }

    /// How many sessions are remembered.
    pub fn sessions(&self) -> usize {
        self.inner.lock().map_or(0, |inner| inner.sessions.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_actions_of_a_session_in_order() {
        let activity = Activity::default();
        for i in 0..(RECENT_ACTIONS_MAX as i64 + 5) {
            activity.record("sess_a", &format!("dec_{i}"), "ticket.read", "tickets", "allow", i);
        }
        let recent = activity.recent("sess_a");
        assert_eq!(recent.len(), RECENT_ACTIONS_MAX);
        assert_eq!(recent.first().map(|a| a.at), Some(5));
        assert_eq!(recent.last().map(|a| a.decision_id.as_str()), Some("dec_24"));
        assert!(activity.recent("sess_other").is_empty());
    }

    #[test]
    fn evicts_the_session_that_acted_least_recently() {
        let activity = Activity::default();
        for i in 0..ACTIVITY_SESSIONS_MAX {
            activity.record(&format!("sess_{i}"), "dec_x", "ticket.read", "tickets", "allow", 0);
        }
        // sess_0 acts again, so sess_1 is now the oldest.
        activity.record("sess_0", "dec_y", "ticket.read", "tickets", "allow", 1);
        activity.record("sess_new", "dec_z", "ticket.read", "tickets", "allow", 2);
        assert_eq!(activity.sessions(), ACTIVITY_SESSIONS_MAX);
        assert_eq!(activity.recent("sess_0").len(), 2);
        assert!(activity.recent("sess_1").is_empty());
        assert_eq!(activity.recent("sess_new").len(), 1);
    }

    #[test]
    fn long_fields_are_cut() {
        let activity = Activity::default();
        let long = "é".repeat(FIELD_CHARS_MAX * 2);
        activity.record("sess_a", &long, &long, &long, "deny", 0);
        let recent = activity.recent("sess_a");
        assert_eq!(recent.first().map(|a| a.intent.chars().count()), Some(FIELD_CHARS_MAX));
    }
}
