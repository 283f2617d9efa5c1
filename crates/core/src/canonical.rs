//! RFC 8785 (JSON Canonicalization Scheme) serialization.
//!
//! Log leaves and context commitments are computed over canonical JSON so that any
//! party holding the same data derives the same bytes. We use
//! `serde_json_canonicalizer`, which implements RFC 8785 including its ECMAScript
//! number formatting; writing that by hand is a classic source of subtle bugs.

use serde::Serialize;

/// Errors from canonicalization.
#[derive(Debug, thiserror::Error)]
pub enum CanonicalError {
    /// The value could not be represented as canonical JSON.
    #[error("value cannot be canonicalized: {0}")]
    Unrepresentable(String),
}

/// Serializes `value` as RFC 8785 canonical JSON bytes.
pub fn to_canonical_vec<T: Serialize>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    serde_json_canonicalizer::to_vec(value).map_err(|e| CanonicalError::Unrepresentable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_keys_and_formats_numbers_as_rfc8785() {
        let value: serde_json::Value =
            serde_json::from_str(r#"{"b": 1.0, "a": [1e21, 0.1, "é\n"], "c": {"z": null, "y": true}}"#)
                .unwrap_or_default();
        let bytes = to_canonical_vec(&value).unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            r#"{"a":[1e+21,0.1,"é\n"],"b":1,"c":{"y":true,"z":null}}"#
        );
    }
}
