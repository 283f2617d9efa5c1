//! Warden as an MCP client of one upstream server: the `initialize` handshake,
//! then JSON-RPC requests over Streamable HTTP (JSON or SSE answers,
//! `Mcp-Session-Id`) or over a child's stdio (newline-delimited, one child per
//! upstream shared by every caller through request-id multiplexing, restarted
//! when it exits).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{HeaderValue, Method, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::{Mutex, oneshot};

use crate::gateway::InjectedCredential;
use crate::gateway::config::{Limits, Upstream, UpstreamKind};
use crate::gateway::http::HttpUpstream;
use crate::gateway::reply::GatewayError;

/// The protocol version Warden asks upstreams for.
pub const UPSTREAM_PROTOCOL_VERSION: &str = "2025-11-25";
/// Longest line a stdio upstream may write.
const STDIO_LINE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Most pages of a tool list followed.
const TOOL_LIST_PAGES_MAX: usize = 64;

/// An upstream's answer to one request.
#[derive(Debug, Clone)]
pub struct UpstreamReply {
    /// `Ok(result)` or `Err(error object)`, as the upstream sent it.
    pub outcome: Result<Value, Value>,
    /// HTTP status of the upstream's answer (200 over stdio).
    pub status: u16,
    /// Size of the answer, bytes.
    pub bytes: u64,
    /// The answer, for forensics mode: over HTTP the body (or the SSE event's
    /// data) byte for byte, sharing the read buffer; over stdio the message line
    /// as parsed and written out again.
    pub raw: Bytes,
}

/// A snapshot and the marked parameters of its tools.
pub type ParamHeadersSlot =
    Option<(Arc<crate::gateway::pins::ToolSnapshot>, Arc<super::params::ParamHeaders>)>;

/// The client of one MCP upstream.
#[derive(Debug)]
pub struct McpUpstream {
    name: String,
    limits: Limits,
    transport: Transport,
    next_id: AtomicU64,
    /// The upstream's tools as last fetched, with their pin status.
    pub snapshot: std::sync::Mutex<Option<Arc<crate::gateway::pins::ToolSnapshot>>>,
    /// The marked parameters of a snapshot's tools, worked out once per
    /// snapshot ([`super::params`]).
    pub param_headers: std::sync::Mutex<ParamHeadersSlot>,
    /// Agents' MCP sessions on this endpoint: `Mcp-Session-Id` → (Warden session,
    /// negotiated version).
    // INVARIANT: at most `AGENT_SESSIONS_MAX` entries.
    pub sessions: std::sync::Mutex<HashMap<String, (String, String)>>,
}

// One per upstream, built once: the size difference between variants is irrelevant.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Transport {
    Http {
        http: Option<HttpUpstream>,
        credential: Option<InjectedCredential>,
        session: Mutex<Option<HttpSession>>,
    },
    Stdio {
        command: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
        child: Mutex<Option<Arc<StdioChild>>>,
    },
}

#[derive(Debug, Clone)]
struct HttpSession {
    id: Option<String>,
    version: String,
}

type Pending = Arc<std::sync::Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

#[derive(Debug)]
struct StdioChild {
    stdin: Mutex<ChildStdin>,
    pending: Pending,
    alive: Arc<std::sync::atomic::AtomicBool>,
    _child: Mutex<Child>,
}

impl McpUpstream {
    /// A client for `upstream` (not connected until the first request).
    pub fn new(
        upstream: &Upstream,
        limits: &Limits,
        http: Option<HttpUpstream>,
        credential: Option<InjectedCredential>,
    ) -> Self {
        let transport = match upstream.kind {
            UpstreamKind::McpStdio => Transport::Stdio {
                command: upstream.command.clone().unwrap_or_default(),
                args: upstream.args.clone(),
                env: upstream.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                child: Mutex::new(None),
            },
            _ => Transport::Http { http, credential, session: Mutex::new(None) },
        };
        Self {
            name: upstream.name.clone(),
            limits: *limits,
            transport,
            next_id: AtomicU64::new(1),
            snapshot: std::sync::Mutex::new(None),
            param_headers: std::sync::Mutex::new(None),
            sessions: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn unavailable(&self, why: impl Into<String>) -> GatewayError {
        GatewayError::UpstreamUnavailable { upstream: self.name.clone(), why: why.into() }
    }

    /// Sends one request and waits for its answer, within `total_timeout_ms`.
    pub async fn request(&self, method: &str, params: Value) -> Result<UpstreamReply, GatewayError> {
        let total = Duration::from_millis(self.limits.total_timeout_ms);
        match tokio::time::timeout(total, self.request_untimed(method, params)).await {
            Ok(r) => r,
            Err(_) => Err(GatewayError::UpstreamTimeout {
                upstream: self.name.clone(),
                limit: "total_timeout_ms",
                ms: self.limits.total_timeout_ms,
            }),
        }
    }

    async fn request_untimed(&self, method: &str, params: Value) -> Result<UpstreamReply, GatewayError> {
        match &self.transport {
            Transport::Http { .. } => {
                let reply = self.http_request(method, &params).await;
                match reply {
                    // The upstream forgot our session (restart): handshake again, once.
                    Err(SessionLost) => {
                        self.reset_http_session().await;
                        self.http_request(method, &params)
                            .await
                            .map_err(|_| self.unavailable("the upstream lost its session twice"))?
                    }
                    Ok(r) => r,
                }
            }
            Transport::Stdio { .. } => self.stdio_request(method, params).await,
        }
    }

    /// Every tool of the upstream (following `nextCursor`).
    pub async fn list_tools(&self) -> Result<Vec<Value>, GatewayError> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..TOOL_LIST_PAGES_MAX {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let reply = self.request("tools/list", params).await?;
            let result = reply.outcome.map_err(|e| self.unavailable(format!("tools/list failed: {e}")))?;
            if let Some(list) = result.get("tools").and_then(Value::as_array) {
                tools.extend(list.iter().cloned());
            }
            cursor = result.get("nextCursor").and_then(Value::as_str).map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        Ok(tools)
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    // ---- Streamable HTTP ------------------------------------------------------------

    async fn reset_http_session(&self) {
        if let Transport::Http { session, .. } = &self.transport {
            *session.lock().await = None;
        }
    }

    async fn http_session(&self) -> Result<HttpSession, GatewayError> {
        let Transport::Http { session, .. } = &self.transport else {
            return Err(self.unavailable("not an HTTP upstream"));
        };
        let mut guard = session.lock().await;
        if let Some(s) = guard.as_ref() {
            return Ok(s.clone());
        }
        let init = json!({"jsonrpc": "2.0", "id": self.next_id(), "method": "initialize", "params": initialize_params()});
        let (reply, session_id) = self.http_post(&init, None).await?;
        let result = reply.outcome.map_err(|e| self.unavailable(format!("initialize failed: {e}")))?;
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(UPSTREAM_PROTOCOL_VERSION)
            .to_owned();
        let s = HttpSession { id: session_id, version };
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.http_post(&initialized, Some(&s)).await?;
        *guard = Some(s.clone());
        Ok(s)
    }

    async fn http_request(
        &self,
        method: &str,
        params: &Value,
    ) -> Result<Result<UpstreamReply, GatewayError>, SessionLost> {
        let session = match self.http_session().await {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let message = json!({"jsonrpc": "2.0", "id": self.next_id(), "method": method, "params": params});
        match self.http_post(&message, Some(&session)).await {
            Ok((reply, _)) if reply.status == 404 && session.id.is_some() => Err(SessionLost),
            Ok((reply, _)) => Ok(Ok(reply)),
            Err(e) => Ok(Err(e)),
        }
    }

    /// POSTs one message; returns the answer (for a notification, an empty one)
    /// and the `Mcp-Session-Id` the upstream set, if any.
    async fn http_post(
        &self,
        message: &Value,
        session: Option<&HttpSession>,
    ) -> Result<(UpstreamReply, Option<String>), GatewayError> {
        let Transport::Http { http: Some(http), credential, .. } = &self.transport else {
            return Err(self.unavailable("no URL"));
        };
        let body = serde_json::to_vec(message).map_err(|e| self.unavailable(e.to_string()))?;
        let uri = format!(
            "{}{}",
            http.base.origin,
            if http.base.base_path.is_empty() { "/" } else { &http.base.base_path }
        );
        let mut request = hyper::Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri.parse().map_err(|e| self.unavailable(format!("bad URL: {e}")))?;
        let headers = request.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json, text/event-stream"));
        if let Some(s) = session {
            if let Some(id) = s.id.as_deref().and_then(|id| HeaderValue::from_str(id).ok()) {
                headers.insert("mcp-session-id", id);
            }
            if let Ok(v) = HeaderValue::from_str(&s.version) {
                headers.insert("mcp-protocol-version", v);
            }
        }
        if let Some(c) = credential {
            headers.insert(c.name.clone(), c.value.clone());
        }
        let first_byte = Duration::from_millis(self.limits.first_byte_timeout_ms);
        let response = match tokio::time::timeout(first_byte, http.client.request(request)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                return Err(self.unavailable(format!(
                    "{e}{}",
                    std::error::Error::source(&e).map(|s| format!(": {s}")).unwrap_or_default()
                )));
            }
            Err(_) => {
                return Err(GatewayError::UpstreamTimeout {
                    upstream: self.name.clone(),
                    limit: "first_byte_timeout_ms",
                    ms: self.limits.first_byte_timeout_ms,
                });
            }
        };
        let status = response.status().as_u16();
        let session_id =
            response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let sse = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        let limit = usize::try_from(self.limits.response_body_bytes_max).unwrap_or(usize::MAX);
        let id = message.get("id").cloned();
        let bytes = if sse {
            read_sse_until(response.into_body(), id.as_ref(), limit).await.map_err(|e| self.unavailable(e))?
        } else {
            http_body_util::Limited::new(response.into_body(), limit)
                .collect()
                .await
                .map_err(|e| self.unavailable(format!("cannot read the answer: {e}")))?
                .to_bytes()
        };
        let size = bytes.len() as u64;
        if id.is_none() || bytes.is_empty() {
            let outcome = if (200..300).contains(&status) {
                Ok(Value::Null)
            } else {
                Err(json!({"code": -32603, "message": format!("upstream answered HTTP {status}")}))
            };
            return Ok((UpstreamReply { outcome, status, bytes: size, raw: bytes }, session_id));
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| self.unavailable(format!("the answer is not JSON (HTTP {status}): {e}")))?;
        Ok((UpstreamReply { outcome: split_reply(&value), status, bytes: size, raw: bytes }, session_id))
    }

    // ---- stdio ----------------------------------------------------------------------

    async fn stdio_child(&self) -> Result<Arc<StdioChild>, GatewayError> {
        let Transport::Stdio { command, args, env, child } = &self.transport else {
            return Err(self.unavailable("not a stdio upstream"));
        };
        let mut guard = child.lock().await;
        if let Some(c) = guard.as_ref().filter(|c| c.alive.load(Ordering::Acquire)) {
            return Ok(Arc::clone(c));
        }
        // Not started, or exited: start it (again) and do the handshake.
        let started = self.spawn(command, args, env)?;
        let init = json!({"jsonrpc": "2.0", "id": self.next_id(), "method": "initialize", "params": initialize_params()});
        let reply = self.stdio_exchange(&started, init).await?;
        reply.outcome.map_err(|e| self.unavailable(format!("initialize failed: {e}")))?;
        write_line(&started, &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await
            .map_err(|e| self.unavailable(e))?;
        *guard = Some(Arc::clone(&started));
        Ok(started)
    }

    fn spawn(
        &self,
        command: &str,
        args: &[String],
        env: &[(String, String)],
    ) -> Result<Arc<StdioChild>, GatewayError> {
        let mut cmd = tokio::process::Command::new(command);
        cmd.args(args)
            .env_clear()
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true);
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        let mut child =
            cmd.spawn().map_err(|e| self.unavailable(format!("cannot start `{command}`: {e}")))?;
        let stdin = child.stdin.take().ok_or_else(|| self.unavailable("no stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| self.unavailable("no stdout"))?;
        let pending: Pending = Arc::default();
        let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let started = Arc::new(StdioChild {
            stdin: Mutex::new(stdin),
            pending: Arc::clone(&pending),
            alive: Arc::clone(&alive),
            _child: Mutex::new(child),
        });
        let name = self.name.clone();
        let weak = Arc::downgrade(&started);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match lines.read_line(&mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) if n > STDIO_LINE_BYTES_MAX => break,
                    Ok(_) => {}
                }
                let Ok(message) = serde_json::from_str::<Value>(line.trim()) else { continue };
                let is_request = message.get("method").is_some();
                match (message.get("id").and_then(Value::as_u64), is_request) {
                    (Some(id), false) => {
                        let waiter = pending.lock().ok().and_then(|mut p| p.remove(&id));
                        if let Some(tx) = waiter {
                            let _ = tx.send(message);
                        }
                    }
                    (_, true) if message.get("id").is_some() => {
                        // A request from the server (sampling, roots, …): Warden offers none.
                        if let Some(child) = weak.upgrade() {
                            let answer = json!({"jsonrpc": "2.0", "id": message.get("id"), "error": {"code": -32601, "message": "the Warden gateway does not offer client features"}});
                            let _ = write_line(&child, &answer).await;
                        }
                    }
                    _ => {}
                }
            }
            alive.store(false, Ordering::Release);
            // Fail every waiter at once: their requests will not be answered.
            if let Ok(mut p) = pending.lock() {
                p.clear();
            }
            tracing::warn!(upstream = %name, "stdio upstream exited; it is restarted on the next request");
        });
        Ok(started)
    }

    async fn stdio_exchange(
        &self,
        child: &StdioChild,
        mut message: Value,
    ) -> Result<UpstreamReply, GatewayError> {
        let id = self.next_id();
        if let Some(obj) = message.as_object_mut() {
            obj.insert("id".into(), json!(id));
        }
        let (tx, rx) = oneshot::channel();
        child.pending.lock().map_err(|_| self.unavailable("poisoned"))?.insert(id, tx);
        if let Err(e) = write_line(child, &message).await {
            if let Ok(mut p) = child.pending.lock() {
                p.remove(&id);
            }
            return Err(self.unavailable(e));
        }
        let answer =
            rx.await.map_err(|_| self.unavailable("the upstream process exited before answering"))?;
        let raw = Bytes::from(answer.to_string());
        Ok(UpstreamReply { outcome: split_reply(&answer), status: 200, bytes: raw.len() as u64, raw })
    }

    async fn stdio_request(&self, method: &str, params: Value) -> Result<UpstreamReply, GatewayError> {
        let child = self.stdio_child().await?;
        self.stdio_exchange(&child, json!({"jsonrpc": "2.0", "method": method, "params": params})).await
    }
}

struct SessionLost;

async fn write_line(child: &StdioChild, message: &Value) -> Result<(), String> {
    let mut line = serde_json::to_vec(message).map_err(|e| e.to_string())?;
    line.push(b'\n');
    let mut stdin = child.stdin.lock().await;
    stdin.write_all(&line).await.map_err(|e| format!("cannot write to the upstream process: {e}"))?;
    stdin.flush().await.map_err(|e| format!("cannot write to the upstream process: {e}"))
}

fn initialize_params() -> Value {
    json!({
        "protocolVersion": UPSTREAM_PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "warden-gateway", "version": env!("CARGO_PKG_VERSION")},
    })
}

fn split_reply(message: &Value) -> Result<Value, Value> {
    match (message.get("result"), message.get("error")) {
        (Some(r), _) => Ok(r.clone()),
        (None, Some(e)) => Err(e.clone()),
        (None, None) => {
            Err(json!({"code": -32603, "message": "the upstream answered neither a result nor an error"}))
        }
    }
}

/// Reads a `text/event-stream` answer until the event carrying the response to
/// `id`; returns that event's data.
async fn read_sse_until(
    mut body: hyper::body::Incoming,
    id: Option<&Value>,
    limit: usize,
) -> Result<Bytes, String> {
    let mut buffer: Vec<u8> = Vec::new();
    let mut total = 0usize;
    loop {
        // Each complete event ends with a blank line.
        while let Some(end) = find_event_end(&buffer) {
            let event: Vec<u8> = buffer.drain(..end).collect();
            let data = sse_data(&event);
            if data.is_empty() {
                continue;
            }
            let Ok(value) = serde_json::from_str::<Value>(&data) else { continue };
            let answers = id.is_some_and(|id| value.get("id") == Some(id) && value.get("method").is_none());
            if answers || id.is_none() {
                return Ok(Bytes::from(data));
            }
        }
        match body.frame().await {
            None => {
                return if id.is_none() {
                    Ok(Bytes::new())
                } else {
                    Err("the event stream ended without an answer".into())
                };
            }
            Some(Err(e)) => return Err(format!("cannot read the event stream: {e}")),
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    total = total.saturating_add(data.len());
                    if total > limit {
                        return Err(format!("the answer exceeds `response_body_bytes_max` ({limit} bytes)"));
                    }
                    buffer.extend_from_slice(data);
                }
            }
        }
    }
}

fn find_event_end(buffer: &[u8]) -> Option<usize> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    let crlf = buffer.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn sse_data(event: &[u8]) -> String {
    let text = String::from_utf8_lossy(event);
    let mut data = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("data:") {
            data.push(rest.strip_prefix(' ').unwrap_or(rest));
        }
    }
    data.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_split_on_blank_lines() {
        let buf = b"event: message\ndata: {\"a\":1}\n\nid: 2\r\ndata: x\r\n\r\n";
        let end = find_event_end(buf).unwrap();
        assert_eq!(sse_data(&buf[..end]), "{\"a\":1}");
    }
}
