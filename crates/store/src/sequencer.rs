//! Sequencing by whoever appends: group commit without a hand-off.
//!
//! An append puts its leaves in the queue and, if nobody is committing, commits
//! everything queued itself, on its own thread (the *leader*), then goes on.
//! Appends that arrive while a leader commits join the queue and are committed by
//! it in its next round, so commits are still grouped under load. Why: handing
//! every decision to a writer thread and back cost two thread wake-ups per
//! request, and on a busy two-core virtual machine a wake-up now and then takes
//! milliseconds (measured: 4.5% of appends waited over 1 ms for the writer thread
//! to run, while the commit itself took 50 µs). A commit only writes (the syncer,
//! `crate::syncer`, makes it durable against power loss beside it), so it is
//! short enough to run on the caller's thread.
//!
//! The maintenance thread commits what no leader takes (appends nobody waits for,
//! held up to [`BACKGROUND_DELAY_MS_MAX`] to share a leader's commit, and batches
//! a busy leader leaves behind) and integrates committed leaves into the tree.
//!
//! INVARIANT: only the holder of the writer lock commits, and `next` (under it)
//! is the index of the next leaf to commit.
//! INVARIANT: whoever releases the writer lock looks at the queue again and leads
//! once more if somebody waits there, so no waited-for append is stranded by a
//! leader that took the queue just before it arrived.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};
use warden_ledger::Hash;

use crate::log::{LogStats, TreeHead};
use crate::syncer::{Reply, Syncer, Waiter};
use crate::tiles::Integrator;
use crate::{NewLeaf, Store, StoreError};

/// Append requests that may wait in the queue before callers are told to back off.
pub const APPEND_QUEUE_REQUESTS_MAX: usize = 4_096;
/// Most leaves one commit writes.
pub const GROUP_COMMIT_LEAVES_MAX: usize = 20_000;
/// Rounds a leader commits before it leaves the rest to the maintenance thread,
/// so that no caller is kept committing other callers' leaves under sustained load.
pub const LEADER_ROUNDS_MAX: usize = 4;
/// How long committed leaves wait before they are integrated. Integration rewrites
/// the tree's right-edge tiles whatever the number of new leaves, and commits wait
/// while it holds the database; checkpoints are signed once a second, so nothing
/// needs the tree sooner. At 20 ms the maintenance thread took 9% of Warden's CPU
/// at saturation.
pub const INTEGRATE_DELAY_MS: u64 = 100;
/// Longest an append nobody waits for is held back so that it can share a
/// leader's commit instead of paying one of its own.
pub const BACKGROUND_DELAY_MS_MAX: u64 = 20;
/// Most leaves held back that way before they are committed anyway.
pub const BACKGROUND_LEAVES_MAX: usize = 1_024;
/// While the log is busy the maintenance thread looks at the queue at least this
/// often without being woken, so that appends need not wake it: under load,
/// waking it for every commit's first held-back append and first unintegrated
/// leaf cost a futex wake and a context switch per request.
pub const MAINTENANCE_POLL_MS: u64 = 10;
/// The log counts as busy until nothing was committed for this long; then the
/// maintenance thread sleeps until it is woken or something falls due.
pub const MAINTENANCE_IDLE_AFTER_MS: u64 = 1_000;

/// What an append waits for before it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Durable against power loss (a sync covers it).
    Synced,
    /// Written: a crash of the process cannot lose it.
    Written,
    /// Nobody waits; it may wait for company before it is written.
    Nobody,
}

/// Resolves once an append is answered, with the index of its first leaf.
pub(crate) type Answer = oneshot::Receiver<Result<u64, StoreError>>;

struct AppendRequest {
    leaves: Vec<NewLeaf>,
    reply: Reply,
    wait: Wait,
    enqueued: Instant,
}

#[derive(Default)]
struct Queue {
    requests: Vec<AppendRequest>,
    /// Requests somebody waits for: a leader must come for them.
    waited_for: usize,
    /// Leaves of requests nobody waits for.
    background_leaves: usize,
    /// When the oldest request nobody waits for was queued.
    oldest_background: Option<Instant>,
    closed: bool,
}

/// Committed leaves not yet integrated: their hashes and the end of their range.
#[derive(Default)]
struct Unintegrated {
    hashes: Vec<Hash>,
    end: u64,
}

/// The queue, the writer lock and what they feed.
pub(crate) struct Sequencer {
    store: Arc<dyn Store>,
    queue: Mutex<Queue>,
    writer: Mutex<u64>,
    sequenced: Arc<AtomicU64>,
    unintegrated: Mutex<Unintegrated>,
    syncer: Syncer,
    stats: Arc<LogStats>,
    maintenance: Mutex<Option<std::thread::Thread>>,
    /// True while the maintenance thread is awake or in a timed sleep of at most
    /// [`MAINTENANCE_POLL_MS`]: it will look at the queue and the unintegrated
    /// leaves soon without being woken.
    // INVARIANT: set to false before the thread reads the queue and the
    // unintegrated leaves for the last time before an untimed or long sleep,
    // so whoever queues after that read sees false and wakes it.
    maintenance_polling: AtomicBool,
}

impl std::fmt::Debug for Sequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequencer").field("sequenced", &self.sequenced).finish_non_exhaustive()
    }
}

impl Sequencer {
    /// A sequencer continuing at `size` leaves.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        size: u64,
        sequenced: Arc<AtomicU64>,
        syncer: Syncer,
        stats: Arc<LogStats>,
    ) -> Self {
        sequenced.store(size, Ordering::Release);
        Self {
            store,
            queue: Mutex::new(Queue::default()),
            writer: Mutex::new(size),
            sequenced,
            unintegrated: Mutex::new(Unintegrated { hashes: Vec::new(), end: size }),
            syncer,
            stats,
            maintenance: Mutex::new(None),
            maintenance_polling: AtomicBool::new(false),
        }
    }

    /// Queues `leaves`; an append somebody waits for is committed before this
    /// returns unless another caller is committing (it then commits them).
    pub(crate) fn submit(
        &self,
        leaves: Vec<NewLeaf>,
        wait: Wait,
    ) -> Result<Answer, (StoreError, Vec<NewLeaf>)> {
        let answer = self.enqueue(leaves, wait)?;
        if wait != Wait::Nobody {
            self.try_lead();
        }
        Ok(answer)
    }

    /// Commits what is queued unless somebody else is committing.
    pub(crate) fn try_lead(&self) {
        self.lead(self.writer.try_lock());
    }

    /// Queues `leaves` without committing them: the caller then leads
    /// ([`Sequencer::try_lead`]), or another caller commits them first.
    pub(crate) fn enqueue(
        &self,
        leaves: Vec<NewLeaf>,
        wait: Wait,
    ) -> Result<Answer, (StoreError, Vec<NewLeaf>)> {
        let (reply, answer) = oneshot::channel();
        let wake_maintenance = {
            let Ok(mut q) = self.queue.lock() else { return Err((StoreError::Closed, leaves)) };
            if q.closed {
                return Err((StoreError::Closed, leaves));
            }
            if q.requests.len() >= APPEND_QUEUE_REQUESTS_MAX {
                self.stats.queue_full.inc();
                return Err((StoreError::Overloaded, leaves));
            }
            let first_background = wait == Wait::Nobody && q.oldest_background.is_none();
            if wait == Wait::Nobody {
                q.background_leaves += leaves.len();
                q.oldest_background.get_or_insert_with(Instant::now);
            } else {
                q.waited_for += 1;
            }
            q.requests.push(AppendRequest { leaves, reply, wait, enqueued: Instant::now() });
            (first_background && !self.maintenance_polling.load(Ordering::SeqCst))
                || q.background_leaves >= BACKGROUND_LEAVES_MAX
        };
        if wake_maintenance {
            self.wake_maintenance();
        }
        Ok(answer)
    }

    /// Commits everything queued if `writer` is the writer lock, round after
    /// round, then looks at the queue again after releasing it.
    fn lead<'a>(&'a self, mut writer: Result<MutexGuard<'a, u64>, TryLockError<MutexGuard<'a, u64>>>) {
        let mut rounds = 0;
        loop {
            let mut next = match writer {
                Ok(next) => next,
                // A panic while committing left no half-done commit behind (its
                // transaction rolled back); `next` is re-read on the next failure.
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            while rounds < LEADER_ROUNDS_MAX {
                let batch = self.take_batch();
                if batch.is_empty() {
                    break;
                }
                self.commit(&mut next, batch);
                rounds += 1;
            }
            drop(next);
            if self.waited_for() == 0 {
                return;
            }
            if rounds >= LEADER_ROUNDS_MAX {
                // Still more under sustained load: the maintenance thread takes
                // over, so this caller can go on with its own request.
                self.wake_maintenance();
                return;
            }
            writer = self.writer.try_lock();
        }
    }

    /// Leads with a blocking wait for the writer lock (the maintenance thread).
    fn lead_blocking(&self) {
        let next = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.lead(Ok(next));
    }

    /// How many requests somebody waits for are queued.
    fn waited_for(&self) -> usize {
        self.queue.lock().map_or(0, |q| q.waited_for)
    }

    /// True when nothing is queued.
    fn is_idle(&self) -> bool {
        self.queue.lock().map_or(true, |q| q.requests.is_empty())
    }

    /// Takes whole requests from the front of the queue, up to the group-commit limit.
    fn take_batch(&self) -> Vec<AppendRequest> {
        let Ok(mut q) = self.queue.lock() else { return Vec::new() };
        let mut leaves = 0;
        let mut taken = 0;
        for r in &q.requests {
            if taken > 0 && leaves + r.leaves.len() > GROUP_COMMIT_LEAVES_MAX {
                break;
            }
            leaves += r.leaves.len();
            taken += 1;
        }
        let batch: Vec<AppendRequest> = q.requests.drain(..taken).collect();
        for r in &batch {
            if r.wait == Wait::Nobody {
                q.background_leaves = q.background_leaves.saturating_sub(r.leaves.len());
            } else {
                q.waited_for = q.waited_for.saturating_sub(1);
            }
        }
        if q.background_leaves == 0 {
            q.oldest_background = None;
        }
        batch
    }

    /// One group commit: writes `batch` at `next` and answers it (or hands the
    /// answers to the syncer).
    fn commit(&self, next: &mut u64, batch: Vec<AppendRequest>) {
        // After a failed sync nothing more is acknowledged (fail closed).
        if self.syncer.is_poisoned() {
            for r in batch {
                let _ = r.reply.send(Err(StoreError::Database("the log could not sync its writes".into())));
            }
            return;
        }
        let started = Instant::now();
        let count = batch.iter().map(|r| r.leaves.len()).sum();
        let mut leaves = Vec::with_capacity(count);
        let mut replies = Vec::with_capacity(batch.len());
        for r in batch {
            if r.wait != Wait::Nobody {
                self.stats.queue_seconds.observe(started.saturating_duration_since(r.enqueued));
            }
            let first = *next + leaves.len() as u64;
            leaves.extend(r.leaves);
            replies.push((first, *next + leaves.len() as u64, r.reply, r.wait));
        }
        let appended = self.store.append_leaves(*next, &leaves);
        self.stats.commit_seconds.observe(started.elapsed());
        if let Err(e) = appended {
            self.stats.commit_failures.inc();
            tracing::error!(error = %e, "sequencing failed; the batch was not acknowledged");
            for (_, _, reply, _) in replies {
                let _ = reply.send(Err(StoreError::Database(e.to_string())));
            }
            // The store decides where sequencing continues (a commit that reported
            // failure may still have landed).
            match self.store.sequenced_size() {
                Ok(size) => *next = size,
                Err(e) => tracing::error!(error = %e, "cannot read the log's size after a failed commit"),
            }
            return;
        }
        self.stats.commits.inc();
        self.stats.committed_leaves.add(leaves.len() as u64);
        *next += leaves.len() as u64;
        self.sequenced.store(*next, Ordering::Release);
        let first_unintegrated = match self.unintegrated.lock() {
            Ok(mut u) => {
                let first = u.hashes.is_empty();
                u.hashes.extend(leaves.iter().map(NewLeaf::leaf_hash));
                u.end = *next;
                first
            }
            Err(_) => false,
        };
        if first_unintegrated && !self.maintenance_polling.load(Ordering::SeqCst) {
            // The maintenance thread sleeps while nothing waits for integration.
            self.wake_maintenance();
        }
        // Written now; those who wait for a sync are answered by the syncer.
        let mut to_sync = Vec::new();
        for (first, end, reply, wait) in replies {
            if wait == Wait::Synced {
                to_sync.push(Waiter { first, end, reply });
            } else {
                let _ = reply.send(Ok(first));
            }
        }
        self.syncer.committed(*next, to_sync);
    }

    /// True once a sync failed.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.syncer.is_poisoned()
    }

    fn wake_maintenance(&self) {
        if let Ok(t) = self.maintenance.lock()
            && let Some(t) = t.as_ref()
        {
            t.unpark();
        }
    }

    /// Refuses appends from now on and wakes the maintenance thread to finish.
    pub(crate) fn close(&self) {
        if let Ok(mut q) = self.queue.lock() {
            q.closed = true;
        }
        self.wake_maintenance();
    }
}

/// The maintenance thread: commits what no leader took, integrates, and at the
/// end syncs and integrates everything.
pub(crate) fn maintain(sequencer: &Sequencer, mut integrator: Integrator, head: &watch::Sender<TreeHead>) {
    if let Ok(mut m) = sequencer.maintenance.lock() {
        *m = Some(std::thread::current());
    }
    let mut integrated_at = Instant::now();
    let (mut seen, mut active_at) = (sequencer.sequenced.load(Ordering::Acquire), Instant::now());
    // Awake, and busy until a second passes without a commit.
    sequencer.maintenance_polling.store(true, Ordering::SeqCst);
    loop {
        let (closed, waited_for, background_due) = match sequencer.queue.lock() {
            Ok(q) => (
                q.closed,
                q.waited_for,
                q.background_leaves >= BACKGROUND_LEAVES_MAX
                    || q.oldest_background
                        .is_some_and(|t| t.elapsed() >= Duration::from_millis(BACKGROUND_DELAY_MS_MAX)),
            ),
            Err(_) => (true, 0, true),
        };
        if closed {
            // Nothing new can be queued: commit all that is.
            while !sequencer.is_idle() {
                sequencer.lead_blocking();
            }
            break;
        }
        if waited_for > 0 || background_due {
            sequencer.lead_blocking();
        }
        let unintegrated = sequencer.unintegrated.lock().is_ok_and(|u| !u.hashes.is_empty());
        let integrate_due = integrated_at + Duration::from_millis(INTEGRATE_DELAY_MS);
        if unintegrated && Instant::now() >= integrate_due {
            integrator = integrate(sequencer, integrator, head);
            integrated_at = Instant::now();
            // Whoever releases the database looks at the queue again.
            continue;
        }
        let sequenced = sequencer.sequenced.load(Ordering::Acquire);
        if sequenced != seen {
            (seen, active_at) = (sequenced, Instant::now());
        }
        let busy = active_at.elapsed() < Duration::from_millis(MAINTENANCE_IDLE_AFTER_MS);
        if !busy {
            // From here on an append that needs this thread wakes it; what was
            // queued before is in the state read below.
            sequencer.maintenance_polling.store(false, Ordering::SeqCst);
        }
        // Sleep until the next thing falls due (or the next look, while busy); a
        // submit or close unparks sooner.
        let unintegrated = sequencer.unintegrated.lock().is_ok_and(|u| !u.hashes.is_empty());
        let mut wake_at = unintegrated.then_some(integrate_due);
        if let Ok(q) = sequencer.queue.lock()
            && let Some(t) = q.oldest_background
        {
            let due = t + Duration::from_millis(BACKGROUND_DELAY_MS_MAX);
            wake_at = Some(wake_at.map_or(due, |w| w.min(due)));
        }
        if busy {
            let look = Instant::now() + Duration::from_millis(MAINTENANCE_POLL_MS);
            wake_at = Some(wake_at.map_or(look, |w| w.min(look)));
        }
        match wake_at {
            Some(at) => std::thread::park_timeout(at.saturating_duration_since(Instant::now())),
            None => std::thread::park(),
        }
        // Awake: it looks at everything before it sleeps again.
        sequencer.maintenance_polling.store(true, Ordering::SeqCst);
    }
    // Drain: every acknowledged append is synced and answered, then integrated.
    sequencer.syncer.stop();
    if let Err(e) = Integrator::catch_up(sequencer.store.as_ref()) {
        tracing::error!(error = %e, "final integration failed; it will resume at next start");
    }
}

/// Integrates the committed leaves; on any failure or gap rebuilds from the store
/// so integration never diverges from the written leaves.
fn integrate(sequencer: &Sequencer, integrator: Integrator, head: &watch::Sender<TreeHead>) -> Integrator {
    let started = Instant::now();
    let (hashes, end) = match sequencer.unintegrated.lock() {
        Ok(mut u) => (std::mem::take(&mut u.hashes), u.end),
        Err(_) => (Vec::new(), 0),
    };
    let store = sequencer.store.as_ref();
    let start = end.saturating_sub(hashes.len() as u64);
    let size = integrator.size();
    // Leaves a rebuild already integrated are skipped; a gap means a rebuild.
    let result = if size >= start && size <= end {
        let fresh = hashes.get((size - start) as usize..).unwrap_or_default();
        let mut integrator = integrator;
        integrator.append(store, fresh.iter().copied()).map(|()| integrator)
    } else {
        Integrator::catch_up(store)
    };
    let integrator = result.or_else(|e| {
        tracing::error!(error = %e, "integration failed; retrying from the written leaves");
        Integrator::catch_up(store)
    });
    let integrator = match integrator {
        Ok(i) => {
            head.send_replace(TreeHead { size: i.size(), root: i.root() });
            i
        }
        Err(e) => {
            // The head stays where it was; the next round retries from the store.
            tracing::error!(error = %e, "integration cannot catch up");
            Integrator::restore(store).unwrap_or_else(|_| Integrator::empty())
        }
    };
    sequencer.stats.integrate_seconds.observe(started.elapsed());
    integrator
}
