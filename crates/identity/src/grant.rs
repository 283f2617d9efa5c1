//! The two grants of `POST /oauth/token`, as pure functions from a checked request
//! to the claims to mint: `client_credentials` (RFC 6749 §4.4) and token exchange
//! (RFC 8693) to a down-scoped, session- and purpose-bound token for one resource
//! (RFC 8707).
//!
//! The caller has already authenticated the client (secret or assertion), verified
//! the subject token, and checked against its stores that the session is active and
//! belongs to the subject's agent and that the resource is registered; these
//! functions enforce everything that follows from the tokens themselves.

use serde::Serialize;
use warden_core::{AgentId, SessionId};

use crate::claims::{AccessClaims, Scope, ScopeError, check_purpose};
use crate::lifetimes::{EnvironmentTier, Lifetimes};
use crate::limits::RESOURCE_CHARS_MAX;

/// `grant_type` of the client-credentials grant.
pub const GRANT_TYPE_CLIENT_CREDENTIALS: &str = "client_credentials";
/// `grant_type` of token exchange (RFC 8693 §2.1).
pub const GRANT_TYPE_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The token type URI of an access token (RFC 8693 §3).
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Why a grant was refused, with its RFC 6749 §5.2 / RFC 8693 §2.2.2 code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// A `subject_token_type` or `requested_token_type` we do not issue or accept.
    #[error("token type `{0}` is not supported: use `urn:ietf:params:oauth:token-type:access_token`")]
    UnsupportedTokenType(String),
    /// The resource is not an absolute URI without a fragment (RFC 8707 §2).
    #[error("resource `{resource}` is not a valid target: {reason}")]
    InvalidTarget {
        /// The resource asked for.
        resource: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The scope parameter is not a valid scope.
    #[error("requested scope is invalid: {0}")]
    InvalidScope(ScopeError),
    /// The scope parameter names no scope.
    #[error("requested scope is empty: name at least one scope token")]
    EmptyScope,
    /// The request asks for scope the client or subject token was never given.
    #[error(
        "requested scope `{extra}` is not part of the granted scope `{granted}`: tokens can be narrowed, never widened"
    )]
    ScopeWidening {
        /// The tokens asked for beyond what was granted.
        extra: String,
        /// What was granted.
        granted: String,
    },
    /// A session-bound subject token exchanged for another session.
    #[error(
        "the subject token belongs to session `{subject}` and cannot be exchanged for session `{requested}`"
    )]
    SessionMismatch {
        /// The subject token's `sid`.
        subject: SessionId,
        /// The session asked for.
        requested: SessionId,
    },
    /// The purpose is not a valid task class.
    #[error("purpose is invalid: {0}")]
    InvalidPurpose(&'static str),
    /// A purpose-bound subject token exchanged for another purpose.
    #[error(
        "the subject token is bound to purpose `{subject}` and cannot be exchanged for purpose `{requested}`"
    )]
    PurposeMismatch {
        /// The subject token's purpose.
        subject: String,
        /// The purpose asked for.
        requested: String,
    },
    /// The subject token has no lifetime left to hand on.
    #[error("the subject token has expired: authenticate again")]
    SubjectExpired,
}

impl GrantError {
    /// The OAuth error code for the token endpoint's error response.
    pub fn oauth_error_code(&self) -> &'static str {
        match self {
            Self::InvalidTarget { .. } => "invalid_target",
            Self::InvalidScope(_) | Self::EmptyScope | Self::ScopeWidening { .. } => "invalid_scope",
            Self::UnsupportedTokenType(_)
            | Self::SessionMismatch { .. }
            | Self::InvalidPurpose(_)
            | Self::PurposeMismatch { .. }
            | Self::SubjectExpired => "invalid_request",
        }
    }
}

/// Checks a resource indicator: an absolute URI with no fragment (RFC 8707 §2).
pub fn check_resource(resource: &str) -> Result<(), GrantError> {
    let invalid = |reason| GrantError::InvalidTarget {
        resource: resource.chars().take(RESOURCE_CHARS_MAX).collect(),
        reason,
    };
    if resource.is_empty() || resource.len() > RESOURCE_CHARS_MAX {
        return Err(invalid("it must be 1 to 512 characters"));
    }
    if resource.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("it must not contain whitespace or control characters"));
    }
    if resource.contains('#') {
        return Err(invalid("it must not contain a fragment (`#`)"));
    }
    let scheme = resource.split_once(':').map(|(scheme, rest)| (scheme, rest.is_empty()));
    let scheme_ok = scheme.is_some_and(|(scheme, rest_empty)| {
        !rest_empty
            && scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    if !scheme_ok {
        return Err(invalid("it must be an absolute URI such as `https://tickets.internal`"));
    }
    Ok(())
}

/// Parses the requested scope (the granted scope when absent) and refuses anything
/// beyond `granted`.
fn narrowed_scope(granted: &str, requested: Option<&str>) -> Result<Scope, GrantError> {
    let granted = Scope::parse(granted).map_err(GrantError::InvalidScope)?;
    let requested = match requested {
        Some(requested) => Scope::parse(requested).map_err(GrantError::InvalidScope)?,
        None => granted.clone(),
    };
    if requested.is_empty() {
        return Err(GrantError::EmptyScope);
    }
    let extra = requested.difference(&granted);
    if !extra.is_empty() {
        return Err(GrantError::ScopeWidening { extra: extra.to_string(), granted: granted.to_string() });
    }
    Ok(requested)
}

/// A checked `client_credentials` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentialsRequest {
    /// The agent the authenticated client belongs to.
    pub agent: AgentId,
    /// The authenticated client.
    pub client_id: String,
    /// Everything the agent may ever be granted (its registered tool scope).
    pub registered_scope: String,
    /// The `scope` parameter; the registered scope when absent.
    pub requested_scope: Option<String>,
    /// The audience; by convention this server's issuer identifier, since a
    /// sessionless token is good only as a token-exchange subject.
    pub audience: String,
    /// The agent's environment tier, which sets the lifetime.
    pub tier: EnvironmentTier,
}

/// The claims of a sessionless `client_credentials` token.
pub fn client_credentials(
    issuer: &str,
    request: &ClientCredentialsRequest,
    lifetimes: &Lifetimes,
    now_unix_s: i64,
    token_id: String,
) -> Result<AccessClaims, GrantError> {
    check_resource(&request.audience)?;
    let scope = narrowed_scope(&request.registered_scope, request.requested_scope.as_deref())?;
    Ok(AccessClaims {
        iss: issuer.to_owned(),
        sub: request.agent.clone(),
        aud: request.audience.clone(),
        exp: now_unix_s.saturating_add(lifetimes.lifetime_s(request.tier, false)),
        nbf: now_unix_s,
        iat: now_unix_s,
        jti: token_id,
        sid: None,
        client_id: request.client_id.clone(),
        scope: scope.to_string(),
        purpose: None,
    })
}

/// A checked token-exchange request (RFC 8693 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeRequest {
    /// Must be [`TOKEN_TYPE_ACCESS_TOKEN`].
    pub subject_token_type: String,
    /// Absent or [`TOKEN_TYPE_ACCESS_TOKEN`].
    pub requested_token_type: Option<String>,
    /// The one resource (RFC 8707) the new token is for: its `aud`.
    pub resource: String,
    /// The `scope` parameter; the subject's scope when absent. Never wider.
    pub scope: Option<String>,
    /// The session the new token is bound to.
    pub session: SessionId,
    /// The task class the new token is bound to.
    pub purpose: String,
    /// The resource's environment tier, which sets the lifetime.
    pub resource_tier: EnvironmentTier,
    /// True when the resource is on the control plane (shorter lifetime in prod).
    pub control_plane: bool,
}

/// The claims of a down-scoped token minted from verified `subject` claims (the
/// subject token verified with `expected_audience` = this server's issuer, which is
/// where agents send it).
///
/// The new token: same issuer, agent and client; `aud` = the resource; scope ⊆
/// the subject's; `sid` and `purpose` set (and equal to the subject's when it had
/// them); lifetime from `lifetimes`, but never past the subject's `exp`, so
/// exchanging a token again and again cannot extend it.
pub fn exchange(
    subject: &AccessClaims,
    request: &ExchangeRequest,
    lifetimes: &Lifetimes,
    now_unix_s: i64,
    token_id: String,
) -> Result<AccessClaims, GrantError> {
    check_token_types(request)?;
    check_resource(&request.resource)?;
    let scope = narrowed_scope(&subject.scope, request.scope.as_deref())?;
    if let Some(bound) = &subject.sid
        && *bound != request.session
    {
        return Err(GrantError::SessionMismatch {
            subject: bound.clone(),
            requested: request.session.clone(),
        });
    }
    check_purpose(&request.purpose).map_err(GrantError::InvalidPurpose)?;
    if let Some(bound) = &subject.purpose
        && *bound != request.purpose
    {
        return Err(GrantError::PurposeMismatch {
            subject: bound.clone(),
            requested: request.purpose.clone(),
        });
    }
    let lifetime_s = lifetimes.lifetime_s(request.resource_tier, request.control_plane);
    let exp = now_unix_s.saturating_add(lifetime_s).min(subject.exp);
    if exp <= now_unix_s {
        return Err(GrantError::SubjectExpired);
    }
    Ok(AccessClaims {
        iss: subject.iss.clone(),
        sub: subject.sub.clone(),
        aud: request.resource.clone(),
        exp,
        nbf: now_unix_s,
        iat: now_unix_s,
        jti: token_id,
        sid: Some(request.session.clone()),
        client_id: subject.client_id.clone(),
        scope: scope.to_string(),
        purpose: Some(request.purpose.clone()),
    })
}

fn check_token_types(request: &ExchangeRequest) -> Result<(), GrantError> {
    if request.subject_token_type != TOKEN_TYPE_ACCESS_TOKEN {
        return Err(GrantError::UnsupportedTokenType(request.subject_token_type.chars().take(128).collect()));
    }
    if let Some(requested) = request.requested_token_type.as_deref().filter(|t| *t != TOKEN_TYPE_ACCESS_TOKEN)
    {
        return Err(GrantError::UnsupportedTokenType(requested.chars().take(128).collect()));
    }
    Ok(())
}

/// The successful token response body (RFC 6749 §5.1, RFC 8693 §2.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenResponse {
    /// The signed token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until `exp`.
    pub expires_in: i64,
    /// The granted scope (always sent, since it may be narrower than asked).
    pub scope: String,
    /// Set for token exchange: [`TOKEN_TYPE_ACCESS_TOKEN`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

impl TokenResponse {
    /// The response for a token minted from `claims` at `now_unix_s`; `exchanged`
    /// adds `issued_token_type`.
    pub fn new(access_token: String, claims: &AccessClaims, now_unix_s: i64, exchanged: bool) -> Self {
        Self {
            access_token,
            token_type: "Bearer",
            expires_in: claims.exp.saturating_sub(now_unix_s).max(0),
            scope: claims.scope.clone(),
            issued_token_type: exchanged.then_some(TOKEN_TYPE_ACCESS_TOKEN),
        }
    }
}
