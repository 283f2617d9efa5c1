//! `/v1/sessions…`: start, show, pause, resume and end sessions, and set budgets.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use warden_core::SessionId;
use warden_core::admin::Severity;
use warden_store::directory::{
    AgentStatus, Budgets, Revocation, RevocationKind, SessionRecord, SessionStatus,
};

use super::agents::load as load_agent;
use super::{Operator, new_id, record};
use crate::AppState;
use crate::error::ApiError;

/// Longest purpose.
const PURPOSE_CHARS_MAX: usize = 128;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions", post(start))
        .route("/v1/sessions/{id}", get(show))
        .route("/v1/sessions/{id}/end", post(end))
        .route("/v1/sessions/{id}/pause", post(pause))
        .route("/v1/sessions/{id}/resume", post(resume))
        .route("/v1/sessions/{id}/budgets", post(set_budgets))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    agent_id: String,
    purpose: String,
    #[serde(default)]
    budgets: Option<Budgets>,
}

fn public(session: &SessionRecord, usage: Option<warden_store::directory::Usage>) -> Value {
    json!({
        "id": session.id, "agent_id": session.agent_id, "purpose": session.purpose,
        "budgets": session.budgets, "status": session.status, "status_reason": session.status_reason,
        "created_at": session.created_at, "ended_at": session.ended_at, "usage": usage,
    })
}

async fn start(
    State(state): State<AppState>,
    operator: Operator,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    operator.admin()?;
    let body: StartBody = super::parse_body(&body)?;
    let agent = load_agent(&state, &body.agent_id).map_err(|e| match e {
        ApiError::NotFound(m) => ApiError::field("agent_id", m),
        other => other,
    })?;
    if agent.status != AgentStatus::Active {
        return Err(ApiError::Conflict(
            format!("agent `{}` is {:?}; it cannot start sessions", agent.id, agent.status).to_lowercase(),
        ));
    }
    let purpose = body.purpose.trim();
    if purpose.is_empty()
        || purpose.chars().count() > PURPOSE_CHARS_MAX
        || purpose.chars().any(char::is_control)
    {
        return Err(ApiError::field(
            "purpose",
            format!("must have 1 to {PURPOSE_CHARS_MAX} printable characters"),
        ));
    }
    let session = SessionRecord {
        id: new_id(SessionId::PREFIX),
        agent_id: agent.id.clone(),
        purpose: purpose.to_owned(),
        budgets: body.budgets.unwrap_or_else(|| state.config.budgets.clone()),
        status: SessionStatus::Active,
        status_reason: None,
        created_at: state.clock.now().unix_timestamp(),
        ended_at: None,
    };
    record(
        &state,
        "session.started",
        &operator.0.id,
        &session.id,
        Severity::Info,
        json!({"agent_id": session.agent_id, "purpose": session.purpose, "budgets": session.budgets}),
    )
    .await?;
    state.directory.put_session(&session)?;
    Ok(Json(public(&session, None)))
}

pub(crate) fn load(
    state: &AppState,
    id: &str,
) -> Result<(SessionRecord, warden_store::directory::Usage), ApiError> {
    SessionId::parse(id).map_err(|e| ApiError::field("id", e.to_string()))?;
    state.directory.session(id)?.ok_or_else(|| ApiError::NotFound(format!("no session `{id}`")))
}

async fn show(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (session, usage) = load(&state, &id)?;
    Ok(Json(public(&session, Some(usage))))
}

async fn transition(
    state: &AppState,
    operator: &Operator,
    id: &str,
    to: SessionStatus,
    kind: &str,
) -> Result<Json<Value>, ApiError> {
    operator.admin()?;
    let (mut session, usage) = load(state, id)?;
    if session.status == SessionStatus::Ended {
        return Err(ApiError::Conflict(format!("session `{id}` has ended")));
    }
    if to == SessionStatus::Active && session.status == SessionStatus::Active {
        return Err(ApiError::Conflict(format!("session `{id}` is already active")));
    }
    let now = state.clock.now().unix_timestamp();
    record(state, kind, &operator.0.id, id, Severity::Info, json!({"from": session.status, "to": to}))
        .await?;
    session.status = to;
    session.status_reason = (to != SessionStatus::Active).then(|| format!("{kind} by {}", operator.0.id));
    if to == SessionStatus::Ended {
        session.ended_at = Some(now);
        // Ending a session revokes every token bound to it.
        state.directory.add_revocation(&Revocation {
            kind: RevocationKind::Session,
            id: id.to_owned(),
            at: now,
        })?;
        crate::credentials::revoke_session(state, id, now);
    }
    state.directory.put_session(&session)?;
    Ok(Json(public(&session, Some(usage))))
}

async fn end(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    transition(&state, &operator, &id, SessionStatus::Ended, "session.ended").await
}

async fn pause(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    transition(&state, &operator, &id, SessionStatus::Paused, "session.paused").await
}

async fn resume(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    transition(&state, &operator, &id, SessionStatus::Active, "session.resumed").await
}

async fn set_budgets(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    operator.admin()?;
    let budgets: Budgets = super::parse_body(&body)?;
    let (mut session, usage) = load(&state, &id)?;
    record(
        &state,
        "session.budgets_changed",
        &operator.0.id,
        &id,
        Severity::Info,
        json!({"from": session.budgets, "to": budgets}),
    )
    .await?;
    session.budgets = budgets;
    state.directory.put_session(&session)?;
    Ok(Json(public(&session, Some(usage))))
}
