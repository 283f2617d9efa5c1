//! Forensics: which sessions an operator put in forensics mode, and the request
//! and response bodies kept for their actions, apart from the log, behind their
//! own narrow trait, [`ForensicStore`].
//!
//! The log keeps only a salted commitment to each pair of bodies (in the action
//! event); the bodies and the salt live here until their retention ends, so the
//! commitment stays checkable by whoever is shown them, and the bodies can be
//! deleted without touching the log.
//!
//! Kept in a database file of its own ([`FORENSICS_FILE`]) beside the log's, like
//! the event index, and for the same reason: a capture is up to two bodies of a
//! megabyte each, and while it is written it would hold the log database's one
//! write lock, so every decision waiting for its group commit would wait for it.
//! Unlike the index, nothing here can be derived again, so commits are fsynced.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;
use crate::sqlite::Readers;

/// The forensics database's file name, beside the log's database.
pub const FORENSICS_FILE: &str = "forensics.db";
/// How long to wait for a lock held by another connection to the same file.
const FORENSICS_BUSY_TIMEOUT_MS: u64 = 5_000;

const FORENSICS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS forensic_sessions (
    session_id TEXT PRIMARY KEY,
    enabled INTEGER NOT NULL,
    reason TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    changed_at INTEGER NOT NULL,
    log_index INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS forensic_captures (
    decision_id TEXT PRIMARY KEY,
    log_index INTEGER NOT NULL UNIQUE,
    session_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    salt BLOB NOT NULL,
    request BLOB NOT NULL,
    request_bytes INTEGER NOT NULL,
    response BLOB NOT NULL,
    response_bytes INTEGER NOT NULL,
    captured_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS forensic_captures_by_session ON forensic_captures (session_id, log_index);
CREATE INDEX IF NOT EXISTS forensic_captures_by_expiry ON forensic_captures (expires_at);
";

/// Whether a session is in forensics mode, and the change that made it so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForensicSetting {
    /// `sess_…`.
    pub session_id: String,
    /// On or off.
    pub enabled: bool,
    /// Why the operator changed it.
    pub reason: String,
    /// The operator who changed it (`opr_…`).
    pub changed_by: String,
    /// Unix seconds.
    pub changed_at: i64,
    /// Log index of the event that recorded the change.
    pub log_index: u64,
}

/// The bodies of one action, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForensicCapture {
    /// The decision that allowed the action (`dec_…`).
    pub decision_id: String,
    /// Log index of the action event that commits to these bodies.
    pub log_index: u64,
    /// `sess_…`.
    pub session_id: String,
    /// `agt_…`.
    pub agent_id: String,
    /// The salt of the commitment.
    pub salt: Vec<u8>,
    /// The kept request bytes (a prefix of the body when it was truncated).
    pub request: Vec<u8>,
    /// Length of the whole request body.
    pub request_bytes: u64,
    /// The kept response bytes.
    pub response: Vec<u8>,
    /// Length of the whole response body, as far as it was delivered.
    pub response_bytes: u64,
    /// Unix seconds.
    pub captured_at: i64,
    /// Unix seconds after which the capture may be deleted.
    pub expires_at: i64,
}

/// One capture without its bodies, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSummary {
    /// `dec_…`.
    pub decision_id: String,
    /// Log index of the action event.
    pub log_index: u64,
    /// Unix seconds.
    pub captured_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Length of the whole request body.
    pub request_bytes: u64,
    /// Bytes of it kept.
    pub request_kept_bytes: u64,
    /// Length of the whole response body.
    pub response_bytes: u64,
    /// Bytes of it kept.
    pub response_kept_bytes: u64,
}

/// How a capture is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureKey<'a> {
    /// By the decision that allowed the action.
    Decision(&'a str),
    /// By the log index of its action event.
    Index(u64),
}

/// Persistence of forensics settings and captures.
///
/// INVARIANT: every write is durable (fsync or equivalent) before it returns
/// `Ok`; a capture, once stored, is never changed, only deleted when it expires.
pub trait ForensicStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores a session's setting, replacing the one before.
    fn set_forensics(&self, setting: &ForensicSetting) -> Result<(), StoreError>;
    /// One session's setting, if it was ever changed.
    fn forensic_setting(&self, session_id: &str) -> Result<Option<ForensicSetting>, StoreError>;
    /// Every session whose forensics is on.
    fn forensic_sessions(&self) -> Result<Vec<ForensicSetting>, StoreError>;
    /// Stores a new capture; its decision id and log index must be new.
    fn put_capture(&self, capture: &ForensicCapture) -> Result<(), StoreError>;
    /// One capture.
    fn capture(&self, key: CaptureKey<'_>) -> Result<Option<ForensicCapture>, StoreError>;
    /// A session's captures by log index, after `after_index`, at most `limit`.
    fn captures_of(
        &self,
        session_id: &str,
        after_index: Option<u64>,
        limit: usize,
    ) -> Result<Vec<CaptureSummary>, StoreError>;
    /// Deletes at most `limit` captures that expired at or before `now_unix_s`;
    /// returns how many.
    fn delete_expired_captures(&self, now_unix_s: i64, limit: usize) -> Result<u64, StoreError>;
}

/// The SQLite implementation of [`ForensicStore`], in its own database file.
#[derive(Debug)]
pub struct SqliteForensicStore {
    writer: Mutex<Connection>,
    readers: Readers,
}

impl SqliteForensicStore {
    /// Opens (creating if needed) the forensics database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let writer = Connection::open(path)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "FULL")?;
        writer.busy_timeout(std::time::Duration::from_millis(FORENSICS_BUSY_TIMEOUT_MS))?;
        writer.execute_batch(FORENSICS_SCHEMA)?;
        Ok(Self { writer: Mutex::new(writer), readers: Readers::new(path) })
    }

    fn with_writer<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let conn = self.writer.lock().map_err(|_| StoreError::Closed)?;
        f(&conn)
    }
}

fn to_i64(n: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Database(format!("{what} {n} is too large")))
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

const SETTING_COLUMNS: &str = "session_id, enabled, reason, changed_by, changed_at, log_index";

fn read_setting(r: &rusqlite::Row<'_>) -> rusqlite::Result<ForensicSetting> {
    Ok(ForensicSetting {
        session_id: r.get(0)?,
        enabled: r.get::<_, i64>(1)? != 0,
        reason: r.get(2)?,
        changed_by: r.get(3)?,
        changed_at: r.get(4)?,
        log_index: to_u64(r.get(5)?),
    })
}

const CAPTURE_COLUMNS: &str = "decision_id, log_index, session_id, agent_id, salt, request, request_bytes, \
                               response, response_bytes, captured_at, expires_at";

fn read_capture(r: &rusqlite::Row<'_>) -> rusqlite::Result<ForensicCapture> {
    Ok(ForensicCapture {
        decision_id: r.get(0)?,
        log_index: to_u64(r.get(1)?),
        session_id: r.get(2)?,
        agent_id: r.get(3)?,
        salt: r.get(4)?,
        request: r.get(5)?,
        request_bytes: to_u64(r.get(6)?),
        response: r.get(7)?,
        response_bytes: to_u64(r.get(8)?),
        captured_at: r.get(9)?,
        expires_at: r.get(10)?,
    })
}

impl ForensicStore for SqliteForensicStore {
    fn set_forensics(&self, s: &ForensicSetting) -> Result<(), StoreError> {
        let log_index = to_i64(s.log_index, "log index")?;
        self.with_writer(|c| {
            c.execute(
                &format!(
                    "INSERT INTO forensic_sessions ({SETTING_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(session_id) DO UPDATE SET enabled = excluded.enabled,
                     reason = excluded.reason, changed_by = excluded.changed_by,
                     changed_at = excluded.changed_at, log_index = excluded.log_index"
                ),
                params![s.session_id, i64::from(s.enabled), s.reason, s.changed_by, s.changed_at, log_index],
            )?;
            Ok(())
        })
    }

    fn forensic_setting(&self, session_id: &str) -> Result<Option<ForensicSetting>, StoreError> {
        self.readers.with(|c| {
            Ok(c.query_row(
                &format!("SELECT {SETTING_COLUMNS} FROM forensic_sessions WHERE session_id = ?1"),
                params![session_id],
                read_setting,
            )
            .optional()?)
        })
    }

    fn forensic_sessions(&self) -> Result<Vec<ForensicSetting>, StoreError> {
        self.readers.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {SETTING_COLUMNS} FROM forensic_sessions WHERE enabled = 1 ORDER BY session_id"
            ))?;
            let rows = stmt.query_map([], read_setting)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn put_capture(&self, k: &ForensicCapture) -> Result<(), StoreError> {
        let log_index = to_i64(k.log_index, "log index")?;
        let request_bytes = to_i64(k.request_bytes, "request length")?;
        let response_bytes = to_i64(k.response_bytes, "response length")?;
        self.with_writer(|c| {
            c.execute(
                &format!(
                    "INSERT INTO forensic_captures ({CAPTURE_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                ),
                params![
                    k.decision_id,
                    log_index,
                    k.session_id,
                    k.agent_id,
                    k.salt,
                    k.request,
                    request_bytes,
                    k.response,
                    response_bytes,
                    k.captured_at,
                    k.expires_at
                ],
            )?;
            Ok(())
        })
    }

    fn capture(&self, key: CaptureKey<'_>) -> Result<Option<ForensicCapture>, StoreError> {
        self.readers.with(|c| {
            let found = match key {
                CaptureKey::Decision(id) => c.query_row(
                    &format!("SELECT {CAPTURE_COLUMNS} FROM forensic_captures WHERE decision_id = ?1"),
                    params![id],
                    read_capture,
                ),
                CaptureKey::Index(index) => c.query_row(
                    &format!("SELECT {CAPTURE_COLUMNS} FROM forensic_captures WHERE log_index = ?1"),
                    params![to_i64(index, "log index")?],
                    read_capture,
                ),
            };
            Ok(found.optional()?)
        })
    }

    fn captures_of(
        &self,
        session_id: &str,
        after_index: Option<u64>,
        limit: usize,
    ) -> Result<Vec<CaptureSummary>, StoreError> {
        let after = after_index.map(|i| to_i64(i, "log index")).transpose()?.unwrap_or(-1);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.readers.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT decision_id, log_index, captured_at, expires_at, request_bytes, length(request),
                 response_bytes, length(response) FROM forensic_captures
                 WHERE session_id = ?1 AND log_index > ?2 ORDER BY log_index LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![session_id, after, limit], |r| {
                Ok(CaptureSummary {
                    decision_id: r.get(0)?,
                    log_index: to_u64(r.get(1)?),
                    captured_at: r.get(2)?,
                    expires_at: r.get(3)?,
                    request_bytes: to_u64(r.get(4)?),
                    request_kept_bytes: to_u64(r.get(5)?),
                    response_bytes: to_u64(r.get(6)?),
                    response_kept_bytes: to_u64(r.get(7)?),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn delete_expired_captures(&self, now_unix_s: i64, limit: usize) -> Result<u64, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_writer(|c| {
            // Bounded, so one sweep never holds the file's write lock for long.
            let n = c.execute(
                "DELETE FROM forensic_captures WHERE decision_id IN
                 (SELECT decision_id FROM forensic_captures WHERE expires_at <= ?1 LIMIT ?2)",
                params![now_unix_s, limit],
            )?;
            Ok(n as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(decision: &str, index: u64, session: &str, expires_at: i64) -> ForensicCapture {
        ForensicCapture {
            decision_id: decision.into(),
            log_index: index,
            session_id: session.into(),
            agent_id: "agt_a".into(),
            salt: vec![7; 32],
            request: b"{\"title\":\"x\"}".to_vec(),
            request_bytes: 13,
            response: b"{\"ok\":tr".to_vec(),
            response_bytes: 11,
            captured_at: 100,
            expires_at,
        }
    }

    fn setting(session: &str, enabled: bool, log_index: u64) -> ForensicSetting {
        ForensicSetting {
            session_id: session.into(),
            enabled,
            reason: "incident 7".into(),
            changed_by: "opr_a".into(),
            changed_at: 50,
            log_index,
        }
    }

    #[test]
    fn settings_are_replaced_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FORENSICS_FILE);
        let store = SqliteForensicStore::open(&path).unwrap();
        assert_eq!(store.forensic_setting("sess_a").unwrap(), None);
        store.set_forensics(&setting("sess_a", true, 3)).unwrap();
        store.set_forensics(&setting("sess_b", true, 4)).unwrap();
        store.set_forensics(&setting("sess_b", false, 5)).unwrap();
        drop(store);
        let store = SqliteForensicStore::open(&path).unwrap();
        let on: Vec<String> = store.forensic_sessions().unwrap().into_iter().map(|s| s.session_id).collect();
        assert_eq!(on, ["sess_a"]);
        assert_eq!(store.forensic_setting("sess_b").unwrap(), Some(setting("sess_b", false, 5)));
    }

    #[test]
    fn captures_are_found_by_decision_or_index_and_listed_without_bodies() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteForensicStore::open(&dir.path().join(FORENSICS_FILE)).unwrap();
        let first = capture("dec_1", 10, "sess_a", 1_000);
        store.put_capture(&first).unwrap();
        store.put_capture(&capture("dec_2", 12, "sess_a", 1_000)).unwrap();
        store.put_capture(&capture("dec_3", 11, "sess_b", 1_000)).unwrap();
        assert_eq!(store.capture(CaptureKey::Decision("dec_1")).unwrap(), Some(first.clone()));
        assert_eq!(store.capture(CaptureKey::Index(10)).unwrap(), Some(first));
        assert_eq!(store.capture(CaptureKey::Decision("dec_9")).unwrap(), None);
        assert_eq!(store.capture(CaptureKey::Index(99)).unwrap(), None);
        let listed = store.captures_of("sess_a", None, 10).unwrap();
        let ids: Vec<&str> = listed.iter().map(|c| c.decision_id.as_str()).collect();
        assert_eq!(ids, ["dec_1", "dec_2"]);
        let first = listed.first().unwrap();
        assert_eq!((first.request_kept_bytes, first.request_bytes), (13, 13));
        assert_eq!((first.response_kept_bytes, first.response_bytes), (8, 11));
        let after: Vec<u64> =
            store.captures_of("sess_a", Some(10), 10).unwrap().iter().map(|c| c.log_index).collect();
        assert_eq!(after, [12]);
        assert_eq!(store.captures_of("sess_a", None, 1).unwrap().len(), 1);
    }

    #[test]
    fn a_capture_is_never_stored_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteForensicStore::open(&dir.path().join(FORENSICS_FILE)).unwrap();
        store.put_capture(&capture("dec_1", 10, "sess_a", 1_000)).unwrap();
        assert!(store.put_capture(&capture("dec_1", 11, "sess_a", 1_000)).is_err(), "same decision");
        assert!(store.put_capture(&capture("dec_2", 10, "sess_a", 1_000)).is_err(), "same log index");
    }

    #[test]
    fn expired_captures_are_deleted_in_bounded_batches() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteForensicStore::open(&dir.path().join(FORENSICS_FILE)).unwrap();
        for i in 0..5 {
            store.put_capture(&capture(&format!("dec_old{i}"), i, "sess_a", 100)).unwrap();
        }
        store.put_capture(&capture("dec_new", 9, "sess_a", 200)).unwrap();
        assert_eq!(store.delete_expired_captures(99, 10).unwrap(), 0, "nothing has expired yet");
        assert_eq!(store.delete_expired_captures(100, 3).unwrap(), 3, "at most the limit");
        assert_eq!(store.delete_expired_captures(150, 10).unwrap(), 2);
        let left: Vec<String> =
            store.captures_of("sess_a", None, 10).unwrap().into_iter().map(|c| c.decision_id).collect();
        assert_eq!(left, ["dec_new"]);
    }
}
