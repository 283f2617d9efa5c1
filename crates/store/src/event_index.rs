//! The event index: one small row per log entry (its index, agent, session, time,
//! kind, intent and outcome), so a replay or a behavioral history reads the
//! entries of one agent or session instead of scanning the log.
//!
//! Kept in a database file of its own beside the log's ([`SqliteEventIndex`]),
//! behind its own narrow trait, [`EventIndex`]. The log is the source of truth:
//! the index is derived from the leaves, its watermark (how many leaves it covers)
//! is committed in the same transaction as its rows, and after a crash it resumes
//! from the watermark.
//!
//! Why a file of its own: indexing a batch takes milliseconds, and while it shared
//! the log's database it held the log's one write lock, so every decision waiting
//! for its group commit waited for the indexer too (measured: appends stalled
//! 3–13 ms behind index batches, the gateway's p99). With its own file the index
//! has its own lock and its own WAL, and its commits need no fsync (what a crash
//! loses is re-derived from the log).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;
use crate::sqlite::Readers;

/// The index file's name, beside the log's database.
pub const EVENT_INDEX_FILE: &str = "events.db";
const BUSY_TIMEOUT_MS: u64 = 5_000;

/// The index table and its indexes.
const EVENT_INDEX_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
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
    /// Drops every row and sets the watermark to 0 (the index is ahead of the
    /// log it was derived from, so it is derived again).
    fn clear(&self) -> Result<(), StoreError>;
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
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row(params![WATERMARK_KEY], |r| r.get(0))
        .optional()?;
    match value {
        None => Ok(0),
        Some(s) => {
            s.parse().map_err(|_| StoreError::Corrupt(format!("event index size `{s}` is not a number")))
        }
    }
}

/// The SQLite implementation of [`EventIndex`], in its own database file.
#[derive(Debug)]
pub struct SqliteEventIndex {
    writer: Mutex<Connection>,
    readers: Readers,
}

impl SqliteEventIndex {
    /// Opens (creating if needed) the index database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let writer = Connection::open(path)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        // Derived data: a commit lost to a crash is re-derived from the log, whose
        // own commits are the durable ones.
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        writer.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
        writer.execute_batch(EVENT_INDEX_SCHEMA)?;
        Ok(Self { writer: Mutex::new(writer), readers: Readers::new(path) })
    }

    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.readers.with(f)
    }
}

impl EventIndex for SqliteEventIndex {
    fn indexed_size(&self) -> Result<u64, StoreError> {
        self.with_reader(watermark)
    }

    fn index_events(&self, from: u64, to: u64, events: &[IndexedEvent]) -> Result<(), StoreError> {
        if to < from || events.iter().any(|e| e.index < from || e.index >= to) {
            return Err(StoreError::Corrupt(format!("index rows outside entries {from}..{to}")));
        }
        let mut conn = self.writer.lock().map_err(|_| StoreError::Closed)?;
        {
            let tx = conn.transaction()?;
            let current = watermark(&tx)?;
            if current != from {
                return Err(StoreError::Corrupt(format!(
                    "indexing from entry {from} but the index covers {current} entries"
                )));
            }
            {
                // Plain INSERT: rows and watermark commit together, so no row at or
                // above the watermark exists, and a conflict would be corruption.
                // (OR REPLACE also made SQLite keep a statement journal per row.)
                let mut insert = tx.prepare_cached(&format!(
                    "INSERT INTO event_index ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
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
                tx.prepare_cached(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![WATERMARK_KEY, to.to_string()])?;
            }
            tx.commit()?;
            Ok(())
        }
    }

    fn clear(&self) -> Result<(), StoreError> {
        let mut conn = self.writer.lock().map_err(|_| StoreError::Closed)?;
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM event_index", [])?;
        tx.execute("DELETE FROM meta WHERE key = ?1", params![WATERMARK_KEY])?;
        tx.commit()?;
        Ok(())
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
        let path = dir.path().join(EVENT_INDEX_FILE);
        {
            let store = SqliteEventIndex::open(&path)?;
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
        let store = SqliteEventIndex::open(&path)?;
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
        store.clear()?;
        assert_eq!(store.indexed_size()?, 0);
        assert!(store.events(&query(EventSubject::Agent("agt_a"), None, None, 6, None, 10))?.is_empty());
        store.index_events(0, 1, &[event(0, "agt_a", "sess_1", 100, "decision")])?;
        Ok(())
    }
}
