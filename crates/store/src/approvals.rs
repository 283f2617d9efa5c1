//! Approvals: actions held for a human, with their evidence packet, kept beside
//! the log in the same database behind their own narrow trait, [`ApprovalStore`].
//!
//! An approval is decided at most once: [`ApprovalStore::decide_approval`] moves
//! it out of `pending` with a compare-and-set, so two operators (or an operator
//! and the hold's timeout) can never both decide it, even across nodes sharing a
//! database.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::sqlite::SqliteStore;

/// The approvals table; created when the SQLite store opens.
pub(crate) const APPROVAL_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    session_id TEXT NOT NULL,
    packet TEXT NOT NULL,
    evidence_sha256 TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    decided_at INTEGER,
    decided_by TEXT,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS approvals_by_status ON approvals (status, created_at);
";

/// Where an approval is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for an operator.
    Pending,
    /// An operator approved it; the held request proceeds.
    Approved,
    /// An operator denied it; the held request fails.
    Denied,
    /// Nobody decided in time, or the held request is gone; it fails.
    Expired,
}

impl ApprovalStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 4] = [Self::Pending, Self::Approved, Self::Denied, Self::Expired];

    /// The status's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
        }
    }

    /// Parses a status name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// One approval as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// `apr_…`.
    pub id: String,
    /// Where it is in its life.
    pub status: ApprovalStatus,
    /// The session whose request is held.
    pub session_id: String,
    /// The evidence packet, as JSON (the server defines its shape).
    pub packet: serde_json::Value,
    /// `sha256:` of the RFC 8785 canonical packet, as logged with `approval.requested`.
    pub evidence_sha256: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which the hold times out.
    pub expires_at: i64,
    /// Unix seconds, once decided or expired.
    pub decided_at: Option<i64>,
    /// Who decided: an operator id, or `system` for an expiry.
    pub decided_by: Option<String>,
    /// Why, if a reason was given.
    pub reason: Option<String>,
}

/// The decision to write with [`ApprovalStore::decide_approval`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalDecision {
    /// `Approved`, `Denied` or `Expired`.
    pub status: ApprovalStatus,
    /// Unix seconds.
    pub at: i64,
    /// An operator id, or `system`.
    pub by: String,
    /// Why, if known.
    pub reason: Option<String>,
}

/// What [`ApprovalStore::decide_approval`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum DecideResult {
    /// The approval was pending and now carries the decision.
    Decided(ApprovalRecord),
    /// It had already been decided; nothing changed. Holds the record as it is.
    AlreadyDecided(ApprovalRecord),
    /// There is no approval with that id.
    NotFound,
}

/// Persistence of approvals.
///
/// INVARIANT: every write is durable (fsync or equivalent) before it returns `Ok`,
/// and an approval leaves `pending` at most once.
pub trait ApprovalStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores a new approval; its id must be new.
    fn create_approval(&self, approval: &ApprovalRecord) -> Result<(), StoreError>;
    /// One approval.
    fn approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError>;
    /// Approvals with `status` (any status when `None`), newest first, at most `limit`.
    fn approvals(
        &self,
        status: Option<ApprovalStatus>,
        limit: usize,
    ) -> Result<Vec<ApprovalRecord>, StoreError>;
    /// Moves a pending approval to `decision.status`, atomically; see [`DecideResult`].
    fn decide_approval(&self, id: &str, decision: &ApprovalDecision) -> Result<DecideResult, StoreError>;
}

type Row = (String, String, String, String, String, i64, i64, Option<i64>, Option<String>, Option<String>);

const COLUMNS: &str =
    "id, status, session_id, packet, evidence_sha256, created_at, expires_at, decided_at, decided_by, reason";

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
    ))
}

fn to_record(row: Row) -> Result<ApprovalRecord, StoreError> {
    let (
        id,
        status,
        session_id,
        packet,
        evidence_sha256,
        created_at,
        expires_at,
        decided_at,
        decided_by,
        reason,
    ) = row;
    let status = ApprovalStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("approval `{id}` has unknown status `{status}`")))?;
    let packet = serde_json::from_str(&packet)
        .map_err(|e| StoreError::Corrupt(format!("approval `{id}` has an unreadable packet: {e}")))?;
    Ok(ApprovalRecord {
        id,
        status,
        session_id,
        packet,
        evidence_sha256,
        created_at,
        expires_at,
        decided_at,
        decided_by,
        reason,
    })
}

impl ApprovalStore for SqliteStore {
    fn create_approval(&self, a: &ApprovalRecord) -> Result<(), StoreError> {
        let packet = serde_json::to_string(&a.packet)
            .map_err(|e| StoreError::Database(format!("cannot encode an approval: {e}")))?;
        self.with_writer(|c| {
            c.execute(
                "INSERT INTO approvals (id, status, session_id, packet, evidence_sha256, created_at, expires_at,
                 decided_at, decided_by, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    a.id,
                    a.status.as_str(),
                    a.session_id,
                    packet,
                    a.evidence_sha256,
                    a.created_at,
                    a.expires_at,
                    a.decided_at,
                    a.decided_by,
                    a.reason
                ],
            )?;
            Ok(())
        })
    }

    fn approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
        let row = self.with_reader(|c| {
            Ok(c.query_row(&format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"), params![id], read_row)
                .optional()?)
        })?;
        row.map(to_record).transpose()
    }

    fn approvals(
        &self,
        status: Option<ApprovalStatus>,
        limit: usize,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<Row> = self.with_reader(|c| {
            let rows = match status {
                Some(s) => {
                    let mut stmt = c.prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM approvals WHERE status = ?1 ORDER BY created_at DESC, id LIMIT ?2"
                    ))?;
                    stmt.query_map(params![s.as_str(), limit], read_row)?.collect::<Result<_, _>>()?
                }
                None => {
                    let mut stmt = c.prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM approvals ORDER BY created_at DESC, id LIMIT ?1"
                    ))?;
                    stmt.query_map(params![limit], read_row)?.collect::<Result<_, _>>()?
                }
            };
            Ok(rows)
        })?;
        rows.into_iter().map(to_record).collect()
    }

    fn decide_approval(&self, id: &str, d: &ApprovalDecision) -> Result<DecideResult, StoreError> {
        if d.status == ApprovalStatus::Pending {
            return Err(StoreError::Database("an approval cannot be decided back to pending".into()));
        }
        let (changed, row) = self.with_writer(|c| {
            let tx = c.transaction()?;
            let changed = tx.execute(
                "UPDATE approvals SET status = ?2, decided_at = ?3, decided_by = ?4, reason = ?5
                 WHERE id = ?1 AND status = 'pending'",
                params![id, d.status.as_str(), d.at, d.by, d.reason],
            )?;
            let row = tx
                .query_row(&format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"), params![id], read_row)
                .optional()?;
            tx.commit()?;
            Ok((changed, row))
        })?;
        Ok(match (changed, row) {
            (_, None) => DecideResult::NotFound,
            (0, Some(row)) => DecideResult::AlreadyDecided(to_record(row)?),
            (_, Some(row)) => DecideResult::Decided(to_record(row)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, created_at: i64) -> ApprovalRecord {
        ApprovalRecord {
            id: id.into(),
            status: ApprovalStatus::Pending,
            session_id: "sess_a".into(),
            packet: serde_json::json!({"intent": "refund.create"}),
            evidence_sha256: "sha256:00".into(),
            created_at,
            expires_at: created_at + 300,
            decided_at: None,
            decided_by: None,
            reason: None,
        }
    }

    #[test]
    fn an_approval_is_decided_once_and_survives_reopening() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Database(e.to_string()))?;
        let path = dir.path().join("warden.db");
        {
            let store = SqliteStore::open(&path)?;
            store.create_approval(&record("apr_a", 10))?;
            store.create_approval(&record("apr_b", 20))?;
            let approve = ApprovalDecision {
                status: ApprovalStatus::Approved,
                at: 30,
                by: "opr_x".into(),
                reason: None,
            };
            assert!(matches!(store.decide_approval("apr_a", &approve)?, DecideResult::Decided(r)
                if r.status == ApprovalStatus::Approved && r.decided_by.as_deref() == Some("opr_x")));
            let deny = ApprovalDecision {
                status: ApprovalStatus::Denied,
                at: 31,
                by: "opr_y".into(),
                reason: Some("no".into()),
            };
            assert!(matches!(store.decide_approval("apr_a", &deny)?, DecideResult::AlreadyDecided(r)
                if r.status == ApprovalStatus::Approved));
            assert_eq!(store.decide_approval("apr_zz", &deny)?, DecideResult::NotFound);
        }
        let store = SqliteStore::open(&path)?;
        let all = store.approvals(None, 10)?;
        assert_eq!(all.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["apr_b", "apr_a"]);
        let pending = store.approvals(Some(ApprovalStatus::Pending), 10)?;
        assert_eq!(pending.len(), 1);
        assert_eq!(store.approval("apr_a")?.map(|a| a.status), Some(ApprovalStatus::Approved));
        assert_eq!(
            store.approval("apr_b")?.map(|a| a.packet),
            Some(serde_json::json!({"intent": "refund.create"}))
        );
        Ok(())
    }

    #[test]
    fn statuses_round_trip_by_name() {
        for s in ApprovalStatus::ALL {
            assert_eq!(ApprovalStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ApprovalStatus::parse("held"), None);
    }
}
