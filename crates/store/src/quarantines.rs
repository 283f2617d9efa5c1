//! Quarantines: temporary denies on an agent or on a resource prefix, kept beside
//! the log in the same database behind their own narrow trait,
//! [`QuarantineStore`].
//!
//! A quarantine ends when it expires or when an operator lifts it early; lifting
//! is a compare-and-set, so it happens at most once even across nodes sharing a
//! database. The server holds the active ones in memory for its per-request check
//! and loads them from here at start.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::sqlite::SqliteStore;

/// The quarantines table; created when the SQLite store opens.
pub(crate) const QUARANTINE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS quarantines (
    id TEXT PRIMARY KEY,
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    lifted_at INTEGER,
    lifted_by TEXT
);
CREATE INDEX IF NOT EXISTS quarantines_by_expiry ON quarantines (expires_at);
";

/// What a quarantine denies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum QuarantineTarget {
    /// Every action of this agent (`agt_…`).
    Agent(String),
    /// Every action on a resource whose id starts with this prefix (`prod/db/`).
    ResourcePrefix(String),
}

impl QuarantineTarget {
    /// `agent` or `resource_prefix`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Agent(_) => "agent",
            Self::ResourcePrefix(_) => "resource_prefix",
        }
    }

    /// The agent id or the prefix.
    pub fn value(&self) -> &str {
        match self {
            Self::Agent(v) | Self::ResourcePrefix(v) => v,
        }
    }

    fn from_parts(kind: &str, value: String) -> Option<Self> {
        match kind {
            "agent" => Some(Self::Agent(value)),
            "resource_prefix" => Some(Self::ResourcePrefix(value)),
            _ => None,
        }
    }
}

/// One quarantine as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineRecord {
    /// `qua_…`.
    pub id: String,
    /// What it denies.
    pub target: QuarantineTarget,
    /// Why, as the operator said it.
    pub reason: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The operator who placed it.
    pub created_by: String,
    /// Unix seconds at which it ends by itself.
    // INVARIANT: `expires_at > created_at`; checked by the server before storing.
    pub expires_at: i64,
    /// Unix seconds, if an operator lifted it early.
    pub lifted_at: Option<i64>,
    /// The operator who lifted it.
    pub lifted_by: Option<String>,
}

impl QuarantineRecord {
    /// True while it denies: not lifted and not yet expired at `now_unix_s`.
    pub fn is_active(&self, now_unix_s: i64) -> bool {
        self.lifted_at.is_none() && now_unix_s < self.expires_at
    }
}

/// What [`QuarantineStore::lift_quarantine`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiftResult {
    /// It was active and is now lifted. Holds the updated record.
    Lifted(QuarantineRecord),
    /// It had already been lifted or had expired; nothing changed.
    AlreadyEnded(QuarantineRecord),
    /// There is no quarantine with that id.
    NotFound,
}

/// Persistence of quarantines.
///
/// INVARIANT: every write is durable (fsync or equivalent) before it returns `Ok`,
/// and a quarantine is lifted at most once.
pub trait QuarantineStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores a new quarantine; its id must be new.
    fn create_quarantine(&self, quarantine: &QuarantineRecord) -> Result<(), StoreError>;
    /// One quarantine.
    fn quarantine(&self, id: &str) -> Result<Option<QuarantineRecord>, StoreError>;
    /// The quarantines active at `now_unix_s`, oldest first.
    fn active_quarantines(&self, now_unix_s: i64) -> Result<Vec<QuarantineRecord>, StoreError>;
    /// Every quarantine, active or ended, newest first, at most `limit`.
    fn quarantines(&self, limit: usize) -> Result<Vec<QuarantineRecord>, StoreError>;
    /// Lifts a quarantine that is active at `at`, atomically; see [`LiftResult`].
    fn lift_quarantine(&self, id: &str, at: i64, by: &str) -> Result<LiftResult, StoreError>;
}

type Row = (String, String, String, String, i64, String, i64, Option<i64>, Option<String>);

const COLUMNS: &str =
    "id, target_kind, target, reason, created_at, created_by, expires_at, lifted_at, lifted_by";

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?))
}

fn to_record(row: Row) -> Result<QuarantineRecord, StoreError> {
    let (id, kind, target, reason, created_at, created_by, expires_at, lifted_at, lifted_by) = row;
    let target = QuarantineTarget::from_parts(&kind, target)
        .ok_or_else(|| StoreError::Corrupt(format!("quarantine `{id}` has unknown target kind `{kind}`")))?;
    Ok(QuarantineRecord { id, target, reason, created_at, created_by, expires_at, lifted_at, lifted_by })
}

fn select(
    c: &rusqlite::Connection,
    sql_tail: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<Row>, StoreError> {
    let mut stmt = c.prepare_cached(&format!("SELECT {COLUMNS} FROM quarantines {sql_tail}"))?;
    let rows = stmt.query_map(args, read_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

impl QuarantineStore for SqliteStore {
    fn create_quarantine(&self, q: &QuarantineRecord) -> Result<(), StoreError> {
        self.with_writer(|c| {
            c.execute(
                &format!("INSERT INTO quarantines ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    q.id,
                    q.target.kind(),
                    q.target.value(),
                    q.reason,
                    q.created_at,
                    q.created_by,
                    q.expires_at,
                    q.lifted_at,
                    q.lifted_by
                ],
            )?;
            Ok(())
        })
    }

    fn quarantine(&self, id: &str) -> Result<Option<QuarantineRecord>, StoreError> {
        let row = self.with_reader(|c| {
            Ok(c.query_row(
                &format!("SELECT {COLUMNS} FROM quarantines WHERE id = ?1"),
                params![id],
                read_row,
            )
            .optional()?)
        })?;
        row.map(to_record).transpose()
    }

    fn active_quarantines(&self, now_unix_s: i64) -> Result<Vec<QuarantineRecord>, StoreError> {
        let rows = self.with_reader(|c| {
            select(
                c,
                "WHERE lifted_at IS NULL AND expires_at > ?1 ORDER BY created_at, id",
                params![now_unix_s],
            )
        })?;
        rows.into_iter().map(to_record).collect()
    }

    fn quarantines(&self, limit: usize) -> Result<Vec<QuarantineRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows =
            self.with_reader(|c| select(c, "ORDER BY created_at DESC, id LIMIT ?1", params![limit]))?;
        rows.into_iter().map(to_record).collect()
    }

    fn lift_quarantine(&self, id: &str, at: i64, by: &str) -> Result<LiftResult, StoreError> {
        let (changed, row) = self.with_writer(|c| {
            let tx = c.transaction()?;
            let changed = tx.execute(
                "UPDATE quarantines SET lifted_at = ?2, lifted_by = ?3
                 WHERE id = ?1 AND lifted_at IS NULL AND expires_at > ?2",
                params![id, at, by],
            )?;
            let row = tx
                .query_row(&format!("SELECT {COLUMNS} FROM quarantines WHERE id = ?1"), params![id], read_row)
                .optional()?;
            tx.commit()?;
            Ok((changed, row))
        })?;
        Ok(match (changed, row) {
            (_, None) => LiftResult::NotFound,
            (0, Some(row)) => LiftResult::AlreadyEnded(to_record(row)?),
            (_, Some(row)) => LiftResult::Lifted(to_record(row)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, target: QuarantineTarget, created_at: i64, expires_at: i64) -> QuarantineRecord {
        QuarantineRecord {
            id: id.into(),
            target,
            reason: "incident 42".into(),
            created_at,
            created_by: "opr_a".into(),
            expires_at,
            lifted_at: None,
            lifted_by: None,
        }
    }

    #[test]
    fn quarantines_are_active_until_they_expire_or_are_lifted_once() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Database(e.to_string()))?;
        let path = dir.path().join("warden.db");
        {
            let store = SqliteStore::open(&path)?;
            store.create_quarantine(&record("qua_a", QuarantineTarget::Agent("agt_x".into()), 10, 100))?;
            store.create_quarantine(&record(
                "qua_b",
                QuarantineTarget::ResourcePrefix("prod/db/".into()),
                20,
                50,
            ))?;
            let active: Vec<String> = store.active_quarantines(30)?.into_iter().map(|q| q.id).collect();
            assert_eq!(active, ["qua_a", "qua_b"]);
            let active: Vec<String> = store.active_quarantines(50)?.into_iter().map(|q| q.id).collect();
            assert_eq!(active, ["qua_a"], "qua_b expired at 50");
            assert!(matches!(store.lift_quarantine("qua_b", 60, "opr_b")?, LiftResult::AlreadyEnded(_)));
            assert!(matches!(store.lift_quarantine("qua_a", 60, "opr_b")?,
                LiftResult::Lifted(q) if q.lifted_at == Some(60) && q.lifted_by.as_deref() == Some("opr_b")));
            assert!(matches!(store.lift_quarantine("qua_a", 61, "opr_c")?,
                LiftResult::AlreadyEnded(q) if q.lifted_by.as_deref() == Some("opr_b")));
            assert_eq!(store.lift_quarantine("qua_zz", 61, "opr_c")?, LiftResult::NotFound);
        }
        let store = SqliteStore::open(&path)?;
        let active: Vec<String> = store.active_quarantines(30)?.into_iter().map(|q| q.id).collect();
        assert_eq!(active, ["qua_b"], "the lift of qua_a survives reopening");
        let all: Vec<String> = store.quarantines(10)?.into_iter().map(|q| q.id).collect();
        assert_eq!(all, ["qua_b", "qua_a"]);
        assert_eq!(
            store.quarantine("qua_b")?.map(|q| q.target),
            Some(QuarantineTarget::ResourcePrefix("prod/db/".into()))
        );
        Ok(())
    }

    #[test]
    fn a_record_is_active_only_before_its_expiry_and_until_lifted() {
        let mut q = record("qua_a", QuarantineTarget::Agent("agt_x".into()), 10, 100);
        assert!(q.is_active(99));
        assert!(!q.is_active(100));
        q.lifted_at = Some(50);
        assert!(!q.is_active(60));
    }
}
