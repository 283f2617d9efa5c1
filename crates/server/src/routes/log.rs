//! The log's JSON and text API under `/v1/log/`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use warden_ledger::leaf_hash;
use warden_ledger::receipt::Receipt;

use super::{parse_u64, u64_param};
use crate::AppState;
use crate::error::ApiError;

const TEXT: &str = "text/plain; charset=utf-8";

/// The latest signed checkpoint (C2SP signed note), text/plain.
pub async fn checkpoint(State(state): State<AppState>) -> Result<Response, ApiError> {
    let cp = state
        .log
        .checkpoint()
        .ok_or_else(|| ApiError::Unavailable("no checkpoint has been published yet".into()))?;
    Ok(([(header::CONTENT_TYPE, TEXT), (header::CACHE_CONTROL, "no-cache")], cp.note.clone()).into_response())
}

/// The log's verifier key in signed-note format.
pub async fn key(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, TEXT)], format!("{}\n", state.signer.verifier_key())).into_response()
}

#[derive(Serialize)]
pub struct Entry {
    index: u64,
    leaf: String,
    leaf_hash: String,
    event: serde_json::Value,
}

/// One entry: its exact leaf bytes and the decoded event.
pub async fn entry(
    State(state): State<AppState>,
    Path(index): Path<String>,
) -> Result<Json<Entry>, ApiError> {
    let index = parse_u64(&index, "index")?;
    let log = state.log.clone();
    let leaf = tokio::task::spawn_blocking(move || log.entry(index)).await.map_err(join_error)??;
    let event = serde_json::from_slice(&leaf).unwrap_or(serde_json::Value::Null);
    Ok(Json(Entry { index, leaf: STANDARD.encode(&leaf), leaf_hash: leaf_hash(&leaf).to_base64(), event }))
}

#[derive(Serialize)]
pub struct InclusionProof {
    index: u64,
    tree_size: u64,
    hashes: Vec<String>,
}

/// `?index=I&tree_size=N`: the RFC 6962 audit path.
pub async fn inclusion(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<InclusionProof>, ApiError> {
    let index = u64_param(&params, "index")?;
    let tree_size = u64_param(&params, "tree_size")?;
    let log = state.log.clone();
    let proof = tokio::task::spawn_blocking(move || log.inclusion_proof(index, tree_size))
        .await
        .map_err(join_error)??;
    Ok(Json(InclusionProof { index, tree_size, hashes: proof.iter().map(|h| h.to_base64()).collect() }))
}

#[derive(Serialize)]
pub struct ConsistencyProof {
    from: u64,
    to: u64,
    hashes: Vec<String>,
}

/// `?from=M&to=N`: the RFC 6962 consistency proof.
pub async fn consistency(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let from = u64_param(&params, "from")?;
    let to = u64_param(&params, "to")?;
    let log = state.log.clone();
    let proof =
        tokio::task::spawn_blocking(move || log.consistency_proof(from, to)).await.map_err(join_error)??;
    Ok(Json(ConsistencyProof { from, to, hashes: proof.iter().map(|h| h.to_base64()).collect() }))
}

/// A self-contained receipt for one entry against the latest checkpoint.
pub async fn receipt(State(state): State<AppState>, Path(index): Path<String>) -> Result<Response, ApiError> {
    let index = parse_u64(&index, "index")?;
    let cp = state
        .log
        .checkpoint()
        .ok_or_else(|| ApiError::Unavailable("no checkpoint has been published yet".into()))?;
    if index >= cp.size {
        let mut response = ApiError::NotFound(format!(
            "entry {index} is not covered by the latest checkpoint (size {}); checkpoints are published every {} ms",
            cp.size, state.config.log.checkpoint_interval_ms
        ))
        .into_response();
        response.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        return Ok(response);
    }
    let log = state.log.clone();
    let size = cp.size;
    let (leaf, proof) = tokio::task::spawn_blocking(move || {
        Ok::<_, ApiError>((log.entry(index)?, log.inclusion_proof(index, size)?))
    })
    .await
    .map_err(join_error)??;
    Ok(Json(Receipt {
        index,
        leaf: STANDARD.encode(leaf),
        tree_size: cp.size,
        inclusion_proof: proof.iter().map(|h| h.to_base64()).collect(),
        checkpoint: cp.note.clone(),
    })
    .into_response())
}

pub(super) fn join_error(e: tokio::task::JoinError) -> ApiError {
    ApiError::Unavailable(format!("the log task failed: {e}"))
}
