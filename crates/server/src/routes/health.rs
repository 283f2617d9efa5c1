//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;

/// The process is up.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// The log can accept writes and serves a checkpoint.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let writer = state.log.is_writer_running();
    let checkpoint = state.log.checkpoint().map(|c| c.size);
    let ready = writer && checkpoint.is_some();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({ "ready": ready, "log_writer": writer, "checkpoint_size": checkpoint })))
}
