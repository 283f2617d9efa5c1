//! Tool-definition pinning: the SHA-256 of each upstream tool's canonical
//! definition is pinned the first time Warden sees it (`tool.pinned`); a later
//! change of description or schema is a `tool.changed` event (severity high) and
//! calls to that tool are held for a human until an operator accepts the new
//! definition (`POST /v1/gateway/pins/{upstream}/{tool}/accept`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use warden_core::admin::Severity;
use warden_policy::Tier;
use warden_store::directory::Role;
use warden_store::pins::ToolPin;

use super::UpstreamRuntime;
use super::reply::GatewayError;
use crate::AppState;
use crate::authorize::{Action, evaluate};
use crate::control::{Operator, record};
use crate::credentials::AgentCall;
use crate::error::ApiError;

/// Fields of a tool definition that are pinned: what the model reads and what
/// the call accepts and returns.
const PINNED_FIELDS: [&str; 6] =
    ["name", "title", "description", "inputSchema", "outputSchema", "annotations"];

/// An upstream's tools as last fetched.
#[derive(Debug)]
pub struct ToolSnapshot {
    /// The definitions, as the upstream sent them.
    pub tools: Vec<Value>,
    /// Tools whose definition differs from the pin.
    pub changed: HashSet<String>,
    /// When it was fetched.
    pub fetched_at: Instant,
}

/// The canonical definition of a tool (RFC 8785 JSON of its pinned fields) and
/// its `sha256:`.
pub fn canonical_definition(tool: &Value) -> Result<(String, String), String> {
    let mut pinned = serde_json::Map::new();
    for field in PINNED_FIELDS {
        if let Some(v) = tool.get(field) {
            pinned.insert(field.to_owned(), v.clone());
        }
    }
    let bytes =
        warden_core::canonical::to_canonical_vec(&Value::Object(pinned)).map_err(|e| e.to_string())?;
    use sha2::{Digest, Sha256};
    let hash = super::hex_lower(&Sha256::digest(&bytes));
    Ok((String::from_utf8_lossy(&bytes).into_owned(), format!("sha256:{hash}")))
}

/// The upstream's tools, fetched again when older than `tool_list_ttl_ms`, with
/// every definition checked against its pin.
pub async fn snapshot(
    state: &AppState,
    upstream: &Arc<UpstreamRuntime>,
) -> Result<Arc<ToolSnapshot>, GatewayError> {
    let mcp = upstream.mcp.clone().ok_or_else(|| GatewayError::WrongKind("not an MCP upstream".into()))?;
    let ttl = Duration::from_millis(upstream.config.tool_list_ttl_ms);
    if let Some(s) = mcp.snapshot.lock().ok().and_then(|s| s.clone()).filter(|s| s.fetched_at.elapsed() < ttl)
    {
        return Ok(s);
    }
    let tools = mcp.list_tools().await?;
    let changed = check_pins(state, &upstream.config.name, &tools).await?;
    let snapshot = Arc::new(ToolSnapshot { tools, changed, fetched_at: Instant::now() });
    if let Ok(mut slot) = mcp.snapshot.lock() {
        *slot = Some(Arc::clone(&snapshot));
    }
    Ok(snapshot)
}

async fn check_pins(
    state: &AppState,
    upstream: &str,
    tools: &[Value],
) -> Result<HashSet<String>, GatewayError> {
    let pins = state
        .gateway
        .pins
        .clone()
        .ok_or_else(|| ApiError::Unavailable("the pin table is not open".into()))?;
    let now = state.clock.now().unix_timestamp();
    let mut changed = HashSet::new();
    for tool in tools {
        let Some(name) = tool.get("name").and_then(Value::as_str) else { continue };
        let (definition, sha256) = canonical_definition(tool)
            .map_err(|e| ApiError::Unavailable(format!("cannot pin tool `{name}`: {e}")))?;
        let subject = format!("{upstream}/{name}");
        match pins.get(upstream, name)? {
            None => {
                // First seen: record, then pin (an unrecorded pin would be trusted silently).
                record(
                    state,
                    "tool.pinned",
                    "system",
                    &subject,
                    Severity::Info,
                    json!({"upstream": upstream, "tool": name, "sha256": sha256}),
                )
                .await?;
                pins.put(upstream, name, &ToolPin { sha256, definition, pinned_at: now })?;
            }
            Some(pin) if pin.sha256 == sha256 => {}
            Some(pin) => {
                let first_report = state.gateway.reported_change(upstream, name, &sha256);
                if first_report {
                    record(state, "tool.changed", "system", &subject, Severity::High, json!({
                        "upstream": upstream, "tool": name, "pinned_sha256": pin.sha256, "seen_sha256": sha256,
                        "pinned": pin.definition, "seen": definition,
                    })).await?;
                }
                changed.insert(name.to_owned());
            }
        }
    }
    Ok(changed)
}

/// The tools this caller may see: routed, and not denied by policy for this
/// caller now. Evaluated without logging a decision per tool.
pub fn visible_tools(
    state: &AppState,
    upstream: &UpstreamRuntime,
    call: &AgentCall,
    snapshot: &ToolSnapshot,
) -> Result<Vec<Value>, GatewayError> {
    let sid = call.claims.sid.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
    let (session, usage) = state
        .directory
        .session(&sid)
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::Forbidden(format!("session `{sid}` does not exist")))?;
    let agent = state
        .directory
        .agent(call.claims.sub.as_str())
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::Forbidden("agent does not exist".into()))?;
    if session.agent_id != agent.id {
        return Err(ApiError::Forbidden(format!("session `{sid}` belongs to another agent")).into());
    }
    let (_, policy) =
        state.policy.current().ok_or_else(|| ApiError::Unavailable("policy unavailable".into()))?;
    let now = state.clock.now().unix_timestamp();
    let in_flight = state.in_flight.current(&sid);
    // Listing is not an action: read the session's risk, do not observe.
    let risk = state.behavior.risk(&agent.id, &sid).0;
    let risk_permille = (risk.clamp(0.0, 1.0) * 1000.0).round() as u16;
    let mut visible = Vec::new();
    for tool in &snapshot.tools {
        let Some(name) = tool.get("name").and_then(Value::as_str) else { continue };
        // Arguments are unknown when listing: the resource is rendered without them.
        let Some(mapped) = upstream.routes.tool(&upstream.config.name, name, &json!({})) else { continue };
        let action = Action {
            agent: &agent,
            session: &session,
            usage,
            intent: &mapped.route.route.intent,
            resource: &mapped.resource,
            arguments: "",
            argument_destinations: &[],
            bytes: 0,
            in_flight,
            risk_permille,
            now,
        };
        if evaluate(&policy, &action).decision.tier != Tier::Deny {
            visible.push(tool.clone());
        }
    }
    Ok(visible)
}

/// `POST /v1/gateway/pins/{upstream}/{tool}/accept`: an admin accepts the tool's
/// current definition as its new pin.
pub async fn accept(
    State(state): State<AppState>,
    operator: Operator,
    Path((upstream_name, tool)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    operator.require(&[Role::Admin])?;
    let upstream = state
        .gateway
        .upstream(&upstream_name)
        .filter(|u| u.config.kind.is_mcp())
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("no MCP upstream is named `{upstream_name}`")))?;
    let mcp = upstream.mcp.clone().ok_or_else(|| ApiError::NotFound("no MCP client".into()))?;
    let tools = mcp.list_tools().await.map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let definition =
        tools.iter().find(|t| t.get("name").and_then(Value::as_str) == Some(tool.as_str())).ok_or_else(
            || ApiError::NotFound(format!("upstream `{upstream_name}` offers no tool `{tool}` now")),
        )?;
    let (canonical, sha256) = canonical_definition(definition).map_err(ApiError::Unavailable)?;
    let pins = state
        .gateway
        .pins
        .clone()
        .ok_or_else(|| ApiError::Unavailable("the pin table is not open".into()))?;
    let previous = pins.get(&upstream_name, &tool)?.map(|p| p.sha256);
    record(
        &state,
        "tool.repinned",
        &operator.0.id,
        &format!("{upstream_name}/{tool}"),
        Severity::Warning,
        json!({
            "upstream": upstream_name, "tool": tool, "previous_sha256": previous, "sha256": sha256,
        }),
    )
    .await?;
    pins.put(
        &upstream_name,
        &tool,
        &ToolPin {
            sha256: sha256.clone(),
            definition: canonical,
            pinned_at: state.clock.now().unix_timestamp(),
        },
    )?;
    if let Ok(mut slot) = mcp.snapshot.lock() {
        *slot = None;
    }
    Ok(Json(json!({"upstream": upstream_name, "tool": tool, "sha256": sha256, "previous_sha256": previous})))
}
