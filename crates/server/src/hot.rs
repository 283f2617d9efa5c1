//! The directory as the decision path sees it: agents and sessions in memory,
//! written through to the store, with each session's budget usage kept here and
//! reserved before an action is recorded.
//!
//! Why: the decision path runs for every action, and a SQLite read plus a JSON
//! decode per agent and per session (and an fsynced write per allowed action) was
//! most of its cost. Records change only through [`HotDirectory`] (it implements
//! [`Directory`] and is the `AppState::directory`), so the cache is never stale on
//! one node.
//!
//! Usage is durable through the log: an allowed decision's leaf carries a
//! [`warden_store::UsageCharge`] that the store applies in the same transaction
//! as the leaf. In memory, [`SessionEntry::reserve`] checks the budgets and adds
//! the charge under one lock, so two concurrent calls cannot both take the last
//! unit of a budget; a reservation whose decision could not be recorded is
//! released.
//!
//! Bounded: at most [`SESSIONS_CACHED_MAX`] sessions and [`AGENTS_CACHED_MAX`]
//! agents; past that, ended sessions are dropped first, then an arbitrary eighth.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use warden_store::StoreError;
use warden_store::directory::{
    AgentRecord, Budgets, Directory, OperatorRecord, PolicyVersion, Revocation, SessionRecord, SessionStatus,
    Usage,
};

/// Most sessions kept in memory.
pub const SESSIONS_CACHED_MAX: usize = 200_000;
/// Most agents kept in memory.
pub const AGENTS_CACHED_MAX: usize = 200_000;

/// One cached session: its record and its usage (committed plus reserved).
#[derive(Debug)]
pub struct SessionEntry {
    record: RwLock<Arc<SessionRecord>>,
    usage: Mutex<Usage>,
}

/// Which budget would be exceeded by adding `delta` to `usage`.
pub fn over_budget(budgets: &Budgets, usage: Usage, delta: Usage) -> Option<&'static str> {
    let over =
        |max: Option<u64>, used: u64, add: u64| add > 0 && max.is_some_and(|m| used.saturating_add(add) > m);
    if over(budgets.tool_calls_max, usage.tool_calls, delta.tool_calls) {
        return Some("tool_calls_max");
    }
    if over(budgets.writes_max, usage.writes, delta.writes) {
        return Some("writes_max");
    }
    if over(budgets.bytes_max, usage.bytes, delta.bytes) {
        return Some("bytes_max");
    }
    None
}

impl SessionEntry {
    fn new(record: SessionRecord, usage: Usage) -> Self {
        Self { record: RwLock::new(Arc::new(record)), usage: Mutex::new(usage) }
    }

    /// The current record.
    pub fn record(&self) -> Arc<SessionRecord> {
        Arc::clone(&self.record.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Usage so far, including reservations of actions being recorded.
    pub fn usage(&self) -> Usage {
        *self.usage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `delta` unless that would exceed one of `budgets`; returns the budget
    /// that would be exceeded otherwise.
    pub fn reserve(&self, budgets: &Budgets, delta: Usage) -> Result<(), &'static str> {
        let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(budget) = over_budget(budgets, *usage, delta) {
            return Err(budget);
        }
        *usage = usage.plus(delta);
        Ok(())
    }

    /// Adds `delta` whatever the budgets say (usage already spent, such as the
    /// bytes of an answer that has been delivered).
    pub fn charge(&self, delta: Usage) {
        let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        *usage = usage.plus(delta);
    }

    /// Takes back a reservation whose action was not recorded.
    pub fn release(&self, delta: Usage) {
        let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        usage.tool_calls = usage.tool_calls.saturating_sub(delta.tool_calls);
        usage.writes = usage.writes.saturating_sub(delta.writes);
        usage.bytes = usage.bytes.saturating_sub(delta.bytes);
    }
}

/// The write-through cache in front of the store's [`Directory`].
#[derive(Debug)]
pub struct HotDirectory {
    inner: Arc<dyn Directory>,
    agents: RwLock<HashMap<String, Arc<AgentRecord>>>,
    sessions: RwLock<HashMap<String, Arc<SessionEntry>>>,
}

impl HotDirectory {
    /// A cache in front of `inner`, empty until first use.
    pub fn new(inner: Arc<dyn Directory>) -> Self {
        Self { inner, agents: RwLock::new(HashMap::new()), sessions: RwLock::new(HashMap::new()) }
    }

    /// One agent, from memory when it was seen before.
    pub fn agent_arc(&self, id: &str) -> Result<Option<Arc<AgentRecord>>, StoreError> {
        if let Some(a) = self.agents.read().unwrap_or_else(PoisonError::into_inner).get(id) {
            return Ok(Some(Arc::clone(a)));
        }
        let Some(agent) = self.inner.agent(id)? else { return Ok(None) };
        let agent = Arc::new(agent);
        let mut agents = self.agents.write().unwrap_or_else(PoisonError::into_inner);
        shrink(&mut agents, AGENTS_CACHED_MAX, |_| false);
        Ok(Some(Arc::clone(agents.entry(id.to_owned()).or_insert(agent))))
    }

    /// One session's entry, from memory when it was seen before.
    pub fn session_entry(&self, id: &str) -> Result<Option<Arc<SessionEntry>>, StoreError> {
        if let Some(s) = self.sessions.read().unwrap_or_else(PoisonError::into_inner).get(id) {
            return Ok(Some(Arc::clone(s)));
        }
        let Some((record, usage)) = self.inner.session(id)? else { return Ok(None) };
        let entry = Arc::new(SessionEntry::new(record, usage));
        let mut sessions = self.sessions.write().unwrap_or_else(PoisonError::into_inner);
        shrink(&mut sessions, SESSIONS_CACHED_MAX, |e| e.record().status == SessionStatus::Ended);
        // Another caller may have loaded it meanwhile: keep the first, its usage is live.
        Ok(Some(Arc::clone(sessions.entry(id.to_owned()).or_insert(entry))))
    }

    /// Number of cached agents and sessions.
    pub fn cached(&self) -> (usize, usize) {
        (
            self.agents.read().unwrap_or_else(PoisonError::into_inner).len(),
            self.sessions.read().unwrap_or_else(PoisonError::into_inner).len(),
        )
    }
}

/// Makes room for one more entry: drops entries `expendable` says may go, then,
/// if still full, an arbitrary eighth.
fn shrink<V>(map: &mut HashMap<String, V>, max: usize, expendable: impl Fn(&V) -> bool) {
    if map.len() < max {
        return;
    }
    map.retain(|_, v| !expendable(v));
    if map.len() >= max {
        let drop: Vec<String> = map.keys().take(max / 8 + 1).cloned().collect();
        for k in drop {
            map.remove(&k);
        }
    }
}

impl Directory for HotDirectory {
    fn put_agent(&self, agent: &AgentRecord) -> Result<(), StoreError> {
        self.inner.put_agent(agent)?;
        let mut agents = self.agents.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = agents.get_mut(&agent.id) {
            *cached = Arc::new(agent.clone());
        }
        Ok(())
    }

    fn agent(&self, id: &str) -> Result<Option<AgentRecord>, StoreError> {
        Ok(self.agent_arc(id)?.map(|a| (*a).clone()))
    }

    fn agents(&self, after: Option<&str>, limit: usize) -> Result<Vec<AgentRecord>, StoreError> {
        self.inner.agents(after, limit)
    }

    fn put_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.inner.put_session(session)?;
        let sessions = self.sessions.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = sessions.get(&session.id) {
            *entry.record.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(session.clone());
        }
        Ok(())
    }

    fn session(&self, id: &str) -> Result<Option<(SessionRecord, Usage)>, StoreError> {
        Ok(self.session_entry(id)?.map(|e| ((*e.record()).clone(), e.usage())))
    }

    fn sessions_of(&self, agent_id: &str) -> Result<Vec<SessionRecord>, StoreError> {
        self.inner.sessions_of(agent_id)
    }

    fn add_usage(&self, session_id: &str, delta: Usage) -> Result<Usage, StoreError> {
        let total = self.inner.add_usage(session_id, delta)?;
        if let Some(entry) = self.sessions.read().unwrap_or_else(PoisonError::into_inner).get(session_id) {
            entry.charge(delta);
        }
        Ok(total)
    }

    fn put_operator(&self, operator: &OperatorRecord) -> Result<(), StoreError> {
        self.inner.put_operator(operator)
    }

    fn operator_by_token(&self, token_sha256: &str) -> Result<Option<OperatorRecord>, StoreError> {
        self.inner.operator_by_token(token_sha256)
    }

    fn operator_count(&self) -> Result<u64, StoreError> {
        self.inner.operator_count()
    }

    fn push_policy(&self, version: &PolicyVersion) -> Result<(), StoreError> {
        self.inner.push_policy(version)
    }

    fn policy(&self, version: u64) -> Result<Option<PolicyVersion>, StoreError> {
        self.inner.policy(version)
    }

    fn policy_history(&self, limit: usize) -> Result<Vec<PolicyVersion>, StoreError> {
        self.inner.policy_history(limit)
    }

    fn add_revocation(&self, revocation: &Revocation) -> Result<(), StoreError> {
        self.inner.add_revocation(revocation)
    }

    fn revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        self.inner.revocations()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets(calls: u64) -> Budgets {
        Budgets { tool_calls_max: Some(calls), ..Budgets::default() }
    }

    #[test]
    fn reservations_never_exceed_a_budget_under_contention() {
        let entry = Arc::new(SessionEntry::new(
            SessionRecord {
                id: "sess_a".into(),
                agent_id: "agt_a".into(),
                purpose: "p".into(),
                budgets: budgets(1000),
                status: SessionStatus::Active,
                status_reason: None,
                created_at: 0,
                ended_at: None,
            },
            Usage::default(),
        ));
        let one = Usage { tool_calls: 1, writes: 0, bytes: 0 };
        let granted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let entry = Arc::clone(&entry);
                    s.spawn(move || (0..500).filter(|_| entry.reserve(&budgets(1000), one).is_ok()).count())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        assert_eq!(granted, 1000);
        assert_eq!(entry.usage().tool_calls, 1000);
        entry.release(one);
        assert_eq!(entry.usage().tool_calls, 999);
    }

    #[test]
    fn the_budget_named_is_the_one_exceeded() {
        let b = Budgets { writes_max: Some(1), bytes_max: Some(10), ..Budgets::default() };
        let used = Usage { tool_calls: 5, writes: 1, bytes: 0 };
        assert_eq!(over_budget(&b, used, Usage { tool_calls: 1, writes: 1, bytes: 0 }), Some("writes_max"));
        assert_eq!(over_budget(&b, used, Usage { tool_calls: 1, writes: 0, bytes: 11 }), Some("bytes_max"));
        assert_eq!(over_budget(&b, used, Usage { tool_calls: 1, writes: 0, bytes: 10 }), None);
    }
}
