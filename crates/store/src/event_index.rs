//! The event index: one small row per log entry (its index, agent, session, time,
//! kind, intent and outcome), so a replay or a behavioral history reads the
//! entries of one agent or session instead of scanning the log.
//!
//! Kept beside the log in the same database behind its own narrow trait,
//! [`EventIndex`]. The log is the source of truth: the index is derived from the
//! leaves, its watermark (how many leaves it covers) is committed in the same
//! transaction as its rows, and after a crash it resumes from the watermark.

use rusqlite::{OptionalExtension, params};

use crate::StoreError;
use crate::sqlite::SqliteStore;

/// The index table and its indexes; created when the SQLite store opens.
pub(crate) const EVENT_INDEX_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS event_index (
    idx INTEGER PRIMARY KEY,
    agent TEXT,
    session TEXT,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    intent TEXT,
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS event_index_by_agent ON event_index (agent, at, idx) WHERE agent IS NOT NULL;
CREATE INDEX IF NOT EXISTS event_index_by_session ON event_index (session, at, idx) WHERE session IS NOT NULL;
CREATE INDEX IF NOT EXISTS event_index_by_agent_kind ON event_index (agent, kind, idx) WHERE agent IS NOT NULL;
";

/// The `meta` key holding the index's watermark.
const WATERMARK_KEY: &str = "event_index_size";

/// What the index knows of one log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedEvent {
    /// The entry's log index.
    pub index: u64,
    /// The agent it is about, if any.
    pub agent: Option<String>,
    /// The session it is about, if any.
    pub session: Option<String>,
    /// When Warden received it, Unix seconds.
    pub at_unix_s: i64,
    /// The event's `kind` (`decision`, `action`, `telemetry`, `anomaly`, `agent.revoked`, …).
    pub kind: String,
    /// The intent (decisions, actions) or action type (telemetry), if any.
    pub intent: Option<String>,
    /// The decision tier (decisions) or outcome (actions, telemetry), if any.
    pub outcome: Option<String>,
}

/// Whose events to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSubject<'a> {
    /// One agent's.
    Agent(&'a str),
    /// One session's.
    Session(&'a str),
}

/// A page of one agent's or session's events, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery<'a> {
    /// Whose.
    pub subject: EventSubject<'a>,
    /// Received at or after this Unix second.
    pub since_unix_s: Option<i64>,
    /// Received at or before this Unix second.
    pub until_unix_s: Option<i64>,
    /// Only entries below this log index (the size a checkpoint covers).
    pub below_index: u64,
    /// Resume after this `(at, index)`, the last of the previous page.
    pub after: Option<(i64, u64)>,
    /// At most this many.
    pub limit: usize,
}

/// Events of one agent grouped by kind, intent and outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TallyRow {
    /// The kind.
    pub kind: String,
    /// The intent or action type, if any.
    pub intent: Option<String>,
    /// The tier or outcome, if any.
    pub outcome: Option<String>,
    /// How many.
    pub count: u64,
}

/// Persistence of the event index.
///
/// INVARIANT: `index_events` stores its rows and the new watermark in one durable
/// transaction, so the rows present are exactly the entries below the watermark.
pub trait EventIndex: Send + Sync + std::fmt::Debug + 'static {
    /// How many log entries the index covers (entries `0..size`).
    fn indexed_size(&self) -> Result<u64, StoreError>;
    /// Adds the rows of entries `from..to` and moves the watermark from `from` to
    /// `to`; refuses (`Corrupt`) if the watermark is not `from`. Entries without a
    /// row (unparseable leaves) are covered all the same.
    fn index_events(&self, from: u64, to: u64, events: &[IndexedEvent]) -> Result<(), StoreError>;
    /// A page of events; see [`EventQuery`].
    fn events(&self, query: &EventQuery<'_>) -> Result<Vec<IndexedEvent>, StoreError>;
    /// The agent's entries below `below_index`, counted by kind, intent and outcome.
    fn tally(&self, agent: &str, below_index: u64) -> Result<Vec<TallyRow>, StoreError>;
    /// The agent's first entry below `below_index`.
    fn first_event(&self, agent: &str, below_index: u64) -> Result<Option<IndexedEvent>, StoreError>;
    /// The agent's latest entries of `kind` below `below_index`, newest first, at most `limit`.
    fn latest_events(
        &self,
        agent: &str,
        kind: &str,
        below_index: u64,
        limit: usize,
    ) -> Result<Vec<IndexedEvent>, StoreError>;
}

const COLUMNS: &str = "idx, agent, session, at, kind, intent, outcome";

fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{n} does not fit a database integer")))
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IndexedEvent> {
    Ok(IndexedEvent {
        index: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(u64::MAX),
        agent: r.get(1)?,
        session: r.get(2)?,
        at_unix_s: r.get(3)?,
        kind: r.get(4)?,
        intent: r.get(5)?,
        outcome: r.get(6)?,
    })
}

fn watermark(c: &rusqlite::Connection) -> Result<u64, StoreError> {
    let value: Option<String> = c
        .query_row("SELECT value FROM meta WHERE key = ?1", params![WATERMARK_KEY], |r| r.get(0))
        .optional()?;
    match value {
        None => Ok(0),
        Some(s) => {
            s.parse().map_err(|_| StoreError::Corrupt(format!("event index size `{s}` is not a number")))
        }
    }
}

impl EventIndex for SqliteStore {
    fn indexed_size(&self) -> Result<u64, StoreError> {
        self.with_reader(watermark)
    }

    fn index_events(&self, from: u64, to: u64, events: &[IndexedEvent]) -> Result<(), StoreError> {
        if to < from || events.iter().any(|e| e.index < from || e.index >= to) {
            return Err(StoreError::Corrupt(format!("index rows outside entries {from}..{to}")));
        }
        self.with_writer(|conn| {
            // The index is derived from durable leaves and re-derived after a crash
            // from its watermark (committed with the rows), so it need not wait for
            // an fsync; the log's next commit makes it durable.
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            let result = (|| {
                let tx = conn.transaction()?;
                let current = watermark(&tx)?;
                if current != from {
                    return Err(StoreError::Corrupt(format!(
                        "indexing from entry {from} but the index covers {current} entries"
                    )));
                }
                {
                    let mut insert = tx.prepare_cached(&format!(
                        "INSERT OR REPLACE INTO event_index ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                    ))?;
                    for e in events {
                        insert.execute(params![
                            to_i64(e.index)?,
                            e.agent,
                            e.session,
                            e.at_unix_s,
                            e.kind,
                            e.intent,
                            e.outcome
                        ])?;
                    }
                    tx.execute(
                        "INSERT INTO meta (key, value) VALUES (?1, ?2)
                         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        params![WATERMARK_KEY, to.to_string()],
                    )?;
                }
                tx.commit()?;
                Ok(())
            })();
            conn.pragma_update(None, "synchronous", "FULL")?;
            result
        })
    }

    fn events(&self, q: &EventQuery<'_>) -> Result<Vec<IndexedEvent>, StoreError> {
        let (column, who) = match q.subject {
            EventSubject::Agent(a) => ("agent", a),
            EventSubject::Session(s) => ("session", s),
        };
        let (after_at, after_idx) = match q.after {
            Some((at, idx)) => (at, to_i64(idx)?),
            None => (i64::MIN, -1),
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM event_index
             WHERE {column} = ?1 AND at >= ?2 AND at <= ?3 AND idx < ?4 AND (at, idx) > (?5, ?6)
             ORDER BY at, idx LIMIT ?7"
        );
        let args = params![
            who,
            q.since_unix_s.unwrap_or(i64::MIN),
            q.until_unix_s.unwrap_or(i64::MAX),
            to_i64(q.below_index)?,
            after_at,
            after_idx,
            i64::try_from(q.limit).unwrap_or(i64::MAX)
        ];
        self.with_reader(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            Ok(stmt.query_map(args, read_row)?.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn tally(&self, agent: &str, below_index: u64) -> Result<Vec<TallyRow>, StoreError> {
        let below = to_i64(below_index)?;
        self.with_reader(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT kind, intent, outcome, COUNT(*) FROM event_index
                 WHERE agent = ?1 AND idx < ?2 GROUP BY kind, intent, outcome ORDER BY kind, intent, outcome",
            )?;
            let rows = stmt.query_map(params![agent, below], |r| {
                Ok(TallyRow {
                    kind: r.get(0)?,
                    intent: r.get(1)?,
                    outcome: r.get(2)?,
                    count: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn first_event(&self, agent: &str, below_index: u64) -> Result<Option<IndexedEvent>, StoreError> {
        let below = to_i64(below_index)?;
        self.with_reader(|c| {
            let sql = format!(
                "SELECT {COLUMNS} FROM event_index WHERE agent = ?1 AND idx < ?2 ORDER BY idx LIMIT 1"
            );
            Ok(c.query_row(&sql, params![agent, below], read_row).optional()?)
        })
    }

    fn latest_events(
        &self,
        agent: &str,
        kind: &str,
        below_index: u64,
        limit: usize,
    ) -> Result<Vec<IndexedEvent>, StoreError> {
        let below = to_i64(below_index)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_reader(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM event_index WHERE agent = ?1 AND kind = ?2 AND idx < ?3
                 ORDER BY idx DESC LIMIT ?4"
            ))?;
            Ok(stmt
                .query_map(params![agent, kind, below, limit], read_row)?
                .collect::<Result<Vec<_>, _>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(index: u64, agent: &str, session: &str, at: i64, kind: &str) -> IndexedEvent {
        IndexedEvent {
            index,
            agent: Some(agent.into()),
            session: Some(session.into()),
            at_unix_s: at,
            kind: kind.into(),
            intent: Some("ticket.create".into()),
            outcome: Some("allow".into()),
        }
    }

    #[test]
    fn pages_filter_by_subject_time_and_size_and_the_watermark_survives_reopening() -> Result<(), StoreError>
    {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Database(e.to_string()))?;
        let path = dir.path().join("warden.db");
        {
            let store = SqliteStore::open(&path)?;
            assert_eq!(store.indexed_size()?, 0);
            let batch = [
                event(0, "agt_a", "sess_1", 100, "decision"),
                event(1, "agt_b", "sess_2", 100, "decision"),
                event(3, "agt_a", "sess_1", 105, "action"),
            ];
            store.index_events(0, 4, &batch)?;
            assert!(matches!(store.index_events(0, 5, &[]), Err(StoreError::Corrupt(_))), "watermark is 4");
            store.index_events(4, 6, &[event(5, "agt_a", "sess_3", 110, "anomaly")])?;
        }
        let store = SqliteStore::open(&path)?;
        assert_eq!(store.indexed_size()?, 6);
        let query = |subject, since, until, below, after, limit| EventQuery {
            subject,
            since_unix_s: since,
            until_unix_s: until,
            below_index: below,
            after,
            limit,
        };
        let idx = |v: Vec<IndexedEvent>| v.into_iter().map(|e| e.index).collect::<Vec<_>>();
        assert_eq!(
            idx(store.events(&query(EventSubject::Agent("agt_a"), None, None, 6, None, 10))?),
            [0, 3, 5]
        );
        assert_eq!(idx(store.events(&query(EventSubject::Agent("agt_a"), None, None, 5, None, 10))?), [0, 3]);
        assert_eq!(
            idx(store.events(&query(EventSubject::Agent("agt_a"), Some(101), Some(109), 6, None, 10))?),
            [3]
        );
        assert_eq!(idx(store.events(&query(EventSubject::Session("sess_1"), None, None, 6, None, 1))?), [0]);
        assert_eq!(
            idx(store.events(&query(EventSubject::Session("sess_1"), None, None, 6, Some((100, 0)), 10))?),
            [3]
        );
        let tally = store.tally("agt_a", 6)?;
        assert_eq!(
            tally.iter().map(|t| (t.kind.as_str(), t.count)).collect::<Vec<_>>(),
            [("action", 1), ("anomaly", 1), ("decision", 1)]
        );
        assert_eq!(store.first_event("agt_a", 6)?.map(|e| e.index), Some(0));
        assert_eq!(store.first_event("agt_z", 6)?, None);
        assert_eq!(idx(store.latest_events("agt_a", "decision", 6, 5)?), [0]);
        Ok(())
    }
}
