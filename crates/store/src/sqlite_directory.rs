//! [`Directory`] on the SQLite store: JSON documents keyed by id, and usage
//! counters as columns so budgets are updated atomically.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StoreError;
use crate::directory::{
    AgentRecord, Directory, OperatorRecord, PolicyVersion, Revocation, RevocationKind, SessionRecord, Usage,
};
use crate::sqlite::SqliteStore;

fn to_json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Database(format!("cannot encode a record: {e}")))
}

fn from_json<T: DeserializeOwned>(doc: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("{what} record is unreadable: {e}")))
}

fn kind_name(kind: RevocationKind) -> &'static str {
    match kind {
        RevocationKind::Token => "token",
        RevocationKind::Session => "session",
        RevocationKind::Agent => "agent",
    }
}

fn u64_col(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Directory for SqliteStore {
    fn put_agent(&self, agent: &AgentRecord) -> Result<(), StoreError> {
        let doc = to_json(agent)?;
        self.with_writer(|c| {
            c.execute(
                "INSERT INTO agents (id, doc) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
                params![agent.id, doc],
            )?;
            Ok(())
        })
    }

    fn agent(&self, id: &str) -> Result<Option<AgentRecord>, StoreError> {
        let doc: Option<String> = self.with_reader(|c| {
            Ok(c.query_row("SELECT doc FROM agents WHERE id = ?1", params![id], |r| r.get(0)).optional()?)
        })?;
        doc.map(|d| from_json(&d, "agent")).transpose()
    }

    fn agents(&self, after: Option<&str>, limit: usize) -> Result<Vec<AgentRecord>, StoreError> {
        let docs: Vec<String> = self.with_reader(|c| {
            let mut stmt = c.prepare_cached("SELECT doc FROM agents WHERE id > ?1 ORDER BY id LIMIT ?2")?;
            let rows = stmt.query_map(params![after.unwrap_or(""), limit as i64], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?;
        docs.iter().map(|d| from_json(d, "agent")).collect()
    }

    fn put_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let doc = to_json(session)?;
        self.with_writer(|c| {
            c.execute(
                "INSERT INTO sessions (id, agent_id, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
                params![session.id, session.agent_id, doc],
            )?;
            Ok(())
        })
    }

    fn session(&self, id: &str) -> Result<Option<(SessionRecord, Usage)>, StoreError> {
        let row: Option<(String, i64, i64, i64)> = self.with_reader(|c| {
            Ok(c.query_row(
                "SELECT doc, tool_calls, writes, bytes FROM sessions WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?)
        })?;
        row.map(|(doc, t, w, b)| {
            Ok((
                from_json(&doc, "session")?,
                Usage { tool_calls: u64_col(t), writes: u64_col(w), bytes: u64_col(b) },
            ))
        })
        .transpose()
    }

    fn sessions_of(&self, agent_id: &str) -> Result<Vec<SessionRecord>, StoreError> {
        let docs: Vec<String> = self.with_reader(|c| {
            let mut stmt = c.prepare_cached("SELECT doc FROM sessions WHERE agent_id = ?1 ORDER BY id")?;
            let rows = stmt.query_map(params![agent_id], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?;
        docs.iter().map(|d| from_json(d, "session")).collect()
    }

    fn add_usage(&self, session_id: &str, delta: Usage) -> Result<Usage, StoreError> {
        let as_i64 =
            |n: u64| i64::try_from(n).map_err(|_| StoreError::Database(format!("usage {n} is too large")));
        let (t, w, b) = (as_i64(delta.tool_calls)?, as_i64(delta.writes)?, as_i64(delta.bytes)?);
        self.with_writer(|c| {
            let row: Option<(i64, i64, i64)> = c
                .query_row(
                    "UPDATE sessions SET tool_calls = tool_calls + ?2, writes = writes + ?3, bytes = bytes + ?4
                     WHERE id = ?1 RETURNING tool_calls, writes, bytes",
                    params![session_id, t, w, b],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let (t, w, b) = row.ok_or_else(|| StoreError::Database(format!("no session `{session_id}`")))?;
            Ok(Usage { tool_calls: u64_col(t), writes: u64_col(w), bytes: u64_col(b) })
        })
    }

    fn put_operator(&self, operator: &OperatorRecord) -> Result<(), StoreError> {
        let doc = to_json(operator)?;
        self.with_writer(|c| {
            c.execute(
                "INSERT INTO operators (id, token_sha256, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET doc = excluded.doc, token_sha256 = excluded.token_sha256",
                params![operator.id, operator.token_sha256, doc],
            )?;
            Ok(())
        })
    }

    fn operator_by_token(&self, token_sha256: &str) -> Result<Option<OperatorRecord>, StoreError> {
        let doc: Option<String> = self.with_reader(|c| {
            Ok(c.query_row("SELECT doc FROM operators WHERE token_sha256 = ?1", params![token_sha256], |r| {
                r.get(0)
            })
            .optional()?)
        })?;
        doc.map(|d| from_json(&d, "operator")).transpose()
    }

    fn operator_count(&self) -> Result<u64, StoreError> {
        self.with_reader(|c| Ok(u64_col(c.query_row("SELECT COUNT(*) FROM operators", [], |r| r.get(0))?)))
    }

    fn push_policy(&self, version: &PolicyVersion) -> Result<(), StoreError> {
        let doc = to_json(version)?;
        self.with_writer(|c| {
            let tx = c.transaction()?;
            let latest: Option<i64> = tx.query_row("SELECT MAX(version) FROM policies", [], |r| r.get(0))?;
            let expected = latest.map_or(1, |v| u64_col(v) + 1);
            if version.version != expected {
                return Err(StoreError::Database(format!(
                    "policy version {} was pushed concurrently; the next version is {expected}",
                    version.version
                )));
            }
            tx.execute(
                "INSERT INTO policies (version, doc) VALUES (?1, ?2)",
                params![version.version as i64, doc],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn policy(&self, version: u64) -> Result<Option<PolicyVersion>, StoreError> {
        let doc: Option<String> = self.with_reader(|c| {
            Ok(c.query_row("SELECT doc FROM policies WHERE version = ?1", params![version as i64], |r| {
                r.get(0)
            })
            .optional()?)
        })?;
        doc.map(|d| from_json(&d, "policy")).transpose()
    }

    fn policy_history(&self, limit: usize) -> Result<Vec<PolicyVersion>, StoreError> {
        let docs: Vec<String> = self.with_reader(|c| {
            let mut stmt = c.prepare_cached("SELECT doc FROM policies ORDER BY version DESC LIMIT ?1")?;
            let rows = stmt.query_map(params![limit as i64], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?;
        docs.iter().map(|d| from_json(d, "policy")).collect()
    }

    fn add_revocation(&self, revocation: &Revocation) -> Result<(), StoreError> {
        self.with_writer(|c| {
            c.execute(
                "INSERT INTO revocations (kind, id, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(kind, id) DO UPDATE SET at = MAX(at, excluded.at)",
                params![kind_name(revocation.kind), revocation.id, revocation.at],
            )?;
            Ok(())
        })
    }

    fn revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        self.with_reader(|c| {
            let mut stmt = c.prepare_cached("SELECT kind, id, at FROM revocations")?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (kind, id, at) = row?;
                let kind = match kind.as_str() {
                    "token" => RevocationKind::Token,
                    "session" => RevocationKind::Session,
                    "agent" => RevocationKind::Agent,
                    other => return Err(StoreError::Corrupt(format!("unknown revocation kind `{other}`"))),
                };
                out.push(Revocation { kind, id, at });
            }
            Ok(out)
        })
    }
}
