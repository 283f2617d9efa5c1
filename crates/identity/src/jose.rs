//! The small part of JOSE we use: compact JWS with `EdDSA` over Ed25519 (RFC 7515,
//! RFC 8037), Ed25519 public JWKs and their RFC 7638 thumbprints.
//!
//! Written here rather than taken from a JWT crate because the acceptance rules must
//! be exact and visible in one place: one algorithm, no `crit` extensions, keys only
//! from our own set by `kid` (never `jwk`/`jku`/`x5u` from the header), strict
//! `verify_strict` signatures, canonical unpadded base64url and no duplicate JSON
//! members. The tests check the result against an independent implementation.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::limits::{KID_CHARS_MAX, TOKEN_BYTES_MAX};

/// The one JWS algorithm we sign and accept.
pub const ALG_EDDSA: &str = "EdDSA";

/// Why a JSON Web Key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    /// Not an object with string members where strings belong.
    #[error("key is malformed: {0}")]
    Malformed(&'static str),
    /// A key type or curve other than OKP / Ed25519.
    #[error(
        "key type `{kty}` with curve `{crv}` is not supported: register an Ed25519 key (`kty` `OKP`, `crv` `Ed25519`)"
    )]
    UnsupportedKey {
        /// The `kty` given.
        kty: String,
        /// The `crv` given.
        crv: String,
    },
    /// The JWK carries private key material.
    #[error(
        "key contains private key material (`d`): register only the public key, and treat this private key as leaked"
    )]
    PrivateKeyMaterial,
    /// `x` is not a valid Ed25519 public key.
    #[error("`x` is not a valid Ed25519 public key")]
    BadPublicKey,
    /// `alg` or `use` names something other than `EdDSA` signatures.
    #[error("key is declared for `{0}`, not for `EdDSA` signatures")]
    WrongUse(String),
    /// The key id is missing, empty or too long.
    #[error("key id must be 1 to {KID_CHARS_MAX} characters")]
    BadKid,
    /// More keys than a verifier holds.
    #[error("too many keys: at most {0} are trusted at once")]
    TooManyKeys(usize),
}

/// Unpadded base64url (RFC 7515 §2).
pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url; `None` on padding, bad characters or non-zero
/// trailing bits, so every value has exactly one encoding.
pub(crate) fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// The three parts of a compact JWS, still encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Compact<'a> {
    pub header: &'a str,
    pub payload: &'a str,
    pub signature: &'a str,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a str,
}

/// Splits a compact JWS into its parts; `Err` names what is wrong.
pub(crate) fn split_compact(token: &str) -> Result<Compact<'_>, &'static str> {
    if token.len() > TOKEN_BYTES_MAX {
        return Err("it is longer than 8 KiB");
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("it must be three base64url parts separated by `.`");
    };
    let signing_input = token.get(..header.len() + 1 + payload.len()).ok_or("it is not valid text")?;
    Ok(Compact { header, payload, signature, signing_input })
}

/// A JOSE header. Members we do not list are ignored: nothing in the header other
/// than `kid` ever selects a key.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Header {
    pub alg: String,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    pub kid: Option<String>,
    /// Extensions the signer says we must understand; we understand none.
    #[serde(default)]
    pub crit: Option<serde_json::Value>,
}

/// Decodes and parses the header part. Duplicate members are an error (serde's
/// derived visitor refuses them), so no two parsers can read two different headers.
pub(crate) fn parse_header(encoded: &str) -> Result<Header, &'static str> {
    let bytes = b64url_decode(encoded).ok_or("the header is not unpadded base64url")?;
    serde_json::from_slice(&bytes)
        .map_err(|_| "the header must be a JSON object with a string `alg` and no duplicate members")
}

/// Decodes the signature part into an Ed25519 signature.
pub(crate) fn parse_signature(encoded: &str) -> Option<Signature> {
    let bytes = b64url_decode(encoded)?;
    Signature::from_slice(&bytes).ok()
}

/// True when `typ` names `media` (RFC 7515 §4.1.9: the `application/` prefix may be
/// omitted and media types compare case-insensitively).
pub(crate) fn typ_is(typ: &str, media: &str) -> bool {
    let bare = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => typ.get(12..).unwrap_or_default(),
        _ => typ,
    };
    bare.eq_ignore_ascii_case(media)
}

/// The RFC 7638 thumbprint of an Ed25519 public key: base64url(SHA-256) of the
/// required members in lexicographic order with no whitespace (RFC 8037 §2).
pub fn jwk_thumbprint(key: &VerifyingKey) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64url(key.as_bytes()));
    b64url(&Sha256::digest(canonical.as_bytes()))
}

/// The public JWK of an Ed25519 key, as published in a JWKS.
pub fn ed25519_jwk(key: &VerifyingKey, kid: &str) -> serde_json::Value {
    serde_json::json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(key.as_bytes()),
        "kid": kid,
        "alg": ALG_EDDSA,
        "use": "sig",
    })
}

fn str_member<'a>(jwk: &'a serde_json::Value, name: &str) -> Result<Option<&'a str>, JwkError> {
    match jwk.get(name) {
        None => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => {
            Err(JwkError::Malformed("members `kty`, `crv`, `x`, `kid`, `alg` and `use` must be strings"))
        }
    }
}

/// Parses an Ed25519 public JWK; returns the key and its `kid` if it has one.
///
/// Refuses keys with private material, other key types, and keys declared for
/// anything but `EdDSA` signatures.
pub fn parse_ed25519_jwk(jwk: &serde_json::Value) -> Result<(VerifyingKey, Option<String>), JwkError> {
    if !jwk.is_object() {
        return Err(JwkError::Malformed("a JWK must be a JSON object"));
    }
    if jwk.get("d").is_some() {
        return Err(JwkError::PrivateKeyMaterial);
    }
    let kty = str_member(jwk, "kty")?.unwrap_or_default();
    let crv = str_member(jwk, "crv")?.unwrap_or_default();
    if kty != "OKP" || crv != "Ed25519" {
        return Err(JwkError::UnsupportedKey { kty: kty.to_owned(), crv: crv.to_owned() });
    }
    if let Some(alg) = str_member(jwk, "alg")?.filter(|alg| *alg != ALG_EDDSA) {
        return Err(JwkError::WrongUse(alg.to_owned()));
    }
    if let Some(usage) = str_member(jwk, "use")?.filter(|usage| *usage != "sig") {
        return Err(JwkError::WrongUse(usage.to_owned()));
    }
    let x = str_member(jwk, "x")?.ok_or(JwkError::Malformed("member `x` is missing"))?;
    let bytes: [u8; 32] = b64url_decode(x).and_then(|b| b.try_into().ok()).ok_or(JwkError::BadPublicKey)?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| JwkError::BadPublicKey)?;
    if key.is_weak() {
        return Err(JwkError::BadPublicKey);
    }
    let kid = str_member(jwk, "kid")?.map(str::to_owned);
    if let Some(kid) = &kid {
        check_kid(kid)?;
    }
    Ok((key, kid))
}

/// A kid is 1 to [`KID_CHARS_MAX`] characters.
pub(crate) fn check_kid(kid: &str) -> Result<(), JwkError> {
    if kid.is_empty() || kid.chars().count() > KID_CHARS_MAX {
        return Err(JwkError::BadKid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8037 Appendix A.3: the thumbprint of the example Ed25519 key.
    #[test]
    fn rfc8037_thumbprint() {
        let jwk = serde_json::json!({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let (key, kid) = parse_ed25519_jwk(&jwk).unwrap();
        assert_eq!(kid, None);
        assert_eq!(jwk_thumbprint(&key), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    /// RFC 8037 Appendix A.4: the example JWS signature, byte for byte.
    #[test]
    fn rfc8037_signature() {
        use ed25519_dalek::Signer;
        let d: [u8; 32] =
            b64url_decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A").unwrap().try_into().unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&d);
        let input = format!("{}.{}", b64url(br#"{"alg":"EdDSA"}"#), b64url(b"Example of Ed25519 signing"));
        assert_eq!(input, "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc");
        let sig = b64url(&key.sign(input.as_bytes()).to_bytes());
        assert_eq!(
            sig,
            "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
    }

    #[test]
    fn refuses_private_and_foreign_keys() {
        let private = serde_json::json!({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"x"});
        assert_eq!(parse_ed25519_jwk(&private).unwrap_err(), JwkError::PrivateKeyMaterial);
        let rsa = serde_json::json!({"kty":"RSA","n":"AQAB","e":"AQAB"});
        assert!(matches!(parse_ed25519_jwk(&rsa), Err(JwkError::UnsupportedKey { .. })));
        let hs = serde_json::json!({"kty":"OKP","crv":"Ed25519","alg":"HS256","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        assert!(matches!(parse_ed25519_jwk(&hs), Err(JwkError::WrongUse(_))));
    }

    #[test]
    fn compact_needs_three_parts() {
        assert!(split_compact("a.b").is_err());
        assert!(split_compact("a.b.c.d").is_err());
        let parts = split_compact("aa.bb.cc").unwrap();
        assert_eq!(parts.signing_input, "aa.bb");
        assert!(typ_is("application/AT+JWT", "at+jwt"));
        assert!(typ_is("at+jwt", "at+jwt"));
        assert!(!typ_is("JWT", "at+jwt"));
    }
}
