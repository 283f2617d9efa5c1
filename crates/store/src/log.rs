//! The log pipeline: sequencing, integration and publishing, as separate steps.
//!
//! 1. **Sequencing** — [`Log::append`] queues leaves, and whichever appender
//!    finds the writer lock free writes everything queued in one transaction
//!    (group commit, `sequencer`); the syncer thread (`syncer`) makes written
//!    leaves durable against power loss beside it, without holding up a commit.
//!    An append is acknowledged once durable ([`Log::append`]) or, for a decision
//!    configured so, once written ([`Log::append_written`]): a crash of the
//!    process cannot lose it, and the syncer makes it durable within
//!    `SYNC_GAP_MS_MAX` (2 ms) and a sync.
//! 2. **Integration** — the maintenance thread extends the tree's right edge
//!    ([`CompactRange`](warden_ledger::compact::CompactRange)) at most every [`INTEGRATE_DELAY_MS`] and stores the newly
//!    completed subtree hashes. After a crash, integration resumes from the
//!    stored leaves.
//! 3. **Publishing** — [`Log::publish`] signs a checkpoint of the integrated tree,
//!    stores it durably and only then serves it.
//!
//! INVARIANT: the log never signs two different roots for one size. Roots are a
//! pure function of durable leaves, the store refuses a second root for a size, and
//! start-up refuses a store whose latest checkpoint disagrees with its leaves.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use tokio::sync::{oneshot, watch};
use warden_core::metrics::{Counter, Histogram};
use warden_ledger::Hash;
use warden_ledger::checkpoint::Checkpoint;
use warden_ledger::note::NoteSigner;
use warden_ledger::proof::{ProofError, consistency_proof, inclusion_proof, root_at};
use warden_ledger::tile::{TILE_WIDTH, TileId, TileKey, push_bundle_entry};

use crate::sequencer::{Sequencer, Wait};
use crate::syncer::Syncer;
use crate::tiles::{Integrator, TileCache, TileNodes};
use crate::{NewLeaf, Store, StoreError, StoredCheckpoint};

pub use crate::sequencer::{
    APPEND_QUEUE_REQUESTS_MAX, BACKGROUND_DELAY_MS_MAX, BACKGROUND_LEAVES_MAX, GROUP_COMMIT_LEAVES_MAX,
    INTEGRATE_DELAY_MS, LEADER_ROUNDS_MAX,
};

/// Why a log read or write failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The request is malformed or out of range.
    #[error("{0}")]
    BadRequest(String),
    /// The thing asked for does not exist (yet).
    #[error("{0}")]
    NotFound(String),
    /// The store failed; the operation did not happen.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ProofError<StoreError>> for LogError {
    fn from(e: ProofError<StoreError>) -> Self {
        match e {
            ProofError::InvalidRequest(m) => Self::BadRequest(m),
            ProofError::Store(s) => Self::Store(s),
            ProofError::ShortRead { .. } => Self::Store(StoreError::Corrupt(e.to_string())),
        }
    }
}

/// The integrated tree: its size and root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    /// Leaves integrated.
    pub size: u64,
    /// RFC 6962 root of those leaves.
    pub root: Hash,
}

/// What the writer has done, for `/metrics`.
#[derive(Debug, Default)]
pub struct LogStats {
    /// Sequencing transactions committed (each one fsync).
    pub commits: Counter,
    /// Leaves those commits made durable.
    pub committed_leaves: Counter,
    /// Sequencing transactions that failed (their appends were refused).
    pub commit_failures: Counter,
    /// Appends refused because the writer queue was full.
    pub queue_full: Counter,
    /// Duration of each sequencing commit (writing, not syncing).
    pub commit_seconds: Histogram,
    /// Syncs (fdatasync of the written leaves) that finished.
    pub syncs: Counter,
    /// Syncs that failed (the log then stops acknowledging).
    pub sync_failures: Counter,
    /// Duration of each sync.
    pub sync_seconds: Histogram,
    /// Duration of each integration (appends wait while it runs).
    pub integrate_seconds: Histogram,
    /// How long appends somebody waits for spent in the queue before their
    /// commit began.
    pub queue_seconds: Histogram,
}

/// Resolves once enqueued leaves are durable, with the index of the first.
pub type Durable = oneshot::Receiver<Result<u64, StoreError>>;

/// The verifiable log over a [`Store`].
pub struct Log {
    store: Arc<dyn Store>,
    sequencer: Arc<Sequencer>,
    head: watch::Receiver<TreeHead>,
    sequenced: Arc<AtomicU64>,
    synced: Arc<AtomicU64>,
    // INVARIANT: only ever replaced by a checkpoint of larger size that is already durable.
    checkpoint: RwLock<Option<Arc<StoredCheckpoint>>>,
    maintenance: Mutex<Option<JoinHandle<()>>>,
    tiles: TileCache,
    stats: Arc<LogStats>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("head", &*self.head.borrow()).finish_non_exhaustive()
    }
}

impl Log {
    /// Opens the log: resumes integration, checks the latest checkpoint against the
    /// leaves and starts the syncer and maintenance threads.
    pub fn open(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let integrator = Integrator::catch_up(store.as_ref())?;
        let head = TreeHead { size: integrator.size(), root: integrator.root() };
        let latest = store.latest_checkpoint()?;
        if let Some(cp) = &latest {
            let root = if cp.size > head.size {
                return Err(StoreError::Corrupt(format!(
                    "latest checkpoint is for {} leaves but only {} are stored",
                    cp.size, head.size
                )));
            } else {
                root_at(&TileNodes { store: store.as_ref(), cache: None }, cp.size)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?
            };
            if root != cp.root {
                return Err(StoreError::Corrupt(format!(
                    "the stored leaves do not produce the root signed for tree size {}",
                    cp.size
                )));
            }
        }
        let (head_tx, head_rx) = watch::channel(head);
        let sequenced = Arc::new(AtomicU64::new(head.size));
        let synced = Arc::new(AtomicU64::new(head.size));
        let stats = Arc::new(LogStats::default());
        // Everything stored at start is made durable once, so that what the
        // syncer counts as synced is true from the first append on.
        store.sync()?;
        let syncer = Syncer::start(Arc::clone(&store), head.size, Arc::clone(&synced), Arc::clone(&stats))?;
        let sequencer = Arc::new(Sequencer::new(
            Arc::clone(&store),
            head.size,
            Arc::clone(&sequenced),
            syncer,
            Arc::clone(&stats),
        ));
        let maintenance = {
            let sequencer = Arc::clone(&sequencer);
            std::thread::Builder::new()
                .name("warden-log-maintain".into())
                .spawn(move || crate::sequencer::maintain(&sequencer, integrator, &head_tx))
                .map_err(|e| {
                    StoreError::Database(format!("cannot start the log's maintenance thread: {e}"))
                })?
        };
        Ok(Self {
            store,
            sequencer,
            head: head_rx,
            sequenced,
            synced,
            checkpoint: RwLock::new(latest.map(Arc::new)),
            maintenance: Mutex::new(Some(maintenance)),
            tiles: TileCache::default(),
            stats,
        })
    }

    /// Sequences `leaves` durably; returns the index of the first. Resolves only
    /// after the leaves are committed to stable storage (synced: they survive a
    /// power loss).
    pub async fn append(&self, leaves: Vec<NewLeaf>) -> Result<u64, StoreError> {
        self.append_waiting(leaves, Wait::Synced).await
    }

    /// Sequences `leaves`; resolves once they are written, so that a crash of this
    /// process (`kill -9`) cannot lose them. An operating-system crash or a power
    /// loss can lose what is not yet synced: the syncer syncs what was written at
    /// least every 2 ms, so that is the last few milliseconds ([`Log::synced_size`]
    /// tells).
    pub async fn append_written(&self, leaves: Vec<NewLeaf>) -> Result<u64, StoreError> {
        self.append_waiting(leaves, Wait::Written).await
    }

    async fn append_waiting(&self, leaves: Vec<NewLeaf>, wait: Wait) -> Result<u64, StoreError> {
        if leaves.is_empty() {
            return Ok(self.sequenced.load(Ordering::Acquire));
        }
        let answer = self.sequencer.enqueue(leaves, wait).map_err(|(e, _)| e)?;
        // Leads when dropped: after the yield, or when this future is dropped
        // during it (a caller that went away), so the queued leaves never wait for
        // somebody else to come by.
        let lead = LeadOnDrop(&self.sequencer);
        // Let the tasks already runnable on this thread queue their appends too, so
        // that under load one commit takes them all; when nothing else is ready
        // this returns at once.
        tokio::task::yield_now().await;
        drop(lead);
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Hands `leaves` to the writer without waiting: the returned receiver resolves
    /// once they are durable. Fails at once when the queue is full (back-pressure)
    /// or closed.
    pub fn enqueue(&self, leaves: Vec<NewLeaf>) -> Result<Durable, StoreError> {
        self.try_enqueue(leaves).map_err(|(e, _)| e)
    }

    /// [`Log::enqueue`], giving the leaves back when they could not be handed over.
    pub fn try_enqueue(&self, leaves: Vec<NewLeaf>) -> Result<Durable, (StoreError, Vec<NewLeaf>)> {
        self.hand_over(leaves, Wait::Synced)
    }

    /// [`Log::try_enqueue`] for leaves nobody waits for (an action event written
    /// after its answer went out): the writer may hold them back up to
    /// [`BACKGROUND_DELAY_MS_MAX`] to commit them with the next waited-for batch.
    pub fn try_enqueue_background(
        &self,
        leaves: Vec<NewLeaf>,
    ) -> Result<Durable, (StoreError, Vec<NewLeaf>)> {
        self.hand_over(leaves, Wait::Nobody)
    }

    fn hand_over(&self, leaves: Vec<NewLeaf>, wait: Wait) -> Result<Durable, (StoreError, Vec<NewLeaf>)> {
        self.sequencer.submit(leaves, wait)
    }

    /// Stops accepting appends, commits, syncs and answers what was queued,
    /// integrates it, and waits for all of that.
    pub fn shutdown(&self) {
        self.sequencer.close();
        let handle = self.maintenance.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle
            && handle.join().is_err()
        {
            tracing::error!("the log's maintenance thread panicked during shutdown");
        }
    }

    /// True while the log can acknowledge appends: its maintenance thread runs and
    /// no sync has failed.
    pub fn is_writer_running(&self) -> bool {
        !self.sequencer.is_poisoned()
            && self
                .maintenance
                .lock()
                .ok()
                .and_then(|w| w.as_ref().map(|h| !h.is_finished()))
                .unwrap_or(false)
    }

    /// The integrated tree head.
    pub fn head(&self) -> TreeHead {
        *self.head.borrow()
    }

    /// Number of sequenced (written) leaves.
    pub fn sequenced_size(&self) -> u64 {
        self.sequenced.load(Ordering::Acquire)
    }

    /// Number of leaves durable against power loss (the rest are written and
    /// being synced).
    pub fn synced_size(&self) -> u64 {
        self.synced.load(Ordering::Acquire)
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> &LogStats {
        &self.stats
    }

    /// The store behind the log.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The latest published checkpoint.
    pub fn checkpoint(&self) -> Option<Arc<StoredCheckpoint>> {
        self.checkpoint.read().ok().and_then(|c| c.clone())
    }

    /// Signs and durably stores a checkpoint of the integrated tree if it grew
    /// since the last one (or if there is none yet). Returns the new checkpoint.
    pub fn publish(&self, signer: &NoteSigner) -> Result<Option<Arc<StoredCheckpoint>>, LogError> {
        let head = self.head();
        if let Some(cp) = self.checkpoint()
            && cp.size >= head.size
        {
            return Ok(None);
        }
        let body = Checkpoint { origin: signer.name().to_owned(), size: head.size, root: head.root };
        let note = signer.sign(&body.to_text()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let stored = StoredCheckpoint { size: head.size, root: head.root, note };
        self.store.put_checkpoint(&stored)?;
        let stored = Arc::new(stored);
        if let Ok(mut slot) = self.checkpoint.write() {
            *slot = Some(Arc::clone(&stored));
        }
        Ok(Some(stored))
    }

    /// The leaf at `index`.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, LogError> {
        let size = self.sequenced_size();
        if index >= size {
            return Err(LogError::NotFound(format!(
                "entry {index} does not exist; the log has {size} entries"
            )));
        }
        self.store
            .read_leaves(index, index + 1)?
            .pop()
            .ok_or_else(|| LogError::Store(StoreError::Corrupt(format!("entry {index} is missing"))))
    }

    fn check_size(&self, tree_size: u64, name: &str) -> Result<(), LogError> {
        let head = self.head();
        if tree_size > head.size {
            return Err(LogError::NotFound(format!(
                "`{name}` {tree_size} is larger than the integrated tree ({} leaves)",
                head.size
            )));
        }
        Ok(())
    }

    fn cached_nodes(&self) -> TileNodes<'_, dyn Store> {
        TileNodes { store: self.store.as_ref(), cache: Some(&self.tiles) }
    }

    /// The audit path of `index` in the tree of `tree_size` leaves.
    pub fn inclusion_proof(&self, index: u64, tree_size: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(tree_size, "tree_size")?;
        if index >= tree_size {
            return Err(LogError::BadRequest(format!(
                "`index` {index} must be below `tree_size` {tree_size}"
            )));
        }
        Ok(inclusion_proof(&self.cached_nodes(), index, tree_size)?)
    }

    /// The consistency proof between two tree sizes.
    pub fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(to, "to")?;
        if from > to {
            return Err(LogError::BadRequest(format!("`from` {from} must not be larger than `to` {to}")));
        }
        Ok(consistency_proof(&self.cached_nodes(), from, to)?)
    }

    /// The root of the tree's first `tree_size` leaves.
    pub fn root_at(&self, tree_size: u64) -> Result<Hash, LogError> {
        self.check_size(tree_size, "tree_size")?;
        Ok(root_at(&self.cached_nodes(), tree_size)?)
    }

    /// The bytes of a C2SP tile (hash tile or entry bundle), if the tree has it.
    pub fn tile(&self, tile: &TileId) -> Result<Vec<u8>, LogError> {
        let not_found = || LogError::NotFound(format!("tile `{}` is beyond the log", tile.path()));
        let needed = tile.tree_size_needed().ok_or_else(not_found)?;
        let first = tile.index.checked_mul(TILE_WIDTH).ok_or_else(not_found)?;
        match tile.level {
            Some(level) => {
                if needed > self.head().size {
                    return Err(not_found());
                }
                let key = TileKey { level, index: tile.index };
                let stored = self.store.read_tiles(&[key])?.pop().flatten();
                let bytes = stored
                    .filter(|t| t.width >= tile.width)
                    .and_then(|t| t.hashes.get(..tile.width as usize * Hash::LEN).map(<[u8]>::to_vec));
                bytes.ok_or_else(|| {
                    StoreError::Corrupt(format!("tile `{}` is incomplete", tile.path())).into()
                })
            }
            None => {
                if needed > self.sequenced_size() {
                    return Err(not_found());
                }
                let mut bundle = Vec::new();
                for leaf in self.store.read_leaves(first, first + tile.width)? {
                    push_bundle_entry(&mut bundle, &leaf).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                }
                Ok(bundle)
            }
        }
    }
}

/// Commits what is queued, unless somebody else is, when it goes out of scope.
struct LeadOnDrop<'a>(&'a Sequencer);

impl Drop for LeadOnDrop<'_> {
    fn drop(&mut self) {
        self.0.try_lead();
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.shutdown();
    }
}
