//! Why an access token was refused. Every message is a lowercase sentence that is
//! safe to show the agent: it names what was wrong and never echoes the token.

use warden_core::SessionId;

use crate::limits::TOKEN_LIFETIME_S_MAX;
use crate::revocation::RevocationReason;

/// Why an access token could not be used (or, for [`TokenError::InvalidClaims`],
/// could not be minted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The request carries no bearer token.
    #[error("no access token: send it as `Authorization: Bearer <token>`")]
    Missing,
    /// An `Authorization` scheme other than `Bearer`.
    #[error("authorization scheme `{0}` is not supported: send `Authorization: Bearer <token>`")]
    UnsupportedScheme(String),
    /// The token was sent as `access_token` in the URL query (RFC 6750 §2.3), where
    /// logs, proxies and browser history keep it.
    #[error(
        "access tokens are not accepted in the query string (`access_token`): send `Authorization: Bearer <token>`, and treat this token as leaked"
    )]
    QueryStringToken,
    /// Not a well-formed compact JWS with the claims we require.
    #[error("access token is malformed: {0}")]
    Malformed(String),
    /// A JWS algorithm other than `EdDSA`, including `none` and every HMAC.
    #[error("access token algorithm `{0}` is not accepted: tokens must be signed with `EdDSA`")]
    UnsupportedAlgorithm(String),
    /// The `kid` names no key this verifier trusts (never seen, or rotated out).
    #[error("access token is signed with unknown key `{0}`")]
    UnknownKey(String),
    /// The signature does not verify under the named key.
    #[error("access token signature does not verify")]
    BadSignature,
    /// The header `typ` is not `at+jwt` (RFC 9068 §4): an ID token or other JWT.
    #[error("token is not an access token: its header `typ` must be `at+jwt`")]
    WrongType,
    /// The header lists `crit` extensions; we implement none.
    #[error("access token uses critical header extensions, which are not supported")]
    CriticalExtension,
    /// `exp` has passed.
    #[error("access token expired at {} (it is now {}): request a new one", rfc3339(*exp_unix_s), rfc3339(*now_unix_s))]
    Expired {
        /// The token's `exp`.
        exp_unix_s: i64,
        /// The verifier's time.
        now_unix_s: i64,
    },
    /// `nbf` is still in the future.
    #[error("access token is not valid before {} (it is now {})", rfc3339(*nbf_unix_s), rfc3339(*now_unix_s))]
    NotYetValid {
        /// The token's `nbf`.
        nbf_unix_s: i64,
        /// The verifier's time.
        now_unix_s: i64,
    },
    /// Minted for another resource (RFC 8707).
    #[error(
        "access token is for audience `{found}`, not `{expected}`: exchange it for a token for `{expected}`"
    )]
    WrongAudience {
        /// The audience this resource requires.
        expected: String,
        /// The token's `aud`.
        found: String,
    },
    /// Minted by another authorization server.
    #[error("access token was issued by `{found}`, not by `{expected}`")]
    WrongIssuer {
        /// This server's issuer identifier.
        expected: String,
        /// The token's `iss`.
        found: String,
    },
    /// Revoked by id, by session or by agent.
    #[error("access token was revoked: {0}")]
    Revoked(RevocationReason),
    /// The token claims a lifetime longer than any we mint.
    #[error("access token lifetime of {lifetime_s} s exceeds the maximum of {TOKEN_LIFETIME_S_MAX} s")]
    LifetimeTooLong {
        /// `exp - iat`.
        lifetime_s: i64,
    },
    /// A session-bound token is required and this one is bound to none.
    #[error("access token is not bound to a session: exchange it for a session token first")]
    NoSession,
    /// Bound to a different session than the request.
    #[error("access token belongs to session `{found}`, not to session `{expected}`")]
    WrongSession {
        /// The session the request is for.
        expected: SessionId,
        /// The token's `sid`.
        found: SessionId,
    },
    /// The token's scope does not include what the request needs.
    #[error("access token scope does not include `{0}`")]
    InsufficientScope(String),
    /// Claims handed to `mint` that we refuse to sign.
    #[error("claims cannot be signed: {0}")]
    InvalidClaims(String),
}

impl TokenError {
    /// The OAuth error code for a `WWW-Authenticate` challenge (RFC 6750 §3.1).
    ///
    /// For [`TokenError::Missing`] RFC 6750 says the challenge should carry no code;
    /// this still answers `invalid_request` so every error maps to one code.
    pub fn oauth_error_code(&self) -> &'static str {
        match self {
            Self::Missing | Self::UnsupportedScheme(_) | Self::QueryStringToken => "invalid_request",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::InvalidClaims(_) => "server_error",
            Self::Malformed(_)
            | Self::UnsupportedAlgorithm(_)
            | Self::UnknownKey(_)
            | Self::BadSignature
            | Self::WrongType
            | Self::CriticalExtension
            | Self::Expired { .. }
            | Self::NotYetValid { .. }
            | Self::WrongAudience { .. }
            | Self::WrongIssuer { .. }
            | Self::Revoked(_)
            | Self::LifetimeTooLong { .. }
            | Self::NoSession
            | Self::WrongSession { .. } => "invalid_token",
        }
    }
}

/// Formats unix seconds as RFC 3339 UTC for messages; falls back to the number.
pub(crate) fn rfc3339(unix_s: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_s)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("unix time {unix_s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_sentences() {
        let e = TokenError::Expired { exp_unix_s: 1_776_216_225, now_unix_s: 1_776_216_300 };
        assert_eq!(
            e.to_string(),
            "access token expired at 2026-04-15T01:23:45Z (it is now 2026-04-15T01:25:00Z): request a new one"
        );
        assert_eq!(e.oauth_error_code(), "invalid_token");
        assert_eq!(TokenError::QueryStringToken.oauth_error_code(), "invalid_request");
    }
}
