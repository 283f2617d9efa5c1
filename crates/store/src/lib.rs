//! Persistence for the verifiable log, behind one narrow interface.
//!
//! Owns: the [`Store`] trait (the only thing log logic may call), its SQLite
//! implementation ([`sqlite`]), the sequencer/integrator that turns submissions
//! into durable, integrated leaves with group commit ([`log`]), checkpoint
//! publishing, the stored subtree tiles and their bounded cache ([`tiles`]), and the offline audit behind `warden log verify --data-dir`
//! ([`audit`]). Beside the log, each behind its own narrow trait: the directory,
//! approvals, quarantines, tool pins, the event index and forensic captures
//! ([`forensics`]).
//!
//! Must not depend on: HTTP (axum, hyper) or the server. A PostgreSQL store is a
//! second implementation of [`Store`]; nothing in [`log`] or [`audit`] changes.

pub mod approvals;
pub mod audit;
pub mod directory;
pub mod event_index;
pub mod forensics;
pub mod log;
pub mod pins;
pub mod quarantines;
mod sequencer;
pub mod sqlite;
mod sqlite_directory;
mod syncer;
pub mod tiles;

use warden_ledger::Hash;
use warden_ledger::tile::TileKey;

/// A leaf ready to be sequenced: its bytes, its RFC 6962 leaf hash (computed on
/// the submitter's thread, off the sequencer's critical path) and, when Warden
/// committed to a context, the material kept apart from the log.
#[derive(Debug, Clone)]
pub struct NewLeaf {
    leaf: Vec<u8>,
    // INVARIANT: `leaf_hash == warden_ledger::leaf_hash(&leaf)`; set only by `new`.
    leaf_hash: Hash,
    context: Option<ContextRecord>,
    charge: Option<UsageCharge>,
}

/// Budget usage that a leaf's action consumes: committed in the same transaction
/// as the leaf, so a recorded decision and the budget it spent are never apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageCharge {
    /// The session charged.
    pub session_id: String,
    /// What it spent.
    pub usage: directory::Usage,
}

impl NewLeaf {
    /// A leaf and, optionally, the context its event commits to.
    pub fn new(leaf: Vec<u8>, context: Option<ContextRecord>) -> Self {
        let leaf_hash = warden_ledger::leaf_hash(&leaf);
        Self { leaf, leaf_hash, context, charge: None }
    }

    /// The same leaf, charging `usage` to `session_id` when it is sequenced.
    #[must_use]
    pub fn with_charge(mut self, session_id: &str, usage: directory::Usage) -> Self {
        self.charge = Some(UsageCharge { session_id: session_id.to_owned(), usage });
        self
    }

    /// The budget usage committed with this leaf, if any.
    pub fn charge(&self) -> Option<&UsageCharge> {
        self.charge.as_ref()
    }

    /// The exact leaf bytes (canonical event JSON).
    pub fn leaf(&self) -> &[u8] {
        &self.leaf
    }

    /// `SHA-256(0x00 ‖ leaf)`.
    pub fn leaf_hash(&self) -> Hash {
        self.leaf_hash
    }

    /// Context and salt opening the event's commitment, if any.
    pub fn context(&self) -> Option<&ContextRecord> {
        self.context.as_ref()
    }
}

/// Context material stored apart from the log, deletable when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextRecord {
    /// The per-event salt.
    pub salt: Vec<u8>,
    /// Canonical JSON of the context.
    pub canonical_context: Vec<u8>,
    /// Unix seconds after which the context may be deleted.
    pub expires_at_unix_s: i64,
}

/// A stored subtree tile: every hash of tree levels `8·T ..= 8·T+7` under one
/// 256-wide subtree (see [`TileKey`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTile {
    /// Which tile.
    pub key: TileKey,
    /// How many hashes of the tile's bottom level are complete (0..=256).
    pub width: u64,
    /// `STORED_TILE_BYTES` bytes; slots that are not complete yet are zero.
    pub hashes: Vec<u8>,
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Tree size.
    pub size: u64,
    /// Root hash at that size.
    pub root: Hash,
    /// The whole signed note.
    pub note: String,
}

/// Store failures. Any of these fails the request that caused it (fail closed).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("database error: {0}")]
    Database(String),
    /// Stored data violates an invariant (tampering or a bug).
    #[error("store is inconsistent: {0}")]
    Corrupt(String),
    /// A checkpoint for this size already exists with a different root.
    #[error("refusing to sign a second root for tree size {size}")]
    Equivocation {
        /// The tree size.
        size: u64,
    },
    /// The log's writer has stopped.
    #[error("log writer is not running")]
    Closed,
    /// The log is too busy to accept more work right now.
    #[error("log is overloaded; retry later")]
    Overloaded,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Database(e.to_string())
    }
}

/// The narrow interface between log logic and a database.
///
/// INVARIANT: implementations make `append_leaves` and `put_checkpoint` durable
/// (fsync or equivalent) before returning `Ok`; `append_leaves` applies every
/// leaf's [`UsageCharge`] in the same transaction as the leaves; `integrate` may be lazily durable,
/// because integration is recomputed from the durable leaves after a crash.
pub trait Store: Send + Sync + 'static {
    /// Sequencing: appends `leaves` at indexes `first..first+len`, where `first`
    /// must equal the current number of leaves. When it returns the leaves are
    /// *written*: a crash of this process (`kill -9`) cannot lose them; an
    /// operating-system crash or power loss can, until [`Store::sync`] returns.
    fn append_leaves(&self, first: u64, leaves: &[NewLeaf]) -> Result<(), StoreError>;
    /// Makes every append that returned before this call durable against an
    /// operating-system crash and power loss. Safe to call from another thread
    /// while appends go on; it never waits for the writer.
    fn sync(&self) -> Result<(), StoreError>;
    /// Number of durably sequenced leaves.
    fn sequenced_size(&self) -> Result<u64, StoreError>;
    /// Leaves `[start, end)`, in order.
    fn read_leaves(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Integration: stores the changed subtree tiles and the new integrated size
    /// atomically.
    fn integrate(&self, tiles: &[StoredTile], new_size: u64) -> Result<(), StoreError>;
    /// Number of leaves whose hashes are integrated into the tree.
    fn integrated_size(&self) -> Result<u64, StoreError>;
    /// The stored tiles for `keys`, in order (`None` where a tile does not exist),
    /// all read from one snapshot.
    fn read_tiles(&self, keys: &[TileKey]) -> Result<Vec<Option<StoredTile>>, StoreError>;
    /// Publishing: durably stores a signed checkpoint. Storing the same root again
    /// for a size is a no-op; a different root is [`StoreError::Equivocation`].
    fn put_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError>;
    /// The checkpoint with the largest size.
    fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError>;
    /// Checkpoints with size greater than `after_size`, smallest first, at most `limit`.
    fn checkpoints_after(
        &self,
        after_size: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredCheckpoint>, StoreError>;
    /// The context record of the entry at `index`, if kept.
    fn context(&self, index: u64) -> Result<Option<ContextRecord>, StoreError>;
    /// Deletes contexts that expired at or before `now_unix_s`; returns how many.
    fn delete_expired_contexts(&self, now_unix_s: i64) -> Result<u64, StoreError>;
    /// A value from the store's small key-value metadata table.
    fn meta(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Sets a metadata value, durably.
    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError>;
}
