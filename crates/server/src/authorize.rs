//! `POST /v1/authorize`: the decision without proxying, for frameworks that
//! enforce in-process.
//!
//! Order of the stages, and why:
//! 1. authenticate the agent's token (a bad token never reaches policy);
//! 2. load the session and agent, and refuse a paused, ended or foreign session;
//! 3. check budgets (an exhausted budget pauses the session whatever policy says);
//! 4. self-governance (no policy can let an agent change what governs itself);
//! 5. behavior: the engine observes the action first, so its own departures count
//!    in the risk that Cedar sees;
//! 6. Cedar policy, with counters, budgets left, time and risk in its context;
//! 7. quarantines (incident response) and a tripped circuit breaker override policy;
//! 8. reserve the budgets in memory, then record the decision, its budget charge and
//!    any anomalies in one log append — a decision that cannot be recorded is a
//!    deny, and its reservation is released.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use warden_core::SessionId;
use warden_core::admin::{DecisionEvent, Severity};
use warden_identity::AccessClaims;
use warden_policy::{
    AgentFacts, Decision, PolicySet, Request, RequestContext, ResourceFacts, SessionFacts, Tier,
};
use warden_store::directory::{AgentRecord, AgentStatus, SessionRecord, SessionStatus, Usage};

use warden_behavior::Observation;

use crate::config::DecisionDurability;
use crate::control::{new_id, parse_body, record};
use crate::credentials::AgentCall;
use crate::error::ApiError;
use crate::inflight::InFlightGuard;
use crate::{AppState, behavior};

/// Largest `arguments` accepted, as JSON text.
const ARGUMENTS_BYTES_MAX: usize = 32 * 1024;
/// Intent families that govern agents: an agent may never apply them to itself, and
/// any such change it asks for needs a human.
const GOVERNANCE_FAMILIES: [&str; 5] = ["policy.", "budget.", "credential.", "agent.", "session."];
/// Intent verbs that count as writes.
const WRITE_VERBS: [&str; 7] = ["create", "update", "delete", "write", "send", "push", "revoke"];

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/authorize", post(authorize))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorizeBody {
    intent: String,
    resource: ResourceFacts,
    #[serde(default)]
    arguments: Option<Value>,
    #[serde(default)]
    argument_destinations: Vec<String>,
    #[serde(default)]
    bytes: u64,
    /// Set when re-sending after a `confirm` decision.
    #[serde(default)]
    confirmed: bool,
    /// The session the caller believes it acts in; must be the token's.
    #[serde(default)]
    session_id: Option<String>,
}

fn is_write(intent: &str) -> bool {
    let verb = intent.rsplit(['.', ':']).next().unwrap_or("");
    WRITE_VERBS.iter().any(|w| verb.starts_with(w)) || intent.ends_with(".write")
}

/// Which budget, if any, this action would exceed.
fn exhausted_budget(
    session: &SessionRecord,
    usage: Usage,
    write: bool,
    bytes: u64,
    now: i64,
) -> Option<&'static str> {
    let b = &session.budgets;
    let over = |max: Option<u64>, used: u64, add: u64| max.is_some_and(|m| used.saturating_add(add) > m);
    if over(b.tool_calls_max, usage.tool_calls, 1) {
        return Some("tool_calls_max");
    }
    if write && over(b.writes_max, usage.writes, 1) {
        return Some("writes_max");
    }
    if over(b.bytes_max, usage.bytes, bytes) {
        return Some("bytes_max");
    }
    if b.lifetime_s_max
        .is_some_and(|l| now.saturating_sub(session.created_at) > i64::try_from(l).unwrap_or(i64::MAX))
    {
        return Some("lifetime_s_max");
    }
    None
}

fn left(max: Option<u64>, used: u64) -> u64 {
    max.map_or(u64::MAX, |m| m.saturating_sub(used))
}

async fn authorize(
    State(state): State<AppState>,
    call: AgentCall,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: AuthorizeBody = parse_body(&body)?;
    let arguments = body.arguments.as_ref().map(Value::to_string).unwrap_or_default();
    if arguments.len() > ARGUMENTS_BYTES_MAX {
        return Err(ApiError::field("arguments", format!("at most {ARGUMENTS_BYTES_MAX} bytes of JSON")));
    }
    if let Some(claimed) = &body.session_id {
        let sid = call.claims.sid.as_ref().map(SessionId::as_str).unwrap_or_default();
        if claimed != sid {
            return Err(ApiError::Unauthorized(format!(
                "this token belongs to session `{sid}`, not `{claimed}`; a token is good for one session only"
            )));
        }
    }
    let input = ActionInput {
        intent: body.intent,
        resource: body.resource,
        arguments,
        argument_destinations: body.argument_destinations,
        bytes: body.bytes,
        confirmed: body.confirmed,
    };
    let outcome = decide_action(&state, &call.claims, &input).await?;
    let mut out = json!({
        "decision_id": outcome.decision_id, "decision": outcome.tier,
        "policy_hash": outcome.decision.policy_hash,
        "determining_policies": outcome.decision.determining, "reasons": outcome.decision.reasons,
    });
    if let Some(obj) = out.as_object_mut() {
        if let Some(refusal) = outcome.refusal {
            obj.insert("refusal".into(), json!(refusal));
        }
        if outcome.tier == Tier::Confirm {
            obj.insert(
                "confirm".into(),
                json!("send the same request again with \"confirmed\": true to proceed"),
            );
        }
    }
    Ok(Json(out))
}

/// One action an agent asks for, through the gateway or `POST /v1/authorize`.
#[derive(Debug, Clone)]
pub struct ActionInput {
    /// The intent, such as `ticket.create`.
    pub intent: String,
    /// The destination and its classification.
    pub resource: ResourceFacts,
    /// Tool-call arguments as JSON text (empty when there are none).
    pub arguments: String,
    /// Where the arguments send data (`email:example.com`, `host:api.example.com`).
    pub argument_destinations: Vec<String>,
    /// Bytes the action moves.
    pub bytes: u64,
    /// The agent re-sent the action after a `confirm` decision.
    pub confirmed: bool,
}

/// What [`decide_action`] decided and recorded.
#[derive(Debug)]
pub struct Outcome {
    /// The decision's id, as logged.
    pub decision_id: String,
    /// The effective tier: `confirm` becomes `allow` when the agent confirmed.
    pub tier: Tier,
    /// Policy hash, determining policies and reasons.
    pub decision: Decision,
    /// Why Warden refused before or beside policy, if it did.
    pub refusal: Option<&'static str>,
    /// The acting agent.
    pub agent_id: String,
    /// The acting session.
    pub session_id: String,
    /// Index of the decision event in the log.
    pub log_index: u64,
    /// Held while an allowed call is in flight (`in_flight_max`); `None` otherwise.
    pub in_flight: Option<InFlightGuard>,
}

/// The whole decision for one action of an authenticated agent: load its session
/// and agent, budgets, self-governance, Cedar; then record the decision in the log
/// (a decision that cannot be recorded is an error, and the action must not
/// happen) and count an allowed action against the session's budgets.
///
/// Errors are for the caller to turn into a refusal: the session or agent is
/// unknown or foreign, the policy or the log is unavailable.
pub async fn decide_action(
    state: &AppState,
    claims: &AccessClaims,
    input: &ActionInput,
) -> Result<Outcome, ApiError> {
    let started = std::time::Instant::now();
    let sid = claims.sid.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
    let agent_id = claims.sub.as_str();
    let entry = state
        .hot
        .session_entry(&sid)?
        .ok_or_else(|| ApiError::Forbidden(format!("session `{sid}` does not exist")))?;
    let session = entry.record();
    let agent = state
        .hot
        .agent_arc(agent_id)?
        .ok_or_else(|| ApiError::Forbidden(format!("agent `{agent_id}` does not exist")))?;
    if session.agent_id != agent.id {
        return Err(ApiError::Forbidden(format!("session `{sid}` belongs to another agent")));
    }
    let now = state.clock.now().unix_timestamp();
    let write = is_write(&input.intent);
    let decision_id = new_id("dec_");
    let in_flight_before = state.in_flight.current(&sid);
    let resource_class =
        format!("{}/{}/{}", input.resource.environment, input.resource.plane, input.resource.data_class);
    let governance = GOVERNANCE_FAMILIES.iter().any(|f| input.intent.starts_with(f));
    // Behavior is judged first, so this very action's departures count in its risk.
    let judgement = state.behavior.judge(&Observation {
        agent: &agent.id,
        session: &sid,
        at_unix_ms: state.clock.now().unix_timestamp() * 1_000,
        intent: &input.intent,
        resource: &input.resource.id,
        resource_class: &resource_class,
        destinations: &input.argument_destinations,
        self_governance: governance && (input.resource.id == agent.id || input.resource.id == sid),
    });
    let action = Action {
        agent: &agent,
        session: &session,
        usage: entry.usage(),
        intent: &input.intent,
        resource: &input.resource,
        arguments: &input.arguments,
        argument_destinations: &input.argument_destinations,
        bytes: input.bytes,
        in_flight: in_flight_before,
        risk_permille: judgement.risk_permille,
        now,
    };
    let (mut decision, mut refusal) = decide(state, &action).await?;
    // Incident response overrides policy: a quarantined agent or resource is denied.
    if let Some(reason) = state.quarantines.check(&agent.id, &input.resource.id, now) {
        decision.tier = Tier::Deny;
        decision.determining.clear();
        decision.reasons = vec![reason];
        refusal = Some("quarantine");
    }
    if let Some(hold) = &judgement.hold
        && decision.tier <= Tier::Approve
    {
        // A tripped circuit breaker holds the action for a human, whatever policy
        // says, and the approver is told why even when policy held it too.
        decision.tier = Tier::Approve;
        decision.reasons.push(hold.clone());
    }
    let mut tier =
        if input.confirmed && decision.tier == Tier::Confirm { Tier::Allow } else { decision.tier };
    let mut guard = None;
    let charge = Usage { tool_calls: 1, writes: u64::from(write), bytes: input.bytes };
    if tier == Tier::Allow {
        guard = state.in_flight.try_enter(&sid, session.budgets.in_flight_max);
        if guard.is_none() {
            tier = Tier::Deny;
            refusal = Some("budget");
            decision.reasons.push(format!(
                "budget `in_flight_max` of session `{sid}`: {} calls are already in flight; retry when one ends",
                session.budgets.in_flight_max.unwrap_or(0)
            ));
        } else if let Err(budget) = entry.reserve(&session.budgets, charge) {
            // A concurrent call took the last of this budget after the check above.
            guard = None;
            tier = Tier::Deny;
            refusal = Some("budget");
            decision.reasons.push(format!("budget `{budget}` of session `{sid}` ran out"));
        }
    }
    let severity = if refusal == Some("self_governance") { Severity::High } else { Severity::Info };
    let event = decision_event(
        &decision,
        tier,
        refusal,
        severity,
        &agent.id,
        &sid,
        &input.intent,
        &input.resource.id,
        &decision_id,
        now,
    );
    let mut event = event;
    event.destinations.clone_from(&input.argument_destinations);
    event.resource_class = resource_class;
    let allowed = tier == Tier::Allow;
    let recorded = event
        .to_leaf()
        .map_err(|e| ApiError::Unavailable(format!("cannot encode the decision: {e}")))
        .map(|leaf| {
            let leaf = warden_store::NewLeaf::new(leaf, None);
            // The budget an allowed action spends is committed with its decision.
            let mut leaves = vec![if allowed { leaf.with_charge(&sid, charge) } else { leaf }];
            // Every anomaly is an event, committed with the decision it came with.
            leaves.extend(judgement.findings.iter().filter_map(|f| {
                behavior::anomaly_leaf(
                    f,
                    &agent.id,
                    &sid,
                    Some(&decision_id),
                    judgement.risk,
                    &event.received_at,
                )
            }));
            leaves
        });
    let log_started = std::time::Instant::now();
    let log_index = match recorded {
        Ok(leaves) => match state.config.log.decision_durability {
            DecisionDurability::Written => state.log.append_written(leaves).await.map_err(ApiError::from),
            DecisionDurability::Synced => state.log.append(leaves).await.map_err(ApiError::from),
        },
        Err(e) => Err(e),
    };
    // An action that could not be recorded did not happen: a log failure is a 503 deny.
    let log_index = match log_index {
        Ok(i) => i,
        Err(e) => {
            if allowed {
                entry.release(charge);
            }
            state.metrics.unrecorded();
            return Err(e);
        }
    };
    state.metrics.decided(tier, refusal, started.elapsed(), log_started.elapsed());
    for f in &judgement.findings {
        state.metrics.anomaly(f.detector());
    }
    state.activity.record(&sid, &decision_id, &input.intent, &input.resource.id, tier.as_str(), now);
    Ok(Outcome {
        decision_id,
        tier,
        decision,
        refusal,
        agent_id: agent.id.clone(),
        session_id: sid,
        log_index,
        in_flight: guard,
    })
}

/// The logged form of a decision.
#[allow(clippy::too_many_arguments)]
pub fn decision_event(
    decision: &Decision,
    tier: Tier,
    refusal: Option<&str>,
    severity: Severity,
    agent_id: &str,
    session_id: &str,
    intent: &str,
    resource: &str,
    decision_id: &str,
    now_unix_s: i64,
) -> DecisionEvent {
    let received_at = time::OffsetDateTime::from_unix_timestamp(now_unix_s)
        .map(warden_core::event::format_rfc3339)
        .unwrap_or_default();
    DecisionEvent {
        actor: agent_id.to_owned(),
        decision: tier.as_str().to_owned(),
        destinations: Vec::new(),
        determining: decision.determining.clone(),
        intent: intent.to_owned(),
        kind: "decision".into(),
        policy_hash: decision.policy_hash.clone(),
        reasons: decision.reasons.clone(),
        received_at,
        refusal: refusal.unwrap_or_default().to_owned(),
        resource: resource.to_owned(),
        resource_class: String::new(),
        session_id: session_id.to_owned(),
        severity,
        shadow: decision.shadow.iter().map(|s| format!("{}={}", s.policy_id, s.tier)).collect(),
        source: "warden".into(),
        subject: decision_id.to_owned(),
    }
}

/// One action to decide, with everything the pure decision needs.
#[derive(Debug)]
pub struct Action<'a> {
    /// The acting agent.
    pub agent: &'a AgentRecord,
    /// Its session.
    pub session: &'a SessionRecord,
    /// What the session has used so far.
    pub usage: Usage,
    /// The intent.
    pub intent: &'a str,
    /// The destination.
    pub resource: &'a ResourceFacts,
    /// Tool-call arguments as JSON text.
    pub arguments: &'a str,
    /// Where the arguments send data.
    pub argument_destinations: &'a [String],
    /// Bytes the action moves.
    pub bytes: u64,
    /// Calls of the session in flight before this one.
    pub in_flight: u64,
    /// The session's behavioral risk, per mille (0–1000).
    pub risk_permille: u16,
    /// Unix seconds.
    pub now: i64,
}

/// The outcome of [`evaluate`].
#[derive(Debug)]
pub struct Evaluation {
    /// The decision.
    pub decision: Decision,
    /// Why Warden refused before or beside policy, if it did.
    pub refusal: Option<&'static str>,
    /// The budget that ran out, if one did (the caller pauses the session).
    pub exhausted_budget: Option<&'static str>,
}

/// Stages 2–5 of the decision, with no IO: status, budgets, self-governance and
/// Cedar. Shared by the HTTP handler and the decision benchmark.
pub fn evaluate(policy: &PolicySet, action: &Action<'_>) -> Evaluation {
    let (agent, session, usage) = (action.agent, action.session, action.usage);
    let refuse = |reason: String, refusal: &'static str, exhausted: Option<&'static str>| Evaluation {
        decision: Decision {
            tier: Tier::Deny,
            policy_hash: policy.hash().to_owned(),
            determining: Vec::new(),
            reasons: vec![reason],
            shadow: Vec::new(),
        },
        refusal: Some(refusal),
        exhausted_budget: exhausted,
    };
    if agent.status != AgentStatus::Active {
        return refuse(format!("agent `{}` is not active", agent.id), "agent_status", None);
    }
    if session.status != SessionStatus::Active {
        let why = session.status_reason.clone().unwrap_or_default();
        let message =
            format!("session `{}` is {:?}: {why}; an operator must resume it", session.id, session.status);
        return refuse(message.to_lowercase(), "session_status", None);
    }
    let write = is_write(action.intent);
    if let Some(budget) = exhausted_budget(session, usage, write, action.bytes, action.now) {
        let message = format!(
            "budget `{budget}` of session `{}` ran out; the session is paused until an operator resumes it",
            session.id
        );
        return refuse(message, "budget", Some(budget));
    }
    let governance = GOVERNANCE_FAMILIES.iter().any(|f| action.intent.starts_with(f));
    let targets_self = action.resource.id == agent.id || action.resource.id == session.id;
    if governance && targets_self {
        let message =
            "an agent can never change the policy, budgets, status or credentials that govern itself";
        return refuse(message.into(), "self_governance", None);
    }
    let request = Request {
        agent: AgentFacts {
            id: agent.id.clone(),
            owner: agent.owner.clone(),
            environment: agent.environment.as_str().into(),
            status: "active".into(),
            scopes: agent.scopes.clone(),
        },
        session: SessionFacts { id: session.id.clone(), purpose: session.purpose.clone() },
        intent: action.intent.to_owned(),
        resource: action.resource.clone(),
        context: RequestContext {
            tool_calls: usage.tool_calls,
            writes: usage.writes,
            bytes: usage.bytes,
            in_flight: action.in_flight,
            budget_tool_calls_left: left(session.budgets.tool_calls_max, usage.tool_calls),
            budget_writes_left: left(session.budgets.writes_max, usage.writes),
            budget_bytes_left: left(session.budgets.bytes_max, usage.bytes),
            now_unix_s: action.now,
            risk_permille: action.risk_permille,
            self_governance: governance,
            arguments: action.arguments.to_owned(),
            argument_destinations: action.argument_destinations.to_vec(),
        },
    };
    let mut decision = policy.decide(&request);
    // A governance change asked for by an agent always needs a human, whatever the
    // policy says.
    if governance && decision.tier < Tier::Approve {
        decision.tier = Tier::Approve;
        decision
            .reasons
            .push("a change to governance requested by an agent always needs a human approval".into());
    }
    Evaluation { decision, refusal: None, exhausted_budget: None }
}

/// Stages 2–5 on the current policy; an exhausted budget pauses the session.
async fn decide(state: &AppState, action: &Action<'_>) -> Result<(Decision, Option<&'static str>), ApiError> {
    let (_, policy) =
        state.policy.current().ok_or_else(|| ApiError::Unavailable("policy unavailable".into()))?;
    let evaluation = evaluate(&policy, action);
    if let Some(budget) = evaluation.exhausted_budget {
        let session = action.session;
        let mut paused = session.clone();
        paused.status = SessionStatus::Paused;
        paused.status_reason = Some(format!("budget `{budget}` ran out"));
        record(state, "session.paused", "system", &session.id, Severity::Warning, json!({"budget": budget}))
            .await?;
        state.directory.put_session(&paused)?;
    }
    Ok((evaluation.decision, evaluation.refusal))
}
