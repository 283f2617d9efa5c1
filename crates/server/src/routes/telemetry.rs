//! `POST /v1/telemetry/submit`: self-reported events into the log.
//!
//! The credential is optional. Without one, events are logged as `self_reported`
//! and not learned from: nothing vouches for the agent they name. With an agent's
//! session token, every event must name that agent and session; they are logged as
//! `self_reported_authenticated`, observed by the behavior engine (in a namespace of
//! their own, see [`crate::behavior::reported_observation`]), and any finding is
//! logged as an `anomaly` in the same append as the events.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use serde::Serialize;
use warden_core::commitment::commit_context;
use warden_core::event::{LoggedEvent, Source, format_rfc3339, parse_submission};
use warden_core::limits::{COMMITMENT_SALT_BYTES, LEAF_BYTES_MAX, TELEMETRY_BODY_BYTES_MAX};
use warden_core::{FieldError, TelemetryEvent};
use warden_store::{ContextRecord, NewLeaf};

use crate::credentials::{AgentCall, OptionalAgentCall};
use crate::error::ApiError;
use crate::{AppState, behavior};

/// One accepted event.
#[derive(Debug, Serialize)]
pub struct Accepted {
    /// Its index in the log.
    pub index: u64,
    /// Its RFC 6962 leaf hash, base64.
    pub leaf_hash: String,
    /// Warden's commitment to the submitted context, if one was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_commitment: Option<String>,
    /// The salt that, with the context, opens the commitment (base64). Keep it:
    /// Warden deletes its copy when the retention period ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_salt: Option<String>,
}

/// The 200 answer: sent only after every event is durably committed.
#[derive(Debug, Serialize)]
pub struct Submitted {
    /// One per submitted event, in order.
    pub entries: Vec<Accepted>,
}

/// Validates, commits and durably appends a submission.
pub async fn submit(
    State(state): State<AppState>,
    OptionalAgentCall(caller): OptionalAgentCall,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Submitted>, ApiError> {
    check_content_type(&headers)?;
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge(format!("the body exceeds {TELEMETRY_BODY_BYTES_MAX} bytes"))
        }
        other => ApiError::field("body", format!("could not be read: {other}")),
    })?;
    let now = state.clock.now();
    let events = parse_submission(&body, now)
        .map_err(|fields| ApiError::InvalidRequest { message: summary(&fields), fields })?;
    if let Some(call) = &caller {
        check_caller(call, &events)?;
    }
    let source = if caller.is_some() { Source::SelfReportedAuthenticated } else { Source::SelfReported };
    let received_at = format_rfc3339(now);
    let expires_at = now.unix_timestamp() + i64::from(state.config.telemetry.context_retention_days) * 86_400;
    let mut leaves = Vec::with_capacity(events.len());
    let mut accepted = Vec::with_capacity(events.len());
    let mut anomalies = Vec::new();
    let mut detectors = Vec::new();
    for (i, event) in events.into_iter().enumerate() {
        if source == Source::SelfReportedAuthenticated {
            // Observed before it is logged, as a decided action is; the findings go
            // into the same append, so none is acknowledged without its event.
            let intent = behavior::reported_intent(event.action_type);
            let at_ms = now.unix_timestamp() * 1_000;
            let (agent, session) = (event.agent_id.as_str(), event.session_id.as_str());
            let judgement =
                state.behavior.judge(&behavior::reported_observation(agent, session, at_ms, &intent));
            detectors.extend(judgement.findings.iter().map(|f| f.detector()));
            anomalies.extend(judgement.findings.iter().filter_map(|f| {
                behavior::anomaly_leaf(f, agent, session, None, judgement.risk, &received_at)
            }));
        }
        let (leaf, commitment) = to_leaf(event, source, &received_at, expires_at, i)?;
        accepted.push(Accepted {
            index: 0,
            leaf_hash: leaf.leaf_hash().to_base64(),
            context_commitment: commitment.as_ref().map(|(c, _)| c.clone()),
            context_salt: commitment.map(|(_, salt)| STANDARD.encode(salt)),
        });
        leaves.push(leaf);
    }
    leaves.append(&mut anomalies);
    let first = state.log.append(leaves).await?;
    for d in detectors {
        state.metrics.anomaly(d);
    }
    for (offset, a) in accepted.iter_mut().enumerate() {
        a.index = first + offset as u64;
    }
    Ok(Json(Submitted { entries: accepted }))
}

type Commitment = (String, [u8; COMMITMENT_SALT_BYTES]);

/// An authenticated caller reports for itself only: its own agent and session.
fn check_caller(call: &AgentCall, events: &[TelemetryEvent]) -> Result<(), ApiError> {
    let agent = call.claims.sub.as_str();
    let session = call.claims.sid.as_ref().map(|s| s.as_str()).unwrap_or_default();
    let mut fields = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if e.agent_id.as_str() != agent {
            let message = format!(
                "is `{}`, but the token is agent `{agent}`'s: an agent reports only for itself",
                e.agent_id.as_str()
            );
            fields.push(FieldError { field: format!("events[{i}].agent_id"), message });
        }
        if e.session_id.as_str() != session {
            let message = format!(
                "is `{}`, but the token is session `{session}`'s: a token reports only for its session",
                e.session_id.as_str()
            );
            fields.push(FieldError { field: format!("events[{i}].session_id"), message });
        }
    }
    if fields.is_empty() {
        Ok(())
    } else {
        Err(ApiError::InvalidRequest { message: summary(&fields), fields })
    }
}

fn to_leaf(
    event: TelemetryEvent,
    source: Source,
    received_at: &str,
    expires_at: i64,
    position: usize,
) -> Result<(NewLeaf, Option<Commitment>), ApiError> {
    let mut context_record = None;
    let mut commitment = None;
    if let Some(context) = &event.context {
        let mut salt = [0u8; COMMITMENT_SALT_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let c = commit_context(context, salt).map_err(|e| ApiError::field("context", e.to_string()))?;
        context_record = Some(ContextRecord {
            salt: salt.to_vec(),
            canonical_context: c.canonical_context,
            expires_at_unix_s: expires_at,
        });
        commitment = Some((c.commitment, salt));
    }
    let logged = LoggedEvent {
        kind: "telemetry".into(),
        source,
        axiom_hash: event.axiom_hash.clone().or_else(|| commitment.as_ref().map(|(c, _)| c.clone())),
        context_commitment: commitment.as_ref().map(|(c, _)| c.clone()),
        agent_id: event.agent_id,
        session_id: event.session_id,
        timestamp: event.timestamp,
        action_type: event.action_type,
        outcome: event.outcome,
        context_ref: event.context_ref,
        received_at: received_at.to_owned(),
    };
    let leaf = logged.to_leaf().map_err(|e| ApiError::Unavailable(format!("cannot encode event: {e}")))?;
    if leaf.len() > LEAF_BYTES_MAX {
        return Err(ApiError::field(
            &format!("events[{position}]"),
            format!("encodes to {} bytes; a log entry holds at most {LEAF_BYTES_MAX}", leaf.len()),
        ));
    }
    Ok((NewLeaf::new(leaf, context_record), commitment))
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(axum::http::header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("")) {
        None => Ok(()),
        Some(v) if v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")) => {
            Ok(())
        }
        Some(v) => Err(ApiError::UnsupportedMediaType(format!("content type `{v}` is not application/json"))),
    }
}

fn summary(fields: &[FieldError]) -> String {
    match fields {
        [one] => format!("`{}` {}", one.field, one.message),
        many => format!("{} fields are invalid; nothing was written", many.len()),
    }
}
