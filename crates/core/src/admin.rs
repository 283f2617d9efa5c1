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

/// A policy decision, as logged. Decisions are as frequent as actions, so this
/// event has a fixed shape that serializes canonically by construction.
///
/// INVARIANT: fields are declared in RFC 8785 key order and every value is a string
/// or an array of strings, so plain `serde_json` output is the canonical form
/// (checked against the canonicalizer by `decision_leaf_is_rfc8785_canonical`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionEvent {
    /// The agent that asked.
    pub actor: String,
    /// `allow`, `confirm`, `approve` or `deny`.
    pub decision: String,
    /// Where the action's arguments send data (`email:example.com`, `host:…`).
    #[serde(default)]
    pub destinations: Vec<String>,
    /// Ids of the policies that determined it.
    pub determining: Vec<String>,
    /// The intent asked for.
    pub intent: String,
    /// Always `decision`.
    pub kind: String,
    /// `sha256:…` of the policy set that decided.
    pub policy_hash: String,
    /// Why.
    pub reasons: Vec<String>,
    /// When Warden decided (RFC 3339, UTC).
    pub received_at: String,
    /// Why Warden refused before or beside policy (`budget`, `self_governance`, …), or empty.
    pub refusal: String,
    /// The destination's id.
    pub resource: String,
    /// The destination's class, `environment/plane/data_class`.
    #[serde(default)]
    pub resource_class: String,
    /// The session that asked.
    pub session_id: String,
    /// `info`, or `high` for an attempt on the agent's own governance.
    pub severity: Severity,
    /// Shadow policies that matched, as `id=tier`.
    pub shadow: Vec<String>,
    /// Always `warden`.
    pub source: String,
    /// The decision id (`dec_…`).
    pub subject: String,
}

impl DecisionEvent {
    /// The log leaf: RFC 8785 canonical JSON, without the general canonicalizer.
    pub fn to_leaf(&self) -> Result<Vec<u8>, CanonicalError> {
        let mut out = Vec::with_capacity(512);
        serde_json::to_writer(&mut out, self).map_err(|e| CanonicalError::Unrepresentable(e.to_string()))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decision_leaf_is_rfc8785_canonical(text in "\\PC{0,20}", list in proptest::collection::vec("[\\x00-\\x7f\\u{80}-\\u{3000}]{0,8}", 0..4)) {
            let e = DecisionEvent {
                actor: text.clone(), decision: "allow".into(), destinations: list.clone(), determining: list.clone(), intent: text.clone(),
                kind: "decision".into(), policy_hash: text.clone(), reasons: list.clone(), received_at: text.clone(),
                refusal: String::new(), resource: text.clone(), resource_class: text.clone(), session_id: text.clone(), severity: Severity::High,
                shadow: list, source: "warden".into(), subject: text,
            };
            prop_assert_eq!(e.to_leaf().unwrap(), crate::canonical::to_canonical_vec(&e).unwrap());
        }
    }
}
