//! Bounded forwarding: at most `connections_max` requests in flight to one
//! upstream, at most `queue_max` waiting for a slot; beyond that the gateway
//! refuses at once instead of piling up work.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::config::Limits;

/// The gate in front of one upstream.
#[derive(Debug)]
pub struct Gate {
    slots: Arc<Semaphore>,
    // INVARIANT: counts callers inside `enter` that have not got a slot yet.
    waiting: AtomicU32,
    queue_max: u32,
}

/// Why [`Gate::enter`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateRefusal {
    /// `queue_max` callers are already waiting.
    QueueFull,
    /// The gate is closed (shutting down).
    Closed,
}

struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    /// A gate for `limits`.
    pub fn new(limits: &Limits) -> Self {
        let slots = usize::try_from(limits.connections_max).unwrap_or(usize::MAX).max(1);
        Self {
            slots: Arc::new(Semaphore::new(slots)),
            waiting: AtomicU32::new(0),
            queue_max: limits.queue_max,
        }
    }

    /// A slot, waiting in the bounded queue if none is free. The caller bounds the
    /// wait with its own time limit (dropping the future leaves the queue).
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit, GateRefusal> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(permit);
        }
        let before = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.waiting);
        if before >= self.queue_max {
            return Err(GateRefusal::QueueFull);
        }
        Arc::clone(&self.slots).acquire_owned().await.map_err(|_| GateRefusal::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_slot_one_waiter_then_refusal() {
        let limits = Limits { connections_max: 1, queue_max: 1, ..Limits::default() };
        let gate = Arc::new(Gate::new(&limits));
        let first = gate.enter().await.unwrap();
        let g = Arc::clone(&gate);
        let waiter = tokio::spawn(async move { g.enter().await.map(drop) });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(gate.enter().await.unwrap_err(), GateRefusal::QueueFull);
        drop(first);
        assert!(waiter.await.unwrap().is_ok());
        assert!(gate.enter().await.is_ok());
    }
}
