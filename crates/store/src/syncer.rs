//! The log's syncer: makes written leaves durable against power loss, beside the
//! writer instead of inside its commits.
//!
//! Why a thread of its own: an fsync costs 0.1–5 ms on the disks we run on, and
//! while the writer waited for one, every append behind it waited too. Now the
//! writer commits (its WAL frames are written, so a crash of the process cannot
//! lose them) and goes on to the next batch, while this thread runs one
//! [`Store::sync`] after another for as long as written leaves are unsynced. Each
//! sync covers every commit that finished before it began, so syncs are shared by
//! all the commits in between (group sync) and never delay a commit.
//!
//! Appends that must be durable against power loss before they are answered
//! (telemetry, control changes, checkpoints) wait here; decisions may be answered
//! once written (`Wait::Written`), and this thread bounds how long they stay
//! unsynced to about two syncs.
//!
//! INVARIANT: `synced` only grows, and never past what the writer had committed
//! when the sync that set it began.
//! INVARIANT: after a failed sync the log is poisoned: whether the written pages
//! reached the disk is unknown (Linux may mark them clean after reporting the
//! error), so nothing more is acknowledged and the writer stops (fail closed).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

use crate::log::LogStats;
use crate::{Store, StoreError};

/// An append answered once a sync covers it.
struct Waiter {
    first: u64,
    end: u64,
    reply: oneshot::Sender<Result<u64, StoreError>>,
}

#[derive(Default)]
struct Shared {
    /// Leaves committed by the writer (all of them written).
    committed: u64,
    /// Leaves covered by a finished sync.
    synced: u64,
    waiting: VecDeque<Waiter>,
    stop: bool,
}

/// The writer's handle on the syncer thread.
pub(crate) struct Syncer {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    poisoned: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts the syncer for a log whose first `size` leaves are already durable;
    /// `synced_size` follows what it has synced, for readers outside the writer.
    pub(crate) fn start(
        store: Arc<dyn Store>,
        size: u64,
        synced_size: Arc<AtomicU64>,
        stats: Arc<LogStats>,
    ) -> Result<Self, StoreError> {
        let shared = Arc::new((
            Mutex::new(Shared { committed: size, synced: size, ..Shared::default() }),
            Condvar::new(),
        ));
        synced_size.store(size, Ordering::Release);
        let poisoned = Arc::new(AtomicBool::new(false));
        let thread = {
            let (shared, synced_size, poisoned) =
                (Arc::clone(&shared), Arc::clone(&synced_size), Arc::clone(&poisoned));
            std::thread::Builder::new()
                .name("warden-log-sync".into())
                .spawn(move || sync_loop(store.as_ref(), &shared, &synced_size, &poisoned, &stats))
                .map_err(|e| StoreError::Database(format!("cannot start the log syncer: {e}")))?
        };
        Ok(Self { shared, poisoned, thread: Some(thread) })
    }

    /// True once a sync failed: nothing may be acknowledged any more.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// The writer committed leaves up to `committed`; `waiters` (each with the
    /// first index and end of its leaves) are answered once a sync covers them.
    pub(crate) fn committed(
        &self,
        committed: u64,
        waiters: impl IntoIterator<Item = (u64, u64, oneshot::Sender<Result<u64, StoreError>>)>,
    ) {
        let (lock, wake) = &*self.shared;
        let Ok(mut shared) = lock.lock() else {
            fail_all(waiters, "the log syncer stopped");
            return;
        };
        // Checked under the lock the syncer poisons under: no waiter slips past.
        if self.is_poisoned() {
            drop(shared);
            fail_all(waiters, "the log could not sync its writes");
            return;
        }
        shared.committed = shared.committed.max(committed);
        for (first, end, reply) in waiters {
            if end <= shared.synced {
                let _ = reply.send(Ok(first));
            } else {
                shared.waiting.push_back(Waiter { first, end, reply });
            }
        }
        drop(shared);
        wake.notify_one();
    }

    /// Syncs what is left, answers every waiter and stops the thread.
    pub(crate) fn stop(&mut self) {
        let (lock, wake) = &*self.shared;
        if let Ok(mut shared) = lock.lock() {
            shared.stop = true;
        }
        wake.notify_one();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("log syncer panicked");
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn fail_all(
    waiters: impl IntoIterator<Item = (u64, u64, oneshot::Sender<Result<u64, StoreError>>)>,
    why: &str,
) {
    for (_, _, reply) in waiters {
        let _ = reply.send(Err(StoreError::Database(why.to_owned())));
    }
}

fn sync_loop(
    store: &dyn Store,
    shared: &(Mutex<Shared>, Condvar),
    synced_size: &AtomicU64,
    poisoned: &AtomicBool,
    stats: &LogStats,
) {
    let (lock, wake) = shared;
    loop {
        // Wait for unsynced leaves (or the stop, once everything is synced).
        let target = {
            let Ok(mut s) = lock.lock() else { return };
            while s.committed == s.synced && !s.stop {
                s = match wake.wait(s) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            }
            if s.committed == s.synced {
                return;
            }
            s.committed
        };
        // Everything committed before this point is covered by this sync.
        let started = Instant::now();
        let result = store.sync();
        stats.sync_seconds.observe(started.elapsed());
        let Ok(mut s) = lock.lock() else { return };
        match result {
            Ok(()) => {
                stats.syncs.inc();
                s.synced = s.synced.max(target);
                synced_size.store(s.synced, Ordering::Release);
                while s.waiting.front().is_some_and(|w| w.end <= s.synced) {
                    if let Some(w) = s.waiting.pop_front() {
                        let _ = w.reply.send(Ok(w.first));
                    }
                }
            }
            Err(e) => {
                stats.sync_failures.inc();
                poisoned.store(true, Ordering::Release);
                tracing::error!(
                    error = %e,
                    "the log could not sync its writes; nothing more is acknowledged until Warden restarts"
                );
                for w in s.waiting.drain(..) {
                    let _ = w.reply.send(Err(StoreError::Database(format!("the log could not sync: {e}"))));
                }
                // Nothing more can be made durable; later waiters are failed by
                // `Syncer::committed`, and the writer refuses appends from now on.
                return;
            }
        }
    }
}
