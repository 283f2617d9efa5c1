//! Cross-organization trust: `GET /v1/agents/{id}/history` answers "should I
//! trust agent B?" with a behavioral summary another organization verifies
//! offline (`warden trust verify`): counts by intent and outcome, first seen,
//! anomalies, status and risk, signed with the log's key, anchored to a signed
//! checkpoint, with inclusion proofs for every entry it cites. The format and its
//! verification are in [`summary`].
//!
//! Built from the event index (never a scan of the log); the counts cover
//! exactly the entries below the checkpoint's size. Any operator may fetch one;
//! handing it to a partner is the operator's decision.

pub mod summary;

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use warden_core::AgentId;
use warden_store::event_index::{IndexedEvent, TallyRow};

use crate::AppState;
use crate::control::Operator;
use crate::error::ApiError;
use crate::incident::replay::{checkpoint_and_coverage, proved_entries};
use crate::incident::rfc3339;
use summary::{
    Breakdown, CITED_ANOMALIES_MAX, CITED_DECISIONS_MAX, Cited, Counts, Evidence, FirstSeen, Role, Summary,
    TrustDocument,
};

/// The trust routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/agents/{id}/history", get(history))
}

fn add(breakdown: &mut Breakdown, row: &TallyRow) {
    let intent = row.intent.clone().unwrap_or_else(|| "unknown".into());
    let outcome = row.outcome.clone().unwrap_or_else(|| "unknown".into());
    breakdown.total += row.count;
    *breakdown.by_outcome.entry(outcome.clone()).or_default() += row.count;
    *breakdown.by_intent.entry(intent).or_default().entry(outcome).or_default() += row.count;
}

/// Counts from the index's tally of the agent's entries.
pub fn counts(tally: &[TallyRow]) -> Counts {
    let mut counts = Counts::default();
    for row in tally {
        counts.events += row.count;
        match row.kind.as_str() {
            "decision" => add(&mut counts.decisions, row),
            "action" => add(&mut counts.actions, row),
            "telemetry" => add(&mut counts.self_reported, row),
            "anomaly" => counts.anomalies += row.count,
            _ => counts.administrative += row.count,
        }
    }
    counts
}

/// The agent's risk now, rounded to three decimals (canonical JSON of a float is
/// exact), or `None` when the behavior engine has never seen it.
fn current_risk(state: &AppState, agent: &str) -> Option<f64> {
    state.behavior.engine().baseline(agent)?;
    let (_, agent_risk) = state.behavior.risk(agent, "");
    Some((f64::from(agent_risk) * 1000.0).round() / 1000.0)
}

/// What the summary cites: the first entry, the latest anomalies and decisions.
fn citations(state: &AppState, agent: &str, tree_size: u64) -> Result<Vec<(Role, IndexedEvent)>, ApiError> {
    let index = state.events.index();
    let first = index.first_event(agent, tree_size)?;
    let mut cited: Vec<(Role, IndexedEvent)> = first.into_iter().map(|e| (Role::FirstSeen, e)).collect();
    for (role, kind, max) in [
        (Role::Anomaly, "anomaly", CITED_ANOMALIES_MAX),
        (Role::RecentDecision, "decision", CITED_DECISIONS_MAX),
    ] {
        let mut latest = index.latest_events(agent, kind, tree_size, max)?;
        latest.reverse();
        cited.extend(latest.into_iter().map(|e| (role, e)));
    }
    Ok(cited)
}

async fn history(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<TrustDocument>, ApiError> {
    AgentId::parse(&id).map_err(|e| ApiError::field("id", e.to_string()))?;
    let agent = state.directory.agent(&id)?.ok_or_else(|| ApiError::NotFound(format!("no agent `{id}`")))?;
    let (cp, covered) = checkpoint_and_coverage(&state).await?;
    if covered < cp.size {
        return Err(ApiError::Unavailable(format!(
            "the event index covers {covered} of the {} entries the checkpoint does; retry shortly",
            cp.size
        )));
    }
    let tally = state.events.index().tally(&id, cp.size)?;
    let cited = citations(&state, &id, cp.size)?;
    let rows: Vec<IndexedEvent> = cited.iter().map(|(_, e)| e.clone()).collect();
    let proved = proved_entries(&state, rows, cp.size).await?;
    let mut cited_out = Vec::with_capacity(proved.len());
    let mut evidence: BTreeMap<u64, Evidence> = BTreeMap::new();
    for ((role, _), (row, leaf, proof)) in cited.iter().zip(proved) {
        cited_out.push(Cited { index: row.index, role: *role, claims: summary::claims_of(&leaf) });
        evidence.insert(
            row.index,
            Evidence { index: row.index, leaf: STANDARD.encode(&leaf), inclusion_proof: proof },
        );
    }
    // The first entry's time is the one its leaf states, as cited.
    let first_seen = cited_out.iter().find(|c| c.role == Role::FirstSeen).map(|c| FirstSeen {
        index: c.index,
        received_at: c.claims.get("received_at").cloned().unwrap_or_default(),
    });
    let summary = Summary {
        agent_id: id.clone(),
        log_origin: state.signer.name().to_owned(),
        issued_at: rfc3339(state.clock.now().unix_timestamp()),
        checkpoint: cp.note.clone(),
        tree_size: cp.size,
        status: format!("{:?}", agent.status).to_lowercase(),
        environment: agent.environment.as_str().to_owned(),
        risk: current_risk(&state, &id),
        first_seen,
        counts: counts(&tally),
        cited: cited_out,
    };
    let document = summary::sign(&summary, evidence.into_values().collect(), &state.signer)
        .map_err(|e| ApiError::Unavailable(format!("cannot sign the summary: {e}")))?;
    Ok(Json(document))
}
