//! Every HTTP endpoint, and the router that orders them.

mod health;
mod log;
mod telemetry;
mod tiles;

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;
use warden_core::limits::TELEMETRY_BODY_BYTES_MAX;

use crate::AppState;
use crate::error::ApiError;

/// Longest any request may take before the server answers 408.
pub const REQUEST_TIMEOUT_MS_MAX: u64 = 30_000;

/// Builds the application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/v1/telemetry/submit", post(telemetry::submit))
        .route("/v1/log/checkpoint", get(log::checkpoint))
        .route("/v1/log/key", get(log::key))
        .route("/v1/log/entries/{index}", get(log::entry))
        .route("/v1/log/proof/inclusion", get(log::inclusion))
        .route("/v1/log/proof/consistency", get(log::consistency))
        .route("/v1/log/receipt/{index}", get(log::receipt))
        .route("/log/checkpoint", get(log::checkpoint))
        .route("/log/tile/{*path}", get(tiles::tile))
        .merge(crate::control::router())
        .merge(crate::credentials::router())
        .merge(crate::policy_api::router())
        .merge(crate::authorize::router())
        .merge(crate::behavior::router())
        .merge(crate::approvals::routes::router())
        .merge(crate::incident::router())
        .merge(crate::trust::router())
        .merge(crate::metrics::router())
        .merge(crate::openapi::router())
        .fallback(not_found)
        // The body limit applies to every route; the telemetry handler turns a
        // rejection into a JSON 413 naming the limit.
        .layer(DefaultBodyLimit::max(TELEMETRY_BODY_BYTES_MAX))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(REQUEST_TIMEOUT_MS_MAX),
        ))
        // The proxies keep their own time limits per upstream (a hold for a human
        // lasts minutes), so they sit outside the API's timeout layer.
        .merge(crate::gateway::router())
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no endpoint at `{}`", uri.path()))
}

/// Parses a required unsigned integer, naming the field when it is wrong.
fn u64_param(params: &HashMap<String, String>, name: &str) -> Result<u64, ApiError> {
    let raw = params.get(name).ok_or_else(|| ApiError::field(name, "is required"))?;
    parse_u64(raw, name)
}

fn parse_u64(raw: &str, name: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>().map_err(|_| ApiError::field(name, format!("`{raw}` is not a non-negative integer")))
}
