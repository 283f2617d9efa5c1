//! `private_key_jwt` (RFC 7523): accept, replay, wrong audience, expiry, and the rest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::*;
use warden_identity::{
    AssertionError, ClientAssertionVerifier, ClientPublicKey, JwkError, ReplayCache, unverified_client_id,
};

const ENDPOINT: &str = "https://warden.example/oauth/token";
const CLIENT: &str = "triage-bot";
const CLIENT_SEED: [u8; 32] = [5; 32];

fn client_key() -> ClientPublicKey {
    let public = ed25519_dalek::SigningKey::from_bytes(&CLIENT_SEED).verifying_key();
    let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(public.as_bytes()), "kid": "k1"});
    ClientPublicKey::from_jwk(&jwk).unwrap()
}

fn payload(jti: &str) -> serde_json::Value {
    serde_json::json!({"iss": CLIENT, "sub": CLIENT, "aud": ENDPOINT, "exp": NOW + 60, "iat": NOW, "jti": jti})
}

fn header() -> serde_json::Value {
    serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": "k1"})
}

fn assertion(payload: &serde_json::Value) -> String {
    hand_signed(&header(), payload, CLIENT_SEED)
}

fn check(
    assertion: &str,
    replay: &ReplayCache,
) -> Result<warden_identity::VerifiedAssertion, AssertionError> {
    ClientAssertionVerifier::new(ENDPOINT).verify(assertion, CLIENT, &client_key(), NOW, replay)
}

#[test]
fn accepts_a_fresh_assertion() {
    let replay = ReplayCache::default();
    let token = assertion(&payload("a1"));
    assert_eq!(unverified_client_id(&token).unwrap(), CLIENT);
    let verified = check(&token, &replay).unwrap();
    assert_eq!((verified.client_id.as_str(), verified.jti.as_str(), verified.exp), (CLIENT, "a1", NOW + 60));
    // `aud` may be an array that includes the endpoint; no `typ` is fine too.
    let mut p = payload("a2");
    p["aud"] = serde_json::json!(["https://warden.example", ENDPOINT]);
    assert!(check(&hand_signed(&serde_json::json!({"alg": "EdDSA"}), &p, CLIENT_SEED), &replay).is_ok());
}

#[test]
fn rejects_a_replay() {
    let replay = ReplayCache::default();
    let token = assertion(&payload("a1"));
    check(&token, &replay).unwrap();
    let err = check(&token, &replay).unwrap_err();
    assert_eq!(err, AssertionError::Replayed("a1".to_owned()));
    assert_eq!(err.oauth_error_code(), "invalid_client");
    // The same jti in a freshly signed assertion is still a replay.
    let mut again = payload("a1");
    again["exp"] = (NOW + 90).into();
    assert_eq!(check(&assertion(&again), &replay).unwrap_err(), AssertionError::Replayed("a1".to_owned()));
    // A new jti is fine.
    assert!(check(&assertion(&payload("a2")), &replay).is_ok());
}

#[test]
fn rejects_wrong_audience() {
    let mut p = payload("a1");
    p["aud"] = "https://other.example/oauth/token".into();
    assert_eq!(
        check(&assertion(&p), &ReplayCache::default()).unwrap_err(),
        AssertionError::WrongAudience { expected: ENDPOINT.to_owned() }
    );
    p["aud"] = serde_json::json!(["https://warden.example"]);
    assert!(matches!(
        check(&assertion(&p), &ReplayCache::default()),
        Err(AssertionError::WrongAudience { .. })
    ));
}

#[test]
fn rejects_expired_and_long_lived() {
    let replay = ReplayCache::default();
    let mut p = payload("a1");
    p["exp"] = NOW.into();
    assert_eq!(check(&assertion(&p), &replay).unwrap_err(), AssertionError::Expired { exp_unix_s: NOW });
    p["exp"] = (NOW + 301).into();
    assert_eq!(check(&assertion(&p), &replay).unwrap_err(), AssertionError::TooLongLived);
    p["exp"] = (NOW + 300).into();
    assert!(check(&assertion(&p), &replay).is_ok(), "exactly five minutes ahead is allowed");
    let mut future = payload("a2");
    future["iat"] = (NOW + 31).into();
    assert!(matches!(check(&assertion(&future), &replay), Err(AssertionError::NotYetValid { .. })));
    future["iat"] = (NOW + 30).into();
    assert!(check(&assertion(&future), &replay).is_ok(), "30 s of client clock skew is tolerated");
    let mut missing = payload("a3");
    missing.as_object_mut().unwrap().remove("exp");
    assert!(matches!(check(&assertion(&missing), &replay), Err(AssertionError::Malformed(_))));
}

#[test]
fn rejects_wrong_client_claims() {
    let replay = ReplayCache::default();
    let mut p = payload("a1");
    p["sub"] = "someone-else".into();
    assert_eq!(
        check(&assertion(&p), &replay).unwrap_err(),
        AssertionError::WrongClient { expected: CLIENT.to_owned() }
    );
    let mut p = payload("a2");
    p.as_object_mut().unwrap().remove("jti");
    assert!(matches!(check(&assertion(&p), &replay), Err(AssertionError::Malformed(_))));
}

#[test]
fn rejects_wrong_key_algorithm_and_type() {
    let replay = ReplayCache::default();
    let other_key = hand_signed(&header(), &payload("a1"), [6; 32]);
    assert_eq!(check(&other_key, &replay).unwrap_err(), AssertionError::BadSignature);
    let hs = serde_json::json!({"alg": "HS256"});
    let token = format!("{}.{}", signing_input(&hs, &payload("a2")), b64(&[0; 32]));
    assert_eq!(check(&token, &replay).unwrap_err(), AssertionError::UnsupportedAlgorithm("HS256".to_owned()));
    let none = format!("{}.", signing_input(&serde_json::json!({"alg": "none"}), &payload("a3")));
    assert!(matches!(check(&none, &replay), Err(AssertionError::UnsupportedAlgorithm(_))));
    let kid = serde_json::json!({"alg": "EdDSA", "kid": "k2"});
    assert_eq!(
        check(&hand_signed(&kid, &payload("a4"), CLIENT_SEED), &replay).unwrap_err(),
        AssertionError::KeyMismatch("k2".to_owned())
    );
    // An access token is not a client assertion, even one signed by the right key.
    let at = serde_json::json!({"alg": "EdDSA", "typ": "at+jwt"});
    assert_eq!(
        check(&hand_signed(&at, &payload("a5"), CLIENT_SEED), &replay).unwrap_err(),
        AssertionError::WrongType
    );
    // None of the refused assertions used up a jti.
    assert!(replay.is_empty());
}

#[test]
fn replay_cache_is_bounded_and_fails_closed() {
    let replay = ReplayCache::new(2);
    check(&assertion(&payload("a1")), &replay).unwrap();
    check(&assertion(&payload("a2")), &replay).unwrap();
    assert_eq!(check(&assertion(&payload("a3")), &replay).unwrap_err(), AssertionError::ReplayCacheFull);
    // Once the first two expire their slots are reused.
    let verifier = ClientAssertionVerifier::new(ENDPOINT);
    let mut later = payload("a3");
    later["exp"] = (NOW + 120).into();
    assert!(verifier.verify(&assertion(&later), CLIENT, &client_key(), NOW + 61, &replay).is_ok());
    assert_eq!(replay.len(), 1);
}

#[test]
fn registration_refuses_private_keys_and_other_curves() {
    let private =
        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&[0; 32]), "d": b64(&CLIENT_SEED)});
    assert_eq!(ClientPublicKey::from_jwk(&private).unwrap_err(), JwkError::PrivateKeyMaterial);
    let p256 = serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"});
    assert!(matches!(ClientPublicKey::from_jwk(&p256), Err(JwkError::UnsupportedKey { .. })));
    let short = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&[1; 31])});
    assert_eq!(ClientPublicKey::from_jwk(&short).unwrap_err(), JwkError::BadPublicKey);
    assert_eq!(client_key().to_jwk()["kid"], "k1");
}
