//! Background work: publishing checkpoints, expiring contexts and forensic
//! captures, snapshotting the behavior engine.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::AppState;

/// How often expired contexts and forensic captures are deleted.
const CONTEXT_SWEEP_INTERVAL_MS: u64 = 60_000;

/// Starts the background tasks; abort the handle to stop them.
pub fn spawn(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut publish =
            tokio::time::interval(Duration::from_millis(state.config.log.checkpoint_interval_ms));
        publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sweep = tokio::time::interval(Duration::from_millis(CONTEXT_SWEEP_INTERVAL_MS));
        let mut snapshot =
            tokio::time::interval(Duration::from_secs(state.config.behavior.snapshot_interval_s));
        snapshot.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = publish.tick() => {
                    let (log, signer) = (state.log.clone(), state.signer.clone());
                    match tokio::task::spawn_blocking(move || log.publish(&signer)).await {
                        Ok(Ok(Some(cp))) => tracing::debug!(size = cp.size, "checkpoint published"),
                        Ok(Ok(None)) => {}
                        Ok(Err(e)) => tracing::error!(error = %e, "checkpoint not published"),
                        Err(e) => tracing::error!(error = %e, "checkpoint task failed"),
                    }
                }
                _ = snapshot.tick() => {
                    match state.behavior.snapshot(&state.log).await {
                        Ok(covered) => tracing::debug!(covered, "behavior snapshot written"),
                        Err(e) => tracing::error!(error = %e, "behavior snapshot not written"),
                    }
                }
                _ = sweep.tick() => {
                    let (store, now) = (state.log.store().clone(), state.clock.now().unix_timestamp());
                    match tokio::task::spawn_blocking(move || store.delete_expired_contexts(now)).await {
                        Ok(Ok(n)) if n > 0 => tracing::info!(deleted = n, "expired contexts deleted"),
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => tracing::error!(error = %e, "context expiry failed"),
                        Err(e) => tracing::error!(error = %e, "context expiry task failed"),
                    }
                    match state.forensics.sweep(now).await {
                        Ok(n) if n > 0 => tracing::info!(deleted = n, "expired forensic captures deleted"),
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "forensic capture expiry failed"),
                    }
                }
            }
        }
    })
}
