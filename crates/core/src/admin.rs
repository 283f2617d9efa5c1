//! Administrative events: every change to agents, sessions, credentials, operators
//! and policy is written to the log like any action.
//!
//! They are rare, so their leaf is produced by the general RFC 8785 canonicalizer
//! rather than the hand-ordered fast path of telemetry events.

use serde::{Deserialize, Serialize};

use crate::canonical::{CanonicalError, to_canonical_vec};

/// Severity of an administrative event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Routine change.
    Info,
    /// Worth a look (a revocation, a refused change).
    Warning,
    /// An attack or a breach of an invariant (an agent trying to govern itself).
    High,
}

/// One administrative change or refusal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminEvent {
    /// What happened, dotted: `agent.registered`, `session.ended`, `policy.pushed`,
    /// `credential.revoked`, `governance.denied`, …
    pub kind: String,
    /// Who did it: an operator id (`opr_…`), an agent id, or `system`.
    pub actor: String,
    /// What it was done to (an id).
    pub subject: String,
    /// How serious it is.
    pub severity: Severity,
    /// Details specific to the kind; never secrets.
    pub details: serde_json::Value,
    /// When Warden recorded it (RFC 3339, UTC).
    pub received_at: String,
    /// Always `warden`: observed by Warden itself, authoritative.
    pub source: String,
}

impl AdminEvent {
    /// The log leaf: RFC 8785 canonical JSON.
    pub fn to_leaf(&self) -> Result<Vec<u8>, CanonicalError> {
        to_canonical_vec(self)
    }
}
