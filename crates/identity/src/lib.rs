//! Credentials for AI agents: the OAuth 2.0 authorization server's logic, without
//! the server.
//!
//! Owns: RFC 9068 JWT access tokens signed with `EdDSA` ([`TokenIssuer`],
//! [`AccessClaims`]), their verification with every rejection rule in one place
//! ([`TokenVerifier`], [`TokenError`]), the JWKS, key ids as RFC 7638 thumbprints,
//! revocation by token, session and agent ([`RevocationList`]), the bounded
//! verified-token cache for the request path ([`VerifiedTokenCache`]), token
//! lifetimes per environment tier ([`Lifetimes`]), client secrets (argon2id,
//! [`hash_client_secret`]), `private_key_jwt` client assertions with replay
//! protection ([`ClientAssertionVerifier`], [`ReplayCache`]), the
//! `client_credentials` and RFC 8693 token-exchange grants ([`exchange`]), and
//! taking the bearer token out of a request ([`bearer_from_request_parts`]).
//!
//! Must not depend on: tokio, hyper, axum or any HTTP type, a database, or any
//! Warden crate but `warden-core`. Everything is pure and in memory: time comes in
//! as `now_unix_s`, and randomness is drawn from the OS only in the explicit
//! `generate…` functions. HTTP status codes belong to the server; errors here carry
//! only their OAuth error code (`oauth_error_code()`).
//!
//! ```
//! use warden_core::{AgentId, SessionId};
//! use warden_identity::{AccessClaims, RevocationList, TokenIssuer, require_session};
//!
//! let issuer = TokenIssuer::from_seed("https://warden.example", [7; 32]);
//! let verifier = issuer.verifier();
//! let now = 1_776_216_225;
//! let claims = AccessClaims {
//!     iss: "https://warden.example".into(),
//!     sub: AgentId::parse("agt_triage")?,
//!     aud: "https://tickets.internal".into(),
//!     exp: now + 300,
//!     nbf: now,
//!     iat: now,
//!     jti: "tok_1".into(),
//!     sid: Some(SessionId::parse("sess_1")?),
//!     client_id: "triage-bot".into(),
//!     scope: "ticket.create".into(),
//!     purpose: Some("ticket.triage".into()),
//! };
//! let token = issuer.mint(&claims)?;
//! let mut revocations = RevocationList::new();
//! let verified = verifier.verify(&token, "https://tickets.internal", now + 1, &revocations)?;
//! require_session(&verified, &SessionId::parse("sess_1")?)?;
//!
//! revocations.end_session(&SessionId::parse("sess_1")?, now + 2)?;
//! assert!(verifier.verify(&token, "https://tickets.internal", now + 3, &revocations).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod assertion;
pub mod bearer;
pub mod cache;
pub mod claims;
pub mod error;
pub mod grant;
pub mod issuer;
pub mod jose;
pub mod lifetimes;
pub mod limits;
pub mod revocation;
pub mod secret;
pub mod verifier;

pub use assertion::{
    AssertionError, CLIENT_ASSERTION_TYPE_JWT_BEARER, ClientAssertionVerifier, ClientPublicKey, ReplayCache,
    VerifiedAssertion, unverified_client_id,
};
pub use bearer::bearer_from_request_parts;
pub use cache::VerifiedTokenCache;
pub use claims::{AccessClaims, Scope, ScopeError, check_purpose, require_scope, require_session};
pub use error::TokenError;
pub use grant::{
    ClientCredentialsRequest, ExchangeRequest, GRANT_TYPE_CLIENT_CREDENTIALS, GRANT_TYPE_TOKEN_EXCHANGE,
    GrantError, TOKEN_TYPE_ACCESS_TOKEN, TokenResponse, check_resource, client_credentials, exchange,
};
pub use issuer::{TYP_ACCESS_TOKEN, TokenIssuer, generate_token_id};
pub use jose::{JwkError, jwk_thumbprint};
pub use lifetimes::{EnvironmentTier, LifetimeError, Lifetimes};
pub use revocation::{RevocationError, RevocationList, RevocationReason};
pub use secret::{
    CLIENT_SECRET_PREFIX, SecretError, generate_client_secret, hash_client_secret, verify_client_secret,
    verify_unknown_client_secret,
};
pub use verifier::TokenVerifier;
