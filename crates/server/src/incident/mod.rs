//! Incident response: quarantines (a temporary deny on an agent or a resource
//! prefix, checked on every decision), the event index (one row per log entry,
//! kept up to date by a background task that tails the log), replay (an
//! agent's or session's entries over a time window, each with its inclusion proof
//! against a signed checkpoint) and forensics mode (a session's full request and
//! response bodies kept apart from the log, which commits to them by hash).

pub mod forensic_routes;
pub mod forensics;
pub mod index;
pub mod quarantine;
pub mod replay;

use std::sync::Arc;

use axum::Router;
use warden_store::event_index::EventIndex;
use warden_store::forensics::ForensicStore;
use warden_store::quarantines::QuarantineStore;

pub use forensics::Forensics;
pub use index::EventIndexer;
pub use quarantine::Quarantines;

use crate::AppState;
use crate::error::ApiError;

/// The stores this module keeps beside the log, opened with it.
#[derive(Debug, Clone)]
pub struct Stores {
    /// Quarantines, active and ended.
    pub quarantines: Arc<dyn QuarantineStore>,
    /// The event index and its watermark.
    pub events: Arc<dyn EventIndex>,
    /// Sessions in forensics mode and the bodies kept for their actions.
    pub forensics: Arc<dyn ForensicStore>,
}

/// The quarantine, replay and forensics routes.
pub fn router() -> Router<AppState> {
    Router::new().merge(quarantine::router()).merge(replay::router()).merge(forensic_routes::router())
}

/// Formats Unix seconds as RFC 3339 UTC.
pub fn rfc3339(unix_s: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_s)
        .map(warden_core::event::format_rfc3339)
        .unwrap_or_default()
}

/// Parses a time given as RFC 3339 or as Unix seconds, naming `field` when it is wrong.
pub fn parse_time(field: &str, raw: &str) -> Result<i64, ApiError> {
    if let Ok(n) = raw.parse::<i64>() {
        return Ok(n);
    }
    time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map(time::OffsetDateTime::unix_timestamp)
        .map_err(|_| ApiError::field(field, format!("`{raw}` is not an RFC 3339 time or Unix seconds")))
}
