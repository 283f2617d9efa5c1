//! Actions the gateway forwarded: one event per action, beside the decision event
//! that allowed it.
//!
//! Actions are as frequent as decisions, so the event has a fixed shape that
//! serializes canonically by construction, like [`crate::admin::DecisionEvent`].
//!
//! While forensics is on for a session, its action events also commit to the
//! request and response bodies kept apart from the log ([`ActionForensics`]).

use serde::{Deserialize, Serialize};

use crate::admin::Severity;
use crate::canonical::CanonicalError;
use crate::commitment::commitment_of;

/// Largest integer an action event carries: integers above 2^53 would not be
/// canonical numbers under RFC 8785.
pub const ACTION_INTEGER_MAX: u64 = (1 << 53) - 1;

/// One forwarded action, as logged.
///
/// INVARIANT: fields are declared in RFC 8785 key order and every value is a
/// string, a boolean or an integer at most [`ACTION_INTEGER_MAX`] (enforced by
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
    /// The commitment to the bodies kept while forensics was on for the session;
    /// absent (not `null`) otherwise, so leaves without forensics are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forensics: Option<ActionForensics>,
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
        if let Some(f) = event.forensics.as_mut() {
            for n in [
                &mut f.request_bytes,
                &mut f.request_kept_bytes,
                &mut f.response_bytes,
                &mut f.response_kept_bytes,
            ] {
                *n = (*n).min(ACTION_INTEGER_MAX);
            }
        }
        let mut out = Vec::with_capacity(512);
        serde_json::to_writer(&mut out, &event)
            .map_err(|e| CanonicalError::Unrepresentable(e.to_string()))?;
        Ok(out)
    }
}

/// What an action event commits to of the bodies kept in forensics mode.
///
/// Each digest is `sha256:` + hex SHA-256(salt ‖ kept bytes), with one random
/// 32-byte salt per action kept beside the bodies, not in the log. Salted because
/// many bodies have little entropy (`{"approved":true}`, a ticket number): an
/// unsalted digest in a log that partners read would let anyone confirm a guess
/// at a body; with the salt the commitment says nothing until its holder opens it.
///
/// A body longer than the forensic limit is kept truncated: the digest covers
/// exactly the kept bytes, and the full length is recorded beside the kept one.
///
/// INVARIANT: fields are declared in RFC 8785 key order (see [`ActionEvent`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionForensics {
    /// Length of the whole request body, bytes.
    pub request_bytes: u64,
    /// Bytes of it kept (and hashed): all of them unless truncated.
    pub request_kept_bytes: u64,
    /// `sha256:` of salt ‖ the kept request bytes.
    pub request_sha256: String,
    /// Length of the whole response body, bytes (as far as it was delivered).
    pub response_bytes: u64,
    /// Bytes of it kept (and hashed).
    pub response_kept_bytes: u64,
    /// `sha256:` of salt ‖ the kept response bytes.
    pub response_sha256: String,
    /// Whether either body was kept only in part.
    pub truncated: bool,
}

/// Why kept bodies do not open an action event's [`ActionForensics`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForensicMismatch {
    /// A kept body's length is not the one committed to.
    #[error("the kept {body} body has {actual} bytes but the log committed to {committed}")]
    Length {
        /// `request` or `response`.
        body: &'static str,
        /// Bytes presented.
        actual: u64,
        /// Bytes the log committed to.
        committed: u64,
    },
    /// A kept body, with the salt, does not hash to the committed digest.
    #[error("the kept {body} body and salt do not hash to the log's `{committed}`")]
    Digest {
        /// `request` or `response`.
        body: &'static str,
        /// The digest in the log.
        committed: String,
    },
    /// The commitment contradicts itself (kept more than sent, or a wrong `truncated`).
    #[error("the commitment is inconsistent: {0}")]
    Inconsistent(String),
}

impl ActionForensics {
    /// The commitment to `request` and `response` (the kept bytes) under `salt`,
    /// given the whole bodies' lengths.
    pub fn commit(
        salt: &[u8],
        request: &[u8],
        request_bytes: u64,
        response: &[u8],
        response_bytes: u64,
    ) -> Self {
        let (request_kept_bytes, response_kept_bytes) = (request.len() as u64, response.len() as u64);
        Self {
            request_bytes,
            request_kept_bytes,
            request_sha256: commitment_of(salt, request),
            response_bytes,
            response_kept_bytes,
            response_sha256: commitment_of(salt, response),
            truncated: request_kept_bytes < request_bytes || response_kept_bytes < response_bytes,
        }
    }

    /// Checks that `request` and `response` with `salt` open this commitment.
    pub fn check(&self, salt: &[u8], request: &[u8], response: &[u8]) -> Result<(), ForensicMismatch> {
        for (body, kept, full) in [
            ("request", self.request_kept_bytes, self.request_bytes),
            ("response", self.response_kept_bytes, self.response_bytes),
        ] {
            if kept > full {
                return Err(ForensicMismatch::Inconsistent(format!(
                    "{kept} {body} bytes kept of {full} sent"
                )));
            }
        }
        let cut =
            self.request_kept_bytes < self.request_bytes || self.response_kept_bytes < self.response_bytes;
        if cut != self.truncated {
            return Err(ForensicMismatch::Inconsistent(format!(
                "`truncated` is {} but the lengths say {cut}",
                self.truncated
            )));
        }
        for (body, bytes, committed, digest) in [
            ("request", request, self.request_kept_bytes, &self.request_sha256),
            ("response", response, self.response_kept_bytes, &self.response_sha256),
        ] {
            let actual = bytes.len() as u64;
            if actual != committed {
                return Err(ForensicMismatch::Length { body, actual, committed });
            }
            if commitment_of(salt, bytes) != *digest {
                return Err(ForensicMismatch::Digest { body, committed: digest.clone() });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn action_leaf_is_rfc8785_canonical(text in "\\PC{0,20}", n in any::<u64>()) {
            let forensics = (n % 2 == 0).then(|| ActionForensics::commit(&[1; 32], text.as_bytes(), n, b"{}", n / 7));
            let e = ActionEvent {
                actor: text.clone(), bytes_in: n, bytes_out: n / 3, decision_id: text.clone(), forensics,
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

    #[test]
    fn an_event_without_forensics_has_no_forensics_key() {
        let e = ActionEvent {
            actor: "agt_a".into(),
            bytes_in: 1,
            bytes_out: 2,
            decision_id: "dec_a".into(),
            forensics: None,
            intent: "ticket.read".into(),
            kind: "action".into(),
            latency_us: 3,
            method: "GET".into(),
            outcome: "success".into(),
            received_at: "2026-04-15T01:23:45Z".into(),
            request_sha256: "sha256:x".into(),
            resource: "r".into(),
            session_id: "sess_a".into(),
            severity: Severity::Info,
            source: "warden".into(),
            status: 200,
            target: "/x".into(),
            upstream: "u".into(),
        };
        let leaf = String::from_utf8(e.to_leaf().unwrap()).unwrap();
        assert!(!leaf.contains("forensics"), "{leaf}");
    }

    #[test]
    fn kept_bodies_open_the_commitment_and_any_change_is_named() {
        let salt = [9u8; 32];
        let f = ActionForensics::commit(&salt, b"{\"a\":1}", 7, b"ok", 10);
        assert!(f.truncated, "the response was kept in part");
        assert_eq!(f.check(&salt, b"{\"a\":1}", b"ok"), Ok(()));
        assert!(matches!(
            f.check(&salt, b"{\"a\":2}", b"ok"),
            Err(ForensicMismatch::Digest { body: "request", .. })
        ));
        assert!(matches!(
            f.check(&salt, b"{\"a\":1}", b"ok!"),
            Err(ForensicMismatch::Length { body: "response", .. })
        ));
        assert!(matches!(f.check(&[8u8; 32], b"{\"a\":1}", b"ok"), Err(ForensicMismatch::Digest { .. })));
        let lying = ActionForensics { truncated: false, ..f.clone() };
        assert!(matches!(lying.check(&salt, b"{\"a\":1}", b"ok"), Err(ForensicMismatch::Inconsistent(_))));
        let inflated = ActionForensics { request_kept_bytes: 9, ..f };
        assert!(matches!(inflated.check(&salt, b"{\"a\":1}", b"ok"), Err(ForensicMismatch::Inconsistent(_))));
    }
}
