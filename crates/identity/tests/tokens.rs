//! Minting and verifying access tokens: the round trip, and one test per rejection
//! the issue lists (plus the ones the rules imply).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::*;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use warden_identity::{
    AccessClaims, RevocationList, RevocationReason, TokenError, TokenIssuer, TokenVerifier,
    bearer_from_request_parts, jwk_thumbprint, require_scope, require_session,
};

fn verify(token: &str) -> Result<AccessClaims, TokenError> {
    issuer().verifier().verify(token, AUD, NOW + 1, &RevocationList::new())
}

#[test]
fn round_trip() {
    let issuer = issuer();
    let token = issuer.mint(&claims()).unwrap();
    assert_eq!(verify(&token).unwrap(), claims());

    let header: serde_json::Value =
        serde_json::from_slice(&common_b64_decode(token.split('.').next().unwrap())).unwrap();
    assert_eq!(header, serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": issuer.kid()}));
    assert_eq!(issuer.kid(), jwk_thumbprint(&issuer.verifying_key()));

    let payload: serde_json::Value =
        serde_json::from_slice(&common_b64_decode(token.split('.').nth(1).unwrap())).unwrap();
    assert_eq!(payload["aud"], AUD, "aud is one string");
    assert_eq!(payload["sid"], "sess_a");

    // A seed round-trips; a sessionless token verifies and round-trips too.
    assert_eq!(TokenIssuer::from_seed(ISSUER, issuer.seed()).kid(), issuer.kid());
    let sessionless = AccessClaims { sid: None, purpose: None, ..claims() };
    assert_eq!(verify(&issuer.mint(&sessionless).unwrap()).unwrap(), sessionless);
}

fn common_b64_decode(part: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()
}

#[test]
fn generated_keys_differ() {
    let a = TokenIssuer::generate(ISSUER);
    let b = TokenIssuer::generate(ISSUER);
    assert_ne!(a.kid(), b.kid());
    assert!(!format!("{a:?}").contains(&format!("{:?}", a.seed())), "debug output never shows the key");
}

#[test]
fn rejects_expired() {
    let token = issuer().mint(&claims()).unwrap();
    let verifier = issuer().verifier();
    let none = RevocationList::new();
    assert!(verifier.verify(&token, AUD, NOW + 299, &none).is_ok());
    let err = verifier.verify(&token, AUD, NOW + 300, &none).unwrap_err();
    assert_eq!(err, TokenError::Expired { exp_unix_s: NOW + 300, now_unix_s: NOW + 300 });
    assert!(err.to_string().starts_with("access token expired at 2026-04-15T01:28:45Z"), "{err}");
    // Leeway is opt-in and bounded.
    let lenient = issuer().verifier().with_leeway_s(10_000);
    assert!(lenient.verify(&token, AUD, NOW + 329, &none).is_ok());
    assert!(matches!(lenient.verify(&token, AUD, NOW + 330, &none), Err(TokenError::Expired { .. })));
}

#[test]
fn rejects_not_yet_valid() {
    let future = AccessClaims { nbf: NOW + 60, ..claims() };
    let token = issuer().mint(&future).unwrap();
    let verifier = issuer().verifier();
    let none = RevocationList::new();
    assert_eq!(
        verifier.verify(&token, AUD, NOW + 59, &none).unwrap_err(),
        TokenError::NotYetValid { nbf_unix_s: NOW + 60, now_unix_s: NOW + 59 }
    );
    assert!(verifier.verify(&token, AUD, NOW + 60, &none).is_ok());
}

#[test]
fn rejects_wrong_audience() {
    let token = issuer().mint(&claims()).unwrap();
    let err = issuer()
        .verifier()
        .verify(&token, "https://payments.internal", NOW, &RevocationList::new())
        .unwrap_err();
    assert_eq!(
        err,
        TokenError::WrongAudience { expected: "https://payments.internal".to_owned(), found: AUD.to_owned() }
    );
    assert_eq!(err.oauth_error_code(), "invalid_token");
}

#[test]
fn rejects_audience_array() {
    let mut payload = claims_json();
    payload["aud"] = serde_json::json!([AUD]);
    let token = hand_signed(&our_header(), &payload, SEED);
    let err = verify(&token).unwrap_err();
    assert!(matches!(&err, TokenError::Malformed(why) if why.contains("exactly one audience")), "{err}");
}

#[test]
fn rejects_wrong_issuer() {
    // Same key, other issuer name: the signature is fine, the issuer is not.
    let other = TokenIssuer::from_seed("https://evil.example", SEED);
    let token = other.mint(&AccessClaims { iss: "https://evil.example".to_owned(), ..claims() }).unwrap();
    assert_eq!(
        verify(&token).unwrap_err(),
        TokenError::WrongIssuer { expected: ISSUER.to_owned(), found: "https://evil.example".to_owned() }
    );
    // And an issuer refuses to mint for another.
    assert!(matches!(other.mint(&claims()), Err(TokenError::InvalidClaims(_))));
}

#[test]
fn rejects_bad_signature() {
    let token = issuer().mint(&claims()).unwrap();
    // One flipped signature bit.
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig_bytes = common_b64_decode(sig);
    sig_bytes[10] ^= 1;
    assert_eq!(verify(&format!("{input}.{}", b64(&sig_bytes))).unwrap_err(), TokenError::BadSignature);
    // A widened scope under the original signature.
    let mut payload = claims_json();
    payload["scope"] = "ticket.create ticket.read ticket.delete".into();
    let forged = format!("{}.{sig}", signing_input(&our_header(), &payload));
    assert_eq!(verify(&forged).unwrap_err(), TokenError::BadSignature);
    // Signed by another key that claims our kid.
    let impostor = hand_signed(&our_header(), &claims_json(), [9; 32]);
    assert_eq!(verify(&impostor).unwrap_err(), TokenError::BadSignature);
    // A truncated signature.
    assert_eq!(verify(&format!("{input}.{}", b64(&[0; 63]))).unwrap_err(), TokenError::BadSignature);
}

#[test]
fn rejects_alg_none() {
    let header = serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": issuer().kid()});
    let token = format!("{}.", signing_input(&header, &claims_json()));
    let err = verify(&token).unwrap_err();
    assert_eq!(err, TokenError::UnsupportedAlgorithm("none".to_owned()));
    assert_eq!(
        err.to_string(),
        "access token algorithm `none` is not accepted: tokens must be signed with `EdDSA`"
    );
    // Also without the kid and with other spellings.
    for alg in ["none", "None", "NONE", ""] {
        let token =
            format!("{}.", signing_input(&serde_json::json!({"alg": alg, "typ": "at+jwt"}), &claims_json()));
        assert!(matches!(verify(&token), Err(TokenError::UnsupportedAlgorithm(_))), "{alg}");
    }
}

#[test]
fn rejects_hs256_signed_with_the_public_key() {
    let issuer = issuer();
    let public = issuer.verifying_key().to_bytes();
    let jwk_text = issuer.public_jwk().to_string();
    let x = issuer.public_jwk()["x"].as_str().unwrap().to_owned();
    // Every way a confused verifier might turn the public key into an HMAC secret.
    for secret in [&public[..], jwk_text.as_bytes(), x.as_bytes(), issuer.jwks().to_string().as_bytes()] {
        for header in [
            serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": issuer.kid()}),
            serde_json::json!({"alg": "HS256", "typ": "JWT"}),
        ] {
            let input = signing_input(&header, &claims_json());
            let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
            mac.update(input.as_bytes());
            let token = format!("{input}.{}", b64(&mac.finalize().into_bytes()));
            assert_eq!(verify(&token).unwrap_err(), TokenError::UnsupportedAlgorithm("HS256".to_owned()));
        }
    }
}

#[test]
fn rejects_unknown_kid() {
    let stranger = TokenIssuer::from_seed(ISSUER, [2; 32]);
    let token = stranger.mint(&claims()).unwrap();
    assert_eq!(verify(&token).unwrap_err(), TokenError::UnknownKey(stranger.kid().to_owned()));

    // A kid that is not there at all.
    let header = serde_json::json!({"alg": "EdDSA", "typ": "at+jwt"});
    let token = hand_signed(&header, &claims_json(), SEED);
    assert!(matches!(verify(&token), Err(TokenError::Malformed(why)) if why.contains("`kid`")));

    // Rotation: trust both, then drop the old key.
    let mut verifier = issuer().verifier();
    verifier.add_key(stranger.kid(), stranger.verifying_key()).unwrap();
    let none = RevocationList::new();
    assert!(verifier.verify(&token_of(&stranger), AUD, NOW, &none).is_ok());
    assert!(verifier.remove_key(issuer().kid()));
    assert_eq!(
        verifier.verify(&token_of(&issuer()), AUD, NOW, &none).unwrap_err(),
        TokenError::UnknownKey(issuer().kid().to_owned())
    );
}

fn token_of(issuer: &TokenIssuer) -> String {
    issuer.mint(&claims()).unwrap()
}

#[test]
fn verifier_from_published_jwks() {
    let next = TokenIssuer::from_seed(ISSUER, [3; 32]);
    let mut both = issuer().verifier();
    both.add_key(next.kid(), next.verifying_key()).unwrap();
    let published = both.jwks();
    assert_eq!(published["keys"].as_array().unwrap().len(), 2);
    let rebuilt = TokenVerifier::from_jwks(ISSUER, &published).unwrap();
    let none = RevocationList::new();
    assert!(rebuilt.verify(&token_of(&issuer()), AUD, NOW, &none).is_ok());
    assert!(rebuilt.verify(&token_of(&next), AUD, NOW, &none).is_ok());
    assert!(TokenVerifier::from_jwks(ISSUER, &serde_json::json!({"keys": "no"})).is_err());
}

#[test]
fn rejects_revoked_by_token_id() {
    let token = issuer().mint(&claims()).unwrap();
    let mut revocations = RevocationList::new();
    revocations.revoke_token("tok_other", NOW + 300).unwrap();
    assert!(issuer().verifier().verify(&token, AUD, NOW, &revocations).is_ok());
    revocations.revoke_token("tok_one", NOW + 300).unwrap();
    let err = issuer().verifier().verify(&token, AUD, NOW, &revocations).unwrap_err();
    assert_eq!(err, TokenError::Revoked(RevocationReason::Token("tok_one".to_owned())));
    assert_eq!(err.to_string(), "access token was revoked: token `tok_one` was revoked");
}

#[test]
fn rejects_revoked_by_session() {
    let token = issuer().mint(&claims()).unwrap();
    let mut revocations = RevocationList::new();
    revocations.end_session(&session("sess_b"), NOW + 5).unwrap();
    assert!(issuer().verifier().verify(&token, AUD, NOW + 10, &revocations).is_ok());
    // Ending the session revokes its tokens on the very next call.
    revocations.end_session(&session("sess_a"), NOW + 5).unwrap();
    assert_eq!(
        issuer().verifier().verify(&token, AUD, NOW + 10, &revocations).unwrap_err(),
        TokenError::Revoked(RevocationReason::Session(session("sess_a")))
    );
    // A token of the same session issued after the revocation is not caught by it.
    let later = issuer()
        .mint(&AccessClaims { iat: NOW + 6, nbf: NOW + 6, jti: "tok_two".into(), ..claims() })
        .unwrap();
    assert!(issuer().verifier().verify(&later, AUD, NOW + 10, &revocations).is_ok());
}

#[test]
fn rejects_revoked_by_agent() {
    let token = issuer().mint(&claims()).unwrap();
    let mut revocations = RevocationList::new();
    revocations.revoke_agent(&agent("agt_other"), NOW).unwrap();
    assert!(issuer().verifier().verify(&token, AUD, NOW, &revocations).is_ok());
    // "At or before": a token issued in the same second is revoked too.
    revocations.revoke_agent(&agent("agt_triage"), NOW).unwrap();
    assert_eq!(
        issuer().verifier().verify(&token, AUD, NOW, &revocations).unwrap_err(),
        TokenError::Revoked(RevocationReason::Agent(agent("agt_triage")))
    );
    // Sessionless tokens of the agent are caught as well.
    let sessionless = issuer().mint(&AccessClaims { sid: None, ..claims() }).unwrap();
    assert!(issuer().verifier().verify(&sessionless, AUD, NOW, &revocations).is_err());
}

#[test]
fn revocation_memory_is_bounded_by_time() {
    let mut revocations = RevocationList::new();
    revocations.revoke_token("tok_one", NOW + 300).unwrap();
    revocations.revoke_session(&session("sess_a"), NOW).unwrap();
    revocations.revoke_agent(&agent("agt_triage"), NOW).unwrap();
    assert_eq!(revocations.prune(NOW + 300), 0, "a verifier with leeway could still accept the token");
    assert_eq!(revocations.prune(NOW + 330), 1, "the token id goes once its token is dead everywhere");
    assert_eq!(revocations.prune(NOW + 3_600 + 29), 0);
    assert_eq!(revocations.prune(NOW + 3_600 + 30), 2, "no token issued before `at` can still be valid");
    assert!(revocations.is_empty());
}

#[test]
fn rejects_token_of_another_session() {
    let token = issuer().mint(&claims()).unwrap();
    let claims = verify(&token).unwrap();
    assert_eq!(claims.sid, Some(session("sess_a")));
    assert!(require_session(&claims, &session("sess_a")).is_ok());
    let err = require_session(&claims, &session("sess_b")).unwrap_err();
    assert_eq!(err, TokenError::WrongSession { expected: session("sess_b"), found: session("sess_a") });
    assert_eq!(err.to_string(), "access token belongs to session `sess_a`, not to session `sess_b`");
    // A sessionless token is no session's token.
    let sessionless = AccessClaims { sid: None, ..claims.clone() };
    assert_eq!(require_session(&sessionless, &session("sess_a")).unwrap_err(), TokenError::NoSession);
    // Scope checks for the request path.
    assert!(require_scope(&claims, "ticket.read").is_ok());
    assert_eq!(
        require_scope(&claims, "ticket.delete").unwrap_err(),
        TokenError::InsufficientScope("ticket.delete".to_owned())
    );
    assert!(!claims.has_scope("ticket"), "scope tokens match whole");
}

#[test]
fn rejects_token_in_query_string() {
    let token = issuer().mint(&claims()).unwrap();
    let header = format!("Bearer {token}");
    let err = bearer_from_request_parts(Some(&header), Some(&format!("access_token={token}"))).unwrap_err();
    assert_eq!(err, TokenError::QueryStringToken);
    assert_eq!(err.oauth_error_code(), "invalid_request");
    assert!(err.to_string().contains("query string"));
    assert!(!err.to_string().contains(&token), "the error never repeats the token");
    assert_eq!(
        bearer_from_request_parts(None, Some(&format!("page=2&access_token={token}"))).unwrap_err(),
        TokenError::QueryStringToken
    );
    // The header alone is fine; other query parameters are fine.
    assert_eq!(bearer_from_request_parts(Some(&header), Some("page=2")).unwrap(), token);
    assert_eq!(bearer_from_request_parts(Some(&format!("bearer  {token}")), None).unwrap(), token);
}

#[test]
fn rejects_other_authorization_schemes() {
    assert_eq!(bearer_from_request_parts(None, None).unwrap_err(), TokenError::Missing);
    assert_eq!(bearer_from_request_parts(Some("Bearer "), None).unwrap_err(), TokenError::Missing);
    let err = bearer_from_request_parts(Some("Basic dXNlcjpwYXNz"), None).unwrap_err();
    assert_eq!(err, TokenError::UnsupportedScheme("Basic".to_owned()));
    assert_eq!(
        err.to_string(),
        "authorization scheme `Basic` is not supported: send `Authorization: Bearer <token>`"
    );
    assert!(matches!(
        bearer_from_request_parts(Some("DPoP abc"), None),
        Err(TokenError::UnsupportedScheme(_))
    ));
    // No space after the scheme: never echo what may be a credential.
    let err = bearer_from_request_parts(Some("BearereyJhbGciOi.x.y"), None).unwrap_err();
    assert!(matches!(&err, TokenError::Malformed(_)) && !err.to_string().contains("eyJ"), "{err}");
    assert!(matches!(bearer_from_request_parts(Some("Bearer a b"), None), Err(TokenError::Malformed(_))));
}

#[test]
fn rejects_wrong_type_and_critical_headers() {
    let jwt = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": issuer().kid()});
    assert_eq!(verify(&hand_signed(&jwt, &claims_json(), SEED)).unwrap_err(), TokenError::WrongType);
    let untyped = serde_json::json!({"alg": "EdDSA", "kid": issuer().kid()});
    assert_eq!(verify(&hand_signed(&untyped, &claims_json(), SEED)).unwrap_err(), TokenError::WrongType);
    let long_form = serde_json::json!({"alg": "EdDSA", "typ": "application/at+jwt", "kid": issuer().kid()});
    assert!(verify(&hand_signed(&long_form, &claims_json(), SEED)).is_ok());
    let crit = serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": issuer().kid(), "crit": ["b64"], "b64": false});
    assert_eq!(verify(&hand_signed(&crit, &claims_json(), SEED)).unwrap_err(), TokenError::CriticalExtension);
}

#[test]
fn rejects_malformed_tokens() {
    let too_long = "a".repeat(9_000);
    for token in ["", "abc", "a.b", "a.b.c.d", "!!.!!.!!", too_long.as_str()] {
        assert!(matches!(verify(token), Err(TokenError::Malformed(_))), "{token:.20}");
    }
    // Duplicate header members, padding, and a signed payload that is not our claims.
    let dup_header = format!("{}.{}.", b64(br#"{"alg":"EdDSA","alg":"none"}"#), b64(b"{}"));
    assert!(matches!(verify(&dup_header), Err(TokenError::Malformed(_))));
    let token = issuer().mint(&claims()).unwrap();
    assert!(matches!(verify(&format!("{token}=")), Err(TokenError::BadSignature)));
    let mut payload = claims_json();
    payload["exp"] = "soon".into();
    let err = verify(&hand_signed(&our_header(), &payload, SEED)).unwrap_err();
    assert_eq!(err, TokenError::Malformed("claim `exp` must be a number".to_owned()));
    let mut payload = claims_json();
    payload.as_object_mut().unwrap().remove("jti");
    assert!(matches!(verify(&hand_signed(&our_header(), &payload, SEED)), Err(TokenError::Malformed(_))));
    let mut payload = claims_json();
    payload["sub"] = "root".into();
    let err = verify(&hand_signed(&our_header(), &payload, SEED)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "access token is malformed: claim `sub` is not an agent id: must start with `agt_`"
    );
}

#[test]
fn rejects_and_refuses_long_lifetimes() {
    let long = AccessClaims { exp: NOW + 3_601, ..claims() };
    assert_eq!(issuer().mint(&long).unwrap_err(), TokenError::LifetimeTooLong { lifetime_s: 3_601 });
    // Even with our own valid signature.
    let mut payload = claims_json();
    payload["exp"] = (NOW + 86_400).into();
    assert_eq!(
        verify(&hand_signed(&our_header(), &payload, SEED)).unwrap_err(),
        TokenError::LifetimeTooLong { lifetime_s: 86_400 }
    );
    let backwards = AccessClaims { exp: NOW, ..claims() };
    assert!(matches!(issuer().mint(&backwards), Err(TokenError::InvalidClaims(_))));
    let bad_scope = AccessClaims { scope: "a  b".to_owned(), ..claims() };
    assert!(matches!(issuer().mint(&bad_scope), Err(TokenError::InvalidClaims(_))));
}

#[test]
fn error_messages_are_lowercase_and_never_echo_tokens() {
    let token = issuer().mint(&claims()).unwrap();
    let errors = [
        verify("x.y.z").unwrap_err(),
        TokenError::BadSignature,
        TokenError::Missing,
        TokenError::WrongType,
        issuer().verifier().verify(&token, "https://other", NOW, &RevocationList::new()).unwrap_err(),
    ];
    for err in errors {
        let text = err.to_string();
        assert!(text.starts_with(|c: char| c.is_lowercase()), "{text}");
        assert!(!text.contains(&token));
        assert!(!text.contains("Error") && !text.contains("String"), "{text}");
    }
}

#[test]
fn ignores_keys_embedded_in_the_header() {
    // An attacker signs with their own key and ships it in the header (`jwk`,
    // `jku`, `x5u`): only our key set, by kid, ever selects a key.
    let attacker = TokenIssuer::from_seed(ISSUER, [66; 32]);
    for kid in [issuer().kid().to_owned(), attacker.kid().to_owned()] {
        let header = serde_json::json!({
            "alg": "EdDSA", "typ": "at+jwt", "kid": kid,
            "jwk": attacker.public_jwk(), "jku": "https://evil.example/jwks.json",
        });
        let token = hand_signed(&header, &claims_json(), [66; 32]);
        let err = verify(&token).unwrap_err();
        assert!(matches!(err, TokenError::BadSignature | TokenError::UnknownKey(_)), "{err}");
    }
}
