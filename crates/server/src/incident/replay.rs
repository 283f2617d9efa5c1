//! `GET /v1/replay?agent=…|session=…&since=…&until=…&limit=…&cursor=…`: the log
//! entries of one agent or session over a time window, oldest first, each with
//! its exact leaf and an inclusion proof against the latest signed checkpoint, so
//! the reader verifies what it is shown instead of trusting this server.
//!
//! Read through the event index (never a scan of the log). Only entries the
//! checkpoint covers are returned; `tree_size` says where that is.

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use warden_core::{AgentId, SessionId};
use warden_store::event_index::{EventQuery, EventSubject, IndexedEvent};

use super::{parse_time, rfc3339};
use crate::AppState;
use crate::control::Operator;
use crate::error::ApiError;

/// Entries one page returns unless `limit` says otherwise.
const REPLAY_PAGE_DEFAULT: usize = 100;
/// Most entries one page returns.
pub const REPLAY_PAGE_MAX: usize = 1_000;
/// Most leaves a request indexes itself when the background task is behind;
/// beyond that it answers with what is indexed (`indexed_size` says so).
pub const REPLAY_CATCH_UP_LEAVES_MAX: u64 = 100_000;

/// The replay route.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/replay", get(replay))
}

/// A parsed replay request.
struct ReplayQuery {
    agent: Option<String>,
    session: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    limit: usize,
    after: Option<(i64, u64)>,
}

/// Cursors are `<unix seconds>.<log index>` of the last entry returned.
fn parse_cursor(raw: &str) -> Result<(i64, u64), ApiError> {
    raw.split_once('.')
        .and_then(|(at, idx)| Some((at.parse().ok()?, idx.parse().ok()?)))
        .ok_or_else(|| ApiError::field("cursor", format!("`{raw}` is not a cursor this server returned")))
}

fn parse_query(query: Option<&str>) -> Result<ReplayQuery, ApiError> {
    let params: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| ApiError::field("query", format!("is not a valid query string: {e}")))?;
    let mut q = ReplayQuery {
        agent: None,
        session: None,
        since: None,
        until: None,
        limit: REPLAY_PAGE_DEFAULT,
        after: None,
    };
    for (key, value) in &params {
        match key.as_str() {
            "agent" => {
                AgentId::parse(value).map_err(|e| ApiError::field("agent", e.to_string()))?;
                q.agent = Some(value.clone());
            }
            "session" => {
                SessionId::parse(value).map_err(|e| ApiError::field("session", e.to_string()))?;
                q.session = Some(value.clone());
            }
            "since" => q.since = Some(parse_time("since", value)?),
            "until" => q.until = Some(parse_time("until", value)?),
            "limit" => {
                q.limit =
                    value.parse().ok().filter(|n| (1..=REPLAY_PAGE_MAX).contains(n)).ok_or_else(|| {
                        ApiError::field(
                            "limit",
                            format!("`{value}` is not a number from 1 to {REPLAY_PAGE_MAX}"),
                        )
                    })?;
            }
            "cursor" => q.after = Some(parse_cursor(value)?),
            other => {
                return Err(ApiError::field(
                    other,
                    "is not a known parameter (agent, session, since, until, limit, cursor)",
                ));
            }
        }
    }
    if q.agent.is_some() == q.session.is_some() {
        return Err(ApiError::field("agent", "exactly one of `agent` and `session` is required"));
    }
    if let (Some(since), Some(until)) = (q.since, q.until)
        && since > until
    {
        return Err(ApiError::field("since", "must not be after `until`"));
    }
    Ok(q)
}

/// The latest checkpoint, with the index caught up to it as far as one request
/// may; returns the checkpoint and the size the index covers within it.
pub async fn checkpoint_and_coverage(
    state: &AppState,
) -> Result<(std::sync::Arc<warden_store::StoredCheckpoint>, u64), ApiError> {
    let cp = state
        .log
        .checkpoint()
        .ok_or_else(|| ApiError::Unavailable("no checkpoint has been published yet".into()))?;
    let indexed = state.events.catch_up(cp.size, REPLAY_CATCH_UP_LEAVES_MAX).await?;
    Ok((cp.clone(), indexed.min(cp.size)))
}

/// The leaf and inclusion proof of each entry, against a checkpoint of `tree_size`.
pub async fn proved_entries(
    state: &AppState,
    rows: Vec<IndexedEvent>,
    tree_size: u64,
) -> Result<Vec<(IndexedEvent, Vec<u8>, Vec<String>)>, ApiError> {
    let log = state.log.clone();
    tokio::task::spawn_blocking(move || {
        rows.into_iter()
            .map(|row| {
                let leaf = log.entry(row.index)?;
                let proof = log.inclusion_proof(row.index, tree_size)?;
                Ok((row, leaf, proof.iter().map(|h| h.to_base64()).collect()))
            })
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await
    .map_err(|e| ApiError::Unavailable(format!("the log task failed: {e}")))?
}

async fn replay(
    State(state): State<AppState>,
    _operator: Operator,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = parse_query(query.as_deref())?;
    let (cp, covered) = checkpoint_and_coverage(&state).await?;
    let index = state.events.index().clone();
    let (agent, session, since, until, after, limit) =
        (q.agent.clone(), q.session.clone(), q.since, q.until, q.after, q.limit);
    let mut rows = tokio::task::spawn_blocking(move || {
        let subject = match (&agent, &session) {
            (Some(a), _) => EventSubject::Agent(a),
            (None, Some(s)) => EventSubject::Session(s),
            (None, None) => return Ok(Vec::new()),
        };
        // One more than asked, to know whether another page follows.
        index.events(&EventQuery {
            subject,
            since_unix_s: since,
            until_unix_s: until,
            below_index: covered,
            after,
            limit: limit + 1,
        })
    })
    .await
    .map_err(|e| ApiError::Unavailable(format!("the index task failed: {e}")))??;
    let more = rows.len() > q.limit;
    rows.truncate(q.limit);
    let next_cursor = if more { rows.last().map(|r| format!("{}.{}", r.at_unix_s, r.index)) } else { None };
    let entries: Vec<Value> = proved_entries(&state, rows, cp.size)
        .await?
        .into_iter()
        .map(|(row, leaf, proof)| {
            json!({"index": row.index, "kind": row.kind, "received_at": rfc3339(row.at_unix_s),
                "leaf": STANDARD.encode(leaf), "inclusion_proof": proof})
        })
        .collect();
    Ok(Json(json!({
        "agent": q.agent, "session": q.session,
        "since": q.since.map(rfc3339), "until": q.until.map(rfc3339),
        "checkpoint": cp.note, "tree_size": cp.size, "indexed_size": covered,
        "entries": entries, "next_cursor": next_cursor,
    })))
}
