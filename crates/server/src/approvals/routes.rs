//! `/v1/approvals…`: operators list and read approvals (any role) and approve or
//! deny them (approver or admin).

use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use warden_store::approvals::{ApprovalRecord, ApprovalStatus};
use warden_store::directory::Role;

use super::{Verdict, check_id};
use crate::AppState;
use crate::control::{Operator, parse_body};
use crate::error::ApiError;

/// Approvals one list call returns unless `limit` says otherwise.
const APPROVAL_LIST_DEFAULT: usize = 100;
/// Most approvals one list call returns.
const APPROVAL_LIST_MAX: usize = 1_000;

/// The approval routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/approvals", get(list))
        .route("/v1/approvals/{id}", get(show))
        .route("/v1/approvals/{id}/approve", post(approve))
        .route("/v1/approvals/{id}/deny", post(deny))
}

fn packet_str<'a>(r: &'a ApprovalRecord, path: &[&str]) -> &'a Value {
    path.iter().try_fold(&r.packet, |v, key| v.get(key)).unwrap_or(&Value::Null)
}

/// The list form: who asked for what, and where the approval is.
fn summary(r: &ApprovalRecord) -> Value {
    json!({
        "id": r.id, "status": r.status, "agent_id": packet_str(r, &["agent_id"]),
        "session_id": r.session_id, "decision_id": packet_str(r, &["decision_id"]),
        "intent": packet_str(r, &["intent"]), "resource": packet_str(r, &["resource"]),
        "summary": packet_str(r, &["action", "summary"]), "risk": packet_str(r, &["risk"]),
        "created_at": r.created_at, "expires_at": r.expires_at, "decided_at": r.decided_at,
        "decided_by": r.decided_by, "reason": r.reason,
    })
}

/// The full form: the summary, the evidence packet and its digest.
fn full(r: &ApprovalRecord) -> Value {
    let mut out = summary(r);
    if let Some(obj) = out.as_object_mut() {
        obj.insert("evidence".into(), r.packet.clone());
        obj.insert("evidence_sha256".into(), json!(r.evidence_sha256));
    }
    out
}

async fn list(
    State(state): State<AppState>,
    _operator: Operator,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params: Vec<(String, String)> = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::field("query", format!("is not a valid query string: {e}")))?;
    let mut status = None;
    let mut limit = APPROVAL_LIST_DEFAULT;
    for (key, value) in &params {
        match key.as_str() {
            "status" => {
                status = Some(ApprovalStatus::parse(value).ok_or_else(|| {
                    ApiError::field(
                        "status",
                        format!("`{value}` is not one of pending, approved, denied, expired"),
                    )
                })?);
            }
            "limit" => {
                limit =
                    value.parse().ok().filter(|n| (1..=APPROVAL_LIST_MAX).contains(n)).ok_or_else(|| {
                        ApiError::field(
                            "limit",
                            format!("`{value}` is not a number from 1 to {APPROVAL_LIST_MAX}"),
                        )
                    })?;
            }
            other => {
                return Err(ApiError::field(other, "is not a parameter of this endpoint (status, limit)"));
            }
        }
    }
    let approvals = state.approvals.store().approvals(status, limit)?;
    Ok(Json(json!({"approvals": approvals.iter().map(summary).collect::<Vec<_>>()})))
}

async fn show(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_id(&id)?;
    let approval = state
        .approvals
        .store()
        .approval(&id)?
        .ok_or_else(|| ApiError::NotFound(format!("no approval `{id}`")))?;
    Ok(Json(full(&approval)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DecideBody {
    #[serde(default)]
    reason: Option<String>,
}

async fn decide(
    state: &AppState,
    operator: &Operator,
    id: &str,
    verdict: Verdict,
    body: &[u8],
) -> Result<Json<Value>, ApiError> {
    // Only approvers and admins may decide; say so before looking at the body.
    operator.require(&[Role::Admin, Role::Approver])?;
    let body: DecideBody =
        if body.iter().all(u8::is_ascii_whitespace) { DecideBody::default() } else { parse_body(body)? };
    let reason = body.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
    let decided = state.approvals.decide(state, operator, id, verdict, reason).await?;
    Ok(Json(full(&decided)))
}

async fn approve(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    decide(&state, &operator, &id, Verdict::Approve, &body).await
}

async fn deny(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    decide(&state, &operator, &id, Verdict::Deny, &body).await
}
