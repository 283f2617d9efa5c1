//! RFC 8693 token exchange narrows, binds and never widens; client_credentials
//! never grants beyond the registered scope.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::*;
use warden_identity::{
    AccessClaims, ClientCredentialsRequest, EnvironmentTier, ExchangeRequest, GrantError, Lifetimes,
    RevocationList, TOKEN_TYPE_ACCESS_TOKEN, TokenResponse, client_credentials, exchange, require_session,
};

/// The sessionless token an agent gets with its client secret.
fn subject() -> AccessClaims {
    let request = ClientCredentialsRequest {
        agent: agent("agt_triage"),
        client_id: "triage-bot".to_owned(),
        registered_scope: "ticket.create ticket.read ticket.delete".to_owned(),
        requested_scope: None,
        audience: ISSUER.to_owned(),
        tier: EnvironmentTier::Prod,
    };
    client_credentials(ISSUER, &request, &Lifetimes::default(), NOW, "tok_subject".to_owned()).unwrap()
}

fn request(scope: Option<&str>) -> ExchangeRequest {
    ExchangeRequest {
        subject_token_type: TOKEN_TYPE_ACCESS_TOKEN.to_owned(),
        requested_token_type: None,
        resource: AUD.to_owned(),
        scope: scope.map(str::to_owned),
        session: session("sess_a"),
        purpose: "ticket.triage".to_owned(),
        resource_tier: EnvironmentTier::Prod,
        control_plane: false,
    }
}

fn run(subject: &AccessClaims, request: &ExchangeRequest) -> Result<AccessClaims, GrantError> {
    exchange(subject, request, &Lifetimes::default(), NOW + 10, "tok_new".to_owned())
}

#[test]
fn narrows_scope_and_binds_session_purpose_and_audience() {
    let subject = subject();
    assert_eq!(subject.sid, None);
    assert_eq!(subject.scope, "ticket.create ticket.delete ticket.read");
    let minted = run(&subject, &request(Some("ticket.read"))).unwrap();
    assert_eq!(minted.scope, "ticket.read");
    assert_eq!(minted.aud, AUD);
    assert_eq!(minted.sid, Some(session("sess_a")));
    assert_eq!(minted.purpose.as_deref(), Some("ticket.triage"));
    assert_eq!((minted.sub.clone(), minted.client_id.as_str()), (agent("agt_triage"), "triage-bot"));
    assert_eq!((minted.iat, minted.nbf, minted.jti.as_str()), (NOW + 10, NOW + 10, "tok_new"));

    // The whole path: mint the subject, verify it at the token endpoint, exchange,
    // mint, verify at the resource, check the session.
    let issuer = issuer();
    let verifier = issuer.verifier();
    let none = RevocationList::new();
    let subject_token = issuer.mint(&subject).unwrap();
    let verified_subject = verifier.verify(&subject_token, ISSUER, NOW + 10, &none).unwrap();
    let minted = run(&verified_subject, &request(Some("ticket.read"))).unwrap();
    let token = issuer.mint(&minted).unwrap();
    let at_resource = verifier.verify(&token, AUD, NOW + 11, &none).unwrap();
    require_session(&at_resource, &session("sess_a")).unwrap();
    assert!(
        verifier.verify(&subject_token, AUD, NOW + 11, &none).is_err(),
        "the subject is not for the resource"
    );

    let response = TokenResponse::new(token, &minted, NOW + 10, true);
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["scope"], "ticket.read");
    assert_eq!(json["issued_token_type"], TOKEN_TYPE_ACCESS_TOKEN);
    assert_eq!(json["expires_in"], minted.exp - (NOW + 10));
}

#[test]
fn rejects_widening() {
    let err = run(&subject(), &request(Some("ticket.read admin.policy"))).unwrap_err();
    assert_eq!(
        err,
        GrantError::ScopeWidening {
            extra: "admin.policy".to_owned(),
            granted: "ticket.create ticket.delete ticket.read".to_owned()
        }
    );
    assert_eq!(err.oauth_error_code(), "invalid_scope");
    assert_eq!(
        err.to_string(),
        "requested scope `admin.policy` is not part of the granted scope `ticket.create ticket.delete ticket.read`: tokens can be narrowed, never widened"
    );
    // An exchanged token cannot be widened back either.
    let narrow = run(&subject(), &request(Some("ticket.read"))).unwrap();
    assert!(matches!(
        run(&narrow, &request(Some("ticket.read ticket.create"))),
        Err(GrantError::ScopeWidening { .. })
    ));
    assert_eq!(run(&subject(), &request(Some(""))).unwrap_err().oauth_error_code(), "invalid_scope");
    assert_eq!(run(&subject(), &request(Some("a  b"))).unwrap_err().oauth_error_code(), "invalid_scope");
}

#[test]
fn absent_scope_keeps_the_subject_scope() {
    assert_eq!(run(&subject(), &request(None)).unwrap().scope, subject().scope);
}

#[test]
fn rejects_bad_targets() {
    for resource in ["", "tickets", "https://tickets.internal#frag", "https://a b", ":nope"] {
        let err =
            run(&subject(), &ExchangeRequest { resource: resource.to_owned(), ..request(None) }).unwrap_err();
        assert_eq!(err.oauth_error_code(), "invalid_target", "{resource}");
    }
}

#[test]
fn a_session_token_stays_in_its_session_and_purpose() {
    let bound = run(&subject(), &request(Some("ticket.read"))).unwrap();
    let other = ExchangeRequest { session: session("sess_b"), ..request(None) };
    let err = run(&bound, &other).unwrap_err();
    assert_eq!(err, GrantError::SessionMismatch { subject: session("sess_a"), requested: session("sess_b") });
    assert_eq!(err.oauth_error_code(), "invalid_request");
    let repurposed = ExchangeRequest { purpose: "db.cleanup".to_owned(), ..request(None) };
    assert!(matches!(run(&bound, &repurposed), Err(GrantError::PurposeMismatch { .. })));
    let bad = ExchangeRequest { purpose: "no spaces allowed".to_owned(), ..request(None) };
    assert!(matches!(run(&subject(), &bad), Err(GrantError::InvalidPurpose(_))));
    // Re-exchanging within the same session for another resource is fine.
    let onward = ExchangeRequest { resource: "https://kb.internal".to_owned(), ..request(None) };
    assert_eq!(run(&bound, &onward).unwrap().aud, "https://kb.internal");
}

#[test]
fn lifetime_comes_from_the_tier_and_never_outlives_the_subject() {
    let subject = subject();
    assert_eq!(subject.exp, NOW + 300);
    let control = ExchangeRequest { control_plane: true, ..request(None) };
    assert_eq!(run(&subject, &control).unwrap().exp, NOW + 10 + 60, "prod control plane: 60 s");
    let data = run(&subject, &request(None)).unwrap();
    assert_eq!(data.exp, NOW + 300, "capped at the subject's exp, not NOW + 10 + 300");
    let dev = Lifetimes::default().with_lifetime_s(EnvironmentTier::Dev, 120).unwrap();
    let dev_request = ExchangeRequest { resource_tier: EnvironmentTier::Dev, ..request(None) };
    assert_eq!(exchange(&subject, &dev_request, &dev, NOW, "t".into()).unwrap().exp, NOW + 120);
    assert_eq!(
        exchange(&subject, &request(None), &Lifetimes::default(), NOW + 300, "t".into()).unwrap_err(),
        GrantError::SubjectExpired
    );
}

#[test]
fn rejects_unsupported_token_types() {
    let id_token = ExchangeRequest {
        subject_token_type: "urn:ietf:params:oauth:token-type:id_token".to_owned(),
        ..request(None)
    };
    assert!(matches!(run(&subject(), &id_token), Err(GrantError::UnsupportedTokenType(_))));
    let saml = ExchangeRequest {
        requested_token_type: Some("urn:ietf:params:oauth:token-type:saml2".to_owned()),
        ..request(None)
    };
    assert!(matches!(run(&subject(), &saml), Err(GrantError::UnsupportedTokenType(_))));
}

#[test]
fn client_credentials_never_exceeds_the_registered_scope() {
    let request = ClientCredentialsRequest {
        agent: agent("agt_triage"),
        client_id: "triage-bot".to_owned(),
        registered_scope: "ticket.read".to_owned(),
        requested_scope: Some("ticket.read policy.update".to_owned()),
        audience: ISSUER.to_owned(),
        tier: EnvironmentTier::Dev,
    };
    let err = client_credentials(ISSUER, &request, &Lifetimes::default(), NOW, "t".into()).unwrap_err();
    assert!(matches!(err, GrantError::ScopeWidening { ref extra, .. } if extra == "policy.update"));
    let fine = ClientCredentialsRequest { requested_scope: Some("ticket.read".to_owned()), ..request };
    let claims = client_credentials(ISSUER, &fine, &Lifetimes::default(), NOW, "t".into()).unwrap();
    assert_eq!((claims.scope.as_str(), claims.exp, claims.sid), ("ticket.read", NOW + 300, None));
}
