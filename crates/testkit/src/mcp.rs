//! The test MCP server, built on rmcp: tools `send_email` and `read_ticket`.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{MaybeSendFuture, RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, ServiceExt};
use serde_json::{Value, json};

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
        ]
    }
}

impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
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
        _context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CallToolResponse, ErrorData>> + MaybeSendFuture + '_ {
        let args = request.arguments.clone().map(Value::Object).unwrap_or(Value::Null);
        let text = match request.name.as_ref() {
            "send_email" => format!("sent to {}", args.get("to").and_then(Value::as_str).unwrap_or("?")),
            "read_ticket" => {
                format!("ticket {}: printer on fire", args.get("id").and_then(Value::as_str).unwrap_or("?"))
            }
            "delete_ticket" => format!("deleted {}", args.get("id").and_then(Value::as_str).unwrap_or("?")),
            other => {
                return std::future::ready(Err(ErrorData::invalid_params(
                    format!("unknown tool {other}"),
                    None,
                )));
            }
        };
        std::future::ready(Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into()))
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
