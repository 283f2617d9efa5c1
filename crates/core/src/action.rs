//! Actions the gateway forwarded: one event per action, beside the decision event
//! that allowed it.
//!
//! Actions are as frequent as decisions, so the event has a fixed shape that
//! serializes canonically by construction, like [`crate::admin::DecisionEvent`].

use serde::{Deserialize, Serialize};

use crate::admin::Severity;
use crate::canonical::CanonicalError;

/// Largest integer an action event carries: integers above 2^53 would not be
/// canonical numbers under RFC 8785.
pub const ACTION_INTEGER_MAX: u64 = (1 << 53) - 1;

/// One forwarded action, as logged.
///
/// INVARIANT: fields are declared in RFC 8785 key order and every value is a
/// string or an integer at most [`ACTION_INTEGER_MAX`] (enforced by
/// [`ActionEvent::to_leaf`]), so plain `serde_json` output is the canonical form
/// (checked against the canonicalizer by `action_leaf_is_rfc8785_canonical`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionEvent {
    /// The agent that acted.
    pub actor: String,
    /// Bytes the agent sent (request body, or tool-call arguments).
    pub bytes_in: u64,
    /// Bytes the upstream answered.
    pub bytes_out: u64,
    /// The decision that allowed it (`dec_…`).
    pub decision_id: String,
    /// The intent.
    pub intent: String,
    /// Always `action`.
    pub kind: String,
    /// Time from forwarding to the end of the answer, microseconds.
    pub latency_us: u64,
    /// HTTP method, or the MCP method (`tools/call`).
    pub method: String,
    /// `success`, `upstream_error` (the upstream answered with an error),
    /// `upstream_unavailable` or `upstream_timeout`.
    pub outcome: String,
    /// When Warden forwarded it (RFC 3339, UTC).
    pub received_at: String,
    /// `sha256:` of the request: method, path, query and body (HTTP), or method,
    /// tool and arguments (MCP), each followed by a newline.
    pub request_sha256: String,
    /// The destination's id.
    pub resource: String,
    /// The session that acted.
    pub session_id: String,
    /// `info`, or `warning` when the upstream failed.
    pub severity: Severity,
    /// Always `warden`: observed by the gateway, authoritative.
    pub source: String,
    /// HTTP status of the answer (for MCP, of the upstream's HTTP answer, or 200 over stdio); 0 when there was none.
    pub status: u64,
    /// The path (HTTP) or tool, prompt or resource name (MCP).
    pub target: String,
    /// The upstream's configured name.
    pub upstream: String,
}

impl ActionEvent {
    /// The log leaf: RFC 8785 canonical JSON, without the general canonicalizer.
    pub fn to_leaf(&self) -> Result<Vec<u8>, CanonicalError> {
        let mut event = self.clone();
        for n in [&mut event.bytes_in, &mut event.bytes_out, &mut event.latency_us, &mut event.status] {
            *n = (*n).min(ACTION_INTEGER_MAX);
        }
        let mut out = Vec::with_capacity(512);
        serde_json::to_writer(&mut out, &event)
            .map_err(|e| CanonicalError::Unrepresentable(e.to_string()))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn action_leaf_is_rfc8785_canonical(text in "\\PC{0,20}", n in any::<u64>()) {
            let e = ActionEvent {
                actor: text.clone(), bytes_in: n, bytes_out: n / 3, decision_id: text.clone(),
                intent: text.clone(), kind: "action".into(), latency_us: n % 1000, method: text.clone(),
                outcome: "success".into(), received_at: text.clone(), request_sha256: text.clone(),
                resource: text.clone(), session_id: text.clone(), severity: Severity::Info,
                source: "warden".into(), status: 200, target: text.clone(), upstream: text,
            };
            let leaf = e.to_leaf().unwrap();
            let parsed: ActionEvent = serde_json::from_slice(&leaf).unwrap();
            prop_assert_eq!(&leaf, &crate::canonical::to_canonical_vec(&parsed).unwrap());
        }
    }
}
