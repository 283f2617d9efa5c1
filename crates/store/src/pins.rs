//! Pinned MCP tool definitions: the SHA-256 of each upstream tool's canonical
//! definition, first seen = pinned, kept in a small table of its own in the same
//! SQLite file as the log (its own connection, so the directory is untouched).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

/// How long to wait for a lock held by another connection to the same file.
const PIN_BUSY_TIMEOUT_MS: u64 = 5_000;

const PIN_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tool_pins (
    upstream TEXT NOT NULL,
    tool TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    definition TEXT NOT NULL,
    pinned_at INTEGER NOT NULL,
    PRIMARY KEY (upstream, tool)
);
";

/// One pinned definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolPin {
    /// `sha256:<hex>` of the canonical definition.
    pub sha256: String,
    /// The canonical definition (JSON text), for showing what changed.
    pub definition: String,
    /// Unix seconds.
    pub pinned_at: i64,
}

/// The pin table.
#[derive(Debug)]
pub struct PinStore {
    conn: Mutex<Connection>,
}

impl PinStore {
    /// Opens the pin table in the database at `path`, creating it if needed.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_millis(PIN_BUSY_TIMEOUT_MS))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(PIN_SCHEMA)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    /// The pin of `tool` of `upstream`, if any.
    pub fn get(&self, upstream: &str, tool: &str) -> Result<Option<ToolPin>, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Closed)?;
        Ok(conn
            .query_row(
                "SELECT sha256, definition, pinned_at FROM tool_pins WHERE upstream = ?1 AND tool = ?2",
                params![upstream, tool],
                |r| Ok(ToolPin { sha256: r.get(0)?, definition: r.get(1)?, pinned_at: r.get(2)? }),
            )
            .optional()?)
    }

    /// Pins (or re-pins) `tool` of `upstream`.
    pub fn put(&self, upstream: &str, tool: &str, pin: &ToolPin) -> Result<(), StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Closed)?;
        conn.execute(
            "INSERT INTO tool_pins (upstream, tool, sha256, definition, pinned_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(upstream, tool) DO UPDATE SET sha256 = excluded.sha256,
             definition = excluded.definition, pinned_at = excluded.pinned_at",
            params![upstream, tool, pin.sha256, pin.definition, pin.pinned_at],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_put_pins_and_a_second_replaces_it_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let pins = PinStore::open(&path).unwrap();
        assert_eq!(pins.get("mail", "send_email").unwrap(), None);
        let pin = ToolPin { sha256: "sha256:aa".into(), definition: "{}".into(), pinned_at: 1 };
        pins.put("mail", "send_email", &pin).unwrap();
        let repin = ToolPin { sha256: "sha256:bb".into(), definition: "{}".into(), pinned_at: 2 };
        pins.put("mail", "send_email", &repin).unwrap();
        drop(pins);
        let pins = PinStore::open(&path).unwrap();
        assert_eq!(pins.get("mail", "send_email").unwrap(), Some(repin));
        assert_eq!(pins.get("other", "send_email").unwrap(), None);
    }
}
