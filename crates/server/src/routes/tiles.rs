//! The C2SP `tlog-tiles` read API under `/log/`.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use warden_ledger::tile::{TILE_WIDTH, TileId};

use super::log::join_error;
use crate::AppState;
use crate::error::ApiError;

/// `/log/tile/<L>/<N>[.p/<W>]` and `/log/tile/entries/<N>[.p/<W>]`.
pub async fn tile(State(state): State<AppState>, Path(path): Path<String>) -> Result<Response, ApiError> {
    let tile = TileId::parse(&path).map_err(|e| ApiError::field("path", e.to_string()))?;
    let log = state.log.clone();
    let bytes = tokio::task::spawn_blocking(move || log.tile(&tile)).await.map_err(join_error)??;
    // Full tiles never change; partial ones are replaced by wider ones.
    let cache = if tile.width == TILE_WIDTH { "public, max-age=31536000, immutable" } else { "no-cache" };
    Ok(([(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, cache)], bytes)
        .into_response())
}
