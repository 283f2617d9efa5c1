//! The event index, kept up to date from the log.
//!
//! A background task tails the integrated leaves (at most every
//! [`INDEX_TAIL_INTERVAL_MS`]), parses each canonical JSON leaf and files it under
//! its agent and session with its time, kind, intent and outcome. Replay and
//! trust histories also catch the index up on demand (bounded), so what they read
//! covers everything the checkpoint they prove against covers. The watermark is
//! committed with the rows, so after a `kill -9` indexing resumes where the last
//! committed batch ended: the log is the source of truth.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;
use warden_store::StoreError;
use warden_store::directory::Directory;
use warden_store::event_index::{EventIndex, IndexedEvent};
use warden_store::log::Log;

use crate::AppState;

/// How often the background task looks for new leaves.
pub const INDEX_TAIL_INTERVAL_MS: u64 = 250;
/// Leaves indexed per transaction: small, so one batch (about 4 ms at 1,024 rows)
/// is a short burst of CPU and I/O beside sequencing. The index has a database of
/// its own (`warden_store::event_index`), so it never holds the log's write lock.
pub const INDEX_BATCH_LEAVES: u64 = 1_024;
/// Leaves the background tail indexes in one go, before it pauses. Small, because
/// its bursts compete for the same two cores as the requests: at 1,024 (about
/// 4 ms of CPU four times a second) Warden's p99 at 2,000 req/s was +1.67 ms, and
/// +0.54 ms with the tail off (`warden-bench gateway`, one run each, same hour).
pub const INDEX_TAIL_BATCH_LEAVES: u64 = 128;
/// The share of wall time the background tail may spend indexing, percent. The
/// index is derived and its coverage is reported with every replay and history, so
/// under sustained ingestion it lags and catches up when the load drops, rather
/// than take CPU and disk from sequencing: indexing every leaf as it comes cut
/// durable ingestion from ~317,000 to ~50,000 events/s (`warden-bench ingest`).
pub const INDEX_BACKGROUND_SHARE_PERCENT_MAX: u32 = 20;

/// The event index and the task that fills it.
#[derive(Debug)]
pub struct EventIndexer {
    index: Arc<dyn EventIndex>,
    log: Arc<Log>,
    directory: Arc<dyn Directory>,
    // INVARIANT: equals the store's watermark whenever `advance` is not held.
    indexed: AtomicU64,
    /// One indexer at a time: the watermark moves by compare-and-set, and two
    /// would only collide.
    advance: tokio::sync::Mutex<()>,
}

impl EventIndexer {
    /// The indexer over `index`, resuming from its watermark.
    pub fn open(
        index: Arc<dyn EventIndex>,
        log: Arc<Log>,
        directory: Arc<dyn Directory>,
    ) -> Result<Self, StoreError> {
        let mut indexed = index.indexed_size()?;
        let logged = log.sequenced_size();
        if indexed > logged {
            // Derived from another (or a longer, since restored) log: derive it again.
            tracing::warn!(indexed, logged, "the event index covers more than the log; rebuilding it");
            index.clear()?;
            indexed = 0;
        }
        Ok(Self {
            index,
            log,
            directory,
            indexed: AtomicU64::new(indexed),
            advance: tokio::sync::Mutex::new(()),
        })
    }

    /// The index, for queries.
    pub fn index(&self) -> &Arc<dyn EventIndex> {
        &self.index
    }

    /// How many log entries the index covers.
    pub fn indexed_size(&self) -> u64 {
        self.indexed.load(Ordering::Acquire)
    }

    /// Indexes integrated entries up to `target` (or the integrated size, if
    /// smaller), at most `leaves_max` of them; returns the size now covered.
    pub async fn catch_up(self: &Arc<Self>, target: u64, leaves_max: u64) -> Result<u64, StoreError> {
        let target = target.min(self.log.head().size);
        if self.indexed_size() >= target {
            return Ok(self.indexed_size());
        }
        let _one = self.advance.lock().await;
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.index_until(target, leaves_max))
            .await
            .map_err(|e| StoreError::Database(format!("the index task failed: {e}")))?
    }

    fn index_until(&self, target: u64, leaves_max: u64) -> Result<u64, StoreError> {
        let mut from = self.indexed_size();
        let stop = target.min(from.saturating_add(leaves_max));
        while from < stop {
            let to = stop.min(from.saturating_add(INDEX_BATCH_LEAVES));
            let leaves = self.log.store().read_leaves(from, to)?;
            let mut rows: Vec<IndexedEvent> =
                (from..).zip(&leaves).filter_map(|(index, leaf)| extract(index, leaf)).collect();
            for row in &mut rows {
                self.resolve_agent(row);
            }
            self.index.index_events(from, to, &rows)?;
            self.indexed.store(to, Ordering::Release);
            from = to;
        }
        Ok(from)
    }

    /// Administrative events about a session (`session.ended`) name only the
    /// session; the directory knows whose it is.
    fn resolve_agent(&self, row: &mut IndexedEvent) {
        if row.agent.is_some() {
            return;
        }
        if let Some(session) = row.session.as_deref().filter(|s| s.starts_with("sess_"))
            && let Ok(Some((record, _))) = self.directory.session(session)
        {
            row.agent = Some(record.agent_id);
        }
    }
}

/// Starts the task that tails the log into the index; abort the handle to stop it.
pub fn spawn(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(INDEX_TAIL_INTERVAL_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let head = state.log.head().size;
            if state.events.indexed_size() >= head {
                continue;
            }
            // One batch at a time, each followed by a pause that keeps indexing
            // within its share of the time.
            while state.events.indexed_size() < head {
                let started = std::time::Instant::now();
                match state.events.catch_up(head, INDEX_TAIL_BATCH_LEAVES).await {
                    Ok(size) => tracing::debug!(size, "event index advanced"),
                    Err(e) => {
                        tracing::error!(error = %e, "event index not updated");
                        break;
                    }
                }
                let busy = started.elapsed();
                let share = INDEX_BACKGROUND_SHARE_PERCENT_MAX.clamp(1, 100);
                tokio::time::sleep(busy * (100 - share) / share).await;
            }
        }
    })
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn owned(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The agent a leaf is about: the acting agent, else the agent it was done to.
fn agent_of(event: &Value) -> Option<&str> {
    let is_agent = |s: &&str| s.starts_with("agt_");
    str_field(event, "agent_id")
        .or_else(|| str_field(event, "actor").filter(is_agent))
        .or_else(|| str_field(event, "subject").filter(is_agent))
        .or_else(|| event.get("details").and_then(|d| str_field(d, "agent_id")))
}

/// The session a leaf is about.
fn session_of(event: &Value) -> Option<&str> {
    str_field(event, "session_id")
        .or_else(|| str_field(event, "subject").filter(|s| s.starts_with("sess_")))
        .or_else(|| {
            event.get("details").and_then(|d| str_field(d, "session_id").or_else(|| str_field(d, "sid")))
        })
}

/// What the index keeps of the leaf at `index`; `None` for a leaf that is not a
/// JSON object with a `kind` (it is still covered by the watermark).
pub fn extract(index: u64, leaf: &[u8]) -> Option<IndexedEvent> {
    let event: Value = serde_json::from_slice(leaf).ok()?;
    let kind = str_field(&event, "kind")?.to_owned();
    let at_unix_s = str_field(&event, "received_at")
        .and_then(|t| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
        .map_or(0, time::OffsetDateTime::unix_timestamp);
    let (intent, outcome) = match kind.as_str() {
        "decision" => (str_field(&event, "intent"), str_field(&event, "decision")),
        "action" => (str_field(&event, "intent"), str_field(&event, "outcome")),
        "telemetry" => (str_field(&event, "action_type"), str_field(&event, "outcome")),
        "anomaly" => {
            (event.get("details").and_then(|d| str_field(d, "finding")), str_field(&event, "severity"))
        }
        _ => (None, None),
    };
    Some(IndexedEvent {
        index,
        agent: owned(agent_of(&event)),
        session: owned(session_of(&event)),
        at_unix_s,
        kind,
        intent: owned(intent),
        outcome: owned(outcome),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_store::NewLeaf;
    use warden_store::event_index::{EVENT_INDEX_FILE, EventQuery, EventSubject, SqliteEventIndex};
    use warden_store::sqlite::SqliteStore;

    #[tokio::test]
    async fn an_index_ahead_of_its_log_is_derived_again() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Database(e.to_string()))?;
        let store = Arc::new(SqliteStore::open(&dir.path().join("warden.db"))?);
        let log = Arc::new(Log::open(store.clone())?);
        let leaf = br#"{"actor":"agt_a","decision":"allow","intent":"db.read","kind":"decision","received_at":"2026-04-15T01:23:45Z","session_id":"sess_1"}"#;
        log.append(vec![NewLeaf::new(leaf.to_vec(), None)]).await?;
        let index = Arc::new(SqliteEventIndex::open(&dir.path().join(EVENT_INDEX_FILE))?);
        // An index that claims five entries of a log that has one (a restored log,
        // or another data directory's index).
        index.index_events(0, 5, &[])?;
        let indexer = Arc::new(EventIndexer::open(index.clone(), Arc::clone(&log), store)?);
        assert_eq!(indexer.indexed_size(), 0);
        assert_eq!(index.indexed_size()?, 0);
        for _ in 0..200 {
            if log.head().size >= 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(indexer.catch_up(1, 10).await?, 1);
        let rows = index.events(&EventQuery {
            subject: EventSubject::Agent("agt_a"),
            since_unix_s: None,
            until_unix_s: None,
            below_index: 1,
            after: None,
            limit: 10,
        })?;
        assert_eq!(rows.iter().map(|e| e.index).collect::<Vec<_>>(), [0]);
        Ok(())
    }

    #[test]
    fn every_leaf_shape_is_filed_under_its_agent_and_session() {
        let decision = br#"{"actor":"agt_a","decision":"deny","intent":"db.read","kind":"decision","received_at":"2026-04-15T01:23:45Z","session_id":"sess_1","subject":"dec_x"}"#;
        let e = extract(3, decision).unwrap();
        assert_eq!(
            (
                e.agent.as_deref(),
                e.session.as_deref(),
                e.kind.as_str(),
                e.intent.as_deref(),
                e.outcome.as_deref()
            ),
            (Some("agt_a"), Some("sess_1"), "decision", Some("db.read"), Some("deny"))
        );
        assert_eq!(e.at_unix_s, 1_776_216_225);
        let telemetry = br#"{"action_type":"write","agent_id":"agt_b","kind":"telemetry","outcome":"success","received_at":"2026-04-15T01:23:45.5Z","session_id":"sess_2"}"#;
        let e = extract(4, telemetry).unwrap();
        assert_eq!(
            (e.agent.as_deref(), e.intent.as_deref(), e.outcome.as_deref()),
            (Some("agt_b"), Some("write"), Some("success"))
        );
        let anomaly = br#"{"actor":"agt_a","details":{"finding":"new_intent"},"kind":"anomaly","received_at":"2026-04-15T01:23:45Z","severity":"high","subject":"sess_1"}"#;
        let e = extract(5, anomaly).unwrap();
        assert_eq!(
            (e.session.as_deref(), e.intent.as_deref(), e.outcome.as_deref()),
            (Some("sess_1"), Some("new_intent"), Some("high"))
        );
        let registered = br#"{"actor":"opr_x","details":{},"kind":"agent.revoked","received_at":"2026-04-15T01:23:45Z","subject":"agt_c"}"#;
        assert_eq!(extract(6, registered).unwrap().agent.as_deref(), Some("agt_c"));
        let ended =
            br#"{"actor":"opr_x","details":{},"kind":"session.ended","received_at":"x","subject":"sess_9"}"#;
        let e = extract(7, ended).unwrap();
        assert_eq!((e.agent, e.session.as_deref(), e.at_unix_s), (None, Some("sess_9"), 0));
        let placed = br#"{"actor":"opr_x","details":{"agent_id":"agt_d"},"kind":"quarantine.placed","received_at":"2026-04-15T01:23:45Z","subject":"qua_1"}"#;
        assert_eq!(extract(8, placed).unwrap().agent.as_deref(), Some("agt_d"));
        assert_eq!(extract(9, b"not json"), None);
        assert_eq!(extract(9, b"[1]"), None);
    }
}
