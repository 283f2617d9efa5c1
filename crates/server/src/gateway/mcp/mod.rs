//! The MCP proxy: `/mcp/{upstream}` is a Streamable HTTP MCP endpoint for
//! agents, in front of one upstream MCP server ([`upstream`]).
//!
//! Protocol versions: 2025-06-18 and 2025-11-25 through `initialize` (the
//! client's version if it is one of them, else 2025-11-25, the newest with a
//! handshake), and 2026-07-28 without a handshake: `server/discover`, then the
//! version in every request's `_meta` (`io.modelcontextprotocol/protocolVersion`,
//! which must agree with the `MCP-Protocol-Version` header); its results name
//! Warden in `_meta` (`io.modelcontextprotocol/serverInfo`), a method it
//! does not implement is a 404, its `Mcp-Method` / `Mcp-Name` headers must say
//! what its body says ([`headers`]), so must a `tools/call`'s `Mcp-Param-{Name}`
//! headers for the parameters its tool marks with `x-mcp-header` ([`params`]),
//! and its lists and reads are marked
//! private to the caller and stale at once (`cacheScope`, `ttlMs`). Answers are single JSON bodies
//! (`application/json`); Warden opens no server-to-client stream (GET is 405).
//! Upstreams get Warden's own requests in the session Warden negotiated with
//! them: each hop's protocol metadata stays on it, both ways ([`hop`]).

pub mod headers;
pub mod hop;
pub mod jsonrpc;
pub mod params;
pub mod upstream;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use warden_policy::Tier;

use super::pins;
use super::record::{ActionEnd, ActionStart, record};
use super::reply::GatewayError;
use super::routes::{destinations, resource_facts};
use super::{CONFIRM_META, PlannedAction, ROLLBACK_META, UpstreamRuntime, digest, enforce_tier};
use crate::AppState;
use crate::authorize::{ActionInput, decide_action};
use crate::control::new_id;
use crate::credentials::AgentCall;
use jsonrpc::{Incoming, Message};

/// Versions served through `initialize`.
pub const HANDSHAKE_VERSIONS: [&str; 2] = ["2025-06-18", "2025-11-25"];
/// Every version served.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-06-18", "2025-11-25", "2026-07-28"];
/// The version without a handshake.
pub const STATELESS_VERSION: &str = "2026-07-28";
/// `_meta` key carrying the version of a 2026-07-28 request.
const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key carrying the client's capabilities, required with the version.
const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key naming the server that answered a 2026-07-28 request.
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// Most agent MCP sessions kept per upstream; the oldest are forgotten first
/// (their agents re-initialize).
const AGENT_SESSIONS_MAX: usize = 10_000;

/// `/mcp/{upstream}`: POST one JSON-RPC message; DELETE ends an MCP session.
pub async fn endpoint(
    State(state): State<AppState>,
    Path(name): Path<String>,
    method: Method,
    call: AgentCall,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let upstream = match state.gateway.upstream(&name) {
        Some(u) if u.config.kind.is_mcp() => Arc::clone(u),
        Some(_) => {
            return GatewayError::WrongKind(format!("upstream `{name}` is an HTTP API; use /proxy/{name}/…"))
                .into_response();
        }
        None => return GatewayError::UnknownUpstream(name).into_response(),
    };
    let Some(mcp) = upstream.mcp.clone() else {
        return GatewayError::WrongKind(format!("upstream `{name}` has no MCP client")).into_response();
    };
    if method == Method::DELETE {
        if let Some(id) = headers.get("mcp-session-id").and_then(|v| v.to_str().ok())
            && let Ok(mut sessions) = mcp.sessions.lock()
        {
            sessions.remove(id);
        }
        return StatusCode::NO_CONTENT.into_response();
    }
    if method != Method::POST {
        let mut r = (StatusCode::METHOD_NOT_ALLOWED, axum::Json(json!({"error": "method_not_allowed", "message": "POST a JSON-RPC message; Warden opens no server-to-client stream"}))).into_response();
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
        return r;
    }
    let bytes = match super::http::read_body(body, &headers, upstream.limits.request_body_bytes_max).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let message = match jsonrpc::parse(&bytes) {
        Ok(Incoming::Message(m)) => m,
        Ok(Incoming::Response) => return StatusCode::ACCEPTED.into_response(),
        Err(e) => return json_reply(StatusCode::BAD_REQUEST, &jsonrpc::failure(&e.0, e.1), None),
    };
    let Some(id) = message.id.clone() else {
        // Notifications (initialized, cancelled, …) need no answer.
        return StatusCode::ACCEPTED.into_response();
    };
    let sid = call.claims.sid.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
    let version = match session_version(&mcp, &headers, &message, &sid) {
        Ok(v) => v,
        Err(response) => return response,
    };
    let stateless = version == STATELESS_VERSION;
    let mut session_header = None;
    let outcome = match message.method.as_str() {
        "initialize" => {
            let (result, session) = initialize(&mcp, &message, &sid);
            session_header = Some(session);
            Ok(result)
        }
        "server/discover" => Ok(discover()),
        "ping" if !stateless => Ok(json!({})),
        "tools/list" => tools_list(&state, &upstream, &call, stateless).await,
        "tools/call" => {
            let mirrored = stateless.then_some(&headers);
            tools_call(&state, &upstream, &call, &message, &bytes, mirrored).await
        }
        "prompts/get" | "resources/read" => named_read(&state, &upstream, &call, &message, &bytes).await,
        "prompts/list" | "resources/list" | "resources/templates/list" => {
            passthrough(&upstream, &message).await
        }
        other => Err(jsonrpc::error(
            jsonrpc::METHOD_NOT_FOUND,
            &format!("method `{other}` is not supported by the Warden gateway"),
            None,
        )),
    };
    let (status, body) = match outcome {
        Ok(mut result) => {
            if CACHEABLE_METHODS.contains(&message.method.as_str()) {
                set_cache_hints(&mut result, stateless);
            }
            if stateless {
                complete_stateless(&mut result);
            }
            (StatusCode::OK, jsonrpc::result(&id, result))
        }
        Err(error) => (error_status(stateless, &error), jsonrpc::failure(&id, error)),
    };
    json_reply(status, &body, session_header)
}

/// The HTTP status of a JSON-RPC error answer.
//
// Why: 2026-07-28 (Streamable HTTP, Request Metadata): "If the server does not
// implement the requested RPC method, it MUST respond with `404 Not Found` and
// a JSON-RPC error with code `-32601`" — whether Warden lacks the method (as
// `ping`, which that revision removed) or the upstream does (its -32601
// passed through). Earlier revisions answer every JSON-RPC error with 200: to
// their clients a 404 means the MCP session is gone (rmcp re-initializes), so
// they keep it.
//
// A HeaderMismatch found past the generic checks (a `tools/call`'s
// `Mcp-Param-{Name}`, [`params`]) is a 400 like the others.
fn error_status(stateless: bool, error: &Value) -> StatusCode {
    match error.get("code").and_then(Value::as_i64) {
        Some(jsonrpc::METHOD_NOT_FOUND) if stateless => StatusCode::NOT_FOUND,
        Some(jsonrpc::HEADER_MISMATCH) if stateless => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    }
}

/// What a 2026-07-28 result carries beyond an earlier revision's: its
/// `resultType` (required) and, in `_meta`, who answered it ("Servers SHOULD
/// include `io.modelcontextprotocol/serverInfo` in every result's `_meta`").
/// An upstream's own was already taken off ([`hop::strip_returned_meta`]).
fn complete_stateless(result: &mut Value) {
    let Some(obj) = result.as_object_mut() else { return };
    obj.entry("resultType").or_insert(json!("complete"));
    let meta = obj.entry("_meta").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    if let Some(meta) = meta.as_object_mut() {
        meta.insert(META_SERVER_INFO.into(), SERVER_INFO.clone());
    }
}

/// The methods whose result a client may cache, with Warden's `server/discover`
/// (built with its hints) left out.
const CACHEABLE_METHODS: [&str; 5] =
    ["tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"];

/// The caching hints of a cacheable result: in 2026-07-28 `ttlMs: 0` and
/// `cacheScope: "private"`; before, none (those revisions do not define them).
//
// Why: 2026-07-28 (Caching) requires `ttlMs` ("how long the client MAY
// consider the result fresh") and `cacheScope` on every complete result of
// these methods; "private" results "MAY be cached and reused only within the
// same authorization context", "public" ones served to any user by a shared
// gateway or proxy. Every answer here belongs to its caller: the tool list is
// filtered by the caller's policy, a read is an action that policy decided for
// the caller, and the passed-through lists come to the caller because Warden
// admitted its credential. Freshness is 0 (stale at once) because what
// decides them changes without notice: a policy push or a re-pinned tool
// changes the caller's tools, a quarantine its reads, and Warden relays no
// `list_changed`. An upstream's own hints are taken off on every hop: they
// were given to Warden's credential, and a "public" from an upstream must not
// let a shared cache hand one caller's answer to another.
fn set_cache_hints(result: &mut Value, stateless: bool) {
    let Some(obj) = result.as_object_mut() else { return };
    obj.remove("ttlMs");
    obj.remove("cacheScope");
    if stateless {
        obj.insert("ttlMs".into(), json!(0));
        obj.insert("cacheScope".into(), json!("private"));
    }
}

fn json_reply(status: StatusCode, body: &Value, session: Option<String>) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    // Answers depend on the caller's policy: never cached, never shared.
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    if let Some(v) = session.and_then(|s| HeaderValue::from_str(&s).ok()) {
        r.headers_mut().insert("mcp-session-id", v);
    }
    r
}

/// The protocol version of this request: from `_meta` (2026-07-28), the MCP
/// session, or the `MCP-Protocol-Version` header; an unknown session is a 404 so
/// the client starts a new one.
// The error is the finished answer; it is returned once per request, so its
// size does not matter.
#[allow(clippy::result_large_err)]
fn session_version(
    mcp: &upstream::McpUpstream,
    headers: &HeaderMap,
    m: &Message,
    sid: &str,
) -> Result<String, Response> {
    if let Some(v) = stateless_version(headers, m)? {
        return Ok(v);
    }
    if m.method == "initialize" || m.method == "server/discover" {
        return Ok(STATELESS_VERSION.to_owned());
    }
    if let Some(session) = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()) {
        let known = mcp.sessions.lock().ok().and_then(|s| s.get(session).cloned());
        return match known {
            Some((owner, version)) if owner == sid => Ok(version),
            _ => Err((
                StatusCode::NOT_FOUND,
                axum::Json(jsonrpc::failure(
                    m.id.as_ref().unwrap_or(&Value::Null),
                    jsonrpc::error(
                        jsonrpc::INVALID_REQUEST,
                        "unknown MCP session for this caller; send `initialize` again",
                        None,
                    ),
                )),
            )
                .into_response()),
        };
    }
    Ok(headers.get("mcp-protocol-version").and_then(|v| v.to_str().ok()).unwrap_or("2025-06-18").to_owned())
}

/// The version a 2026-07-28 request declares in its `_meta`, checked as that
/// revision asks of a Streamable HTTP server (each refusal a 400): a version
/// Warden does not serve is an UnsupportedProtocolVersionError naming the
/// served ones (what lets an SDK client retry with one of them), a request
/// missing a required field (the client's capabilities; the version itself
/// when the header names 2026-07-28) Invalid params, and a header that
/// disagrees with the body — `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`
/// ([`headers`]) — a HeaderMismatch. `None` for a request of another version.
#[allow(clippy::result_large_err)]
fn stateless_version(headers: &HeaderMap, m: &Message) -> Result<Option<String>, Response> {
    let refuse = |code: i64, message: &str, data: Option<Value>| {
        let e = jsonrpc::error(code, message, data);
        json_reply(StatusCode::BAD_REQUEST, &jsonrpc::failure(m.id.as_ref().unwrap_or(&Value::Null), e), None)
    };
    let header = headers.get("mcp-protocol-version").map(|v| v.to_str().unwrap_or("(not text)"));
    let meta = m.params.get("_meta");
    let Some(v) = meta.and_then(|meta| meta.get(META_PROTOCOL_VERSION)).and_then(Value::as_str) else {
        if header == Some(STATELESS_VERSION) && m.method != "initialize" {
            let message = format!(
                "`_meta` `{META_PROTOCOL_VERSION}` is required with `MCP-Protocol-Version: {STATELESS_VERSION}`"
            );
            return Err(refuse(jsonrpc::INVALID_PARAMS, &message, None));
        }
        return Ok(None);
    };
    if !SUPPORTED_VERSIONS.contains(&v) {
        let data = json!({"supported": SUPPORTED_VERSIONS, "requested": v});
        let message = format!("protocol version `{v}` is not supported");
        return Err(refuse(jsonrpc::UNSUPPORTED_PROTOCOL_VERSION, &message, Some(data)));
    }
    if header != Some(v) {
        let message = format!(
            "the `MCP-Protocol-Version` header (`{}`) does not match `_meta` `{META_PROTOCOL_VERSION}` (`{v}`)",
            header.unwrap_or("absent")
        );
        return Err(refuse(jsonrpc::HEADER_MISMATCH, &message, None));
    }
    if !meta.and_then(|meta| meta.get(META_CLIENT_CAPABILITIES)).is_some_and(Value::is_object) {
        let message = format!(
            "`_meta` `{META_CLIENT_CAPABILITIES}` (an object) is required with `{META_PROTOCOL_VERSION}`"
        );
        return Err(refuse(jsonrpc::INVALID_PARAMS, &message, None));
    }
    if v == STATELESS_VERSION {
        headers::check(headers, m).map_err(|why| refuse(jsonrpc::HEADER_MISMATCH, &why, None))?;
    }
    Ok(Some(v.to_owned()))
}

fn capabilities() -> Value {
    json!({"tools": {"listChanged": false}, "prompts": {"listChanged": false}, "resources": {"listChanged": false, "subscribe": false}})
}

/// Warden's identity as an MCP server (`serverInfo`), built once: every
/// 2026-07-28 result carries it.
static SERVER_INFO: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| json!({"name": "warden-gateway", "version": env!("CARGO_PKG_VERSION")}));

fn initialize(mcp: &upstream::McpUpstream, m: &Message, sid: &str) -> (Value, String) {
    let asked = m.params.get("protocolVersion").and_then(Value::as_str).unwrap_or("");
    // The client's version if it has a handshake and we speak it; else the newest
    // we serve through `initialize` (2026-07-28 has none).
    let version = if HANDSHAKE_VERSIONS.contains(&asked) { asked } else { "2025-11-25" };
    let session = new_id("mcps_");
    if let Ok(mut sessions) = mcp.sessions.lock() {
        if sessions.len() >= AGENT_SESSIONS_MAX {
            sessions.clear();
        }
        sessions.insert(session.clone(), (sid.to_owned(), version.to_owned()));
    }
    let result = json!({
        "protocolVersion": version,
        "capabilities": capabilities(),
        "serverInfo": *SERVER_INFO,
        "instructions": "Tools are proxied by Warden: each call is authorized by policy and recorded. Confirm a `confirm` decision by re-sending the call with `_meta: {\"warden/confirm\": \"<decision_id>\"}`.",
    });
    (result, session)
}

fn discover() -> Value {
    json!({
        "resultType": "complete",
        "supportedVersions": SUPPORTED_VERSIONS,
        "capabilities": capabilities(),
        "ttlMs": 0,
        "cacheScope": "private",
        "_meta": {META_SERVER_INFO: *SERVER_INFO},
    })
}

/// The tools this caller may call; under 2026-07-28 (`stateless`) without those
/// whose `x-mcp-header` markers are invalid ([`params`]).
async fn tools_list(
    state: &AppState,
    upstream: &Arc<UpstreamRuntime>,
    call: &AgentCall,
    stateless: bool,
) -> Result<Value, Value> {
    let snapshot = pins::snapshot(state, upstream).await.map_err(|e| jsonrpc::from_gateway(&e))?;
    let mut visible =
        pins::visible_tools(state, upstream, call, &snapshot).map_err(|e| jsonrpc::from_gateway(&e))?;
    if let (true, Some(mcp)) = (stateless, upstream.mcp.as_ref()) {
        let marked = params::ParamHeaders::of_snapshot(mcp, &snapshot);
        visible.retain(|t| t.get("name").and_then(Value::as_str).is_none_or(|n| marked.invalid(n).is_none()));
    }
    Ok(json!({"tools": visible}))
}

/// What Warden's own `_meta` keys said: confirmed, and the rollback plan.
fn warden_meta(params: &Value) -> (bool, Option<String>) {
    let Some(meta) = params.get("_meta").and_then(Value::as_object) else { return (false, None) };
    let confirmed = match meta.get(CONFIRM_META) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true" || s.starts_with("dec_"),
        _ => false,
    };
    let rollback = meta.get(ROLLBACK_META).and_then(Value::as_str).map(str::to_owned);
    (confirmed, rollback)
}

/// The agent's message as it sent it (`raw`) is what forensics mode keeps;
/// `mirrored` are the HTTP headers of a 2026-07-28 call, whose
/// `Mcp-Param-{Name}` must agree with the arguments ([`params`]).
async fn tools_call(
    state: &AppState,
    upstream: &Arc<UpstreamRuntime>,
    call: &AgentCall,
    m: &Message,
    raw: &Bytes,
    mirrored: Option<&HeaderMap>,
) -> Result<Value, Value> {
    let name = upstream.config.name.as_str();
    let Some(tool) = m.params.get("name").and_then(Value::as_str) else {
        return Err(jsonrpc::error(
            jsonrpc::INVALID_PARAMS,
            "`params.name` (the tool) is required and must be a string",
            None,
        ));
    };
    let arguments = m.params.get("arguments").cloned().unwrap_or_else(|| json!({}));
    if !arguments.is_object() {
        return Err(jsonrpc::error(jsonrpc::INVALID_PARAMS, "`params.arguments` must be an object", None));
    }
    let Some(mapped) = upstream.routes.tool(name, tool, &arguments) else {
        return Err(jsonrpc::error(
            jsonrpc::INVALID_PARAMS,
            &format!("unknown tool `{tool}`: it is not routed to an intent on upstream `{name}`"),
            None,
        ));
    };
    let snapshot = pins::snapshot(state, upstream).await.map_err(|e| jsonrpc::from_gateway(&e))?;
    if !snapshot.tools.iter().any(|t| t.get("name").and_then(Value::as_str) == Some(tool)) {
        return Err(jsonrpc::error(
            jsonrpc::INVALID_PARAMS,
            &format!("unknown tool `{tool}`: upstream `{name}` does not offer it"),
            None,
        ));
    }
    // Before anything is decided: a refused call is not an action.
    if let (Some(headers), Some(mcp)) = (mirrored, upstream.mcp.as_ref()) {
        let marked = params::ParamHeaders::of_snapshot(mcp, &snapshot);
        if let Some(why) = marked.invalid(tool) {
            return Err(jsonrpc::error(
                jsonrpc::INVALID_PARAMS,
                &format!(
                    "unknown tool `{tool}`: its definition is invalid in MCP 2026-07-28 ({why}), so it is not listed"
                ),
                None,
            ));
        }
        marked
            .check(tool, headers, &arguments)
            .map_err(|why| jsonrpc::error(jsonrpc::HEADER_MISMATCH, &why, None))?;
    }
    let (confirmed, rollback) = warden_meta(&m.params);
    let arguments_text = arguments.to_string();
    let input = ActionInput {
        intent: mapped.route.route.intent.clone(),
        resource: mapped.resource.clone(),
        argument_destinations: destinations(&mapped.route.route.destinations, &arguments),
        arguments: arguments_text.clone(),
        bytes: arguments_text.len() as u64,
        confirmed,
    };
    let request_sha256 = digest(&[b"tools/call", tool.as_bytes(), arguments_text.as_bytes()]);
    let planned = PlannedAction {
        intent: input.intent.clone(),
        resource: input.resource.id.clone(),
        method: "tools/call".into(),
        target: tool.to_owned(),
        argument_sha256: request_sha256.clone(),
        summary: format!("call tool `{tool}` of upstream `{name}` ({})", input.intent),
        rollback,
    };
    let mut forwarded = json!({"name": tool, "arguments": arguments});
    if let (Some(meta), Some(obj)) = (hop::forwarded_meta(&m.params), forwarded.as_object_mut()) {
        obj.insert("_meta".into(), meta);
    }
    let changed = snapshot.changed.contains(tool);
    authorize_and_forward(
        state,
        upstream,
        call,
        input,
        planned,
        "tools/call",
        forwarded,
        request_sha256,
        changed,
        raw,
    )
    .await
}

async fn named_read(
    state: &AppState,
    upstream: &Arc<UpstreamRuntime>,
    call: &AgentCall,
    m: &Message,
    raw: &Bytes,
) -> Result<Value, Value> {
    let name = upstream.config.name.as_str();
    let (key, intent) = if m.method == "prompts/get" {
        ("name", &upstream.config.prompt_intent)
    } else {
        ("uri", &upstream.config.resource_intent)
    };
    let Some(target) = m.params.get(key).and_then(Value::as_str) else {
        return Err(jsonrpc::error(
            jsonrpc::INVALID_PARAMS,
            &format!("`params.{key}` is required and must be a string"),
            None,
        ));
    };
    let (Some(intent), Some(classification)) = (intent, &upstream.config.classification) else {
        let field = if m.method == "prompts/get" { "prompt_intent" } else { "resource_intent" };
        return Err(jsonrpc::error(
            jsonrpc::METHOD_NOT_FOUND,
            &format!(
                "`{}` is not routed on upstream `{name}` (set `{field}` in its configuration)",
                m.method
            ),
            None,
        ));
    };
    let resource_id =
        if m.method == "prompts/get" { format!("mcp:{name}/prompt/{target}") } else { target.to_owned() };
    let (confirmed, rollback) = warden_meta(&m.params);
    let arguments_text = m.params.get("arguments").map(Value::to_string).unwrap_or_default();
    let input = ActionInput {
        intent: intent.clone(),
        resource: resource_facts(resource_id, classification),
        arguments: arguments_text.clone(),
        argument_destinations: Vec::new(),
        bytes: arguments_text.len() as u64,
        confirmed,
    };
    let request_sha256 = digest(&[m.method.as_bytes(), target.as_bytes(), arguments_text.as_bytes()]);
    let planned = PlannedAction {
        intent: input.intent.clone(),
        resource: input.resource.id.clone(),
        method: m.method.clone(),
        target: target.to_owned(),
        argument_sha256: request_sha256.clone(),
        summary: format!("{} `{target}` of upstream `{name}`", m.method),
        rollback,
    };
    let forwarded = hop::forwarded_params(&m.params);
    authorize_and_forward(
        state,
        upstream,
        call,
        input,
        planned,
        &m.method,
        forwarded,
        request_sha256,
        false,
        raw,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn authorize_and_forward(
    state: &AppState,
    upstream: &Arc<UpstreamRuntime>,
    call: &AgentCall,
    input: ActionInput,
    planned: PlannedAction,
    method: &str,
    params: Value,
    request_sha256: String,
    definition_changed: bool,
    raw: &Bytes,
) -> Result<Value, Value> {
    let refuse = |e: GatewayError| jsonrpc::from_gateway(&e);
    let mut outcome = decide_action(state, &call.claims, &input).await.map_err(|e| refuse(e.into()))?;
    if definition_changed && matches!(outcome.tier, Tier::Allow | Tier::Confirm) {
        // A tool whose description or schema changed since it was pinned is held
        // for a human until an operator re-pins it, whatever policy says.
        outcome.tier = Tier::Approve;
        outcome.in_flight = None;
        outcome.decision.reasons.push(format!(
            "the definition of tool `{}` changed since it was pinned; an operator must accept it",
            planned.target
        ));
    }
    let how = "call the tool again with `\"_meta\": {\"warden/confirm\": \"{decision_id}\"}` in the params";
    enforce_tier(state, &outcome, &planned, how).await.map_err(refuse)?;
    let mut start = ActionStart {
        actor: outcome.agent_id.clone(),
        session_id: outcome.session_id.clone(),
        decision_id: outcome.decision_id.clone(),
        intent: input.intent,
        resource: input.resource.id,
        upstream: upstream.config.name.clone(),
        method: method.to_owned(),
        target: planned.target,
        request_sha256,
        bytes_in: input.bytes,
        started: std::time::Instant::now(),
        // Forensics mode: keeps the agent's message (`None` when off).
        capture: state.forensics.start(&outcome.session_id, raw, state.clock.as_ref()),
    };
    let mcp =
        upstream.mcp.clone().ok_or_else(|| jsonrpc::error(jsonrpc::INTERNAL_ERROR, "no MCP client", None))?;
    let limits = upstream.limits;
    let total = std::time::Duration::from_millis(limits.total_timeout_ms);
    let permit = match tokio::time::timeout(total, upstream.gate.enter()).await {
        Ok(Ok(p)) => p,
        Ok(Err(_)) => {
            record(state, start, ActionEnd { outcome: "upstream_unavailable", status: 0, bytes_out: 0 });
            return Err(refuse(GatewayError::Busy {
                upstream: upstream.config.name.clone(),
                connections_max: limits.connections_max,
                queue_max: limits.queue_max,
            }));
        }
        Err(_) => {
            record(state, start, ActionEnd { outcome: "upstream_timeout", status: 0, bytes_out: 0 });
            return Err(refuse(GatewayError::UpstreamTimeout {
                upstream: upstream.config.name.clone(),
                limit: "total_timeout_ms",
                ms: limits.total_timeout_ms,
            }));
        }
    };
    let reply = mcp.request(method, params).await;
    drop(permit);
    drop(outcome.in_flight);
    match reply {
        Ok(reply) => {
            if let Some(capture) = start.capture.as_deref_mut() {
                capture.tee(&reply.raw);
            }
            let outcome = if reply.outcome.is_ok() { "success" } else { "upstream_error" };
            record(state, start, ActionEnd { outcome, status: reply.status, bytes_out: reply.bytes });
            reply.outcome.map(|mut result| {
                hop::strip_returned_meta(&mut result);
                result
            })
        }
        Err(e) => {
            let outcome = if matches!(e, GatewayError::UpstreamTimeout { .. }) {
                "upstream_timeout"
            } else {
                "upstream_unavailable"
            };
            record(state, start, ActionEnd { outcome, status: 0, bytes_out: 0 });
            Err(refuse(e))
        }
    }
}

async fn passthrough(upstream: &Arc<UpstreamRuntime>, m: &Message) -> Result<Value, Value> {
    let mcp =
        upstream.mcp.clone().ok_or_else(|| jsonrpc::error(jsonrpc::INTERNAL_ERROR, "no MCP client", None))?;
    let _permit = upstream.gate.enter().await.map_err(|_| {
        jsonrpc::from_gateway(&GatewayError::Busy {
            upstream: upstream.config.name.clone(),
            connections_max: upstream.limits.connections_max,
            queue_max: upstream.limits.queue_max,
        })
    })?;
    let mut result = mcp
        .request(&m.method, hop::forwarded_params(&m.params))
        .await
        .map_err(|e| jsonrpc::from_gateway(&e))?
        .outcome?;
    hop::strip_returned_meta(&mut result);
    Ok(result)
}
