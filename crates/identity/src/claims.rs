//! The claims of a Warden access token (RFC 9068) and the scope they carry.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use warden_core::{AgentId, SessionId};

use crate::error::TokenError;
use crate::limits::{
    CLAIM_CHARS_MAX, PURPOSE_CHARS_MAX, SCOPE_CHARS_MAX, SCOPE_TOKENS_MAX, TOKEN_LIFETIME_S_MAX,
};

/// The claims of an access token: who (`sub`, `client_id`), for what (`aud`,
/// `scope`, `purpose`), in which run (`sid`), and when (`iat`, `nbf`, `exp`).
///
/// `sid` is optional by design. A `client_credentials` token authenticates the
/// agent but belongs to no session; it is good for one thing, being the
/// `subject_token` of a token exchange (RFC 8693) that mints a session-bound token.
/// Resources call [`require_session`], which refuses a token without `sid`, so a
/// sessionless token never reaches a tool.
///
/// Fields are public so the server can build claims; [`crate::TokenIssuer::mint`]
/// refuses claims that break the invariants below, and
/// [`crate::TokenVerifier::verify`] only returns claims that keep them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessClaims {
    /// Issuer identifier: the URL of this authorization server.
    pub iss: String,
    /// The agent the token was issued to.
    pub sub: AgentId,
    /// The one resource (RFC 8707) the token is for. INVARIANT: exactly one, never
    /// an array.
    pub aud: String,
    /// Expiry, unix seconds. INVARIANT: `nbf < exp` and `exp - iat <=`
    /// [`TOKEN_LIFETIME_S_MAX`].
    pub exp: i64,
    /// Not valid before, unix seconds. INVARIANT: `iat <= nbf`.
    pub nbf: i64,
    /// Issued at, unix seconds; revocation "at" times compare against it.
    pub iat: i64,
    /// Unique token id, the key for revocation by token.
    pub jti: String,
    /// The session the token is bound to; `None` only for a `client_credentials`
    /// token (see above).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<SessionId>,
    /// The OAuth client that authenticated.
    pub client_id: String,
    /// Space-separated scope tokens (RFC 6749 §3.3); may be empty.
    pub scope: String,
    /// The task class the token was minted for (`ticket.triage`), if bound to one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

impl AccessClaims {
    /// True when `scope_token` is one of the token's scope tokens. Allocation-free,
    /// for the request path.
    pub fn has_scope(&self, scope_token: &str) -> bool {
        !scope_token.is_empty() && self.scope.split(' ').any(|t| t == scope_token)
    }

    /// The scope as a set.
    pub fn scopes(&self) -> Result<Scope, ScopeError> {
        Scope::parse(&self.scope)
    }

    /// Checks every invariant; `Err` says which one is broken.
    pub(crate) fn check(&self) -> Result<(), TokenError> {
        let bad = |why: String| TokenError::InvalidClaims(why);
        for (name, value) in
            [("iss", &self.iss), ("aud", &self.aud), ("jti", &self.jti), ("client_id", &self.client_id)]
        {
            check_string_claim(name, value).map_err(bad)?;
        }
        Scope::parse(&self.scope).map_err(|e| bad(format!("claim `scope` is invalid: {e}")))?;
        if let Some(purpose) = &self.purpose {
            check_purpose(purpose).map_err(|e| bad(format!("claim `purpose` is invalid: {e}")))?;
        }
        if self.nbf < self.iat || self.exp <= self.nbf {
            return Err(bad("claims must satisfy `iat <= nbf < exp`".to_owned()));
        }
        let lifetime_s = self.exp.saturating_sub(self.iat);
        if lifetime_s > TOKEN_LIFETIME_S_MAX {
            return Err(TokenError::LifetimeTooLong { lifetime_s });
        }
        Ok(())
    }
}

fn check_string_claim(name: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > CLAIM_CHARS_MAX {
        return Err(format!("claim `{name}` must be 1 to {CLAIM_CHARS_MAX} bytes"));
    }
    Ok(())
}

/// Checks that a purpose is 1 to [`PURPOSE_CHARS_MAX`] of `[A-Za-z0-9._:-]`.
pub fn check_purpose(purpose: &str) -> Result<(), &'static str> {
    if purpose.is_empty() || purpose.len() > PURPOSE_CHARS_MAX {
        return Err("a purpose must be 1 to 64 characters");
    }
    if !purpose.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')) {
        return Err("a purpose may contain only letters, digits, `.`, `_`, `:` and `-`");
    }
    Ok(())
}

/// Refuses a token that is not bound to `expected`: a token of another session, or
/// a sessionless `client_credentials` token.
pub fn require_session(claims: &AccessClaims, expected: &SessionId) -> Result<(), TokenError> {
    match &claims.sid {
        None => Err(TokenError::NoSession),
        Some(found) if found == expected => Ok(()),
        Some(found) => Err(TokenError::WrongSession { expected: expected.clone(), found: found.clone() }),
    }
}

/// Refuses a token whose scope lacks `scope_token`.
pub fn require_scope(claims: &AccessClaims, scope_token: &str) -> Result<(), TokenError> {
    if claims.has_scope(scope_token) {
        return Ok(());
    }
    Err(TokenError::InsufficientScope(scope_token.to_owned()))
}

/// The wire form of the claims: every member optional and untyped so that each
/// missing or mistyped claim gets its own message. The derived visitor refuses
/// duplicate members.
#[derive(Deserialize)]
struct WireClaims {
    #[serde(default)]
    iss: Option<serde_json::Value>,
    #[serde(default)]
    sub: Option<serde_json::Value>,
    #[serde(default)]
    aud: Option<serde_json::Value>,
    #[serde(default)]
    exp: Option<serde_json::Value>,
    #[serde(default)]
    nbf: Option<serde_json::Value>,
    #[serde(default)]
    iat: Option<serde_json::Value>,
    #[serde(default)]
    jti: Option<serde_json::Value>,
    #[serde(default)]
    sid: Option<serde_json::Value>,
    #[serde(default)]
    client_id: Option<serde_json::Value>,
    #[serde(default)]
    scope: Option<serde_json::Value>,
    #[serde(default)]
    purpose: Option<serde_json::Value>,
}

fn malformed(why: String) -> TokenError {
    TokenError::Malformed(why)
}

fn string_claim(value: Option<serde_json::Value>, name: &str) -> Result<String, TokenError> {
    match value {
        Some(serde_json::Value::String(s)) => Ok(s),
        Some(serde_json::Value::Array(_)) if name == "aud" => {
            Err(malformed("claim `aud` must be one string: tokens name exactly one audience".to_owned()))
        }
        Some(_) => Err(malformed(format!("claim `{name}` must be a string"))),
        None => Err(malformed(format!("claim `{name}` is missing"))),
    }
}

fn optional_string_claim(value: Option<serde_json::Value>, name: &str) -> Result<Option<String>, TokenError> {
    value.map(|v| string_claim(Some(v), name)).transpose()
}

fn int_claim(value: Option<serde_json::Value>, name: &str) -> Result<i64, TokenError> {
    match value {
        Some(serde_json::Value::Number(n)) => {
            n.as_i64().ok_or_else(|| malformed(format!("claim `{name}` must be a whole number of seconds")))
        }
        Some(_) => Err(malformed(format!("claim `{name}` must be a number"))),
        None => Err(malformed(format!("claim `{name}` is missing"))),
    }
}

/// Parses and checks the payload of a token whose signature already verified.
pub(crate) fn decode_claims(payload: &[u8]) -> Result<AccessClaims, TokenError> {
    let wire: WireClaims = serde_json::from_slice(payload)
        .map_err(|_| malformed("the claims must be a JSON object with no duplicate members".to_owned()))?;
    let sub = string_claim(wire.sub, "sub")?;
    let sub =
        AgentId::try_from(sub).map_err(|e| malformed(format!("claim `sub` is not an agent id: {e}")))?;
    let sid = optional_string_claim(wire.sid, "sid")?
        .map(SessionId::try_from)
        .transpose()
        .map_err(|e| malformed(format!("claim `sid` is not a session id: {e}")))?;
    let claims = AccessClaims {
        iss: string_claim(wire.iss, "iss")?,
        sub,
        aud: string_claim(wire.aud, "aud")?,
        exp: int_claim(wire.exp, "exp")?,
        nbf: int_claim(wire.nbf, "nbf")?,
        iat: int_claim(wire.iat, "iat")?,
        jti: string_claim(wire.jti, "jti")?,
        sid,
        client_id: string_claim(wire.client_id, "client_id")?,
        scope: string_claim(wire.scope, "scope")?,
        purpose: optional_string_claim(wire.purpose, "purpose")?,
    };
    claims.check().map_err(|e| match e {
        TokenError::InvalidClaims(why) => malformed(why),
        other => other,
    })?;
    Ok(claims)
}

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// Longer than [`SCOPE_CHARS_MAX`].
    #[error("scope is longer than {SCOPE_CHARS_MAX} characters")]
    TooLong,
    /// More than [`SCOPE_TOKENS_MAX`] tokens.
    #[error("scope has more than {SCOPE_TOKENS_MAX} tokens")]
    TooManyTokens,
    /// Leading, trailing or doubled spaces.
    #[error("scope tokens must be separated by single spaces")]
    EmptyToken,
    /// A character RFC 6749 §3.3 does not allow in a scope token.
    #[error("scope token `{0}` may contain only printable ASCII other than `\"` and `\\`")]
    BadCharacter(String),
}

/// A set of scope tokens (RFC 6749 §3.3), printed sorted and space-separated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope(BTreeSet<String>);

impl Scope {
    /// Parses a space-separated scope; the empty string is the empty scope.
    pub fn parse(scope: &str) -> Result<Self, ScopeError> {
        if scope.len() > SCOPE_CHARS_MAX {
            return Err(ScopeError::TooLong);
        }
        let mut tokens = BTreeSet::new();
        if scope.is_empty() {
            return Ok(Self(tokens));
        }
        for token in scope.split(' ') {
            if token.is_empty() {
                return Err(ScopeError::EmptyToken);
            }
            // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
            if !token.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)) {
                return Err(ScopeError::BadCharacter(token.to_owned()));
            }
            tokens.insert(token.to_owned());
            if tokens.len() > SCOPE_TOKENS_MAX {
                return Err(ScopeError::TooManyTokens);
            }
        }
        Ok(Self(tokens))
    }

    /// True when `scope_token` is in the set.
    pub fn contains(&self, scope_token: &str) -> bool {
        self.0.contains(scope_token)
    }

    /// True when every token of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The tokens of `self` that are not in `other`.
    pub fn difference(&self, other: &Scope) -> Scope {
        Self(self.0.difference(&other.0).cloned().collect())
    }

    /// True for the empty scope.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tokens, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, token) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_parses_strictly() {
        let s = Scope::parse("tickets:write tickets:read tickets:read").unwrap();
        assert_eq!(s.to_string(), "tickets:read tickets:write");
        assert_eq!(Scope::parse(" a"), Err(ScopeError::EmptyToken));
        assert_eq!(Scope::parse("a  b"), Err(ScopeError::EmptyToken));
        assert!(matches!(Scope::parse("a\"b"), Err(ScopeError::BadCharacter(_))));
        assert!(Scope::parse("").unwrap().is_empty());
        let narrow = Scope::parse("a").unwrap();
        let wide = Scope::parse("a b").unwrap();
        assert!(narrow.is_subset_of(&wide));
        assert_eq!(wide.difference(&narrow).to_string(), "b");
    }

    #[test]
    fn duplicate_claims_are_refused() {
        let payload = br#"{"iss":"a","iss":"b"}"#;
        assert!(matches!(decode_claims(payload), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn purpose_syntax() {
        assert!(check_purpose("ticket.triage").is_ok());
        assert!(check_purpose("").is_err());
        assert!(check_purpose("has space").is_err());
    }
}
