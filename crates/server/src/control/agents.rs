//! `/v1/agents…`: register, list, show, suspend, reactivate and revoke agents.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use warden_core::AgentId;
use warden_core::admin::Severity;
use warden_store::directory::{AgentRecord, AgentStatus, Environment, Revocation, RevocationKind};

use super::{Operator, new_id, parse_body, record};
use crate::AppState;
use crate::error::ApiError;

/// Longest owner or retention class.
const LABEL_CHARS_MAX: usize = 128;
/// Most scopes one agent may hold.
const AGENT_SCOPES_MAX: usize = 64;
/// Most agents one list call returns.
const AGENT_LIST_MAX: usize = 1_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/agents", post(register).get(list))
        .route("/v1/agents/{id}", get(show))
        .route("/v1/agents/{id}/suspend", post(suspend))
        .route("/v1/agents/{id}/activate", post(activate))
        .route("/v1/agents/{id}/revoke", post(revoke))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    #[serde(default)]
    id: Option<String>,
    owner: String,
    #[serde(default)]
    scopes: Vec<String>,
    environment: Environment,
    #[serde(default = "default_retention")]
    retention_class: String,
    /// An Ed25519 public JWK for `private_key_jwt`; without it a client secret is issued.
    #[serde(default)]
    public_jwk: Option<Value>,
}

fn default_retention() -> String {
    "standard".into()
}

fn check_label(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.chars().count() > LABEL_CHARS_MAX || value.chars().any(char::is_control) {
        return Err(ApiError::field(field, format!("must have 1 to {LABEL_CHARS_MAX} printable characters")));
    }
    Ok(())
}

fn check_scopes(scopes: &[String]) -> Result<(), ApiError> {
    if scopes.len() > AGENT_SCOPES_MAX {
        return Err(ApiError::field("scopes", format!("at most {AGENT_SCOPES_MAX} scopes")));
    }
    for s in scopes {
        let ok = !s.is_empty()
            && s.len() <= LABEL_CHARS_MAX
            && s.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if !ok {
            return Err(ApiError::field("scopes", format!("`{s}` is not a valid OAuth scope token")));
        }
    }
    Ok(())
}

async fn register(
    State(state): State<AppState>,
    operator: Operator,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    operator.admin()?;
    let body: RegisterBody = parse_body(&body)?;
    let id = match body.id {
        Some(id) => AgentId::parse(&id).map_err(|e| ApiError::field("id", e.to_string()))?.to_string(),
        None => new_id(AgentId::PREFIX),
    };
    check_label("owner", &body.owner)?;
    check_label("retention_class", &body.retention_class)?;
    check_scopes(&body.scopes)?;
    if state.directory.agent(&id)?.is_some() {
        return Err(ApiError::Conflict(format!("agent `{id}` already exists")));
    }
    let (secret, secret_hash) = match &body.public_jwk {
        Some(jwk) => {
            warden_identity::ClientPublicKey::from_jwk(jwk)
                .map_err(|e| ApiError::field("public_jwk", e.to_string()))?;
            (None, None)
        }
        None => {
            let secret = warden_identity::generate_client_secret();
            let hash = warden_identity::hash_client_secret(&secret)
                .map_err(|e| ApiError::Unavailable(format!("cannot hash the client secret: {e}")))?;
            (Some(secret), Some(hash))
        }
    };
    let agent = AgentRecord {
        id: id.clone(),
        owner: body.owner,
        scopes: body.scopes,
        environment: body.environment,
        retention_class: body.retention_class,
        status: AgentStatus::Active,
        client_secret_hash: secret_hash,
        public_jwk: body.public_jwk,
        created_at: state.clock.now().unix_timestamp(),
    };
    let details = json!({"owner": agent.owner, "scopes": agent.scopes, "environment": agent.environment,
        "retention_class": agent.retention_class, "auth": if secret.is_some() { "client_secret" } else { "private_key_jwt" }});
    record(&state, "agent.registered", &operator.0.id, &id, Severity::Info, details).await?;
    state.directory.put_agent(&agent)?;
    let mut out = public(&agent);
    if let (Some(secret), Some(obj)) = (secret, out.as_object_mut()) {
        obj.insert("client_secret".into(), json!(secret));
    }
    Ok(Json(out))
}

fn public(agent: &AgentRecord) -> Value {
    json!({
        "id": agent.id, "owner": agent.owner, "scopes": agent.scopes, "environment": agent.environment,
        "retention_class": agent.retention_class, "status": agent.status, "created_at": agent.created_at,
        "auth": if agent.public_jwk.is_some() { "private_key_jwt" } else { "client_secret" },
    })
}

#[derive(Deserialize)]
struct ListQuery {
    after: Option<String>,
    limit: Option<usize>,
}

async fn list(
    State(state): State<AppState>,
    operator: Operator,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let _ = operator;
    let limit = q.limit.unwrap_or(100).min(AGENT_LIST_MAX);
    let agents = state.directory.agents(q.after.as_deref(), limit)?;
    Ok(Json(json!({"agents": agents.iter().map(public).collect::<Vec<_>>()})))
}

pub(super) fn load(state: &AppState, id: &str) -> Result<AgentRecord, ApiError> {
    AgentId::parse(id).map_err(|e| ApiError::field("id", e.to_string()))?;
    state.directory.agent(id)?.ok_or_else(|| ApiError::NotFound(format!("no agent `{id}`")))
}

async fn show(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let agent = load(&state, &id)?;
    let sessions = state.directory.sessions_of(&id)?;
    let mut out = public(&agent);
    if let Some(obj) = out.as_object_mut() {
        obj.insert(
            "sessions".into(),
            json!(sessions.iter().map(|s| json!({"id": s.id, "status": s.status})).collect::<Vec<_>>()),
        );
    }
    Ok(Json(out))
}

async fn set_status(
    state: &AppState,
    operator: &Operator,
    id: &str,
    status: AgentStatus,
    kind: &str,
) -> Result<Json<Value>, ApiError> {
    operator.admin()?;
    let mut agent = load(state, id)?;
    if agent.status == AgentStatus::Revoked {
        return Err(ApiError::Conflict(format!("agent `{id}` is revoked for good")));
    }
    agent.status = status;
    let severity = if status == AgentStatus::Active { Severity::Info } else { Severity::Warning };
    record(state, kind, &operator.0.id, id, severity, json!({"status": status})).await?;
    if status != AgentStatus::Active {
        // Every credential issued so far stops working on the very next request.
        let at = state.clock.now().unix_timestamp();
        state.directory.add_revocation(&Revocation { kind: RevocationKind::Agent, id: id.to_owned(), at })?;
        crate::credentials::revoke_agent(state, id, at);
    }
    state.directory.put_agent(&agent)?;
    Ok(Json(public(&agent)))
}

async fn suspend(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_status(&state, &operator, &id, AgentStatus::Suspended, "agent.suspended").await
}

async fn activate(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_status(&state, &operator, &id, AgentStatus::Active, "agent.activated").await
}

async fn revoke(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let out = set_status(&state, &operator, &id, AgentStatus::Revoked, "agent.revoked").await?;
    // Revoking an agent ends its sessions too.
    for mut session in state.directory.sessions_of(&id)? {
        if session.ended_at.is_none() {
            session.status = warden_store::directory::SessionStatus::Ended;
            session.ended_at = Some(state.clock.now().unix_timestamp());
            session.status_reason = Some("agent revoked".into());
            // Every change is an event: each ended session too, not only the agent.
            record(
                &state,
                "session.ended",
                &operator.0.id,
                &session.id,
                Severity::Warning,
                json!({"reason": "agent revoked", "agent_id": id}),
            )
            .await?;
            state.directory.put_session(&session)?;
        }
    }
    Ok(out)
}
