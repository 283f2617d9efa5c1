//! The gateway: Warden in front of HTTP APIs (`/proxy/{upstream}/…`) and MCP
//! servers (`/mcp/{upstream}`).
//!
//! The pipeline of one action, in this order, and why:
//! 1. authenticate the agent (`AgentCall`): nothing unauthenticated is parsed further;
//! 2. bound the body (`request_body_bytes_max`): the decision must know the bytes
//!    moved before the action happens, so request bodies are read (bounded) first;
//! 3. map to an intent and a resource ([`routes`]): an unmapped request is never
//!    forwarded (404, or a JSON-RPC error for MCP);
//! 4. decide (`authorize::decide_action`): budgets, self-governance, Cedar, and the
//!    decision durably logged — any failure is a 503 deny (fail closed);
//! 5. act on the tier: deny → 403, confirm → 428 until re-sent with
//!    `Warden-Confirm`, approve → [`hold_for_approval`], allow → forward;
//! 6. wait for a slot at the upstream ([`limits`]): bounded queue, 503 when full;
//! 7. forward with the agent's credentials stripped and the upstream's injected
//!    ([`http`], [`mcp`]), under connect / first-byte / total time limits;
//! 8. record one action event ([`record`]) when the answer is complete.
//!
//! Owns: the gateway configuration ([`config`]), route matching ([`routes`]),
//! the per-upstream limits ([`limits`]), the HTTP proxy ([`http`]), the MCP proxy
//! and its upstream clients ([`mcp`]), tool-definition pinning ([`pins`]) and the
//! gateway's answers to agents ([`reply`]).

pub mod config;
pub mod http;
pub mod limits;
pub mod mcp;
pub mod pins;
pub mod record;
pub mod reply;
pub mod routes;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue};
use axum::routing::{any, post};
use serde_json::json;

use crate::AppState;
use crate::authorize::Outcome;
use config::{GatewayConfig, Limits, Upstream};
use reply::GatewayError;

/// Header an agent sets to confirm a `confirm` decision: the decision id it got,
/// or `true`.
pub const CONFIRM_HEADER: &str = "warden-confirm";
/// Header an agent sets to describe how to undo its action (shown to approvers).
pub const ROLLBACK_HEADER: &str = "warden-rollback";
/// `_meta` key of a `tools/call` that confirms a `confirm` decision.
pub const CONFIRM_META: &str = "warden/confirm";
/// `_meta` key of a `tools/call` that describes how to undo it.
pub const ROLLBACK_META: &str = "warden/rollback";

/// One configured upstream, ready to forward to.
#[derive(Debug)]
pub struct UpstreamRuntime {
    /// As configured.
    pub config: Upstream,
    /// Its effective limits.
    pub limits: Limits,
    /// Bounds requests in flight and waiting.
    pub gate: limits::Gate,
    /// Its routes.
    pub routes: routes::RouteTable,
    /// The credential header to inject, resolved at start.
    // INVARIANT: never logged, never sent to an agent (the `Debug` of
    // `UpstreamRuntime` prints only the header name).
    credential: Option<InjectedCredential>,
    /// The HTTP client (HTTP and MCP-over-HTTP upstreams).
    pub http: Option<http::HttpUpstream>,
    /// The MCP client (MCP upstreams).
    pub mcp: Option<Arc<mcp::upstream::McpUpstream>>,
}

/// A credential header ready to add.
#[derive(Clone)]
pub struct InjectedCredential {
    /// The header.
    pub name: HeaderName,
    /// Its value, marked sensitive.
    pub value: HeaderValue,
}

impl std::fmt::Debug for InjectedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InjectedCredential({}: <redacted>)", self.name)
    }
}

impl UpstreamRuntime {
    /// The credential to inject, if any.
    pub fn credential(&self) -> Option<&InjectedCredential> {
        self.credential.as_ref()
    }
}

/// Every upstream, by name, and the pin table.
#[derive(Debug, Default)]
pub struct Gateway {
    /// The configuration it was built from.
    pub config: GatewayConfig,
    upstreams: HashMap<String, Arc<UpstreamRuntime>>,
    /// Pinned tool definitions (MCP).
    pub pins: Option<Arc<warden_store::pins::PinStore>>,
    /// Changed definitions already reported, as `upstream/tool` → seen sha256, so
    /// one change is one `tool.changed` event, not one per listing.
    reported: std::sync::Mutex<HashMap<String, String>>,
}

impl Gateway {
    /// Builds the gateway from a validated configuration; `database` is the
    /// SQLite file that also holds the pin table.
    pub fn build(config: &GatewayConfig, database: &Path) -> Result<Self, String> {
        let mut upstreams = HashMap::new();
        for u in &config.upstreams {
            let limits = u.limits.over(config.limits);
            let credential = match &u.credential {
                None => None,
                Some(c) => {
                    let value = c.resolve().map_err(|e| format!("upstream `{}`: credential: {e}", u.name))?;
                    let name = HeaderName::from_bytes(c.header.to_ascii_lowercase().as_bytes())
                        .map_err(|e| format!("upstream `{}`: credential header: {e}", u.name))?;
                    let mut value = HeaderValue::from_str(&value).map_err(|_| {
                        format!("upstream `{}`: the credential is not a valid header value", u.name)
                    })?;
                    value.set_sensitive(true);
                    Some(InjectedCredential { name, value })
                }
            };
            let http = match &u.url {
                Some(url) => Some(
                    http::HttpUpstream::new(url, &limits)
                        .map_err(|e| format!("upstream `{}`: {e}", u.name))?,
                ),
                None => None,
            };
            let mcp = u.kind.is_mcp().then(|| {
                Arc::new(mcp::upstream::McpUpstream::new(u, &limits, http.clone(), credential.clone()))
            });
            let runtime = UpstreamRuntime {
                config: u.clone(),
                limits,
                gate: limits::Gate::new(&limits),
                routes: routes::RouteTable::build(config, &u.name),
                credential,
                http,
                mcp,
            };
            upstreams.insert(u.name.clone(), Arc::new(runtime));
        }
        let needs_pins = config.upstreams.iter().any(|u| u.kind.is_mcp());
        let pins = if needs_pins {
            Some(Arc::new(
                warden_store::pins::PinStore::open(database)
                    .map_err(|e| format!("cannot open the pin table: {e}"))?,
            ))
        } else {
            None
        };
        Ok(Self { config: config.clone(), upstreams, pins, reported: std::sync::Mutex::default() })
    }

    /// Whether this changed definition is seen for the first time (and notes it).
    pub fn reported_change(&self, upstream: &str, tool: &str, sha256: &str) -> bool {
        let Ok(mut reported) = self.reported.lock() else { return true };
        let key = format!("{upstream}/{tool}");
        if reported.get(&key).map(String::as_str) == Some(sha256) {
            return false;
        }
        reported.insert(key, sha256.to_owned());
        true
    }

    /// The upstream named `name`.
    pub fn upstream(&self, name: &str) -> Option<&Arc<UpstreamRuntime>> {
        self.upstreams.get(name)
    }
}

/// The gateway's routes. They sit outside the API's 30 s request timeout: each
/// upstream has its own time limits, and a hold for a human lasts minutes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/proxy/{upstream}", any(http::proxy_root))
        .route("/proxy/{upstream}/{*rest}", any(http::proxy))
        .route("/mcp/{upstream}", any(mcp::endpoint))
        .route("/v1/gateway/pins/{upstream}/{tool}/accept", post(pins::accept))
}

/// What an agent asked for, for an approver.
#[derive(Debug, Clone)]
pub struct PlannedAction {
    /// The intent.
    pub intent: String,
    /// The resource id.
    pub resource: String,
    /// HTTP method or MCP method.
    pub method: String,
    /// Path, or tool / prompt / resource name.
    pub target: String,
    /// `sha256:` of the arguments or body.
    pub argument_sha256: String,
    /// One readable line.
    pub summary: String,
    /// How the agent says its action can be undone, if it said.
    pub rollback: Option<String>,
}

/// Holds an `approve` decision for a human: the one place the gateway hands an
/// evidence packet to the approvals queue and waits (at most `hold_timeout_ms`).
/// `Ok` means an operator approved and the action may be forwarded.
pub async fn hold_for_approval(
    state: &AppState,
    outcome: &Outcome,
    planned: &PlannedAction,
) -> Result<(), GatewayError> {
    use crate::approvals::{ApprovalOutcome, EvidencePacket};
    let packet = EvidencePacket {
        decision_id: outcome.decision_id.clone(),
        agent_id: outcome.agent_id.clone(),
        session_id: outcome.session_id.clone(),
        intent: planned.intent.clone(),
        resource: planned.resource.clone(),
        action: crate::approvals::PlannedAction {
            method: planned.method.clone(),
            target: planned.target.clone(),
            argument_digest: planned.argument_sha256.clone(),
            summary: planned.summary.clone(),
        },
        affected_assets: vec![planned.resource.clone()],
        rollback: planned.rollback.clone(),
        reasons: outcome.decision.reasons.clone(),
    };
    let timeout = std::time::Duration::from_millis(state.gateway.config.hold_timeout_ms);
    let held = |message: String| GatewayError::Held {
        decision_id: outcome.decision_id.clone(),
        reasons: outcome.decision.reasons.clone(),
        message,
    };
    match state.approvals.hold(state, packet, timeout).await? {
        ApprovalOutcome::Approved { .. } => Ok(()),
        ApprovalOutcome::Denied { approval_id, by, reason } => Err(held(format!(
            "held for approval `{approval_id}` and denied by `{by}`: {reason}; nothing was forwarded"
        ))),
        ApprovalOutcome::TimedOut { approval_id } => Err(held(format!(
            "held for approval `{approval_id}`, and no approver decided within {} ms; nothing was forwarded",
            state.gateway.config.hold_timeout_ms
        ))),
    }
}

/// The answer for a non-`allow` tier, or `Ok` to go on and forward.
pub async fn enforce_tier(
    state: &AppState,
    outcome: &Outcome,
    planned: &PlannedAction,
    confirm_how: &str,
) -> Result<(), GatewayError> {
    use warden_policy::Tier;
    match outcome.tier {
        Tier::Allow => Ok(()),
        Tier::Deny => Err(GatewayError::Denied {
            decision_id: outcome.decision_id.clone(),
            reasons: outcome.decision.reasons.clone(),
            refusal: outcome.refusal.map(str::to_owned),
        }),
        Tier::Confirm => Err(GatewayError::ConfirmRequired {
            decision_id: outcome.decision_id.clone(),
            reasons: outcome.decision.reasons.clone(),
            how: confirm_how.replace("{decision_id}", &outcome.decision_id),
        }),
        Tier::Approve => hold_for_approval(state, outcome, planned).await,
    }
}

/// `sha256:<hex>` of the parts, each followed by a newline.
pub fn digest(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
        h.update(b"\n");
    }
    format!("sha256:{}", hex_lower(&h.finalize()))
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The gateway section of `GET`-able state, for `warden config check`.
pub fn summary(config: &GatewayConfig) -> serde_json::Value {
    json!({
        "upstreams": config.upstreams.len(),
        "routes": config.routes.len(),
    })
}
