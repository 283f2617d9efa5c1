//! The embedded default store: one SQLite file in WAL mode.
//!
//! One writer connection (sequencing, integration, publishing) and a small pool of
//! read-only connections (proofs, tiles, entries), so readers never wait for a
//! commit's fsync. Sequencing commits with `synchronous=NORMAL`: its WAL frames are
//! written (a crash of the process cannot lose them) and [`Store::sync`] — an
//! fdatasync of the WAL, run by the log's syncer thread beside the writer — makes
//! them durable against power loss. Publishing and every other write commit with
//! `synchronous=FULL`. Integration commits with `synchronous=NORMAL` because it is
//! recomputed from the durable leaves after a crash.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use warden_ledger::Hash;
use warden_ledger::tile::{STORED_TILE_BYTES, TILE_WIDTH, TileKey};

use crate::{ContextRecord, NewLeaf, Store, StoreError, StoredCheckpoint, StoredTile};

/// Read connections kept open for reuse.
const READ_CONNECTIONS_MAX: usize = 8;
/// How long a connection waits on a lock before reporting an error.
const BUSY_TIMEOUT_MS: u64 = 5_000;
/// Page cache per read connection, in KiB (bounded so memory stays flat).
const READ_CACHE_KIB: i64 = 16 * 1024;
/// Page cache of the writer connection, in KiB.
const WRITE_CACHE_KIB: i64 = 64 * 1024;
/// How often the background checkpointer copies the WAL into the database.
const WAL_CHECKPOINT_INTERVAL_MS: u64 = 250;
/// Size the WAL file is truncated back to after a checkpoint.
const WAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;
/// WAL pages (64 MiB, the size the WAL is trimmed back to) after which the writer
/// checkpoints inline; at 4,096 (16 MiB) bulk ingestion checkpointed inline several
/// times a second. The background
/// checkpointer has copied almost all of them by then, so the inline step is
/// short; it is what lets the WAL restart from the top, where commits overwrite
/// the file in place (an fdatasync of an overwrite is ~0.1 ms on the benchmark
/// disk, of an append that grows the file ~2.3 ms).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 16_384;
/// Tile ids pack the level into the top byte; indexes must fit below it.
const TILE_INDEX_LIMIT: u64 = 1 << 56;
/// Page size of new databases. Small, because every commit writes its changed
/// pages whole to the WAL: a decision commit touches the right edge of `entries`
/// and one `sessions` row, 8 KiB at 4 KiB pages against 64 KiB at 32 KiB pages
/// (which had made the WAL grow at 128 MB/s under gateway load). A 16 KiB tile
/// spills into overflow pages read in sequence.
const PAGE_SIZE_BYTES: i64 = 4 * 1024;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries (idx INTEGER PRIMARY KEY, leaf BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tiles (id INTEGER PRIMARY KEY, width INTEGER NOT NULL, hashes BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY, root BLOB NOT NULL, note TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS contexts (
    idx INTEGER PRIMARY KEY, salt BLOB NOT NULL, context BLOB NOT NULL, expires_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS contexts_by_expiry ON contexts (expires_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agents (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, doc TEXT NOT NULL,
    tool_calls INTEGER NOT NULL DEFAULT 0, writes INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS sessions_by_agent ON sessions (agent_id);
CREATE TABLE IF NOT EXISTS operators (id TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS policies (version INTEGER PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS revocations (kind TEXT NOT NULL, id TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (kind, id));
";

/// The SQLite implementation of [`Store`].
#[derive(Debug)]
pub struct SqliteStore {
    writer: Mutex<Connection>,
    /// The write-ahead log beside the database, which [`Store::sync`] flushes.
    wal_path: PathBuf,
    readers: Readers,
    read_only: bool,
    _checkpointer: Option<Checkpointer>,
}

/// Copies the WAL into the database file from its own connection and thread.
///
/// Why: an automatic checkpoint runs inside whichever commit crosses the
/// threshold, and copying tens of MiB then fsyncing the database stalled that
/// commit (and every append waiting behind it) for 100+ ms. A PASSIVE checkpoint
/// never blocks the writer; it keeps the backlog small so the writer's own
/// checkpoint at [`WAL_AUTOCHECKPOINT_PAGES`] has little left to copy.
#[derive(Debug)]
struct Checkpointer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("warden-wal-checkpoint".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Acquire) {
                    std::thread::park_timeout(std::time::Duration::from_millis(WAL_CHECKPOINT_INTERVAL_MS));
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                    }
                }
            })
            .map_err(|e| StoreError::Database(format!("cannot start the WAL checkpointer: {e}")))?;
        Ok(Self { stop, thread: Some(thread) })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// One sequencing transaction: the leaves, their kept contexts and the budget
/// they charge, all or nothing.
fn append_in(conn: &mut Connection, first: u64, leaves: &[NewLeaf]) -> Result<(), StoreError> {
    let conn: &Connection = conn;
    conn.prepare_cached("BEGIN")?.execute([])?;
    let mut open = RollbackUnlessCommitted { conn, committed: false };
    append_statements(conn, first, leaves)?;
    conn.prepare_cached("COMMIT")?.execute([])?;
    open.committed = true;
    Ok(())
}

/// Rolls back a transaction begun by hand (cached `BEGIN`) unless it was
/// committed: on an error and on a panic alike, so nothing of a failed commit
/// stays and the writer connection is left outside any transaction.
struct RollbackUnlessCommitted<'c> {
    conn: &'c Connection,
    committed: bool,
}

impl Drop for RollbackUnlessCommitted<'_> {
    fn drop(&mut self) {
        if !self.committed
            && !self.conn.is_autocommit()
            && let Err(e) = self.conn.execute_batch("ROLLBACK")
        {
            // The next BEGIN reports the transaction still open.
            tracing::error!(error = %e, "cannot roll back a failed sequencing commit");
        }
    }
}

/// The statements of one sequencing transaction, inside it.
fn append_statements(tx: &Connection, first: u64, leaves: &[NewLeaf]) -> Result<(), StoreError> {
    let current = max_idx(tx)?;
    if current != first {
        return Err(StoreError::Corrupt(format!("sequencing at {first} but the log has {current} leaves")));
    }
    {
        let mut insert = tx.prepare_cached("INSERT INTO entries (idx, leaf) VALUES (?1, ?2)")?;
        let mut insert_context = tx.prepare_cached(
            "INSERT INTO contexts (idx, salt, context, expires_at) VALUES (?1, ?2, ?3, ?4)",
        )?;
        // A session that does not exist (deleted meanwhile) is charged nothing.
        let mut charge_usage = tx.prepare_cached(
            "UPDATE sessions SET tool_calls = tool_calls + ?2, writes = writes + ?3, bytes = bytes + ?4
                 WHERE id = ?1",
        )?;
        // One UPDATE per session per commit: a group commit often carries
        // many decisions of one session.
        let mut charges: std::collections::HashMap<&str, crate::directory::Usage> =
            std::collections::HashMap::new();
        for (offset, leaf) in leaves.iter().enumerate() {
            let idx = to_i64(first + offset as u64)?;
            insert.execute(params![idx, leaf.leaf()])?;
            if let Some(c) = leaf.context() {
                insert_context.execute(params![idx, c.salt, c.canonical_context, c.expires_at_unix_s])?;
            }
            if let Some(charge) = leaf.charge() {
                let total = charges.entry(charge.session_id.as_str()).or_default();
                *total = total.plus(charge.usage);
            }
        }
        for (session_id, u) in charges {
            charge_usage.execute(params![
                session_id,
                to_i64(u.tool_calls)?,
                to_i64(u.writes)?,
                to_i64(u.bytes)?
            ])?;
        }
    }
    Ok(())
}

/// Stores a checkpoint unless one is stored for its size; a different root for a
/// stored size is an equivocation.
fn put_checkpoint_in(conn: &mut Connection, cp: &StoredCheckpoint) -> Result<(), StoreError> {
    let tx = conn.transaction()?;

    let size = to_i64(cp.size)?;
    let existing: Option<Vec<u8>> = tx
        .query_row("SELECT root FROM checkpoints WHERE size = ?1", params![size], |r| r.get(0))
        .optional()?;
    match existing {
        Some(root) if root.as_slice() == cp.root.0.as_slice() => return Ok(()),
        Some(_) => return Err(StoreError::Equivocation { size: cp.size }),
        None => {}
    }
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    tx.execute(
        "INSERT INTO checkpoints (size, root, note, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![size, cp.root.0.as_slice(), cp.note, now],
    )?;
    tx.commit()?;
    Ok(())
}

/// SQLite's name for the write-ahead log of the database at `path`.
fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

fn tile_id(key: TileKey) -> Result<i64, StoreError> {
    if key.index >= TILE_INDEX_LIMIT || key.level > 63 {
        return Err(StoreError::Corrupt(format!("tile ({}, {}) is out of range", key.level, key.index)));
    }
    Ok(((i64::from(key.level)) << 56) | key.index as i64)
}

fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{n} does not fit a database integer")))
}

fn hash_from(blob: &[u8], what: &str) -> Result<Hash, StoreError> {
    Hash::from_slice(blob).ok_or_else(|| StoreError::Corrupt(format!("{what} is not a 32-byte hash")))
}

/// A pool of read-only connections to one database file, opened on demand and
/// kept up to [`READ_CONNECTIONS_MAX`].
#[derive(Debug)]
pub(crate) struct Readers {
    path: PathBuf,
    pool: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(crate) fn new(path: &Path) -> Self {
        Self { path: path.to_owned(), pool: Mutex::new(Vec::new()) }
    }

    fn open(path: &Path) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
        conn.pragma_update(None, "cache_size", -READ_CACHE_KIB)?;
        Ok(conn)
    }

    /// Runs `f` on a pooled connection.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.pool.lock().map_err(|_| StoreError::Closed)?.pop();
        let conn = match pooled {
            Some(c) => c,
            None => Self::open(&self.path)?,
        };
        let result = f(&conn);
        if let Ok(mut pool) = self.pool.lock()
            && pool.len() < READ_CONNECTIONS_MAX
        {
            pool.push(conn);
        }
        result
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let writer = Connection::open(path)?;
        // Takes effect only while the database is still empty.
        writer.pragma_update(None, "page_size", PAGE_SIZE_BYTES)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "FULL")?;
        writer.pragma_update(None, "cache_size", -WRITE_CACHE_KIB)?;
        // Checkpoints run on their own thread (`Checkpointer`), never inside a commit
        // that an agent is waiting for.
        writer.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
        writer.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES)?;
        writer.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
        writer.execute_batch(SCHEMA)?;
        writer.execute_batch(crate::approvals::APPROVAL_SCHEMA)?;
        writer.execute_batch(crate::quarantines::QUARANTINE_SCHEMA)?;
        // The event index moved to a database of its own (`event_index`); a data
        // directory from before drops its old copy, which is re-derived from the log.
        writer.execute_batch(
            "DROP TABLE IF EXISTS event_index; DELETE FROM meta WHERE key = 'event_index_size';",
        )?;
        Ok(Self {
            writer: Mutex::new(writer),
            wal_path: wal_path(path),
            readers: Readers::new(path),
            read_only: false,
            _checkpointer: Some(Checkpointer::start(path)?),
        })
    }

    /// Opens an existing database for reading only (auditing a data directory).
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Database(format!("no database at `{}`", path.display())));
        }
        let writer = Readers::open(path)?;
        Ok(Self {
            writer: Mutex::new(writer),
            wal_path: wal_path(path),
            readers: Readers::new(path),
            read_only: true,
            _checkpointer: None,
        })
    }

    pub(crate) fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.readers.with(f)
    }

    pub(crate) fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.read_only {
            return Err(StoreError::Database("store was opened read-only".into()));
        }
        let mut conn = self.writer.lock().map_err(|_| StoreError::Closed)?;
        f(&mut conn)
    }
}

fn max_idx(conn: &Connection) -> Result<u64, StoreError> {
    // Cached: it runs in every group commit, and parsing it each time was 3% of the
    // gateway's CPU.
    let n: Option<i64> = conn.prepare_cached("SELECT MAX(idx) FROM entries")?.query_row([], |r| r.get(0))?;
    Ok(n.map_or(0, |n| n as u64 + 1))
}

fn read_checkpoint(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, Vec<u8>, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

fn to_checkpoint((size, root, note): (i64, Vec<u8>, String)) -> Result<StoredCheckpoint, StoreError> {
    Ok(StoredCheckpoint { size: size as u64, root: hash_from(&root, "checkpoint root")?, note })
}

impl Store for SqliteStore {
    fn append_leaves(&self, first: u64, leaves: &[NewLeaf]) -> Result<(), StoreError> {
        self.with_writer(|conn| {
            // Written, not synced: the commit's WAL frames are in the operating
            // system's cache when it returns, which a crash of this process cannot
            // lose; `sync` (the log's syncer thread) makes them durable against
            // power loss without holding up the next commit.
            // Cached statements: parsing these four each time (the two pragmas,
            // BEGIN and COMMIT) was 3% of the gateway's CPU at saturation.
            conn.prepare_cached("PRAGMA synchronous = NORMAL")?.execute([])?;
            let result = append_in(conn, first, leaves);
            conn.prepare_cached("PRAGMA synchronous = FULL")?.execute([])?;
            result
        })
    }

    fn sync(&self) -> Result<(), StoreError> {
        if self.read_only {
            return Ok(());
        }
        // The WAL is opened by path on every call, not kept open: should SQLite
        // ever delete and recreate it, a kept descriptor would sync a file nobody
        // writes, and report success. fdatasync of any descriptor flushes the
        // file's cached pages, whoever wrote them.
        match std::fs::File::open(&self.wal_path) {
            Ok(wal) => wal
                .sync_data()
                .map_err(|e| StoreError::Database(format!("cannot sync `{}`: {e}", self.wal_path.display()))),
            // No WAL: every commit was checkpointed into the database file, which
            // SQLite synced before it removed the WAL.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Database(format!("cannot open `{}`: {e}", self.wal_path.display()))),
        }
    }

    fn sequenced_size(&self) -> Result<u64, StoreError> {
        self.with_reader(max_idx)
    }

    fn read_leaves(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT idx, leaf FROM entries WHERE idx >= ?1 AND idx < ?2 ORDER BY idx")?;
            let rows = stmt.query_map(params![to_i64(start)?, to_i64(end)?], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?;
            let mut out = Vec::with_capacity(end.saturating_sub(start).min(1 << 16) as usize);
            for (expected, row) in (start..end).zip(rows) {
                let (idx, leaf) = row?;
                if idx as u64 != expected {
                    return Err(StoreError::Corrupt(format!("entry {expected} is missing")));
                }
                out.push(leaf);
            }
            Ok(out)
        })
    }

    fn integrate(&self, tiles: &[StoredTile], new_size: u64) -> Result<(), StoreError> {
        self.with_writer(|conn| {
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            let result = (|| {
                let tx = conn.transaction()?;
                {
                    let mut insert = tx.prepare_cached(
                        "INSERT OR REPLACE INTO tiles (id, width, hashes) VALUES (?1, ?2, ?3)",
                    )?;
                    for t in tiles {
                        insert.execute(params![tile_id(t.key)?, to_i64(t.width)?, t.hashes])?;
                    }
                    tx.prepare_cached(
                        "INSERT INTO meta (key, value) VALUES ('integrated_size', ?1)
                         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    )?
                    .execute(params![new_size.to_string()])?;
                }
                tx.commit()?;
                Ok(())
            })();
            conn.pragma_update(None, "synchronous", "FULL")?;
            result
        })
    }

    fn integrated_size(&self) -> Result<u64, StoreError> {
        match self.meta("integrated_size")? {
            None => Ok(0),
            Some(s) => {
                s.parse().map_err(|_| StoreError::Corrupt(format!("integrated size `{s}` is not a number")))
            }
        }
    }

    fn read_tiles(&self, keys: &[TileKey]) -> Result<Vec<Option<StoredTile>>, StoreError> {
        self.with_reader(|conn| {
            // One read transaction for the whole batch: one snapshot, and one round
            // of file and WAL-index locking instead of one per tile.
            let tx = conn.unchecked_transaction()?;
            let mut out = Vec::with_capacity(keys.len());
            {
                let mut stmt = tx.prepare_cached("SELECT width, hashes FROM tiles WHERE id = ?1")?;
                for key in keys {
                    let mut rows = stmt.query(params![tile_id(*key)?])?;
                    let Some(row) = rows.next()? else {
                        out.push(None);
                        continue;
                    };
                    let width: i64 = row.get(0)?;
                    let hashes: Vec<u8> = row.get(1)?;
                    if hashes.len() != STORED_TILE_BYTES || !(0..=TILE_WIDTH as i64).contains(&width) {
                        return Err(StoreError::Corrupt(format!(
                            "tile ({}, {}) is malformed",
                            key.level, key.index
                        )));
                    }
                    out.push(Some(StoredTile { key: *key, width: width as u64, hashes }));
                }
            }
            tx.finish()?;
            Ok(out)
        })
    }

    fn put_checkpoint(&self, cp: &StoredCheckpoint) -> Result<(), StoreError> {
        // Written under the writer's lock, synced after it is released: sequencing
        // does not wait for a checkpoint's fsync, and the checkpoint is durable
        // before this returns (and before anyone is shown it).
        self.with_writer(|conn| {
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            let result = put_checkpoint_in(conn, cp);
            conn.pragma_update(None, "synchronous", "FULL")?;
            result
        })?;
        self.sync()
    }

    fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row = self.with_reader(|conn| {
            Ok(conn
                .query_row(
                    "SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1",
                    [],
                    read_checkpoint,
                )
                .optional()?)
        })?;
        row.map(to_checkpoint).transpose()
    }

    fn checkpoints_after(
        &self,
        after_size: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let after = match after_size {
            Some(s) => to_i64(s)?,
            None => -1,
        };
        let rows = self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT size, root, note FROM checkpoints WHERE size > ?1 ORDER BY size LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, limit as i64], read_checkpoint)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        rows.into_iter().map(to_checkpoint).collect()
    }

    fn context(&self, index: u64) -> Result<Option<ContextRecord>, StoreError> {
        self.with_reader(|conn| {
            Ok(conn
                .query_row(
                    "SELECT salt, context, expires_at FROM contexts WHERE idx = ?1",
                    params![to_i64(index)?],
                    |r| {
                        Ok(ContextRecord {
                            salt: r.get(0)?,
                            canonical_context: r.get(1)?,
                            expires_at_unix_s: r.get(2)?,
                        })
                    },
                )
                .optional()?)
        })
    }

    fn delete_expired_contexts(&self, now_unix_s: i64) -> Result<u64, StoreError> {
        self.with_writer(|conn| {
            Ok(conn.execute("DELETE FROM contexts WHERE expires_at <= ?1", params![now_unix_s])? as u64)
        })
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.with_reader(|conn| {
            Ok(conn
                .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| r.get(0))
                .optional()?)
        })
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.with_writer(|conn| {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
    }
}
