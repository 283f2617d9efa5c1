//! The HTTP proxy: `/proxy/{upstream}/{path…}` forwards to the upstream's base
//! URL + path + query, after the decision, with the agent's credentials stripped
//! and the upstream's injected. The answer streams back; its end writes the
//! action event.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::OwnedSemaphorePermit;

use super::config::Limits;
use super::record::{ActionEnd, ActionStart, record};
use super::reply::GatewayError;
use super::{CONFIRM_HEADER, PlannedAction, ROLLBACK_HEADER, UpstreamRuntime, digest, enforce_tier};
use crate::AppState;
use crate::authorize::{ActionInput, decide_action};
use crate::credentials::AgentCall;
use crate::inflight::InFlightGuard;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Headers that belong to one connection (RFC 9110 §7.6.1), never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];
/// Headers of the agent that never reach an upstream: its own credentials, and
/// Warden's own signals.
const STRIPPED: [&str; 6] =
    ["authorization", "cookie", "host", "content-length", CONFIRM_HEADER, ROLLBACK_HEADER];

/// A parsed base URL: `http://host:port[/base]`.
#[derive(Debug, Clone)]
pub struct BaseUrl {
    /// `http://host:port`.
    pub origin: String,
    /// `/base`, without a trailing slash (may be empty).
    pub base_path: String,
}

/// Parses an upstream base URL; only plain `http` is forwarded today.
pub fn parse_base_url(url: &str) -> Result<BaseUrl, String> {
    let uri: Uri = url.parse().map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err(format!("`{url}`: https upstreams are not supported yet; use http")),
        _ => return Err(format!("`{url}` must start with http://")),
    }
    let authority = uri.authority().ok_or_else(|| format!("`{url}` has no host"))?;
    if uri.query().is_some() {
        return Err(format!("`{url}` must not have a query"));
    }
    Ok(BaseUrl {
        origin: format!("http://{authority}"),
        base_path: uri.path().trim_end_matches('/').to_owned(),
    })
}

/// The client of one HTTP upstream.
#[derive(Debug, Clone)]
pub struct HttpUpstream {
    /// Where it is.
    pub base: BaseUrl,
    /// Pooled keep-alive connections.
    pub client: Client<HttpConnector, Full<Bytes>>,
}

impl HttpUpstream {
    /// A client for `url` under `limits`.
    pub fn new(url: &str, limits: &Limits) -> Result<Self, String> {
        let base = parse_base_url(url)?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_millis(limits.connect_timeout_ms)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(usize::try_from(limits.connections_max).unwrap_or(usize::MAX))
            .build(connector);
        Ok(Self { base, client })
    }
}

/// `ANY /proxy/{upstream}`.
pub async fn proxy_root(
    State(state): State<AppState>,
    Path(upstream): Path<String>,
    call: AgentCall,
    request: Request,
) -> Response {
    forward(&state, &upstream, "", &call, request).await.unwrap_or_else(IntoResponse::into_response)
}

/// `ANY /proxy/{upstream}/{*rest}`.
pub async fn proxy(
    State(state): State<AppState>,
    Path((upstream, rest)): Path<(String, String)>,
    call: AgentCall,
    request: Request,
) -> Response {
    forward(&state, &upstream, &rest, &call, request).await.unwrap_or_else(IntoResponse::into_response)
}

/// Reads a body of at most `limit` bytes.
pub async fn read_body(body: Body, headers: &HeaderMap, limit: u64) -> Result<Bytes, GatewayError> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    let limited = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(GatewayError::BodyTooLarge { limit }),
        Err(e) => Err(GatewayError::BadRequest(format!("cannot read the request body: {e}"))),
    }
}

async fn forward(
    state: &AppState,
    name: &str,
    rest: &str,
    call: &AgentCall,
    request: Request,
) -> Result<Response, GatewayError> {
    let upstream =
        state.gateway.upstream(name).ok_or_else(|| GatewayError::UnknownUpstream(name.to_owned()))?;
    let http = match (&upstream.http, upstream.config.kind) {
        (Some(http), super::config::UpstreamKind::Http) => http.clone(),
        _ => {
            return Err(GatewayError::WrongKind(format!(
                "upstream `{name}` is an MCP server; use /mcp/{name}"
            )));
        }
    };
    let (parts, body) = request.into_parts();
    let path = format!("/{rest}");
    let method = parts.method.clone();
    let mapped = upstream.routes.http(name, method.as_str(), &path).ok_or_else(|| {
        GatewayError::NotRouted { upstream: name.to_owned(), method: method.to_string(), path: path.clone() }
    })?;
    let body = read_body(body, &parts.headers, upstream.limits.request_body_bytes_max).await?;
    let query = parts.uri.query().unwrap_or("");
    let request_sha256 = digest(&[method.as_str().as_bytes(), path.as_bytes(), query.as_bytes(), &body]);
    let confirm = parts.headers.get(CONFIRM_HEADER).and_then(|v| v.to_str().ok()).map(str::trim);
    let input = ActionInput {
        intent: mapped.route.route.intent.clone(),
        resource: mapped.resource.clone(),
        arguments: String::new(),
        argument_destinations: Vec::new(),
        bytes: body.len() as u64,
        confirmed: confirm.is_some_and(|c| c.eq_ignore_ascii_case("true") || c.starts_with("dec_")),
    };
    let outcome = decide_action(state, &call.claims, &input).await?;
    let planned = PlannedAction {
        intent: input.intent.clone(),
        resource: input.resource.id.clone(),
        method: method.to_string(),
        target: path.clone(),
        argument_sha256: request_sha256.clone(),
        summary: format!("{method} {path} on upstream `{name}` ({})", input.intent),
        rollback: parts.headers.get(ROLLBACK_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned),
    };
    let how = "send the same request again with the header `Warden-Confirm: {decision_id}`";
    enforce_tier(state, &outcome, &planned, how).await?;
    let start = ActionStart {
        actor: outcome.agent_id.clone(),
        session_id: outcome.session_id.clone(),
        decision_id: outcome.decision_id.clone(),
        intent: input.intent,
        resource: input.resource.id,
        upstream: name.to_owned(),
        method: method.to_string(),
        target: path.clone(),
        request_sha256,
        bytes_in: body.len() as u64,
        started: Instant::now(),
        // Forensics mode: keeps the body and tees the answer (`None` when off).
        capture: state.forensics.start(&outcome.session_id, &body, state.clock.as_ref()),
    };
    let target = format!(
        "{}{}{}{}",
        http.base.origin,
        http.base.base_path,
        path,
        if query.is_empty() { String::new() } else { format!("?{query}") }
    );
    let headers = outbound_headers(&parts.headers, upstream);
    send(state, upstream, &http, Outbound { method, target, headers, body }, start, outcome.in_flight).await
}

/// The agent's headers minus hop-by-hop ones, its credentials and Warden's own,
/// plus the upstream's credential.
pub fn outbound_headers(incoming: &HeaderMap, upstream: &UpstreamRuntime) -> HeaderMap {
    let connection_listed: Vec<String> = incoming
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    let mut out = HeaderMap::with_capacity(incoming.len() + 1);
    for (name, value) in incoming {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || STRIPPED.contains(&n) || connection_listed.iter().any(|c| c == n) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    if let Some(c) = upstream.credential() {
        out.insert(c.name.clone(), c.value.clone());
    }
    out
}

struct Outbound {
    method: Method,
    target: String,
    headers: HeaderMap,
    body: Bytes,
}

async fn send(
    state: &AppState,
    upstream: &Arc<UpstreamRuntime>,
    http: &HttpUpstream,
    out: Outbound,
    start: ActionStart,
    in_flight: Option<InFlightGuard>,
) -> Result<Response, GatewayError> {
    let limits = upstream.limits;
    let name = upstream.config.name.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(limits.total_timeout_ms);
    let failed = |state: &AppState, start: ActionStart, error: GatewayError| {
        let outcome = if matches!(error, GatewayError::UpstreamTimeout { .. }) {
            "upstream_timeout"
        } else {
            "upstream_unavailable"
        };
        record(state, start, ActionEnd { outcome, status: 0, bytes_out: 0 });
        error
    };
    let permit = match tokio::time::timeout_at(deadline, upstream.gate.enter()).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(_)) => {
            return Err(failed(
                state,
                start,
                GatewayError::Busy {
                    upstream: name,
                    connections_max: limits.connections_max,
                    queue_max: limits.queue_max,
                },
            ));
        }
        Err(_) => {
            return Err(failed(
                state,
                start,
                GatewayError::UpstreamTimeout {
                    upstream: name,
                    limit: "total_timeout_ms",
                    ms: limits.total_timeout_ms,
                },
            ));
        }
    };
    let mut request = hyper::Request::new(Full::new(out.body));
    *request.method_mut() = out.method;
    *request.uri_mut() = out
        .target
        .parse()
        .map_err(|e| GatewayError::BadRequest(format!("cannot build the upstream URL: {e}")))?;
    *request.headers_mut() = out.headers;
    let first_byte = Duration::from_millis(limits.first_byte_timeout_ms);
    let first_byte_deadline = (tokio::time::Instant::now() + first_byte).min(deadline);
    let response = match tokio::time::timeout_at(first_byte_deadline, http.client.request(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => {
            let why = if e.is_connect() {
                format!("cannot connect: {}", source_chain(&e))
            } else {
                source_chain(&e)
            };
            return Err(failed(state, start, GatewayError::UpstreamUnavailable { upstream: name, why }));
        }
        Err(_) => {
            let (limit, ms) = if first_byte_deadline < deadline {
                ("first_byte_timeout_ms", limits.first_byte_timeout_ms)
            } else {
                ("total_timeout_ms", limits.total_timeout_ms)
            };
            return Err(failed(state, start, GatewayError::UpstreamTimeout { upstream: name, limit, ms }));
        }
    };
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let status = parts.status.as_u16();
    let metered = MeteredBody {
        inner: body,
        bytes: 0,
        limit: limits.response_body_bytes_max,
        deadline: Box::pin(tokio::time::sleep_until(deadline)),
        total_timeout_ms: limits.total_timeout_ms,
        finish: Some(Finish { state: state.clone(), start, status, _permit: permit, _in_flight: in_flight }),
    };
    Ok(Response::from_parts(parts, Body::new(metered)))
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()).collect::<Vec<_>>())
        .filter_map(|s| HeaderName::from_bytes(s.as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    for name in listed {
        headers.remove(name);
    }
}

struct Finish {
    state: AppState,
    start: ActionStart,
    status: u16,
    // Held until the answer is complete: the upstream slot and the session's
    // in-flight count.
    _permit: OwnedSemaphorePermit,
    _in_flight: Option<InFlightGuard>,
}

/// The upstream's answer on its way to the agent: counted, bounded in size and
/// time, teed into the forensic capture if there is one (never buffered whole),
/// and recorded once when it ends (or breaks, or the agent goes away).
struct MeteredBody {
    inner: hyper::body::Incoming,
    bytes: u64,
    limit: u64,
    deadline: Pin<Box<tokio::time::Sleep>>,
    total_timeout_ms: u64,
    finish: Option<Finish>,
}

impl MeteredBody {
    fn end(&mut self, outcome: &'static str) {
        if let Some(f) = self.finish.take() {
            let outcome = if outcome == "success" && f.status >= 500 { "upstream_error" } else { outcome };
            record(&f.state, f.start, ActionEnd { outcome, status: f.status, bytes_out: self.bytes });
        }
    }
}

impl http_body::Body for MeteredBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.end("upstream_timeout");
            let ms = this.total_timeout_ms;
            return Poll::Ready(Some(Err(
                format!("upstream answer exceeded `total_timeout_ms` ({ms} ms)").into()
            )));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                this.end("success");
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.end("upstream_unavailable");
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes = this.bytes.saturating_add(data.len() as u64);
                    if this.bytes > this.limit {
                        this.end("upstream_error");
                        let limit = this.limit;
                        return Poll::Ready(Some(Err(format!(
                            "upstream answer exceeds `response_body_bytes_max` ({limit} bytes)"
                        )
                        .into())));
                    }
                    // Only what reaches the agent is kept.
                    if let Some(capture) = this.finish.as_mut().and_then(|f| f.start.capture.as_deref_mut()) {
                        capture.tee(data);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        // The agent went away before the end: still one action, as far as it got.
        self.end(if http_body::Body::is_end_stream(&self.inner) { "success" } else { "agent_disconnected" });
    }
}
