//! What the caller tells the policy about one action.
//!
//! Everything a policy can see arrives here, including the time: this crate never
//! reads a clock.

use serde::{Deserialize, Serialize};

use crate::limits::{
    ARGUMENTS_BYTES_MAX, FACT_CHARS_MAX, FACT_SET_ELEMENTS_MAX, INTENT_CHARS_MAX, RISK_PERMILLE_MAX,
};

/// Environment tiers of agents and resources.
pub const ENVIRONMENTS: [&str; 3] = ["dev", "staging", "prod"];
/// Agent statuses.
pub const AGENT_STATUSES: [&str; 3] = ["active", "suspended", "revoked"];
/// Resource planes.
pub const PLANES: [&str; 3] = ["data", "control", "maintenance"];
/// Data classes, least sensitive first.
pub const DATA_CLASSES: [&str; 4] = ["public", "internal", "confidential", "restricted"];

/// One action an agent's session wants to take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The agent behind the session.
    pub agent: AgentFacts,
    /// The session acting; it is the Cedar principal.
    pub session: SessionFacts,
    /// The intent, such as `db.read:raw`; it is the Cedar action.
    pub intent: String,
    /// The destination; it is the Cedar resource.
    pub resource: ResourceFacts,
    /// Counters, budgets, time, risk and arguments.
    pub context: RequestContext,
}

/// The agent, as `Warden::Agent::"<id>"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentFacts {
    /// `agt_…`.
    pub id: String,
    /// Owning team or human; also the agent's parent `Warden::Owner::"<owner>"`.
    pub owner: String,
    /// One of [`ENVIRONMENTS`].
    pub environment: String,
    /// One of [`AGENT_STATUSES`].
    pub status: String,
    /// Tool scopes the agent may be granted.
    pub scopes: Vec<String>,
}

/// The session, as `Warden::Session::"<id>"`, member of its agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionFacts {
    /// `sess_…`.
    pub id: String,
    /// Purpose or task class.
    pub purpose: String,
}

/// The resource, as `Warden::Resource::"<id>"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceFacts {
    /// The destination's name.
    pub id: String,
    /// One of [`PLANES`].
    pub plane: String,
    /// One of [`ENVIRONMENTS`].
    pub environment: String,
    /// One of [`DATA_CLASSES`].
    pub data_class: String,
}

/// The Cedar `context` record. Counters and budgets saturate at `i64::MAX` (Cedar's
/// `Long`); a budget with no limit is `u64::MAX`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestContext {
    /// Tool calls made by the session so far.
    pub tool_calls: u64,
    /// Writes made by the session so far.
    pub writes: u64,
    /// Bytes moved by the session so far.
    pub bytes: u64,
    /// Calls of the session in flight now.
    pub in_flight: u64,
    /// Tool calls left in the session's budget.
    pub budget_tool_calls_left: u64,
    /// Writes left in the session's budget.
    pub budget_writes_left: u64,
    /// Bytes left in the session's budget.
    pub budget_bytes_left: u64,
    /// The time of the request, Unix seconds. Cedar also sees `hour_utc`, derived
    /// from it.
    pub now_unix_s: i64,
    /// Risk from the behavior engine in thousandths, `0..=1000`; `risk_permille > 700`
    /// reads "risk above 0.7".
    pub risk_permille: u16,
    /// Whether the action would change the policy, budget, baseline or credentials
    /// governing this agent itself.
    pub self_governance: bool,
    /// The tool call's arguments as text (JSON for most tools), for `like` patterns.
    pub arguments: String,
    /// Hosts, addresses or accounts the arguments send data to.
    pub argument_destinations: Vec<String>,
}

/// Converts a counter to Cedar's `Long`, saturating.
pub(crate) fn long(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The UTC hour of a Unix time.
pub(crate) fn hour_utc(now_unix_s: i64) -> i64 {
    now_unix_s.rem_euclid(86_400) / 3_600
}

fn check_id(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} is empty"));
    }
    check_text(what, value)
}

fn check_text(what: &str, value: &str) -> Result<(), String> {
    if value.len() > FACT_CHARS_MAX {
        return Err(format!("{what} is longer than {FACT_CHARS_MAX} bytes"));
    }
    Ok(())
}

fn check_one_of(what: &str, value: &str, allowed: &[&str]) -> Result<(), String> {
    check_text(what, value)?;
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(format!("{what} `{value}` is not one of {}", allowed.join(", ")))
}

fn check_set(what: &str, values: &[String]) -> Result<(), String> {
    if values.len() > FACT_SET_ELEMENTS_MAX {
        return Err(format!("{what} has more than {FACT_SET_ELEMENTS_MAX} elements"));
    }
    values.iter().try_for_each(|value| check_text(what, value))
}

impl Request {
    /// Checks every fact against its limits and allowed values; a request that fails
    /// is denied with the message as its reason.
    pub(crate) fn check(&self) -> Result<(), String> {
        let Self { agent, session, intent, resource, context } = self;
        if intent.len() > INTENT_CHARS_MAX {
            return Err(format!("intent is longer than {INTENT_CHARS_MAX} bytes"));
        }
        check_id("agent id", &agent.id)?;
        check_id("agent owner", &agent.owner)?;
        check_one_of("agent environment", &agent.environment, &ENVIRONMENTS)?;
        check_one_of("agent status", &agent.status, &AGENT_STATUSES)?;
        check_set("agent scopes", &agent.scopes)?;
        check_id("session id", &session.id)?;
        check_text("session purpose", &session.purpose)?;
        check_id("resource id", &resource.id)?;
        check_one_of("resource plane", &resource.plane, &PLANES)?;
        check_one_of("resource environment", &resource.environment, &ENVIRONMENTS)?;
        check_one_of("resource data class", &resource.data_class, &DATA_CLASSES)?;
        if context.risk_permille > RISK_PERMILLE_MAX {
            return Err(format!("risk {} is above {RISK_PERMILLE_MAX} permille", context.risk_permille));
        }
        if context.arguments.len() > ARGUMENTS_BYTES_MAX {
            return Err(format!("arguments exceed {ARGUMENTS_BYTES_MAX} bytes"));
        }
        check_set("argument destinations", &context.argument_destinations)
    }
}
