//! Revocation by token id, by session and by agent, checked on every verification.
//!
//! Memory is bounded by time, not by hope: a revoked token id is remembered until
//! its token has expired, and a session or agent revocation until every token that
//! could have been issued at or before it has expired ([`TOKEN_LIFETIME_S_MAX`] plus
//! the largest verifier leeway). [`RevocationList::prune`] drops what no longer
//! matters; hard caps refuse new entries rather than forget old ones (fail closed).

use std::collections::HashMap;
use std::fmt;

use warden_core::{AgentId, SessionId};

use crate::claims::AccessClaims;
use crate::limits::{
    REVOKED_PRINCIPALS_MAX, REVOKED_TOKENS_MAX, TOKEN_LIFETIME_S_MAX, VERIFIER_LEEWAY_S_MAX,
};

/// Which revocation caught a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationReason {
    /// The token itself, by `jti`.
    Token(String),
    /// Its session was ended or revoked.
    Session(SessionId),
    /// Its agent was suspended or revoked.
    Agent(AgentId),
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(jti) => write!(f, "token `{jti}` was revoked"),
            Self::Session(sid) => write!(f, "session `{sid}` was ended or revoked"),
            Self::Agent(agent) => write!(f, "the credentials of agent `{agent}` were revoked"),
        }
    }
}

/// Why a revocation could not be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevocationError {
    /// The list is at its cap; nothing was forgotten to make room.
    #[error(
        "too many {what} are revoked at once (at most {max}): prune expired entries, or revoke by session or agent instead"
    )]
    Full {
        /// `token ids`, `sessions` or `agents`.
        what: &'static str,
        /// The cap.
        max: usize,
    },
}

/// Revoked token ids, sessions and agents.
///
/// "At" semantics: revoking a session or agent at time `at` revokes every token of
/// it issued at or before `at` (`iat <= at`); tokens issued later are unaffected,
/// so a resumed agent can get new tokens. Times are whole seconds, so a token minted
/// in the same second as the revocation is revoked too (fail closed). Refusing to
/// mint for an ended session or a suspended agent is the caller's job.
#[derive(Debug, Clone, Default)]
pub struct RevocationList {
    /// `jti` → the token's `exp`. INVARIANT: kept until `exp + VERIFIER_LEEWAY_S_MAX`.
    tokens: HashMap<String, i64>,
    /// Session → latest revocation time. INVARIANT: kept until
    /// `at + TOKEN_LIFETIME_S_MAX + VERIFIER_LEEWAY_S_MAX`.
    sessions: HashMap<SessionId, i64>,
    /// Agent → latest revocation time; kept like sessions.
    agents: HashMap<AgentId, i64>,
}

/// How long after `at` a session or agent revocation can still catch a token.
const PRINCIPAL_RETENTION_S: i64 = TOKEN_LIFETIME_S_MAX + VERIFIER_LEEWAY_S_MAX;

impl RevocationList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Revokes one token by id until its expiry `until_exp_unix_s` (its `exp`).
    pub fn revoke_token(&mut self, jti: &str, until_exp_unix_s: i64) -> Result<(), RevocationError> {
        if let Some(exp) = self.tokens.get_mut(jti) {
            *exp = (*exp).max(until_exp_unix_s);
            return Ok(());
        }
        if self.tokens.len() >= REVOKED_TOKENS_MAX {
            return Err(RevocationError::Full { what: "token ids", max: REVOKED_TOKENS_MAX });
        }
        self.tokens.insert(jti.to_owned(), until_exp_unix_s);
        Ok(())
    }

    /// Revokes every token of `sid` issued at or before `at_unix_s`.
    pub fn revoke_session(&mut self, sid: &SessionId, at_unix_s: i64) -> Result<(), RevocationError> {
        record_at(&mut self.sessions, sid, at_unix_s, "sessions")
    }

    /// Ending a session revokes its tokens: the same as [`Self::revoke_session`].
    pub fn end_session(&mut self, sid: &SessionId, ended_at_unix_s: i64) -> Result<(), RevocationError> {
        self.revoke_session(sid, ended_at_unix_s)
    }

    /// Revokes every token of `agent` issued at or before `at_unix_s`.
    pub fn revoke_agent(&mut self, agent: &AgentId, at_unix_s: i64) -> Result<(), RevocationError> {
        record_at(&mut self.agents, agent, at_unix_s, "agents")
    }

    /// `Err` with the reason when `claims` are revoked. Three hash lookups.
    pub fn check(&self, claims: &AccessClaims) -> Result<(), RevocationReason> {
        if self.tokens.contains_key(claims.jti.as_str()) {
            return Err(RevocationReason::Token(claims.jti.clone()));
        }
        if let Some(sid) = &claims.sid
            && self.sessions.get(sid).is_some_and(|&at| claims.iat <= at)
        {
            return Err(RevocationReason::Session(sid.clone()));
        }
        if self.agents.get(&claims.sub).is_some_and(|&at| claims.iat <= at) {
            return Err(RevocationReason::Agent(claims.sub.clone()));
        }
        Ok(())
    }

    /// Drops every entry that can no longer catch a valid token at `now_unix_s`;
    /// returns how many were dropped.
    pub fn prune(&mut self, now_unix_s: i64) -> usize {
        let before = self.len();
        self.tokens.retain(|_, exp| now_unix_s < exp.saturating_add(VERIFIER_LEEWAY_S_MAX));
        self.sessions.retain(|_, at| now_unix_s < at.saturating_add(PRINCIPAL_RETENTION_S));
        self.agents.retain(|_, at| now_unix_s < at.saturating_add(PRINCIPAL_RETENTION_S));
        before.saturating_sub(self.len())
    }

    /// Entries held: token ids, sessions and agents together.
    pub fn len(&self) -> usize {
        self.tokens.len() + self.sessions.len() + self.agents.len()
    }

    /// True when nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn record_at<K: std::hash::Hash + Eq + Clone>(
    map: &mut HashMap<K, i64>,
    key: &K,
    at_unix_s: i64,
    what: &'static str,
) -> Result<(), RevocationError> {
    if let Some(at) = map.get_mut(key) {
        // A later revocation covers everything an earlier one did.
        *at = (*at).max(at_unix_s);
        return Ok(());
    }
    if map.len() >= REVOKED_PRINCIPALS_MAX {
        return Err(RevocationError::Full { what, max: REVOKED_PRINCIPALS_MAX });
    }
    map.insert(key.clone(), at_unix_s);
    Ok(())
}
