//! `warden-testkit`: upstreams for the gateway's end-to-end tests and benchmark.
//!
//! - `warden-testkit mcp-stdio [--overrides FILE]`: an MCP server (rmcp) on stdio;
//! - `warden-testkit mcp-http ADDR [--overrides FILE]`: the same over Streamable HTTP
//!   at `/mcp`; prints `listening on http://ADDR/mcp`;
//! - `warden-testkit echo ADDR`: a plain HTTP server answering every request with
//!   JSON describing it (method, path, query, headers, body); `/slow/{ms}` waits
//!   first; prints `listening on http://ADDR`.
//!
//! `--overrides FILE` is a JSON object `{tool: description}` read at every
//! `tools/list`, so a test can change a tool's description while the server runs.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod mcp;

use std::process::ExitCode;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::any;
use serde_json::json;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let overrides = args.iter().position(|a| a == "--overrides").and_then(|i| args.get(i + 1)).cloned();
    let result = match (args.first().map(String::as_str), args.get(1)) {
        (Some("mcp-stdio"), _) => runtime.block_on(mcp::stdio(overrides)),
        (Some("mcp-http"), Some(addr)) => runtime.block_on(mcp::http(addr, overrides)),
        (Some("echo"), Some(addr)) => runtime.block_on(echo(addr)),
        _ => Err("usage: warden-testkit mcp-stdio | mcp-http ADDR | echo ADDR [--overrides FILE]".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn echo(addr: &str) -> Result<(), String> {
    let app = Router::new().route("/slow/{ms}", any(slow)).fallback(describe);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| e.to_string())?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on http://{local}");
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

async fn slow(
    Path(ms): Path<u64>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::Json<serde_json::Value> {
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    describe(method, uri, headers, body).await
}

async fn describe(
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::Json<serde_json::Value> {
    let headers: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), json!(String::from_utf8_lossy(v.as_bytes()))))
        .collect();
    axum::Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query().unwrap_or(""),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
}
