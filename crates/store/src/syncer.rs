//! The log's syncer: makes written leaves durable against power loss, beside the
//! committers instead of inside their commits.
//!
//! Why a thread of its own: an fsync costs 0.1–5 ms on the disks we run on, and
//! while a commit waited for one, every append behind it waited too. Now a commit
//! only writes (its WAL frames are in the operating system's cache, so a crash of
//! the process cannot lose them) and this thread runs one [`Store::sync`] after
//! another for as long as written leaves are unsynced (at once when an append
//! waits for it, else at most every [`SYNC_GAP_MS_MAX`]). Each sync covers every
//! commit that finished before it began, so one sync is shared by all the commits
//! in between (group sync) and never delays a commit.
//!
//! Appends that must be durable against power loss before they are answered
//! (telemetry, control changes) wait here; decisions may be answered once written,
//! and this thread bounds how long they stay unsynced to [`SYNC_GAP_MS_MAX`] plus
//! a sync.
//!
//! A committer never blocks on this thread: it publishes what it committed in an
//! atomic, and unparks the thread only when an append waits for a sync or the
//! thread sleeps with nothing to sync (waking it after every commit cost a futex
//! wake and a context switch per request, for a thread that then went back to
//! sleep until its gap ended); only appends that wait for a sync take the
//! waiters' lock.
//!
//! INVARIANT: `synced` only grows, and never past what was committed when the sync
//! that set it began.
//! INVARIANT: after a failed sync the log is poisoned: whether the written pages
//! reached the disk is unknown (Linux may mark them clean after reporting the
//! error), so nothing more is acknowledged (fail closed).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

use crate::log::LogStats;

/// Shortest gap between two syncs when nobody waits for one: written leaves wait
/// at most this long (plus a sync) to become durable against power loss, and under
/// load the syncer flushes at most this often instead of after every commit (each
/// fdatasync costs CPU in the kernel: 11% of Warden's at saturation when it ran
/// back to back). An append that waits for a sync ends the gap at once.
pub const SYNC_GAP_MS_MAX: u64 = 2;
use crate::{Store, StoreError};

/// Where an append's reply goes.
pub(crate) type Reply = oneshot::Sender<Result<u64, StoreError>>;

/// An append answered once a sync covers it: the index of its first leaf, the end
/// of its leaves, and its reply.
pub(crate) struct Waiter {
    pub(crate) first: u64,
    pub(crate) end: u64,
    pub(crate) reply: Reply,
}

struct Shared {
    /// Leaves committed (all of them written).
    committed: AtomicU64,
    /// Leaves covered by a finished sync; changed only under `waiting`'s lock.
    synced: Arc<AtomicU64>,
    waiting: Mutex<VecDeque<Waiter>>,
    poisoned: AtomicBool,
    stop: AtomicBool,
    /// True while the thread sleeps with nothing to sync (untimed).
    // INVARIANT: set before the thread's last look at `committed` ahead of an
    // untimed sleep; a committer publishes `committed` before it reads this, so
    // one of the two sees the other (both sequentially consistent).
    idle: AtomicBool,
}

/// The handle on the syncer thread.
pub(crate) struct Syncer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Syncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncer").finish_non_exhaustive()
    }
}

impl Syncer {
    /// Starts the syncer for a log whose first `size` leaves are already durable;
    /// `synced` follows what it has synced, for readers elsewhere.
    pub(crate) fn start(
        store: Arc<dyn Store>,
        size: u64,
        synced: Arc<AtomicU64>,
        stats: Arc<LogStats>,
    ) -> Result<Self, StoreError> {
        synced.store(size, Ordering::Release);
        let shared = Arc::new(Shared {
            committed: AtomicU64::new(size),
            synced,
            waiting: Mutex::new(VecDeque::new()),
            poisoned: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            idle: AtomicBool::new(false),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("warden-log-sync".into())
                .spawn(move || sync_loop(store.as_ref(), &shared, &stats))
                .map_err(|e| StoreError::Database(format!("cannot start the log syncer: {e}")))?
        };
        Ok(Self { shared, thread: Mutex::new(Some(thread)) })
    }

    /// True once a sync failed: nothing may be acknowledged any more.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.shared.poisoned.load(Ordering::Acquire)
    }

    /// Leaves up to `committed` are written; `waiters` are answered once a sync
    /// covers them.
    pub(crate) fn committed(&self, committed: u64, waiters: Vec<Waiter>) {
        self.shared.committed.fetch_max(committed, Ordering::SeqCst);
        let waited_for = !waiters.is_empty();
        if waited_for {
            match self.shared.waiting.lock() {
                // Checked under the lock the syncer poisons and advances under: no
                // waiter slips past a failure or a finished sync.
                Ok(mut waiting) if !self.is_poisoned() => {
                    let synced = self.shared.synced.load(Ordering::Acquire);
                    for w in waiters {
                        if w.end <= synced {
                            let _ = w.reply.send(Ok(w.first));
                        } else {
                            waiting.push_back(w);
                        }
                    }
                }
                _ => fail_all(waiters, "the log could not sync its writes"),
            }
        }
        // Otherwise the thread is in its gap and syncs this commit when it ends.
        if waited_for || self.shared.idle.swap(false, Ordering::SeqCst) {
            self.unpark();
        }
    }

    fn unpark(&self) {
        if let Ok(t) = self.thread.lock()
            && let Some(t) = t.as_ref()
        {
            t.thread().unpark();
        }
    }

    /// Syncs what is left, answers every waiter and stops the thread.
    pub(crate) fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = handle {
            t.thread().unpark();
            if t.join().is_err() {
                tracing::error!("log syncer panicked");
            }
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn fail_all(waiters: Vec<Waiter>, why: &str) {
    for w in waiters {
        let _ = w.reply.send(Err(StoreError::Database(why.to_owned())));
    }
}

fn sync_loop(store: &dyn Store, shared: &Shared, stats: &LogStats) {
    let mut last_sync = Instant::now();
    loop {
        // Everything committed before this load is covered by the sync below.
        let target = shared.committed.load(Ordering::Acquire);
        if target <= shared.synced.load(Ordering::Acquire) {
            if shared.stop.load(Ordering::Acquire) {
                // One last look: a commit may have landed just before the stop.
                if shared.committed.load(Ordering::Acquire) <= shared.synced.load(Ordering::Acquire) {
                    return;
                }
                continue;
            }
            shared.idle.store(true, Ordering::SeqCst);
            if shared.committed.load(Ordering::SeqCst) > shared.synced.load(Ordering::Acquire) {
                shared.idle.store(false, Ordering::SeqCst);
                continue;
            }
            // An unpark between the load above and this park makes it return at once.
            std::thread::park();
            shared.idle.store(false, Ordering::SeqCst);
            continue;
        }
        let gap_ends = last_sync + std::time::Duration::from_millis(SYNC_GAP_MS_MAX);
        let nobody_waits = shared.waiting.lock().is_ok_and(|w| w.is_empty());
        if nobody_waits && !shared.stop.load(Ordering::Acquire) && Instant::now() < gap_ends {
            // A waiter's commit unparks this thread and ends the gap.
            std::thread::park_timeout(gap_ends.saturating_duration_since(Instant::now()));
            continue;
        }
        let started = Instant::now();
        let result = store.sync();
        last_sync = Instant::now();
        stats.sync_seconds.observe(last_sync.saturating_duration_since(started));
        let Ok(mut waiting) = shared.waiting.lock() else { return };
        match result {
            Ok(()) => {
                stats.syncs.inc();
                shared.synced.fetch_max(target, Ordering::AcqRel);
                for w in std::mem::take(&mut *waiting) {
                    if w.end <= target {
                        let _ = w.reply.send(Ok(w.first));
                    } else {
                        waiting.push_back(w);
                    }
                }
            }
            Err(e) => {
                stats.sync_failures.inc();
                shared.poisoned.store(true, Ordering::Release);
                tracing::error!(
                    error = %e,
                    "the log could not sync its writes; nothing more is acknowledged until Warden restarts"
                );
                for w in waiting.drain(..) {
                    let _ = w.reply.send(Err(StoreError::Database(format!("the log could not sync: {e}"))));
                }
                return;
            }
        }
    }
}
