//! Verifying access tokens. Every rule is here, in the order it is applied:
//!
//! 1. at most [`crate::limits::TOKEN_BYTES_MAX`] bytes, three base64url parts;
//! 2. header: `alg` exactly `EdDSA` (so `none` and every HMAC are refused before
//!    any key is touched), no `crit`, `typ` `at+jwt`, a `kid` we trust;
//! 3. the Ed25519 signature, with `verify_strict` (no malleable signatures, no
//!    small-order keys);
//! 4. the claims: all present and well typed, no duplicates, one string `aud`,
//!    `iat <= nbf < exp`, lifetime at most [`crate::limits::TOKEN_LIFETIME_S_MAX`];
//! 5. `iss`, then time (`exp`, `nbf`, with the configured leeway), then `aud`,
//!    then revocation by token, session and agent.
//!
//! Steps 1–4 depend only on the token, so the [`VerifiedTokenCache`] may remember
//! their result; step 5 depends on the request and the moment, so it runs on every
//! call, cached or not.

use std::collections::HashMap;
use std::sync::Arc;

use ed25519_dalek::VerifyingKey;

use crate::cache::VerifiedTokenCache;
use crate::claims::{AccessClaims, decode_claims};
use crate::error::TokenError;
use crate::issuer::TYP_ACCESS_TOKEN;
use crate::jose::{
    ALG_EDDSA, JwkError, b64url_decode, check_kid, ed25519_jwk, parse_ed25519_jwk, parse_header,
    parse_signature, split_compact, typ_is,
};
use crate::limits::{KID_CHARS_MAX, VERIFIER_KEYS_MAX, VERIFIER_LEEWAY_S_MAX};
use crate::revocation::RevocationList;

/// Longest header value (`alg`, `kid`) repeated in an error message.
const ECHO_CHARS_MAX: usize = 64;

/// Checks access tokens of one issuer against a set of public keys by `kid`, so keys
/// can rotate: add the next key before signing with it, remove the old one when its
/// last token has expired (or at once, to cut off a compromised key).
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    issuer: String,
    /// INVARIANT: at most [`VERIFIER_KEYS_MAX`] keys, each kid valid.
    keys: HashMap<String, VerifyingKey>,
    /// INVARIANT: `0..=VERIFIER_LEEWAY_S_MAX`.
    leeway_s: i64,
}

impl TokenVerifier {
    /// A verifier for `issuer` that trusts no key yet and allows no clock skew.
    pub fn new(issuer: &str) -> Self {
        Self { issuer: issuer.to_owned(), keys: HashMap::new(), leeway_s: 0 }
    }

    /// A verifier trusting every key of a JWK Set; each key must have a `kid`.
    pub fn from_jwks(issuer: &str, jwks: &serde_json::Value) -> Result<Self, JwkError> {
        let keys = jwks
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .ok_or(JwkError::Malformed("a JWK Set must be an object with a `keys` array"))?;
        let mut verifier = Self::new(issuer);
        for jwk in keys {
            let (key, kid) = parse_ed25519_jwk(jwk)?;
            verifier.add_key(&kid.ok_or(JwkError::BadKid)?, key)?;
        }
        Ok(verifier)
    }

    /// Allows `leeway_s` seconds of clock skew on `exp` and `nbf`, clamped to
    /// `0..=`[`VERIFIER_LEEWAY_S_MAX`]. Zero by default: one clock mints and checks.
    pub fn with_leeway_s(mut self, leeway_s: i64) -> Self {
        self.leeway_s = leeway_s.clamp(0, VERIFIER_LEEWAY_S_MAX);
        self
    }

    /// Trusts `key` under `kid` (replacing a key with the same kid).
    pub fn add_key(&mut self, kid: &str, key: VerifyingKey) -> Result<(), JwkError> {
        check_kid(kid)?;
        if key.is_weak() {
            return Err(JwkError::BadPublicKey);
        }
        if !self.keys.contains_key(kid) && self.keys.len() >= VERIFIER_KEYS_MAX {
            return Err(JwkError::TooManyKeys(VERIFIER_KEYS_MAX));
        }
        self.keys.insert(kid.to_owned(), key);
        Ok(())
    }

    /// Stops trusting `kid`; tokens signed with it fail from the next call on, cached
    /// or not. Returns whether it was trusted.
    pub fn remove_key(&mut self, kid: &str) -> bool {
        self.keys.remove(kid).is_some()
    }

    /// True when `kid` is trusted.
    pub fn has_key(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// The issuer identifier tokens must carry.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Every trusted key as a JWK Set, sorted by kid: what `/.well-known/jwks.json`
    /// serves, including during a rotation.
    pub fn jwks(&self) -> serde_json::Value {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        let keys: Vec<serde_json::Value> =
            kids.into_iter().filter_map(|kid| self.keys.get(kid).map(|key| ed25519_jwk(key, kid))).collect();
        serde_json::json!({ "keys": keys })
    }

    /// Verifies `token` for a request to `expected_audience` at `now_unix_s`,
    /// applying every rule in the module documentation.
    pub fn verify(
        &self,
        token: &str,
        expected_audience: &str,
        now_unix_s: i64,
        revocations: &RevocationList,
    ) -> Result<AccessClaims, TokenError> {
        let (claims, _kid) = self.verify_signed(token)?;
        self.check_claims(&claims, expected_audience, now_unix_s, revocations)?;
        Ok(claims)
    }

    /// Like [`Self::verify`], but remembers the claims of a token whose signature
    /// verified, keyed by the SHA-256 of the token. A token seen before skips steps
    /// 1–4; step 5 (issuer, time, audience, revocation) and the check that its key
    /// is still trusted run on every call.
    pub fn verify_cached(
        &self,
        cache: &VerifiedTokenCache,
        token: &str,
        expected_audience: &str,
        now_unix_s: i64,
        revocations: &RevocationList,
    ) -> Result<Arc<AccessClaims>, TokenError> {
        let digest = VerifiedTokenCache::digest(token);
        if let Some(hit) = cache.get(&digest, now_unix_s)
            && self.keys.contains_key(&*hit.kid)
        {
            self.check_claims(&hit.claims, expected_audience, now_unix_s, revocations)?;
            return Ok(hit.claims);
        }
        let (claims, kid) = self.verify_signed(token)?;
        self.check_claims(&claims, expected_audience, now_unix_s, revocations)?;
        let claims = Arc::new(claims);
        cache.insert(digest, Arc::from(kid), Arc::clone(&claims), now_unix_s);
        Ok(claims)
    }

    /// Steps 1–4: everything that depends on the token alone. Returns the claims and
    /// the kid that signed them.
    fn verify_signed(&self, token: &str) -> Result<(AccessClaims, String), TokenError> {
        let parts = split_compact(token).map_err(|why| TokenError::Malformed(why.to_owned()))?;
        let header = parse_header(parts.header).map_err(|why| TokenError::Malformed(why.to_owned()))?;
        if header.alg != ALG_EDDSA {
            return Err(TokenError::UnsupportedAlgorithm(echo(&header.alg)));
        }
        if header.crit.is_some() {
            return Err(TokenError::CriticalExtension);
        }
        if !header.typ.as_deref().is_some_and(|typ| typ_is(typ, TYP_ACCESS_TOKEN)) {
            return Err(TokenError::WrongType);
        }
        let kid = header.kid.ok_or_else(|| TokenError::Malformed("the header has no `kid`".to_owned()))?;
        if kid.chars().count() > KID_CHARS_MAX {
            return Err(TokenError::Malformed(format!("`kid` is longer than {KID_CHARS_MAX} characters")));
        }
        let key = self.keys.get(&kid).ok_or_else(|| TokenError::UnknownKey(echo(&kid)))?;
        let signature = parse_signature(parts.signature).ok_or(TokenError::BadSignature)?;
        key.verify_strict(parts.signing_input.as_bytes(), &signature)
            .map_err(|_| TokenError::BadSignature)?;
        let payload = b64url_decode(parts.payload)
            .ok_or_else(|| TokenError::Malformed("the payload is not unpadded base64url".to_owned()))?;
        let claims = decode_claims(&payload)?;
        Ok((claims, kid))
    }

    /// Step 5: what depends on the request and the moment.
    fn check_claims(
        &self,
        claims: &AccessClaims,
        expected_audience: &str,
        now_unix_s: i64,
        revocations: &RevocationList,
    ) -> Result<(), TokenError> {
        if claims.iss != self.issuer {
            return Err(TokenError::WrongIssuer { expected: self.issuer.clone(), found: claims.iss.clone() });
        }
        if now_unix_s >= claims.exp.saturating_add(self.leeway_s) {
            return Err(TokenError::Expired { exp_unix_s: claims.exp, now_unix_s });
        }
        if now_unix_s < claims.nbf.saturating_sub(self.leeway_s) {
            return Err(TokenError::NotYetValid { nbf_unix_s: claims.nbf, now_unix_s });
        }
        if claims.aud != expected_audience {
            return Err(TokenError::WrongAudience {
                expected: expected_audience.to_owned(),
                found: claims.aud.clone(),
            });
        }
        revocations.check(claims).map_err(TokenError::Revoked)
    }
}

/// Shortens a header value and replaces anything but printable ASCII (and the
/// backtick that quotes it) before it is repeated in an error message.
fn echo(value: &str) -> String {
    value
        .chars()
        .take(ECHO_CHARS_MAX)
        .map(|c| if c.is_ascii_graphic() && c != '`' { c } else { '?' })
        .collect()
}
