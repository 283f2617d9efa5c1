//! Our tokens and JWKS checked by an implementation written outside this project:
//! the `jsonwebtoken` crate (RustCrypto backend). It must accept what we mint using
//! only our published JWKS, compute the same RFC 7638 kid, and its EdDSA tokens must
//! verify with us.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::jwk::{JwkSet, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};
use warden_identity::{AccessClaims, RevocationList, TokenVerifier};

/// jsonwebtoken checks `exp` against the real clock, so these claims use it too.
fn claims_now() -> (AccessClaims, i64) {
    let now = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap();
    (AccessClaims { exp: now + 300, nbf: now, iat: now, ..claims() }, now)
}

fn strict_validation() -> Validation {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.leeway = 0;
    validation.validate_nbf = true;
    validation.set_audience(&[AUD]);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
    validation
}

#[test]
fn jsonwebtoken_accepts_our_token_with_our_jwks() {
    let issuer = issuer();
    let (claims, _) = claims_now();
    let token = issuer.mint(&claims).unwrap();

    let jwks: JwkSet = serde_json::from_value(issuer.jwks()).unwrap();
    let header = decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("the kid names a key in the JWKS");
    let key = DecodingKey::from_jwk(jwk).unwrap();

    let data = decode::<serde_json::Value>(&token, &key, &strict_validation()).unwrap();
    assert_eq!(data.claims, serde_json::to_value(&claims).unwrap());

    // The same library computes the same RFC 7638 thumbprint as our kid.
    assert_eq!(jwk.thumbprint(ThumbprintHash::SHA256).unwrap(), issuer.kid());

    // And it refuses our token for another audience, as we do.
    let mut other = strict_validation();
    other.set_audience(&["https://payments.internal"]);
    assert!(decode::<serde_json::Value>(&token, &key, &other).is_err());
}

#[test]
fn jsonwebtoken_refuses_a_tampered_token() {
    let issuer = issuer();
    let (claims, _) = claims_now();
    let token = issuer.mint(&claims).unwrap();
    let jwks: JwkSet = serde_json::from_value(issuer.jwks()).unwrap();
    let key = DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let (input, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{input}.{}", b64(&[7; 64]));
    assert!(decode::<serde_json::Value>(&forged, &key, &strict_validation()).is_err());
}

#[test]
fn we_accept_a_token_minted_by_jsonwebtoken() {
    let issuer = issuer();
    let (claims, now) = claims_now();
    let der = ed25519_dalek::SigningKey::from_bytes(&SEED).to_pkcs8_der().unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(issuer.kid().to_owned());
    let token = encode(&header, &claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap();

    // Our verifier built from nothing but the published JWKS.
    let verifier = TokenVerifier::from_jwks(ISSUER, &issuer.jwks()).unwrap();
    assert_eq!(verifier.verify(&token, AUD, now, &RevocationList::new()).unwrap(), claims);

    // jsonwebtoken writes `typ` `JWT` by default: not an access token for us.
    let plain = encode(
        &Header { kid: Some(issuer.kid().to_owned()), ..Header::new(Algorithm::EdDSA) },
        &claims,
        &EncodingKey::from_ed_der(der.as_bytes()),
    )
    .unwrap();
    assert!(verifier.verify(&plain, AUD, now, &RevocationList::new()).is_err());
}
