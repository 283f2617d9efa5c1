//! Minting access tokens: RFC 9068 JWTs signed with `EdDSA` (Ed25519).

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use rand::rngs::OsRng;

use crate::claims::AccessClaims;
use crate::error::TokenError;
use crate::jose::{ALG_EDDSA, b64url, ed25519_jwk, jwk_thumbprint};
use crate::limits::TOKEN_ID_BYTES;
use crate::verifier::TokenVerifier;

/// The `typ` of an access token (RFC 9068 §2.1).
pub const TYP_ACCESS_TOKEN: &str = "at+jwt";

/// An authorization server's signing identity: its issuer identifier and one
/// Ed25519 key, named by `kid` = the key's RFC 7638 JWK thumbprint.
#[derive(Clone)]
pub struct TokenIssuer {
    issuer: String,
    key: SigningKey,
    kid: String,
    /// The encoded JOSE header, the same for every token. INVARIANT: names `kid`.
    header_b64: String,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// A new random key from the operating system's RNG.
    pub fn generate(issuer: &str) -> Self {
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut seed);
        Self::from_seed(issuer, seed)
    }

    /// The key with this 32-byte Ed25519 seed (as persisted with [`Self::seed`]).
    pub fn from_seed(issuer: &str, seed: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&seed);
        let kid = jwk_thumbprint(&key.verifying_key());
        // The kid is base64url, so it needs no JSON escaping.
        let header = format!(r#"{{"alg":"{ALG_EDDSA}","typ":"{TYP_ACCESS_TOKEN}","kid":"{kid}"}}"#);
        let header_b64 = b64url(header.as_bytes());
        Self { issuer: issuer.to_owned(), key, kid, header_b64 }
    }

    /// The 32-byte seed, to persist the key. Secret.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The issuer identifier (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key as a JWK.
    pub fn public_jwk(&self) -> serde_json::Value {
        ed25519_jwk(&self.key.verifying_key(), &self.kid)
    }

    /// The JWK Set holding this key, for `/.well-known/jwks.json`. During a key
    /// rotation publish [`TokenVerifier::jwks`] instead, which lists every trusted key.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.public_jwk()] })
    }

    /// A verifier for this issuer that trusts this key.
    pub fn verifier(&self) -> TokenVerifier {
        let mut verifier = TokenVerifier::new(&self.issuer);
        // A fresh verifier has room for one key and our kid is a valid thumbprint.
        let _ = verifier.add_key(&self.kid, self.key.verifying_key());
        verifier
    }

    /// Signs `claims` as a compact JWS with header
    /// `{"alg":"EdDSA","typ":"at+jwt","kid":…}`.
    ///
    /// Refuses claims from another issuer and claims that break an
    /// [`AccessClaims`] invariant (bad times, lifetime over the maximum, bad scope).
    pub fn mint(&self, claims: &AccessClaims) -> Result<String, TokenError> {
        if claims.iss != self.issuer {
            return Err(TokenError::InvalidClaims(format!(
                "claim `iss` is `{}`, but this issuer is `{}`",
                claims.iss, self.issuer
            )));
        }
        claims.check()?;
        let payload = serde_json::to_vec(claims)
            .map_err(|_| TokenError::InvalidClaims("claims could not be serialized".to_owned()))?;
        let mut token = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 100);
        token.push_str(&self.header_b64);
        token.push('.');
        token.push_str(&b64url(&payload));
        let signature = self.key.sign(token.as_bytes());
        token.push('.');
        token.push_str(&b64url(&signature.to_bytes()));
        Ok(token)
    }
}

/// A fresh token id (`jti`): `tok_` and 128 random bits, base64url.
pub fn generate_token_id() -> String {
    let mut bytes = [0u8; TOKEN_ID_BYTES];
    OsRng.fill_bytes(&mut bytes);
    format!("tok_{}", b64url(&bytes))
}
