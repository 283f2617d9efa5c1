//! Commitments to an action's full context.
//!
//! A commitment is `sha256:` followed by the lowercase hex SHA-256 of
//! `salt ‖ JCS(context)`, where `salt` is 32 random bytes chosen per event and
//! `JCS` is RFC 8785 canonical JSON. The log keeps only the commitment; the context
//! and salt are stored apart and may be deleted when their retention expires. Anyone
//! who holds the context and the salt can recompute the commitment; without the salt
//! the commitment reveals nothing useful about a low-entropy context.

use sha2::{Digest, Sha256};

use crate::canonical::{CanonicalError, to_canonical_vec};
use crate::limits::COMMITMENT_SALT_BYTES;

/// The textual prefix of every SHA-256 commitment.
pub const SHA256_PREFIX: &str = "sha256:";

/// A context together with its salt and the commitment derived from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextCommitment {
    /// `sha256:<64 hex>`.
    pub commitment: String,
    /// The canonical JSON of the context that was committed to.
    pub canonical_context: Vec<u8>,
    /// The per-event salt.
    pub salt: [u8; COMMITMENT_SALT_BYTES],
}

/// Commits to `context` with `salt`.
pub fn commit_context(
    context: &serde_json::Value,
    salt: [u8; COMMITMENT_SALT_BYTES],
) -> Result<ContextCommitment, CanonicalError> {
    let canonical_context = to_canonical_vec(context)?;
    let commitment = commitment_of(&salt, &canonical_context);
    Ok(ContextCommitment { commitment, canonical_context, salt })
}

/// The commitment string for already-canonical context bytes.
pub fn commitment_of(salt: &[u8], canonical_context: &[u8]) -> String {
    let mut digest = SaltedSha256::new(salt);
    digest.update(canonical_context);
    digest.finish()
}

/// [`commitment_of`] computed piece by piece, for bytes that stream past (an
/// upstream's answer on its way to the agent) and are never held whole.
#[derive(Debug, Clone)]
pub struct SaltedSha256(Sha256);

impl SaltedSha256 {
    /// Starts a commitment under `salt`.
    pub fn new(salt: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(salt);
        Self(hasher)
    }

    /// Adds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// `sha256:<64 hex>` of salt ‖ everything added.
    pub fn finish(self) -> String {
        format!("{SHA256_PREFIX}{}", hex::encode(self.0.finalize()))
    }
}

/// Checks that `context` and `salt` open `commitment`.
pub fn verify_context(commitment: &str, context: &serde_json::Value, salt: &[u8]) -> bool {
    match to_canonical_vec(context) {
        Ok(bytes) => commitment_of(salt, &bytes) == commitment,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commitment_opens_with_same_context_in_any_key_order() {
        let a: serde_json::Value = serde_json::json!({"read": ["a.txt"], "model": "m1"});
        let b: serde_json::Value =
            serde_json::from_str(r#"{"model":"m1","read":["a.txt"]}"#).unwrap_or_default();
        let c = commit_context(&a, [7u8; 32]).unwrap_or_else(|_| unreachable!());
        assert!(c.commitment.starts_with("sha256:"));
        assert_eq!(c.commitment.len(), 7 + 64);
        assert!(verify_context(&c.commitment, &b, &[7u8; 32]));
        assert!(!verify_context(&c.commitment, &b, &[8u8; 32]));
        assert!(!verify_context(&c.commitment, &serde_json::json!({"model": "m2"}), &[7u8; 32]));
    }
}
