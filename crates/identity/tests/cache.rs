//! The verified-token cache returns the same claims as a full verification, never
//! skips revocation, expiry, audience or key checks, and never grows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;

use common::*;
use warden_identity::{
    AccessClaims, RevocationList, RevocationReason, TokenError, TokenIssuer, VerifiedTokenCache,
};

#[test]
fn returns_the_same_claims_and_hits_the_second_time() {
    let verifier = issuer().verifier();
    let cache = VerifiedTokenCache::new(64);
    let token = issuer().mint(&claims()).unwrap();
    let none = RevocationList::new();

    let first = verifier.verify_cached(&cache, &token, AUD, NOW, &none).unwrap();
    assert_eq!(*first, verifier.verify(&token, AUD, NOW, &none).unwrap());
    assert_eq!(cache.len(), 1);
    let second = verifier.verify_cached(&cache, &token, AUD, NOW + 1, &none).unwrap();
    assert!(Arc::ptr_eq(&first, &second), "the second call is served from the cache");
    assert_eq!(cache.len(), 1);
}

#[test]
fn still_sees_revocations() {
    let verifier = issuer().verifier();
    let cache = VerifiedTokenCache::default();
    let token = issuer().mint(&claims()).unwrap();
    let mut revocations = RevocationList::new();
    verifier.verify_cached(&cache, &token, AUD, NOW, &revocations).unwrap();

    revocations.revoke_token("tok_one", NOW + 300).unwrap();
    assert_eq!(
        verifier.verify_cached(&cache, &token, AUD, NOW, &revocations).unwrap_err(),
        TokenError::Revoked(RevocationReason::Token("tok_one".to_owned()))
    );

    let mut revocations = RevocationList::new();
    revocations.end_session(&session("sess_a"), NOW).unwrap();
    assert_eq!(
        verifier.verify_cached(&cache, &token, AUD, NOW, &revocations).unwrap_err(),
        TokenError::Revoked(RevocationReason::Session(session("sess_a")))
    );

    let mut revocations = RevocationList::new();
    revocations.revoke_agent(&agent("agt_triage"), NOW).unwrap();
    assert!(matches!(
        verifier.verify_cached(&cache, &token, AUD, NOW, &revocations),
        Err(TokenError::Revoked(_))
    ));

    // Once nothing is revoked the cached claims serve again.
    assert!(verifier.verify_cached(&cache, &token, AUD, NOW, &RevocationList::new()).is_ok());
}

#[test]
fn still_checks_time_audience_issuer_and_key() {
    let cache = VerifiedTokenCache::default();
    let token = issuer().mint(&claims()).unwrap();
    let none = RevocationList::new();
    let mut verifier = issuer().verifier();
    verifier.verify_cached(&cache, &token, AUD, NOW, &none).unwrap();

    assert!(matches!(
        verifier.verify_cached(&cache, &token, AUD, NOW + 300, &none),
        Err(TokenError::Expired { .. })
    ));
    assert!(matches!(
        verifier.verify_cached(&cache, &token, AUD, NOW - 1, &none),
        Err(TokenError::NotYetValid { .. })
    ));
    assert!(matches!(
        verifier.verify_cached(&cache, &token, "https://payments.internal", NOW, &none),
        Err(TokenError::WrongAudience { .. })
    ));
    let other_issuer = TokenIssuer::from_seed("https://other.example", SEED).verifier();
    assert!(matches!(
        other_issuer.verify_cached(&cache, &token, AUD, NOW, &none),
        Err(TokenError::WrongIssuer { .. })
    ));

    // Removing the signing key cuts the token off at once, cached or not.
    verifier.remove_key(issuer().kid());
    assert_eq!(
        verifier.verify_cached(&cache, &token, AUD, NOW, &none).unwrap_err(),
        TokenError::UnknownKey(issuer().kid().to_owned())
    );
}

#[test]
fn never_caches_a_rejected_token() {
    let verifier = issuer().verifier();
    let cache = VerifiedTokenCache::new(16);
    let none = RevocationList::new();
    let token = issuer().mint(&claims()).unwrap();
    let (input, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{input}.{}", b64(&[0; 64]));
    assert_eq!(
        verifier.verify_cached(&cache, &forged, AUD, NOW, &none).unwrap_err(),
        TokenError::BadSignature
    );
    assert!(verifier.verify_cached(&cache, &token, "https://payments.internal", NOW, &none).is_err());
    let mut revocations = RevocationList::new();
    revocations.revoke_token("tok_one", NOW + 300).unwrap();
    assert!(verifier.verify_cached(&cache, &token, AUD, NOW, &revocations).is_err());
    assert!(cache.is_empty());
    // The forgery fails the same way on a second try: no verdict was remembered.
    assert_eq!(
        verifier.verify_cached(&cache, &forged, AUD, NOW, &none).unwrap_err(),
        TokenError::BadSignature
    );
}

#[test]
fn capacity_is_fixed() {
    let verifier = issuer().verifier();
    let cache = VerifiedTokenCache::new(8);
    assert_eq!(cache.capacity(), 8);
    let none = RevocationList::new();
    for i in 0..200 {
        let token = issuer().mint(&AccessClaims { jti: format!("tok_{i}"), ..claims() }).unwrap();
        let verified = verifier.verify_cached(&cache, &token, AUD, NOW, &none).unwrap();
        assert_eq!(verified.jti, format!("tok_{i}"));
        assert!(cache.len() <= 8);
    }
    cache.clear();
    assert!(cache.is_empty());
    assert_eq!(VerifiedTokenCache::new(0).capacity(), 4);
    assert_eq!(VerifiedTokenCache::new(usize::MAX).capacity(), 1 << 22);
}

#[test]
fn dead_entries_make_room() {
    let verifier = issuer().verifier();
    let cache = VerifiedTokenCache::new(4);
    let none = RevocationList::new();
    for i in 0..4 {
        let short = AccessClaims { jti: format!("tok_{i}"), exp: NOW + 10, ..claims() };
        verifier.verify_cached(&cache, &issuer().mint(&short).unwrap(), AUD, NOW, &none).unwrap();
    }
    assert_eq!(cache.len(), 4);
    // Long after they expired, a new token takes a dead slot.
    let later =
        AccessClaims { jti: "tok_late".into(), iat: NOW + 100, nbf: NOW + 100, exp: NOW + 400, ..claims() };
    let token = issuer().mint(&later).unwrap();
    verifier.verify_cached(&cache, &token, AUD, NOW + 100, &none).unwrap();
    assert!(cache.len() <= 4);
    assert!(verifier.verify_cached(&cache, &token, AUD, NOW + 101, &none).is_ok());
}

#[test]
fn shared_across_threads() {
    let verifier = issuer().verifier();
    let cache = VerifiedTokenCache::new(64);
    let none = RevocationList::new();
    let tokens: Vec<String> = (0..8)
        .map(|i| issuer().mint(&AccessClaims { jti: format!("tok_{i}"), ..claims() }).unwrap())
        .collect();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for round in 0..50 {
                    for (i, token) in tokens.iter().enumerate() {
                        let verified =
                            verifier.verify_cached(&cache, token, AUD, NOW + round, &none).unwrap();
                        assert_eq!(verified.jti, format!("tok_{i}"));
                    }
                }
            });
        }
    });
    assert_eq!(cache.len(), 8);
}
