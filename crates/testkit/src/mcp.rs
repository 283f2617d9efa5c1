//! The test MCP server, built on rmcp: tools `send_email`, `read_ticket`,
//! `delete_ticket`, `move_ticket` and `tag_ticket`, the prompt `triage` and the
//! resource `tickets://42`. `move_ticket` marks its `queue` and `priority`
//! parameters with `x-mcp-header` (MCP 2026-07-28), so that a 2026-07-28 client
//! mirrors them into `Mcp-Param-Queue` and `Mcp-Param-Priority`; `tag_ticket`
//! marks one where the revision forbids it (inside `items`), which makes its
//! definition invalid in that revision.
//!
//! Every result it sends for a request (tool calls, prompts, resources) carries
//! `_meta["warden-testkit/seen"]`: how that request looked on the hop it came in
//! on (the protocol version it was served under, the client it came from, the
//! keys of its `_meta`; over Streamable HTTP also its `MCP-Protocol-Version`
//! header and whether it carried an `Authorization` header), so a test can
//! check what a proxy forwarded. Beside it, as MCP 2026-07-28 asks of a server
//! for every result, `_meta["io.modelcontextprotocol/serverInfo"]` names this
//! server, whatever version the request was served under, so a test can check
//! that a proxy does not pass the upstream's identity off as its own. Its
//! prompt and resource lists and its reads say they are the same for every
//! caller and fresh for a minute (`cacheScope: "public"`, `ttlMs`), as a
//! server that shares them would, so a test can check that a proxy which
//! answers each caller on its own does not pass that claim on.

use std::sync::Arc;

use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
    GetPromptRequestParams, GetPromptResponse, GetPromptResult, ListPromptsResult, ListResourcesResult,
    ListToolsResult, MetaObject, PaginatedRequestParams, Prompt, PromptArgument, PromptMessage,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, Role,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{MaybeSendFuture, RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, ServiceExt};
use serde_json::{Value, json};

/// How long this server tells its clients its lists and reads stay fresh.
const UPSTREAM_TTL_MS: u64 = 60_000;

#[derive(Clone)]
struct TestServer {
    overrides: Option<Arc<String>>,
}

fn schema(value: Value) -> Arc<serde_json::Map<String, Value>> {
    Arc::new(value.as_object().cloned().unwrap_or_default())
}

impl TestServer {
    fn tools(&self) -> Vec<Tool> {
        let overrides: Value = self
            .overrides
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        let describe = |name: &str, default: &str| {
            overrides.get(name).and_then(Value::as_str).unwrap_or(default).to_owned()
        };
        vec![
            Tool::new(
                "send_email",
                describe("send_email", "Send an email."),
                schema(
                    json!({"type": "object", "properties": {"to": {"type": "string"}, "subject": {"type": "string"}, "body": {"type": "string"}}, "required": ["to"]}),
                ),
            ),
            Tool::new(
                "read_ticket",
                describe("read_ticket", "Read a ticket by id."),
                schema(
                    json!({"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}),
                ),
            ),
            Tool::new(
                "delete_ticket",
                describe("delete_ticket", "Delete a ticket by id."),
                schema(
                    json!({"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}),
                ),
            ),
            Tool::new(
                "move_ticket",
                describe("move_ticket", "Move a ticket to another queue."),
                schema(json!({"type": "object", "properties": {
                    "id": {"type": "string"},
                    "queue": {"type": "string", "x-mcp-header": "Queue"},
                    "priority": {"type": "integer", "x-mcp-header": "Priority"}
                }, "required": ["id", "queue"]})),
            ),
            Tool::new(
                "tag_ticket",
                describe("tag_ticket", "Tag a ticket."),
                // Invalid in MCP 2026-07-28: a marker reachable only through `items`.
                schema(json!({"type": "object", "properties": {
                    "id": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string", "x-mcp-header": "Tag"}}
                }, "required": ["id"]})),
            ),
        ]
    }
}

/// The `_meta` of a result: what the request looked like when it arrived, and
/// who answered it.
fn seen(context: &RequestContext<RoleServer>) -> MetaObject {
    let mut keys: Vec<&String> = context.meta.keys().collect();
    keys.sort();
    // Over Streamable HTTP, rmcp hands the handler the request's HTTP parts.
    let http = context.extensions.get::<axum::http::request::Parts>().map(|parts| {
        json!({
            "protocolVersionHeader": parts.headers.get("mcp-protocol-version").and_then(|v| v.to_str().ok()),
            "authorization": parts.headers.contains_key(axum::http::header::AUTHORIZATION),
        })
    });
    let report = json!({
        "protocolVersion": context.protocol_version().map(|v| v.to_string()),
        "client": context.client_info().map(|c| c.name),
        "metaKeys": keys,
        "http": http,
    });
    let mut meta = MetaObject::new();
    meta.insert("warden-testkit/seen".to_owned(), report);
    meta.insert(
        "io.modelcontextprotocol/serverInfo".to_owned(),
        json!({"name": "warden-testkit", "version": env!("CARGO_PKG_VERSION")}),
    );
    meta
}

impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder().enable_prompts().enable_resources().enable_tools().build(),
        )
    }

    fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListToolsResult, ErrorData>> + MaybeSendFuture + '_ {
        std::future::ready(Ok(ListToolsResult::with_all_items(self.tools())))
    }

    fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CallToolResponse, ErrorData>> + MaybeSendFuture + '_ {
        let args = request.arguments.clone().map(Value::Object).unwrap_or(Value::Null);
        let text = match request.name.as_ref() {
            "send_email" => format!("sent to {}", args.get("to").and_then(Value::as_str).unwrap_or("?")),
            "read_ticket" => {
                format!("ticket {}: printer on fire", args.get("id").and_then(Value::as_str).unwrap_or("?"))
            }
            "delete_ticket" => format!("deleted {}", args.get("id").and_then(Value::as_str).unwrap_or("?")),
            "tag_ticket" => format!("tagged {}", args.get("id").and_then(Value::as_str).unwrap_or("?")),
            "move_ticket" => format!(
                "moved {} to {}",
                args.get("id").and_then(Value::as_str).unwrap_or("?"),
                args.get("queue").and_then(Value::as_str).unwrap_or("?")
            ),
            other => {
                return std::future::ready(Err(ErrorData::invalid_params(
                    format!("unknown tool {other}"),
                    None,
                )));
            }
        };
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        result.meta = Some(seen(&context));
        std::future::ready(Ok(result.into()))
    }

    fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListPromptsResult, ErrorData>> + MaybeSendFuture + '_ {
        let triage = Prompt::new(
            "triage",
            Some("Triage a ticket."),
            Some(vec![PromptArgument::new("id").with_required(true)]),
        );
        let mut result = ListPromptsResult::with_all_items(vec![triage])
            .with_ttl_ms(UPSTREAM_TTL_MS)
            .with_cache_scope(CacheScope::Public);
        result.meta = Some(seen(&context));
        std::future::ready(Ok(result))
    }

    fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetPromptResponse, ErrorData>> + MaybeSendFuture + '_ {
        if request.name != "triage" {
            return std::future::ready(Err(ErrorData::invalid_params(
                format!("unknown prompt {}", request.name),
                None,
            )));
        }
        let id = request.arguments.as_ref().and_then(|a| a.get("id")).and_then(Value::as_str).unwrap_or("?");
        let text = format!("Triage ticket {id}: say who should fix it.");
        let mut result = GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]);
        result.meta = Some(seen(&context));
        std::future::ready(Ok(result.into()))
    }

    fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourcesResult, ErrorData>> + MaybeSendFuture + '_ {
        let mut result =
            ListResourcesResult::with_all_items(vec![Resource::new("tickets://42", "ticket 42")])
                .with_ttl_ms(UPSTREAM_TTL_MS)
                .with_cache_scope(CacheScope::Public);
        result.meta = Some(seen(&context));
        std::future::ready(Ok(result))
    }

    fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ReadResourceResponse, ErrorData>> + MaybeSendFuture + '_ {
        if request.uri != "tickets://42" {
            return std::future::ready(Err(ErrorData::resource_not_found(
                format!("no resource {}", request.uri),
                None,
            )));
        }
        let mut result =
            ReadResourceResult::new(vec![ResourceContents::text("printer on fire", request.uri.clone())])
                .with_ttl_ms(UPSTREAM_TTL_MS)
                .with_cache_scope(CacheScope::Public);
        result.meta = Some(seen(&context));
        std::future::ready(Ok(result.into()))
    }
}

/// Serves on stdin/stdout until stdin closes.
pub async fn stdio(overrides: Option<String>) -> Result<(), String> {
    let server = TestServer { overrides: overrides.map(Arc::new) };
    let running = server.serve(rmcp::transport::stdio()).await.map_err(|e| e.to_string())?;
    running.waiting().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Serves Streamable HTTP at `http://ADDR/mcp`.
pub async fn http(addr: &str, overrides: Option<String>) -> Result<(), String> {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
    let overrides = overrides.map(Arc::new);
    let service: StreamableHttpService<TestServer, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(TestServer { overrides: overrides.clone() }),
        Arc::default(),
        StreamableHttpServerConfig::default(),
    );
    let app = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| e.to_string())?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on http://{local}/mcp");
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}
