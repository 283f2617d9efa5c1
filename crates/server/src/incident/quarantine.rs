//! Quarantines: a temporary deny on one agent or on every resource whose id starts
//! with a prefix (`prod/db/`), placed by an admin during an incident with a
//! required expiry (at most [`QUARANTINE_DURATION_S_MAX`]) and lifted early with
//! `DELETE`.
//!
//! Every change is logged before it is stored and applied (fail closed). The
//! active quarantines live in memory for [`Quarantines::check`], which the decision
//! path calls for every action; they are loaded from the store at start, so a
//! restart forgets none. An expiry needs no event: the creation event states it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::{Path, RawQuery, State};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use warden_core::AgentId;
use warden_core::admin::Severity;
use warden_store::StoreError;
use warden_store::directory::Role;
use warden_store::quarantines::{LiftResult, QuarantineRecord, QuarantineStore, QuarantineTarget};

use super::{parse_time, rfc3339};
use crate::AppState;
use crate::control::{Operator, new_id, parse_body, record};
use crate::error::ApiError;

/// Longest a quarantine may last, seconds (7 days): it is a stop-gap during an
/// incident; anything longer is a suspension, a revocation or a policy change.
pub const QUARANTINE_DURATION_S_MAX: i64 = 7 * 24 * 3600;
/// Most quarantines active at once.
pub const QUARANTINES_ACTIVE_MAX: usize = 10_000;
/// Longest reason, in characters.
const REASON_CHARS_MAX: usize = 512;
/// Longest resource prefix, in characters.
const PREFIX_CHARS_MAX: usize = 256;
/// Quarantines one list call returns unless `limit` says otherwise.
const QUARANTINE_LIST_DEFAULT: usize = 100;
/// Most quarantines one list call returns.
const QUARANTINE_LIST_MAX: usize = 1_000;
/// Prefix of quarantine ids.
pub const QUARANTINE_ID_PREFIX: &str = "qua_";

/// The active quarantines, by agent and by resource prefix.
#[derive(Debug, Default)]
struct Active {
    by_agent: HashMap<String, Vec<QuarantineRecord>>,
    prefixes: Vec<QuarantineRecord>,
}

impl Active {
    fn insert(&mut self, q: QuarantineRecord) {
        match &q.target {
            QuarantineTarget::Agent(a) => self.by_agent.entry(a.clone()).or_default().push(q),
            QuarantineTarget::ResourcePrefix(_) => self.prefixes.push(q),
        }
    }

    fn remove(&mut self, id: &str) {
        self.prefixes.retain(|q| q.id != id);
        for list in self.by_agent.values_mut() {
            list.retain(|q| q.id != id);
        }
        self.by_agent.retain(|_, list| !list.is_empty());
    }

    fn prune(&mut self, now_unix_s: i64) {
        self.prefixes.retain(|q| q.is_active(now_unix_s));
        for list in self.by_agent.values_mut() {
            list.retain(|q| q.is_active(now_unix_s));
        }
        self.by_agent.retain(|_, list| !list.is_empty());
    }

    fn len(&self) -> usize {
        self.prefixes.len() + self.by_agent.values().map(Vec::len).sum::<usize>()
    }
}

/// Quarantines: the store and the active ones in memory.
#[derive(Debug)]
pub struct Quarantines {
    store: Arc<dyn QuarantineStore>,
    // INVARIANT: holds every quarantine of the store that was active when it was
    // loaded or placed and has not been lifted since; expired ones may linger
    // until the next prune, and `check` ignores them.
    active: RwLock<Active>,
}

impl Quarantines {
    /// Loads the quarantines active at `now_unix_s`.
    pub fn load(store: Arc<dyn QuarantineStore>, now_unix_s: i64) -> Result<Self, StoreError> {
        let mut active = Active::default();
        for q in store.active_quarantines(now_unix_s)? {
            active.insert(q);
        }
        Ok(Self { store, active: RwLock::new(active) })
    }

    /// If a quarantine applies to this agent or resource at `now_unix_s`, a
    /// sentence naming it (id, target, until, reason) for the denial's reasons.
    pub fn check(&self, agent_id: &str, resource_id: &str, now_unix_s: i64) -> Option<String> {
        // A poisoned lock only means a writer panicked between two whole updates;
        // the map is still consistent, and refusing to read it would fail open.
        let active = self.active.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(q) =
            active.by_agent.get(agent_id).and_then(|list| list.iter().find(|q| q.is_active(now_unix_s)))
        {
            return Some(format!(
                "agent `{agent_id}` is quarantined by `{}` until {}: {}",
                q.id,
                rfc3339(q.expires_at),
                q.reason
            ));
        }
        active
            .prefixes
            .iter()
            .find(|q| q.is_active(now_unix_s) && resource_id.starts_with(q.target.value()))
            .map(|q| {
                format!(
                    "resource `{resource_id}` is quarantined by `{}` (prefix `{}`) until {}: {}",
                    q.id,
                    q.target.value(),
                    rfc3339(q.expires_at),
                    q.reason
                )
            })
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Active> {
        self.active.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The quarantine routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/quarantines", get(list).post(place)).route("/v1/quarantines/{id}", delete(lift))
}

/// `active`, `lifted` or `expired`.
fn status(q: &QuarantineRecord, now_unix_s: i64) -> &'static str {
    if q.lifted_at.is_some() {
        "lifted"
    } else if q.is_active(now_unix_s) {
        "active"
    } else {
        "expired"
    }
}

/// The API form of a quarantine.
fn public(q: &QuarantineRecord, now_unix_s: i64) -> Value {
    json!({
        "id": q.id, "target": q.target, "reason": q.reason, "status": status(q, now_unix_s),
        "created_at": rfc3339(q.created_at), "created_by": q.created_by,
        "expires_at": rfc3339(q.expires_at), "lifted_at": q.lifted_at.map(rfc3339), "lifted_by": q.lifted_by,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceBody {
    target: QuarantineTarget,
    #[serde(default)]
    expires_in_s: Option<i64>,
    #[serde(default)]
    expires_at: Option<String>,
    reason: String,
}

fn check_target(state: &AppState, target: &QuarantineTarget) -> Result<(), ApiError> {
    match target {
        QuarantineTarget::Agent(id) => {
            AgentId::parse(id).map_err(|e| ApiError::field("target.agent", e.to_string()))?;
            if state.directory.agent(id)?.is_none() {
                return Err(ApiError::field("target.agent", format!("no agent `{id}`")));
            }
        }
        QuarantineTarget::ResourcePrefix(p) => {
            if p.is_empty() || p.chars().count() > PREFIX_CHARS_MAX || p.chars().any(char::is_control) {
                return Err(ApiError::field(
                    "target.resource_prefix",
                    format!("must have 1 to {PREFIX_CHARS_MAX} printable characters"),
                ));
            }
        }
    }
    Ok(())
}

/// When a quarantine placed at `now` with these fields ends.
fn expiry(body: &PlaceBody, now: i64) -> Result<i64, ApiError> {
    let expires_at = match (body.expires_in_s, &body.expires_at) {
        (Some(s), None) => {
            if s <= 0 || s > QUARANTINE_DURATION_S_MAX {
                return Err(ApiError::field(
                    "expires_in_s",
                    format!("must be between 1 and {QUARANTINE_DURATION_S_MAX} seconds"),
                ));
            }
            now.saturating_add(s)
        }
        (None, Some(at)) => parse_time("expires_at", at)?,
        _ => {
            return Err(ApiError::field(
                "expires_in_s",
                "exactly one of `expires_in_s` and `expires_at` is required",
            ));
        }
    };
    if expires_at <= now || expires_at - now > QUARANTINE_DURATION_S_MAX {
        return Err(ApiError::field(
            "expires_at",
            format!("must be in the future and at most {QUARANTINE_DURATION_S_MAX} seconds away"),
        ));
    }
    Ok(expires_at)
}

/// The details logged with a quarantine event; `agent_id` lets the event index
/// file it under the agent.
fn details(q: &QuarantineRecord, reason: &str) -> Value {
    let mut details = json!({"target": q.target, "expires_at": rfc3339(q.expires_at), "reason": reason});
    if let (QuarantineTarget::Agent(a), Some(obj)) = (&q.target, details.as_object_mut()) {
        obj.insert("agent_id".into(), json!(a));
    }
    details
}

async fn place(
    State(state): State<AppState>,
    operator: Operator,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    operator.admin()?;
    let body: PlaceBody = parse_body(&body)?;
    let now = state.clock.now().unix_timestamp();
    check_target(&state, &body.target)?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > REASON_CHARS_MAX || reason.chars().any(char::is_control)
    {
        return Err(ApiError::field(
            "reason",
            format!("must have 1 to {REASON_CHARS_MAX} printable characters"),
        ));
    }
    let expires_at = expiry(&body, now)?;
    {
        let mut active = state.quarantines.write();
        active.prune(now);
        if active.len() >= QUARANTINES_ACTIVE_MAX {
            return Err(ApiError::Conflict(format!(
                "{QUARANTINES_ACTIVE_MAX} quarantines are active already; lift some first"
            )));
        }
    }
    let q = QuarantineRecord {
        id: new_id(QUARANTINE_ID_PREFIX),
        target: body.target.clone(),
        reason: reason.to_owned(),
        created_at: now,
        created_by: operator.0.id.clone(),
        expires_at,
        lifted_at: None,
        lifted_by: None,
    };
    record(&state, "quarantine.placed", &operator.0.id, &q.id, Severity::Warning, details(&q, reason))
        .await?;
    if let Err(e) = state.quarantines.store.create_quarantine(&q) {
        // The log says it was placed; say it ended, if the log can.
        let why = format!("the quarantine could not be stored: {e}");
        let _ =
            record(&state, "quarantine.lifted", "system", &q.id, Severity::Warning, details(&q, &why)).await;
        return Err(e.into());
    }
    state.quarantines.write().insert(q.clone());
    tracing::warn!(quarantine = %q.id, target = q.target.value(), until = q.expires_at, "quarantine placed");
    Ok(Json(public(&q, now)))
}

async fn list(
    State(state): State<AppState>,
    operator: Operator,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    operator.require(&[Role::Admin, Role::Approver, Role::Auditor])?;
    let params: Vec<(String, String)> = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::field("query", format!("is not a valid query string: {e}")))?;
    let (mut all, mut limit) = (false, QUARANTINE_LIST_DEFAULT);
    for (key, value) in &params {
        match key.as_str() {
            "all" => {
                all = value
                    .parse()
                    .map_err(|_| ApiError::field("all", format!("`{value}` is not true or false")))?;
            }
            "limit" => {
                limit = value.parse().ok().filter(|n| (1..=QUARANTINE_LIST_MAX).contains(n)).ok_or_else(
                    || {
                        ApiError::field(
                            "limit",
                            format!("`{value}` is not a number from 1 to {QUARANTINE_LIST_MAX}"),
                        )
                    },
                )?;
            }
            other => return Err(ApiError::field(other, "is not a known parameter (all, limit)")),
        }
    }
    let now = state.clock.now().unix_timestamp();
    let store = &state.quarantines.store;
    let mut found = if all { store.quarantines(limit)? } else { store.active_quarantines(now)? };
    found.truncate(limit);
    Ok(Json(json!({"quarantines": found.iter().map(|q| public(q, now)).collect::<Vec<_>>()})))
}

async fn lift(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    operator.admin()?;
    let valid = id.strip_prefix(QUARANTINE_ID_PREFIX).is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if !valid {
        return Err(ApiError::field(
            "id",
            format!("`{id}` is not a quarantine id (`{QUARANTINE_ID_PREFIX}…`)"),
        ));
    }
    let now = state.clock.now().unix_timestamp();
    let q = state
        .quarantines
        .store
        .quarantine(&id)?
        .ok_or_else(|| ApiError::NotFound(format!("no quarantine `{id}`")))?;
    if !q.is_active(now) {
        return Err(ApiError::Conflict(format!("quarantine `{id}` has already ended ({})", status(&q, now))));
    }
    let why = format!("lifted early by {}", operator.0.id);
    record(&state, "quarantine.lifted", &operator.0.id, &id, Severity::Info, details(&q, &why)).await?;
    let lifted = match state.quarantines.store.lift_quarantine(&id, now, &operator.0.id)? {
        LiftResult::Lifted(q) => q,
        LiftResult::AlreadyEnded(_) => {
            return Err(ApiError::Conflict(format!("quarantine `{id}` has already ended")));
        }
        LiftResult::NotFound => return Err(ApiError::NotFound(format!("no quarantine `{id}`"))),
    };
    state.quarantines.write().remove(&id);
    tracing::info!(quarantine = %id, "quarantine lifted");
    Ok(Json(public(&lifted, now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct NoStore;

    impl QuarantineStore for NoStore {
        fn create_quarantine(&self, _: &QuarantineRecord) -> Result<(), StoreError> {
            Ok(())
        }
        fn quarantine(&self, _: &str) -> Result<Option<QuarantineRecord>, StoreError> {
            Ok(None)
        }
        fn active_quarantines(&self, _: i64) -> Result<Vec<QuarantineRecord>, StoreError> {
            Ok(Vec::new())
        }
        fn quarantines(&self, _: usize) -> Result<Vec<QuarantineRecord>, StoreError> {
            Ok(Vec::new())
        }
        fn lift_quarantine(&self, _: &str, _: i64, _: &str) -> Result<LiftResult, StoreError> {
            Ok(LiftResult::NotFound)
        }
    }

    fn q(id: &str, target: QuarantineTarget, expires_at: i64) -> QuarantineRecord {
        QuarantineRecord {
            id: id.into(),
            target,
            reason: "incident 7".into(),
            created_at: 0,
            created_by: "opr_a".into(),
            expires_at,
            lifted_at: None,
            lifted_by: None,
        }
    }

    #[test]
    fn check_names_the_quarantine_of_the_agent_or_of_the_resource_prefix_until_it_ends() {
        let quarantines = Quarantines::load(Arc::new(NoStore), 0).unwrap();
        assert_eq!(quarantines.check("agt_a", "prod/db/users", 10), None);
        quarantines.write().insert(q("qua_1", QuarantineTarget::Agent("agt_a".into()), 100));
        quarantines.write().insert(q("qua_2", QuarantineTarget::ResourcePrefix("prod/db/".into()), 200));
        let agent = quarantines.check("agt_a", "jira", 10).unwrap();
        assert!(
            agent.contains("`qua_1`") && agent.contains("agt_a") && agent.contains("incident 7"),
            "{agent}"
        );
        assert!(agent.contains("1970-01-01T00:01:40Z"), "names the end: {agent}");
        let resource = quarantines.check("agt_b", "prod/db/users", 10).unwrap();
        assert!(resource.contains("`qua_2`") && resource.contains("prefix `prod/db/`"), "{resource}");
        assert_eq!(quarantines.check("agt_b", "prod/dbx", 10), None);
        assert_eq!(quarantines.check("agt_a", "jira", 100), None, "expired at 100");
        assert!(quarantines.check("agt_b", "prod/db/users", 150).is_some());
        quarantines.write().remove("qua_2");
        assert_eq!(quarantines.check("agt_b", "prod/db/users", 150), None, "lifted");
        let mut active = quarantines.write();
        active.prune(150);
        assert_eq!(active.len(), 0);
    }
}
