//! One action event per forwarded action, written when the answer is complete.
//!
//! The decision that allowed the action is already durable (fail closed happens
//! there); the action event is appended once its status, sizes and latency are
//! known, without holding the agent's answer back.

use std::time::Instant;

use warden_core::action::ActionEvent;
use warden_core::admin::Severity;
use warden_store::{NewLeaf, StoreError};

use crate::AppState;

/// What is known of an action before it is forwarded.
#[derive(Debug, Clone)]
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
    let event = ActionEvent {
        actor: start.actor,
        bytes_in: start.bytes_in,
        bytes_out: end.bytes_out,
        decision_id: start.decision_id,
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
    // than be lost.
    match state.log.try_enqueue_background(vec![NewLeaf::new(leaf, None)]) {
        Ok(_) => {}
        Err((StoreError::Overloaded, leaves)) => {
            let log = std::sync::Arc::clone(&state.log);
            tokio::spawn(async move {
                if let Err(e) = log.append(leaves).await {
                    tracing::error!(error = %e, decision = %event.decision_id, "action event not recorded");
                }
            });
        }
        Err((e, _)) => {
            tracing::error!(error = %e, decision = %event.decision_id, "action event not recorded")
        }
    }
}
