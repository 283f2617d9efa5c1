//! `private_key_jwt` client authentication (RFC 7523 §2.2, RFC 7521): the client
//! registers an Ed25519 public JWK and proves possession of its private key by
//! signing a short-lived assertion for our token endpoint, used once.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use ed25519_dalek::VerifyingKey;
use serde::Deserialize;

use crate::error::rfc3339;
use crate::jose::{
    ALG_EDDSA, JwkError, b64url_decode, ed25519_jwk, jwk_thumbprint, parse_ed25519_jwk, parse_header,
    parse_signature, split_compact, typ_is,
};
use crate::limits::{
    ASSERTION_CLOCK_SKEW_S_MAX, ASSERTION_JTI_CHARS_MAX, ASSERTION_LIFETIME_S_MAX, CLAIM_CHARS_MAX,
    REPLAY_CACHE_ENTRIES_DEFAULT, REPLAY_CACHE_ENTRIES_MAX,
};

/// The `client_assertion_type` of a JWT client assertion.
pub const CLIENT_ASSERTION_TYPE_JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Why a client assertion was refused. Each is `invalid_client` (RFC 7521 §4.2.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    /// Not a compact JWS with the claims we require.
    #[error("client assertion is malformed: {0}")]
    Malformed(String),
    /// A JWS algorithm other than `EdDSA`.
    #[error("client assertion algorithm `{0}` is not accepted: sign it with `EdDSA`")]
    UnsupportedAlgorithm(String),
    /// A `typ` that marks another kind of JWT (an access token, for one).
    #[error("client assertion `typ` must be absent, `JWT` or `client-authentication+jwt`")]
    WrongType,
    /// The header lists `crit` extensions.
    #[error("client assertion uses critical header extensions, which are not supported")]
    CriticalExtension,
    /// The header `kid` is not the registered key's.
    #[error("client assertion names key `{0}`, which is not the key registered for this client")]
    KeyMismatch(String),
    /// The signature does not verify under the registered key.
    #[error("client assertion signature does not verify with the key registered for this client")]
    BadSignature,
    /// `iss` or `sub` is not the client id.
    #[error("client assertion `iss` and `sub` must both be the client id `{expected}`")]
    WrongClient {
        /// The client being authenticated.
        expected: String,
    },
    /// `aud` does not name our token endpoint.
    #[error("client assertion `aud` must include the token endpoint `{expected}`")]
    WrongAudience {
        /// The token endpoint URL.
        expected: String,
    },
    /// `exp` has passed.
    #[error("client assertion expired at {}: sign a new one", rfc3339(*exp_unix_s))]
    Expired {
        /// The assertion's `exp`.
        exp_unix_s: i64,
    },
    /// `exp` is further ahead than [`ASSERTION_LIFETIME_S_MAX`].
    #[error(
        "client assertion `exp` is more than {ASSERTION_LIFETIME_S_MAX} s ahead: assertions must be short-lived"
    )]
    TooLongLived,
    /// `nbf` or `iat` is in the future beyond the allowed clock skew.
    #[error("client assertion is not valid before {}: check the client's clock", rfc3339(*not_before_unix_s))]
    NotYetValid {
        /// The assertion's `nbf` or `iat`.
        not_before_unix_s: i64,
    },
    /// This `jti` was already used by this client.
    #[error("client assertion `jti` `{0}` was already used: sign a new assertion for every request")]
    Replayed(String),
    /// The replay cache is full of live entries; refusing is the only safe answer.
    #[error("too many client assertions are in flight: try again shortly")]
    ReplayCacheFull,
}

impl AssertionError {
    /// The OAuth error code (RFC 6749 §5.2): always `invalid_client`.
    pub fn oauth_error_code(&self) -> &'static str {
        "invalid_client"
    }
}

/// A client's registered public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPublicKey {
    key: VerifyingKey,
    kid: Option<String>,
}

impl ClientPublicKey {
    /// Parses a registered Ed25519 public JWK; refuses private material and other
    /// key types.
    pub fn from_jwk(jwk: &serde_json::Value) -> Result<Self, JwkError> {
        let (key, kid) = parse_ed25519_jwk(jwk)?;
        Ok(Self { key, kid })
    }

    /// The key itself, with no kid.
    pub fn from_verifying_key(key: VerifyingKey) -> Self {
        Self { key, kid: None }
    }

    /// The JWK to store (its kid, or the thumbprint when it had none).
    pub fn to_jwk(&self) -> serde_json::Value {
        ed25519_jwk(&self.key, self.kid.as_deref().unwrap_or(&self.thumbprint()))
    }

    /// The RFC 7638 thumbprint.
    pub fn thumbprint(&self) -> String {
        jwk_thumbprint(&self.key)
    }
}

/// What a verified assertion established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// The authenticated client.
    pub client_id: String,
    /// The assertion's id, now recorded as used.
    pub jti: String,
    /// The assertion's expiry.
    pub exp: i64,
}

/// Assertion ids seen and not yet expired, per client. Bounded: when full of live
/// entries it refuses new assertions rather than forget a used one.
pub struct ReplayCache {
    /// `(client_id, jti)` → `exp`. INVARIANT: at most `capacity` entries.
    seen: Mutex<HashMap<(String, String), i64>>,
    capacity: usize,
}

impl std::fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayCache").field("capacity", &self.capacity).finish_non_exhaustive()
    }
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self::new(REPLAY_CACHE_ENTRIES_DEFAULT)
    }
}

impl ReplayCache {
    /// A cache of at most `capacity_entries` (clamped to `1..=`[`REPLAY_CACHE_ENTRIES_MAX`]).
    pub fn new(capacity_entries: usize) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            capacity: capacity_entries.clamp(1, REPLAY_CACHE_ENTRIES_MAX),
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records `jti` for `client_id` until `exp`; `Err` if it is already recorded.
    fn record(
        &self,
        client_id: &str,
        jti: &str,
        exp_unix_s: i64,
        now_unix_s: i64,
    ) -> Result<(), AssertionError> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (client_id.to_owned(), jti.to_owned());
        if seen.get(&key).is_some_and(|&exp| now_unix_s < exp) {
            return Err(AssertionError::Replayed(jti.to_owned()));
        }
        if seen.len() >= self.capacity {
            // An entry whose assertion has expired can never be replayed.
            seen.retain(|_, exp| now_unix_s < *exp);
            if seen.len() >= self.capacity {
                return Err(AssertionError::ReplayCacheFull);
            }
        }
        seen.insert(key, exp_unix_s);
        Ok(())
    }
}

/// The claims of an assertion; untyped so each gets its own message. The derived
/// visitor refuses duplicate members.
#[derive(Deserialize)]
struct WireAssertion {
    #[serde(default)]
    iss: Option<serde_json::Value>,
    #[serde(default)]
    sub: Option<serde_json::Value>,
    #[serde(default)]
    aud: Option<serde_json::Value>,
    #[serde(default)]
    exp: Option<serde_json::Value>,
    #[serde(default)]
    nbf: Option<serde_json::Value>,
    #[serde(default)]
    iat: Option<serde_json::Value>,
    #[serde(default)]
    jti: Option<serde_json::Value>,
}

fn malformed(why: impl Into<String>) -> AssertionError {
    AssertionError::Malformed(why.into())
}

fn decode_payload(encoded: &str) -> Result<WireAssertion, AssertionError> {
    let bytes = b64url_decode(encoded).ok_or_else(|| malformed("the payload is not unpadded base64url"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| malformed("the claims must be a JSON object with no duplicate members"))
}

fn str_claim(value: Option<&serde_json::Value>, name: &str) -> Result<String, AssertionError> {
    match value {
        Some(serde_json::Value::String(s)) if !s.is_empty() && s.len() <= CLAIM_CHARS_MAX => Ok(s.clone()),
        Some(_) => Err(malformed(format!("claim `{name}` must be a string of 1 to {CLAIM_CHARS_MAX} bytes"))),
        None => Err(malformed(format!("claim `{name}` is missing"))),
    }
}

fn int_claim(value: Option<&serde_json::Value>, name: &str) -> Result<Option<i64>, AssertionError> {
    value
        .map(|v| {
            v.as_i64().ok_or_else(|| malformed(format!("claim `{name}` must be a whole number of seconds")))
        })
        .transpose()
}

/// The `sub` of an assertion, unverified: use it only to look up the client's key,
/// then call [`ClientAssertionVerifier::verify`] with that key.
pub fn unverified_client_id(assertion: &str) -> Result<String, AssertionError> {
    let parts = split_compact(assertion).map_err(malformed)?;
    let wire = decode_payload(parts.payload)?;
    str_claim(wire.sub.as_ref(), "sub")
}

/// Verifies `private_key_jwt` assertions addressed to one token endpoint.
#[derive(Debug, Clone)]
pub struct ClientAssertionVerifier {
    token_endpoint: String,
}

impl ClientAssertionVerifier {
    /// A verifier for assertions whose `aud` must include `token_endpoint_url`.
    pub fn new(token_endpoint_url: &str) -> Self {
        Self { token_endpoint: token_endpoint_url.to_owned() }
    }

    /// The token endpoint URL assertions must name.
    pub fn token_endpoint(&self) -> &str {
        &self.token_endpoint
    }

    /// Verifies `assertion` as client `client_id` with its registered `key`: `alg`
    /// `EdDSA`, the signature, `iss == sub == client_id`, `aud` includes the token
    /// endpoint, `exp` in the future but at most [`ASSERTION_LIFETIME_S_MAX`] ahead,
    /// `nbf`/`iat` not ahead by more than [`ASSERTION_CLOCK_SKEW_S_MAX`], and a
    /// `jti` this client has not used before (recorded in `replay` only once all
    /// else passed, so forgeries cannot fill it).
    pub fn verify(
        &self,
        assertion: &str,
        client_id: &str,
        key: &ClientPublicKey,
        now_unix_s: i64,
        replay: &ReplayCache,
    ) -> Result<VerifiedAssertion, AssertionError> {
        let wire = verify_signature(assertion, key)?;
        let iss = str_claim(wire.iss.as_ref(), "iss")?;
        let sub = str_claim(wire.sub.as_ref(), "sub")?;
        if iss != client_id || sub != client_id {
            return Err(AssertionError::WrongClient { expected: client_id.to_owned() });
        }
        if !audience_includes(wire.aud.as_ref(), &self.token_endpoint) {
            return Err(AssertionError::WrongAudience { expected: self.token_endpoint.clone() });
        }
        let jti = str_claim(wire.jti.as_ref(), "jti")?;
        if jti.chars().count() > ASSERTION_JTI_CHARS_MAX {
            return Err(malformed(format!(
                "claim `jti` is longer than {ASSERTION_JTI_CHARS_MAX} characters"
            )));
        }
        let exp = int_claim(wire.exp.as_ref(), "exp")?.ok_or_else(|| malformed("claim `exp` is missing"))?;
        check_times(
            exp,
            int_claim(wire.nbf.as_ref(), "nbf")?,
            int_claim(wire.iat.as_ref(), "iat")?,
            now_unix_s,
        )?;
        replay.record(client_id, &jti, exp, now_unix_s)?;
        Ok(VerifiedAssertion { client_id: client_id.to_owned(), jti, exp })
    }
}

/// Header rules and the signature; returns the still-unchecked claims.
fn verify_signature(assertion: &str, key: &ClientPublicKey) -> Result<WireAssertion, AssertionError> {
    let parts = split_compact(assertion).map_err(malformed)?;
    let header = parse_header(parts.header).map_err(malformed)?;
    if header.alg != ALG_EDDSA {
        let alg: String = header.alg.chars().take(64).filter(|c| c.is_ascii_graphic() && *c != '`').collect();
        return Err(AssertionError::UnsupportedAlgorithm(alg));
    }
    if header.crit.is_some() {
        return Err(AssertionError::CriticalExtension);
    }
    if let Some(typ) = &header.typ
        && !typ_is(typ, "JWT")
        && !typ_is(typ, "client-authentication+jwt")
    {
        return Err(AssertionError::WrongType);
    }
    if let (Some(named), Some(registered)) = (&header.kid, &key.kid)
        && named != registered
    {
        let named: String = named.chars().take(64).filter(|c| c.is_ascii_graphic() && *c != '`').collect();
        return Err(AssertionError::KeyMismatch(named));
    }
    let signature = parse_signature(parts.signature).ok_or(AssertionError::BadSignature)?;
    key.key
        .verify_strict(parts.signing_input.as_bytes(), &signature)
        .map_err(|_| AssertionError::BadSignature)?;
    decode_payload(parts.payload)
}

/// `aud` is the endpoint, or an array of strings that includes it.
fn audience_includes(aud: Option<&serde_json::Value>, endpoint: &str) -> bool {
    match aud {
        Some(serde_json::Value::String(one)) => one == endpoint,
        Some(serde_json::Value::Array(many)) => many.iter().any(|a| a.as_str() == Some(endpoint)),
        _ => false,
    }
}

fn check_times(exp: i64, nbf: Option<i64>, iat: Option<i64>, now_unix_s: i64) -> Result<(), AssertionError> {
    if now_unix_s >= exp {
        return Err(AssertionError::Expired { exp_unix_s: exp });
    }
    if exp.saturating_sub(now_unix_s) > ASSERTION_LIFETIME_S_MAX {
        return Err(AssertionError::TooLongLived);
    }
    for not_before in [nbf, iat].into_iter().flatten() {
        if not_before > now_unix_s.saturating_add(ASSERTION_CLOCK_SKEW_S_MAX) {
            return Err(AssertionError::NotYetValid { not_before_unix_s: not_before });
        }
    }
    Ok(())
}
