//! The log pipeline: sequencing, integration and publishing, as separate steps.
//!
//! 1. **Sequencing** — [`Log::append`] hands leaves to one writer thread, which
//!    gathers whatever requests are waiting (group commit) and writes them in one
//!    transaction; the syncer thread (`syncer`) makes written leaves durable
//!    against power loss, one sync after another, without holding up the writer.
//!    An append is acknowledged once durable ([`Log::append`]) or, for a decision
//!    configured so, once written ([`Log::append_written`]): a crash of the
//!    process cannot lose it, and the syncer makes it durable within about two
//!    syncs.
//! 2. **Integration** — the same thread then extends the tree's right edge
//!    ([`CompactRange`]) and stores the newly completed subtree hashes. After a
//!    crash, integration resumes from the durable leaves.
//! 3. **Publishing** — [`Log::publish`] signs a checkpoint of the integrated tree,
//!    stores it durably and only then serves it.
//!
//! INVARIANT: the log never signs two different roots for one size. Roots are a
//! pure function of durable leaves, the store refuses a second root for a size, and
//! start-up refuses a store whose latest checkpoint disagrees with its leaves.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use warden_core::metrics::{Counter, Histogram};
use warden_ledger::Hash;
use warden_ledger::checkpoint::Checkpoint;
use warden_ledger::note::NoteSigner;
use warden_ledger::proof::{ProofError, consistency_proof, inclusion_proof, root_at};
use warden_ledger::tile::{TILE_WIDTH, TileId, TileKey, push_bundle_entry};

use crate::syncer::Syncer;
use crate::tiles::{Integrator, TileCache, TileNodes};
use crate::{NewLeaf, Store, StoreError, StoredCheckpoint};

/// Append requests that may wait for the writer before callers are told to back off.
pub const APPEND_QUEUE_REQUESTS_MAX: usize = 4_096;
/// Most leaves one group commit writes.
pub const GROUP_COMMIT_LEAVES_MAX: usize = 20_000;
/// Longest time sequenced leaves wait for integration while appends keep coming.
pub const INTEGRATE_INTERVAL_MS_MAX: u64 = 100;
/// How long sequenced leaves wait for company before they are integrated when
/// the queue falls quiet. Integration rewrites the tree's right-edge tiles
/// whatever the number of new leaves, and an append that arrives during it waits
/// for it; after every commit at a few thousand commits a second it cost the
/// writer a seventh of its time. Checkpoints are signed once a second, so nothing
/// reads the tree sooner.
pub const INTEGRATE_DELAY_MS: u64 = 20;
/// How long an append waits for room in the queue.
pub const APPEND_QUEUE_WAIT_MS_MAX: u64 = 10_000;
/// Longest a batch that nobody waits for ([`Log::try_enqueue_background`]) is held
/// back so that it can share the next waited-for commit instead of paying an
/// fsync of its own.
pub const BACKGROUND_DELAY_MS_MAX: u64 = 20;
/// Most leaves held back that way before they are committed anyway.
pub const BACKGROUND_LEAVES_MAX: usize = 1_024;

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

/// What an append waits for before it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Durable against power loss (a sync covers it).
    Synced,
    /// Written: a crash of the process cannot lose it.
    Written,
    /// Nobody waits; it may wait for company before it is written.
    Nobody,
}

/// Resolves once enqueued leaves are durable, with the index of the first.
pub type Durable = oneshot::Receiver<Result<u64, StoreError>>;

struct AppendRequest {
    leaves: Vec<NewLeaf>,
    reply: oneshot::Sender<Result<u64, StoreError>>,
    wait: Wait,
    enqueued: Instant,
}

/// The verifiable log over a [`Store`].
pub struct Log {
    store: Arc<dyn Store>,
    queue: Mutex<Option<mpsc::Sender<AppendRequest>>>,
    head: watch::Receiver<TreeHead>,
    sequenced: Arc<AtomicU64>,
    synced: Arc<AtomicU64>,
    // INVARIANT: only ever replaced by a checkpoint of larger size that is already durable.
    checkpoint: RwLock<Option<Arc<StoredCheckpoint>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
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
    /// leaves and starts the writer thread.
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
        let (queue_tx, queue_rx) = mpsc::channel(APPEND_QUEUE_REQUESTS_MAX);
        let sequenced = Arc::new(AtomicU64::new(head.size));
        let synced = Arc::new(AtomicU64::new(head.size));
        let stats = Arc::new(LogStats::default());
        // Everything stored at start is made durable once, so that what the
        // syncer counts as synced is true from the first append on.
        store.sync()?;
        let syncer = Syncer::start(Arc::clone(&store), head.size, Arc::clone(&synced), Arc::clone(&stats))?;
        let writer = {
            let store = Arc::clone(&store);
            let sequenced = Arc::clone(&sequenced);
            let stats = Arc::clone(&stats);
            std::thread::Builder::new()
                .name("warden-log-writer".into())
                .spawn(move || {
                    writer_loop(store.as_ref(), integrator, queue_rx, &head_tx, &sequenced, &stats, syncer)
                })
                .map_err(|e| StoreError::Database(format!("cannot start the log writer: {e}")))?
        };
        Ok(Self {
            store,
            queue: Mutex::new(Some(queue_tx)),
            head: head_rx,
            sequenced,
            synced,
            checkpoint: RwLock::new(latest.map(Arc::new)),
            writer: Mutex::new(Some(writer)),
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
    /// loss can lose what is not yet synced; the syncer syncs continuously, so that
    /// is at most the last two syncs' worth ([`Log::synced_size`] tells).
    pub async fn append_written(&self, leaves: Vec<NewLeaf>) -> Result<u64, StoreError> {
        self.append_waiting(leaves, Wait::Written).await
    }

    async fn append_waiting(&self, leaves: Vec<NewLeaf>, wait: Wait) -> Result<u64, StoreError> {
        if leaves.is_empty() {
            return Ok(self.sequenced.load(Ordering::Acquire));
        }
        let queue = self.queue.lock().map_err(|_| StoreError::Closed)?.clone().ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        queue
            .send_timeout(
                AppendRequest { leaves, reply, wait, enqueued: Instant::now() },
                Duration::from_millis(APPEND_QUEUE_WAIT_MS_MAX),
            )
            .await
            .map_err(|e| match e {
                mpsc::error::SendTimeoutError::Timeout(_) => {
                    self.stats.queue_full.inc();
                    StoreError::Overloaded
                }
                mpsc::error::SendTimeoutError::Closed(_) => StoreError::Closed,
            })?;
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
        let queue = match self.queue.lock().ok().and_then(|q| q.clone()) {
            Some(q) => q,
            None => return Err((StoreError::Closed, leaves)),
        };
        let (reply, answer) = oneshot::channel();
        queue.try_send(AppendRequest { leaves, reply, wait, enqueued: Instant::now() }).map_err(
            |e| match e {
                mpsc::error::TrySendError::Full(r) => {
                    self.stats.queue_full.inc();
                    (StoreError::Overloaded, r.leaves)
                }
                mpsc::error::TrySendError::Closed(r) => (StoreError::Closed, r.leaves),
            },
        )?;
        Ok(answer)
    }

    /// Stops accepting appends, lets the writer finish what it acknowledged and
    /// integrate it, and waits for it.
    pub fn shutdown(&self) {
        if let Ok(mut q) = self.queue.lock() {
            q.take();
        }
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle
            && handle.join().is_err()
        {
            tracing::error!("log writer panicked during shutdown");
        }
    }

    /// True while the writer thread is running.
    pub fn is_writer_running(&self) -> bool {
        self.writer.lock().ok().and_then(|w| w.as_ref().map(|h| !h.is_finished())).unwrap_or(false)
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

impl Drop for Log {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn writer_loop(
    store: &dyn Store,
    mut integrator: Integrator,
    mut queue: mpsc::Receiver<AppendRequest>,
    head: &watch::Sender<TreeHead>,
    sequenced: &AtomicU64,
    stats: &LogStats,
    mut syncer: Syncer,
) {
    // Only for timed waits on the queue (holding back a background batch, or
    // waiting for more commits before integrating).
    let clock = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "the log writer cannot start its timer; appends are refused");
            return;
        }
    };
    let mut next = integrator.size();
    // Leaf hashes sequenced but not yet integrated, and when integration last ran.
    let mut pending: Vec<Hash> = Vec::new();
    let mut integrated_at = Instant::now();
    loop {
        // Integrate when there is nothing to sequence, so integration never
        // delays an append that is already waiting, and at most every
        // INTEGRATE_DELAY_MS, so that it is shared by the commits in between.
        let first = loop {
            match queue.try_recv() {
                Ok(r) => break Some(r),
                Err(mpsc::error::TryRecvError::Disconnected) => break None,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            if pending.is_empty() {
                break queue.blocking_recv();
            }
            let due = integrated_at + Duration::from_millis(INTEGRATE_DELAY_MS);
            if Instant::now() < due {
                let deadline = tokio::time::Instant::from_std(due);
                match clock.block_on(async { tokio::time::timeout_at(deadline, queue.recv()).await }) {
                    Ok(r) => break r,
                    Err(_) => continue,
                }
            }
            integrator = integrate(store, integrator, &pending, next, head, stats);
            pending.clear();
            integrated_at = Instant::now();
            next = resume_at(store, &integrator, next);
            sequenced.store(next, Ordering::Release);
        };
        let Some(first) = first else { break };
        // Group commit: take every request already waiting, up to the limit.
        let mut requests = vec![first];
        let mut count = requests.iter().map(|r| r.leaves.len()).sum::<usize>();
        drain(&mut queue, &mut requests, &mut count);
        // A batch nobody waits for waits a little for one somebody does, so that
        // the two share one fsync.
        if requests.iter().all(|r| r.wait == Wait::Nobody) {
            let deadline = tokio::time::Instant::now() + Duration::from_millis(BACKGROUND_DELAY_MS_MAX);
            while count < BACKGROUND_LEAVES_MAX && requests.iter().all(|r| r.wait == Wait::Nobody) {
                // The timer is created inside the runtime that drives it.
                match clock.block_on(async { tokio::time::timeout_at(deadline, queue.recv()).await }) {
                    Ok(Some(r)) => {
                        count += r.leaves.len();
                        requests.push(r);
                        drain(&mut queue, &mut requests, &mut count);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
        // After a failed sync nothing more is acknowledged (fail closed): the
        // writer stops, and with it every later append.
        if syncer.is_poisoned() {
            for r in requests {
                let _ = r.reply.send(Err(StoreError::Database("the log could not sync its writes".into())));
            }
            break;
        }
        let mut leaves = Vec::with_capacity(count);
        let mut replies = Vec::with_capacity(requests.len());
        for r in requests {
            let first = next + leaves.len() as u64;
            leaves.extend(r.leaves);
            replies.push((first, next + leaves.len() as u64, r.reply, r.wait, r.enqueued));
        }
        let started = Instant::now();
        for (_, _, _, wait, enqueued) in &replies {
            if *wait != Wait::Nobody {
                stats.queue_seconds.observe(started.saturating_duration_since(*enqueued));
            }
        }
        let appended = store.append_leaves(next, &leaves);
        stats.commit_seconds.observe(started.elapsed());
        match appended {
            Ok(()) => {
                stats.commits.inc();
                stats.committed_leaves.add(leaves.len() as u64);
                next += leaves.len() as u64;
                sequenced.store(next, Ordering::Release);
                pending.extend(leaves.iter().map(NewLeaf::leaf_hash));
                // Written now; those who wait for a sync are answered by the syncer.
                let mut to_sync = Vec::new();
                for (first, end, reply, wait, _) in replies {
                    if wait == Wait::Synced {
                        to_sync.push((first, end, reply));
                    } else {
                        let _ = reply.send(Ok(first));
                    }
                }
                syncer.committed(next, to_sync);
            }
            Err(e) => {
                stats.commit_failures.inc();
                tracing::error!(error = %e, "sequencing failed; the batch was not acknowledged");
                for (_, _, reply, _, _) in replies {
                    let _ = reply.send(Err(StoreError::Database(e.to_string())));
                }
            }
        }
        // Under sustained load the queue is never empty: integrate on a clock too.
        if integrated_at.elapsed() >= Duration::from_millis(INTEGRATE_INTERVAL_MS_MAX)
            || pending.len() >= GROUP_COMMIT_LEAVES_MAX
        {
            integrator = integrate(store, integrator, &pending, next, head, stats);
            pending.clear();
            integrated_at = Instant::now();
            next = resume_at(store, &integrator, next);
            sequenced.store(next, Ordering::Release);
        }
    }
    // Drain: sync and answer whatever was written, then integrate it.
    syncer.stop();
    if let Err(e) = Integrator::catch_up(store) {
        tracing::error!(error = %e, "final integration failed; it will resume at next start");
    }
}

/// Where sequencing continues after an integration: where it was, unless the
/// integrator had to rebuild from the store and disagrees, then the store decides.
fn resume_at(store: &dyn Store, integrator: &Integrator, next: u64) -> u64 {
    if integrator.size() == next {
        return next;
    }
    integrator.size().max(store.sequenced_size().unwrap_or(next))
}

/// Moves every request already queued into `requests`, up to the group-commit limit.
fn drain(queue: &mut mpsc::Receiver<AppendRequest>, requests: &mut Vec<AppendRequest>, count: &mut usize) {
    while *count < GROUP_COMMIT_LEAVES_MAX {
        match queue.try_recv() {
            Ok(r) => {
                *count += r.leaves.len();
                requests.push(r);
            }
            Err(_) => break,
        }
    }
}

/// Integrates freshly sequenced `leaves`; on any failure rebuilds from the store
/// so integration never diverges from the durable leaves.
fn integrate(
    store: &dyn Store,
    integrator: Integrator,
    leaf_hashes: &[Hash],
    sequenced: u64,
    head: &watch::Sender<TreeHead>,
    stats: &LogStats,
) -> Integrator {
    let started = Instant::now();
    let integrator = integrate_timed(store, integrator, leaf_hashes, sequenced, head);
    stats.integrate_seconds.observe(started.elapsed());
    integrator
}

fn integrate_timed(
    store: &dyn Store,
    mut integrator: Integrator,
    leaf_hashes: &[Hash],
    sequenced: u64,
    head: &watch::Sender<TreeHead>,
) -> Integrator {
    let in_step = integrator.size() + leaf_hashes.len() as u64 == sequenced;
    let result = if in_step {
        integrator.append(store, leaf_hashes.iter().copied()).map(|()| integrator)
    } else {
        Integrator::catch_up(store)
    };
    let integrator = result.or_else(|e| {
        tracing::error!(error = %e, "integration failed; retrying from the durable leaves");
        Integrator::catch_up(store)
    });
    match integrator {
        Ok(i) => {
            head.send_replace(TreeHead { size: i.size(), root: i.root() });
            i
        }
        Err(e) => {
            // The head stays where it was; the next batch retries from the store.
            tracing::error!(error = %e, "integration cannot catch up");
            Integrator::restore(store).unwrap_or_else(|_| Integrator::empty())
        }
    }
}
