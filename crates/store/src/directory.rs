//! The directory: agents, sessions, operators, policy versions and revocations.
//!
//! Kept beside the log in the same database but behind its own narrow trait,
//! [`Directory`]. Records are small JSON documents keyed by id; the counters that
//! budgets are checked against are columns updated atomically, so they hold across
//! nodes once a shared database backs them.

use serde::{Deserialize, Serialize};

use crate::StoreError;

/// Environment tier of an agent or resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// Development.
    Dev,
    /// Staging.
    Staging,
    /// Production.
    Prod,
}

impl Environment {
    /// The tier's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Staging => "staging",
            Self::Prod => "prod",
        }
    }
}

/// Whether an agent may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// May act.
    Active,
    /// Temporarily may not act; an operator can reactivate it.
    Suspended,
    /// Permanently may not act.
    Revoked,
}

/// A registered agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRecord {
    /// `agt_…`.
    pub id: String,
    /// Owning team or human.
    pub owner: String,
    /// Tool scope: the OAuth scopes it may be granted.
    pub scopes: Vec<String>,
    /// Environment tier.
    pub environment: Environment,
    /// Retention class of its data.
    pub retention_class: String,
    /// Status.
    pub status: AgentStatus,
    /// Argon2id hash of its client secret, if it authenticates with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_hash: Option<String>,
    /// Its public JWK, if it authenticates with `private_key_jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_jwk: Option<serde_json::Value>,
    /// Unix seconds.
    pub created_at: i64,
}

/// Session lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Acting.
    Active,
    /// A budget ran out or an operator paused it; resumes only by an operator.
    Paused,
    /// Over; its tokens are revoked.
    Ended,
    /// Held by incident response.
    Quarantined,
}

/// Per-session limits; `None` means no limit of that kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budgets {
    /// Most tool calls.
    #[serde(default)]
    pub tool_calls_max: Option<u64>,
    /// Most writes.
    #[serde(default)]
    pub writes_max: Option<u64>,
    /// Most bytes moved.
    #[serde(default)]
    pub bytes_max: Option<u64>,
    /// Most calls in flight at once.
    #[serde(default)]
    pub in_flight_max: Option<u64>,
    /// Longest lifetime, seconds.
    #[serde(default)]
    pub lifetime_s_max: Option<u64>,
}

/// What a session has used so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tool calls made.
    pub tool_calls: u64,
    /// Writes made.
    pub writes: u64,
    /// Bytes moved.
    pub bytes: u64,
}

impl Usage {
    /// Both together, each counter saturating.
    #[must_use]
    pub fn plus(self, other: Self) -> Self {
        Self {
            tool_calls: self.tool_calls.saturating_add(other.tool_calls),
            writes: self.writes.saturating_add(other.writes),
            bytes: self.bytes.saturating_add(other.bytes),
        }
    }
}

/// A session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRecord {
    /// `sess_…`.
    pub id: String,
    /// Its agent.
    pub agent_id: String,
    /// Purpose or task class.
    pub purpose: String,
    /// Limits.
    pub budgets: Budgets,
    /// Lifecycle state.
    pub status: SessionStatus,
    /// Why it is paused or quarantined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, once ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<i64>,
}

/// Operator roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything.
    Admin,
    /// Approve or deny held actions; read.
    Approver,
    /// Read only.
    Auditor,
}

/// A human operator credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorRecord {
    /// `opr_…`.
    pub id: String,
    /// Who it is for.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Lowercase hex SHA-256 of the bearer secret (the secret has 256 bits of entropy).
    pub token_sha256: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Revoked credentials never authenticate again.
    pub revoked: bool,
}

/// One version of the whole policy set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyVersion {
    /// 1, 2, 3, …
    pub version: u64,
    /// `sha256:…` of the compiled set.
    pub hash: String,
    /// Policies: id and Cedar text.
    pub policies: Vec<(String, String)>,
    /// Who pushed it.
    pub author: String,
    /// Why.
    pub message: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// What a revocation applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationKind {
    /// One token, by `jti`.
    Token,
    /// Every token of a session.
    Session,
    /// Every token of an agent.
    Agent,
}

/// A stored revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Kind.
    pub kind: RevocationKind,
    /// The jti, session id or agent id.
    pub id: String,
    /// Tokens issued at or before this unix second are revoked.
    pub at: i64,
}

/// Persistence of the directory.
///
/// INVARIANT: every write is durable before it returns.
pub trait Directory: Send + Sync + std::fmt::Debug + 'static {
    /// Inserts or replaces an agent.
    fn put_agent(&self, agent: &AgentRecord) -> Result<(), StoreError>;
    /// One agent.
    fn agent(&self, id: &str) -> Result<Option<AgentRecord>, StoreError>;
    /// Agents ordered by id, after `after`, at most `limit`.
    fn agents(&self, after: Option<&str>, limit: usize) -> Result<Vec<AgentRecord>, StoreError>;
    /// Inserts or replaces a session.
    fn put_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// One session and its usage.
    fn session(&self, id: &str) -> Result<Option<(SessionRecord, Usage)>, StoreError>;
    /// Sessions of an agent.
    fn sessions_of(&self, agent_id: &str) -> Result<Vec<SessionRecord>, StoreError>;
    /// Atomically adds to a session's usage and returns the new totals.
    fn add_usage(&self, session_id: &str, delta: Usage) -> Result<Usage, StoreError>;
    /// Inserts or replaces an operator.
    fn put_operator(&self, operator: &OperatorRecord) -> Result<(), StoreError>;
    /// The operator holding a secret with this SHA-256.
    fn operator_by_token(&self, token_sha256: &str) -> Result<Option<OperatorRecord>, StoreError>;
    /// Number of operators ever created.
    fn operator_count(&self) -> Result<u64, StoreError>;
    /// Stores policy version `v.version`, which must be one more than the latest.
    fn push_policy(&self, version: &PolicyVersion) -> Result<(), StoreError>;
    /// One policy version.
    fn policy(&self, version: u64) -> Result<Option<PolicyVersion>, StoreError>;
    /// All versions, newest first, at most `limit`.
    fn policy_history(&self, limit: usize) -> Result<Vec<PolicyVersion>, StoreError>;
    /// Records a revocation.
    fn add_revocation(&self, revocation: &Revocation) -> Result<(), StoreError>;
    /// Every revocation (loaded at start; revocations are few and small).
    fn revocations(&self) -> Result<Vec<Revocation>, StoreError>;
}
