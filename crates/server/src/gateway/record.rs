//! One action event per forwarded action, written when the answer is complete.
//!
//! The decision that allowed the action is already durable (fail closed happens
//! there); the action event is appended once its status, sizes and latency are
//! known, without holding the agent's answer back. In forensics mode the event
//! carries the commitment to the captured bodies, which are stored once the
//! event is durable (`incident::forensics`).

use std::sync::Arc;
use std::time::Instant;

use warden_core::action::ActionEvent;
use warden_core::admin::Severity;
use warden_store::{NewLeaf, StoreError};

use crate::AppState;
use crate::incident::forensics::{Capture, CaptureOwner};

/// What is known of an action before it is forwarded.
#[derive(Debug)]
pub struct ActionStart {
    /// Agent id.
    pub actor: String,
    /// Session id.
    pub session_id: String,
    /// Decision id.
    pub decision_id: String,
    /// Intent.
    pub intent: String,
    /// Resource id.
    pub resource: String,
    /// Upstream name.
    pub upstream: String,
    /// HTTP or MCP method.
    pub method: String,
    /// Path or tool name.
    pub target: String,
    /// `sha256:` of the request.
    pub request_sha256: String,
    /// Bytes the agent sent.
    pub bytes_in: u64,
    /// When forwarding started.
    pub started: Instant,
    /// The bodies being kept, when forensics is on for the session.
    pub capture: Option<Box<Capture>>,
}

/// How the action ended.
#[derive(Debug, Clone, Copy)]
pub struct ActionEnd {
    /// `success`, `upstream_error`, `upstream_unavailable`, `upstream_timeout`.
    pub outcome: &'static str,
    /// HTTP status of the answer, 0 when none.
    pub status: u16,
    /// Bytes answered.
    pub bytes_out: u64,
}

/// Appends the action event in the background; a failure is reported in the
/// server's log (the decision that allowed the action is already in the log).
pub fn record(state: &AppState, start: ActionStart, end: ActionEnd) {
    let took = start.started.elapsed();
    state.metrics.action(&start.upstream, end.outcome, took);
    let latency_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    let severity = if end.outcome == "success" { Severity::Info } else { Severity::Warning };
    let (forensics, kept) = match start.capture {
        Some(capture) => {
            let (commitment, kept) = capture.finish();
            let owner = CaptureOwner {
                decision_id: start.decision_id.clone(),
                session_id: start.session_id.clone(),
                agent_id: start.actor.clone(),
            };
            (Some(commitment), Some((kept, owner)))
        }
        None => (None, None),
    };
    let event = ActionEvent {
        actor: start.actor,
        bytes_in: start.bytes_in,
        bytes_out: end.bytes_out,
        decision_id: start.decision_id,
        forensics,
        intent: start.intent,
        kind: "action".into(),
        latency_us,
        method: start.method,
        outcome: end.outcome.into(),
        received_at: warden_core::event::format_rfc3339(state.clock.now()),
        request_sha256: start.request_sha256,
        resource: start.resource,
        session_id: start.session_id,
        severity,
        source: "warden".into(),
        status: u64::from(end.status),
        target: start.target,
        upstream: start.upstream,
    };
    let leaf = match event.to_leaf() {
        Ok(leaf) => leaf,
        Err(e) => {
            tracing::error!(error = %e, decision = %event.decision_id, "cannot encode an action event");
            return;
        }
    };
    // Handed to the writer without a task of its own: the writer reports a failed
    // commit itself, nobody waits for this one, and it may ride along with the next
    // decision's commit. Only when the queue is full does it wait, in a task, rather
    // than be lost. A forensic capture is stored once its event is durable, with
    // the event's log index.
    match state.log.try_enqueue_background(vec![NewLeaf::new(leaf, None)]) {
        Ok(durable) => {
            if let Some((kept, owner)) = kept {
                state.forensics.keep(
                    kept,
                    owner,
                    async move { durable.await.unwrap_or(Err(StoreError::Closed)) },
                );
            }
        }
        Err((StoreError::Overloaded, leaves)) => {
            let log = Arc::clone(&state.log);
            let appended = async move { log.append(leaves).await };
            match kept {
                Some((kept, owner)) => state.forensics.keep(kept, owner, appended),
                None => {
                    tokio::spawn(async move {
                        if let Err(e) = appended.await {
                            tracing::error!(error = %e, decision = %event.decision_id, "action event not recorded");
                        }
                    });
                }
            }
        }
        Err((e, _)) => {
            tracing::error!(error = %e, decision = %event.decision_id, "action event not recorded")
        }
    }
}
