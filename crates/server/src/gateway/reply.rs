//! The gateway's answers to agents when it does not forward: every one JSON
//! with `error` (a code), `message` (a sentence saying what to do) and, after a
//! decision, its `decision_id` and `reasons`. The MCP proxy turns the same
//! values into JSON-RPC errors (`mcp::jsonrpc`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ApiError;

/// Why the gateway did not forward, or forwarding failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No upstream has that name.
    #[error("no upstream is named `{0}`")]
    UnknownUpstream(String),
    /// The upstream is not reachable this way (an MCP upstream under `/proxy`, …).
    #[error("{0}")]
    WrongKind(String),
    /// No route maps the request.
    #[error("`{method} {path}` is not routed to an intent on upstream `{upstream}`; it was not forwarded")]
    NotRouted {
        /// The upstream.
        upstream: String,
        /// The method.
        method: String,
        /// The path.
        path: String,
    },
    /// The request body is larger than allowed.
    #[error("the request body exceeds `request_body_bytes_max` ({limit} bytes)")]
    BodyTooLarge {
        /// The limit.
        limit: u64,
    },
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// Policy, or Warden beside policy (a budget, a quarantine), denied it.
    #[error("{}", denied_message(.refusal.as_deref(), .reasons))]
    Denied {
        /// The decision.
        decision_id: String,
        /// Why.
        reasons: Vec<String>,
        /// Why Warden refused beside policy (`budget`, …), if it did.
        refusal: Option<String>,
    },
    /// Policy wants the agent to confirm.
    #[error("this action needs confirmation: {how}")]
    ConfirmRequired {
        /// The decision.
        decision_id: String,
        /// Why.
        reasons: Vec<String>,
        /// How to re-send.
        how: String,
    },
    /// Held for a human, and not (yet) approved.
    #[error("{message}")]
    Held {
        /// The decision.
        decision_id: String,
        /// Why.
        reasons: Vec<String>,
        /// What happened.
        message: String,
    },
    /// The upstream's queue is full.
    #[error(
        "upstream `{upstream}` is at its limit ({connections_max} in flight, {queue_max} waiting); retry later"
    )]
    Busy {
        /// The upstream.
        upstream: String,
        /// Its `connections_max`.
        connections_max: u32,
        /// Its `queue_max`.
        queue_max: u32,
    },
    /// The upstream could not be reached or broke the exchange.
    #[error("upstream `{upstream}` is unavailable: {why}")]
    UpstreamUnavailable {
        /// The upstream.
        upstream: String,
        /// Why.
        why: String,
    },
    /// The upstream did not answer in time.
    #[error("upstream `{upstream}` did not answer within `{limit}` ({ms} ms)")]
    UpstreamTimeout {
        /// The upstream.
        upstream: String,
        /// Which limit.
        limit: &'static str,
        /// Its value.
        ms: u64,
    },
    /// Authentication, the session, the policy or the log failed.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<warden_store::StoreError> for GatewayError {
    fn from(e: warden_store::StoreError) -> Self {
        Self::Api(e.into())
    }
}

impl GatewayError {
    /// HTTP status and error code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::UnknownUpstream(_) => (StatusCode::NOT_FOUND, "unknown_upstream"),
            Self::WrongKind(_) => (StatusCode::NOT_FOUND, "wrong_upstream_kind"),
            Self::NotRouted { .. } => (StatusCode::NOT_FOUND, "not_routed"),
            Self::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            Self::Denied { .. } => (StatusCode::FORBIDDEN, "denied"),
            Self::ConfirmRequired { .. } => (StatusCode::PRECONDITION_REQUIRED, "confirmation_required"),
            Self::Held { .. } => (StatusCode::FORBIDDEN, "held_for_approval"),
            Self::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "upstream_busy"),
            Self::UpstreamUnavailable { .. } => (StatusCode::BAD_GATEWAY, "upstream_unavailable"),
            Self::UpstreamTimeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
            Self::Api(ApiError::Unavailable(_)) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Api(ApiError::Forbidden(_)) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::Api(ApiError::Unauthorized(_)) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Api(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        }
    }

    /// Decision id and reasons, when a decision was made.
    pub fn decision(&self) -> Option<(&str, &[String])> {
        match self {
            Self::Denied { decision_id, reasons, .. }
            | Self::ConfirmRequired { decision_id, reasons, .. }
            | Self::Held { decision_id, reasons, .. } => Some((decision_id, reasons)),
            _ => None,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let (_, code) = self.status_and_code();
        let message = match self {
            Self::Api(ApiError::Unavailable(m)) => {
                format!(
                    "Warden could not decide or record this action, so it was not forwarded (fail closed): {m}"
                )
            }
            other => other.to_string(),
        };
        let mut body = json!({"error": code, "message": message});
        if let (Some((id, reasons)), Some(obj)) = (self.decision(), body.as_object_mut()) {
            obj.insert("decision_id".into(), json!(id));
            obj.insert("reasons".into(), json!(reasons));
        }
        if let (Self::Denied { refusal: Some(r), .. }, Some(obj)) = (self, body.as_object_mut()) {
            obj.insert("refusal".into(), json!(r));
        }
        if let (Self::ConfirmRequired { decision_id, how, .. }, Some(obj)) = (self, body.as_object_mut()) {
            obj.insert(
                "confirm".into(),
                json!({"header": "Warden-Confirm", "value": decision_id, "how": how}),
            );
        }
        body
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_and_code();
        if status.is_server_error() {
            tracing::warn!(error = %self, "gateway refused");
        }
        let mut response = (status, Json(self.body())).into_response();
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// What a denial says: policy's, or the refusal Warden made beside policy with its
/// own reason, the last one given (a budget refusal must not read as a policy
/// decision).
fn denied_message(refusal: Option<&str>, reasons: &[String]) -> String {
    match (refusal, reasons.last()) {
        (None, _) => "denied by policy".to_owned(),
        (Some(r), Some(why)) => format!("denied ({r}): {why}"),
        (Some(r), None) => format!("denied ({r})"),
    }
}
