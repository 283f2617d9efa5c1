//! The forensics routes: `POST` / `GET /v1/sessions/{id}/forensics` (turn a
//! session's forensics mode on or off, or read it), `GET /v1/forensics?session=…`
//! (a session's captures) and `GET /v1/forensics/{id}` (one capture, by decision
//! id or log index, with everything needed to check it against the log: the
//! bodies, the salt, the action event's leaf and its inclusion proof against the
//! latest signed checkpoint).
//!
//! Changing the mode needs an admin, like every session change. Reading captures
//! needs an admin or an auditor: the bodies are whatever the agent sent and the
//! upstream answered, more than an approver needs to decide on an evidence packet.
//! Every read of a capture's bodies is a `forensics.capture_read` event in the
//! log (who, which capture), written before the bodies are returned; a read the
//! log cannot record is refused.

use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use warden_core::SessionId;
use warden_core::admin::Severity;
use warden_store::directory::{Role, SessionStatus};
use warden_store::forensics::{CaptureKey, CaptureSummary, ForensicCapture, ForensicSetting};

use super::rfc3339;
use crate::AppState;
use crate::control::{Operator, load_session, record};
use crate::error::ApiError;

/// Longest reason, in characters.
const FORENSIC_REASON_CHARS_MAX: usize = 512;
/// Captures one list call returns unless `limit` says otherwise.
const FORENSIC_LIST_DEFAULT: usize = 100;
/// Most captures one list call returns.
const FORENSIC_LIST_MAX: usize = 1_000;
/// Longest a read waits for a checkpoint that covers the capture's action event
/// (checkpoints are published every `checkpoint_interval_ms`).
const FORENSIC_CHECKPOINT_WAIT_MS_MAX: u64 = 10_000;
/// Who may read captured bodies.
const READERS: [Role; 2] = [Role::Admin, Role::Auditor];

/// The forensics routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions/{id}/forensics", get(setting).post(set))
        .route("/v1/forensics", get(list))
        .route("/v1/forensics/{id}", get(show))
}

/// The API form of a session's setting (`None`: never turned on).
fn public_setting(session_id: &str, setting: Option<&ForensicSetting>, changed: Option<bool>) -> Value {
    let mut v = json!({
        "session_id": session_id,
        "enabled": setting.is_some_and(|s| s.enabled),
        "reason": setting.map(|s| s.reason.clone()),
        "changed_by": setting.map(|s| s.changed_by.clone()),
        "changed_at": setting.map(|s| rfc3339(s.changed_at)),
        "log_index": setting.map(|s| s.log_index),
    });
    if let (Some(changed), Some(obj)) = (changed, v.as_object_mut()) {
        obj.insert("changed".into(), json!(changed));
    }
    v
}

/// `{"enabled": bool, "reason": "…"}`, each field named when it is wrong.
fn parse_set_body(body: &[u8]) -> Result<(bool, String), ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::field("body", format!("is not JSON: {e}")))?;
    let obj = value.as_object().ok_or_else(|| ApiError::field("body", "must be a JSON object"))?;
    if let Some(unknown) = obj.keys().find(|k| !matches!(k.as_str(), "enabled" | "reason")) {
        return Err(ApiError::field(unknown, "is not a known field (enabled, reason)"));
    }
    let enabled = obj
        .get("enabled")
        .ok_or_else(|| ApiError::field("enabled", "is required"))?
        .as_bool()
        .ok_or_else(|| ApiError::field("enabled", "must be true or false"))?;
    let reason = obj
        .get("reason")
        .ok_or_else(|| ApiError::field("reason", "is required"))?
        .as_str()
        .map(str::trim)
        .filter(|r| {
            !r.is_empty()
                && r.chars().count() <= FORENSIC_REASON_CHARS_MAX
                && !r.chars().any(char::is_control)
        })
        .ok_or_else(|| {
            ApiError::field(
                "reason",
                format!("must have 1 to {FORENSIC_REASON_CHARS_MAX} printable characters"),
            )
        })?;
    Ok((enabled, reason.to_owned()))
}

async fn set(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    operator.admin()?;
    let (enabled, reason) = parse_set_body(&body)?;
    let (session, _) = load_session(&state, &id)?;
    if enabled && session.status == SessionStatus::Ended {
        return Err(ApiError::Conflict(format!("session `{id}` has ended; it has no actions to capture")));
    }
    let (setting, changed) = state.forensics.set(&state, &operator.0.id, &session, enabled, &reason).await?;
    if changed {
        tracing::warn!(session = %id, enabled, by = %operator.0.id, "forensics mode changed");
    }
    Ok(Json(public_setting(&id, setting.as_ref(), Some(changed))))
}

async fn setting(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    load_session(&state, &id)?;
    let setting = state.forensics.store().forensic_setting(&id)?;
    Ok(Json(public_setting(&id, setting.as_ref(), None)))
}

fn summary(c: &CaptureSummary) -> Value {
    json!({
        "decision_id": c.decision_id, "index": c.log_index,
        "captured_at": rfc3339(c.captured_at), "expires_at": rfc3339(c.expires_at),
        "request": {"bytes": c.request_bytes, "kept_bytes": c.request_kept_bytes,
            "truncated": c.request_kept_bytes < c.request_bytes},
        "response": {"bytes": c.response_bytes, "kept_bytes": c.response_kept_bytes,
            "truncated": c.response_kept_bytes < c.response_bytes},
    })
}

/// `?session=sess_…[&after=INDEX&limit=N]`: a session's captures, oldest first,
/// without their bodies.
async fn list(
    State(state): State<AppState>,
    operator: Operator,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    operator.require(&READERS)?;
    let params: Vec<(String, String)> = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::field("query", format!("is not a valid query string: {e}")))?;
    let (mut session, mut after, mut limit) = (None, None, FORENSIC_LIST_DEFAULT);
    for (key, value) in &params {
        match key.as_str() {
            "session" => {
                SessionId::parse(value).map_err(|e| ApiError::field("session", e.to_string()))?;
                session = Some(value.clone());
            }
            "after" => {
                after = Some(value.parse::<u64>().map_err(|_| {
                    ApiError::field("after", format!("`{value}` is not a log index this server returned"))
                })?);
            }
            "limit" => {
                limit =
                    value.parse().ok().filter(|n| (1..=FORENSIC_LIST_MAX).contains(n)).ok_or_else(|| {
                        ApiError::field(
                            "limit",
                            format!("`{value}` is not a number from 1 to {FORENSIC_LIST_MAX}"),
                        )
                    })?;
            }
            other => return Err(ApiError::field(other, "is not a known parameter (session, after, limit)")),
        }
    }
    let session = session.ok_or_else(|| ApiError::field("session", "is required"))?;
    let store = state.forensics.store().clone();
    let who = session.clone();
    let mut rows = tokio::task::spawn_blocking(move || store.captures_of(&who, after, limit + 1))
        .await
        .map_err(|e| ApiError::Unavailable(format!("the forensics task failed: {e}")))??;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more { rows.last().map(|r| r.log_index) } else { None };
    let captures: Vec<Value> = rows.iter().map(summary).collect();
    Ok(Json(json!({"session_id": session, "captures": captures, "next_after": next})))
}

/// A capture's key: a decision id (`dec_…`) or the log index of its action event.
fn parse_key(id: &str) -> Result<CaptureKey<'_>, ApiError> {
    if let Ok(index) = id.parse::<u64>() {
        return Ok(CaptureKey::Index(index));
    }
    let ok = id.strip_prefix("dec_").is_some_and(|rest| {
        (1..=64).contains(&rest.len())
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    if ok {
        Ok(CaptureKey::Decision(id))
    } else {
        Err(ApiError::field("id", format!("`{id}` is neither a decision id (`dec_…`) nor a log index")))
    }
}

/// The latest checkpoint once it covers `index`, waiting for the next one or two
/// to be published if need be.
async fn checkpoint_covering(
    state: &AppState,
    index: u64,
) -> Result<std::sync::Arc<warden_store::StoredCheckpoint>, ApiError> {
    let wait_ms =
        state.config.log.checkpoint_interval_ms.saturating_mul(2).min(FORENSIC_CHECKPOINT_WAIT_MS_MAX);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(wait_ms);
    loop {
        if let Some(cp) = state.log.checkpoint().filter(|cp| cp.size > index) {
            return Ok(cp);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::Unavailable(format!(
                "the action event at index {index} is not covered by a signed checkpoint yet; retry shortly"
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn body_part(kept: &[u8], bytes: u64) -> Value {
    let kept_bytes = kept.len() as u64;
    json!({"body": STANDARD.encode(kept), "bytes": bytes, "kept_bytes": kept_bytes, "truncated": kept_bytes < bytes})
}

/// `GET /v1/forensics/{id}`: one capture and its proof.
async fn show(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    operator.require(&READERS)?;
    parse_key(&id)?;
    let (store, key) = (state.forensics.store().clone(), id.clone());
    let found: Option<ForensicCapture> =
        tokio::task::spawn_blocking(move || Ok::<_, ApiError>(store.capture(parse_key(&key)?)?))
            .await
            .map_err(|e| ApiError::Unavailable(format!("the forensics task failed: {e}")))??;
    let now = state.clock.now().unix_timestamp();
    let capture = match found {
        Some(c) if c.expires_at > now => c,
        Some(c) => {
            return Err(ApiError::NotFound(format!(
                "the capture of `{id}` expired at {}; only the log's commitment remains",
                rfc3339(c.expires_at)
            )));
        }
        None => return Err(ApiError::NotFound(format!("no forensic capture for `{id}`"))),
    };
    // Who read which bodies is itself in the log, before they are shown: the
    // bodies are the most sensitive thing Warden keeps. If the log cannot
    // record the read, nothing is shown (fail closed).
    let details = json!({
        "decision_id": capture.decision_id, "agent_id": capture.agent_id,
        "action_index": capture.log_index, "role": operator.0.role,
    });
    let read_index = record(
        &state,
        "forensics.capture_read",
        &operator.0.id,
        &capture.session_id,
        Severity::Info,
        details,
    )
    .await?;
    let cp = checkpoint_covering(&state, capture.log_index).await?;
    let (log, index, size) = (state.log.clone(), capture.log_index, cp.size);
    let (leaf, proof) = tokio::task::spawn_blocking(move || {
        Ok::<_, ApiError>((log.entry(index)?, log.inclusion_proof(index, size)?))
    })
    .await
    .map_err(|e| ApiError::Unavailable(format!("the log task failed: {e}")))??;
    let mut out = Map::new();
    for (k, v) in [
        ("decision_id", json!(capture.decision_id)),
        ("session_id", json!(capture.session_id)),
        ("agent_id", json!(capture.agent_id)),
        ("captured_at", json!(rfc3339(capture.captured_at))),
        ("expires_at", json!(rfc3339(capture.expires_at))),
        ("salt", json!(STANDARD.encode(&capture.salt))),
        ("request", body_part(&capture.request, capture.request_bytes)),
        ("response", body_part(&capture.response, capture.response_bytes)),
        ("index", json!(capture.log_index)),
        ("leaf", json!(STANDARD.encode(&leaf))),
        ("inclusion_proof", json!(proof.iter().map(|h| h.to_base64()).collect::<Vec<_>>())),
        ("tree_size", json!(cp.size)),
        ("checkpoint", json!(cp.note)),
        ("read_log_index", json!(read_index)),
    ] {
        out.insert(k.into(), v);
    }
    Ok(Json(Value::Object(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_names_the_field_that_is_wrong() {
        let field = |body: &str| match parse_set_body(body.as_bytes()) {
            Err(ApiError::InvalidRequest { fields, .. }) => fields.first().map(|f| f.field.clone()),
            _ => None,
        };
        assert_eq!(field(r#"{"reason": "x"}"#).as_deref(), Some("enabled"));
        assert_eq!(field(r#"{"enabled": "yes", "reason": "x"}"#).as_deref(), Some("enabled"));
        assert_eq!(field(r#"{"enabled": true}"#).as_deref(), Some("reason"));
        assert_eq!(field(r#"{"enabled": true, "reason": "  "}"#).as_deref(), Some("reason"));
        assert_eq!(field(r#"{"enabled": true, "reason": "x", "extra": 1}"#).as_deref(), Some("extra"));
        assert_eq!(field("[]").as_deref(), Some("body"));
        assert_eq!(field("{").as_deref(), Some("body"));
        assert_eq!(
            parse_set_body(br#"{"enabled": false, "reason": " done "}"#).ok(),
            Some((false, "done".into()))
        );
    }

    #[test]
    fn captures_are_named_by_decision_id_or_log_index() {
        assert_eq!(parse_key("17").ok(), Some(CaptureKey::Index(17)));
        assert_eq!(parse_key("dec_abc2").ok(), Some(CaptureKey::Decision("dec_abc2")));
        for bad in ["dec_", "sess_x", "-1", "dec_a/b", ""] {
            assert!(parse_key(bad).is_err(), "{bad}");
        }
    }
}
