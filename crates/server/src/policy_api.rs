//! `/v1/policies…`: push, show, history, diff and rollback of the policy set.
//!
//! Every version is strictly validated against the schema before it is stored;
//! an invalid push is refused with Cedar's diagnostics. Versions are append-only:
//! a rollback pushes the old content as a new version.

use std::sync::{Arc, RwLock};

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use warden_core::admin::Severity;
use warden_policy::{PolicyError, PolicySet, PolicySource};
use warden_store::directory::{Directory, PolicyVersion};

use crate::AppState;
use crate::control::{Operator, parse_body, record};
use crate::error::ApiError;

/// The intents Warden knows when no configuration names others.
pub const DEFAULT_INTENTS: [&str; 14] = [
    "ticket.read",
    "ticket.create",
    "ticket.update",
    "ticket.delete",
    "db.read:sanitized",
    "db.read:raw",
    "db.write",
    "email.send",
    "payment.create",
    "git.push",
    "policy.read",
    "policy.update",
    "credential.read",
    "budget.update",
];

/// The policy set a fresh Warden starts with: deny by default, allow reads and
/// ticket work in every tier, hold everything that changes governance for a human.
pub const DEFAULT_POLICIES: [(&str, &str); 4] = [
    (
        "default-reads",
        "@reason(\"reads are allowed by default\")\npermit(principal, action in [Warden::Action::\"ticket.read\", Warden::Action::\"db.read:sanitized\", Warden::Action::\"policy.read\"], resource);",
    ),
    (
        "default-tickets",
        "@reason(\"ticket work is allowed by default\")\npermit(principal, action in [Warden::Action::\"ticket.create\", Warden::Action::\"ticket.update\"], resource);",
    ),
    (
        "hold-governance-changes",
        "@decision(\"approve\")\n@reason(\"changes to policy, budgets or credentials need a human\")\npermit(principal, action in [Warden::Action::\"policy.update\", Warden::Action::\"budget.update\", Warden::Action::\"credential.read\"], resource);",
    ),
    (
        "high-risk-needs-approval",
        "@decision(\"approve\")\n@reason(\"risk above 0.7 requires approval\")\nforbid(principal, action, resource) when { context.risk_permille > 700 };",
    ),
];

/// The active policy set and its version.
#[derive(Debug)]
pub struct ActivePolicy {
    slot: RwLock<(u64, Arc<PolicySet>)>,
    intents: Vec<String>,
}

impl ActivePolicy {
    /// Loads the latest version, or installs the default policy as version 1.
    pub fn load(directory: &dyn Directory, intents: Vec<String>, now: i64) -> Result<Self, String> {
        let latest = directory.policy_history(1).map_err(|e| e.to_string())?.into_iter().next();
        let version = match latest {
            Some(v) => v,
            None => {
                let sources: Vec<PolicySource> = DEFAULT_POLICIES
                    .iter()
                    .map(|(id, text)| PolicySource { id: (*id).into(), text: (*text).into() })
                    .collect();
                let set =
                    PolicySet::compile(&intents, &sources).map_err(|e| format!("default policy: {e}"))?;
                let v = PolicyVersion {
                    version: 1,
                    hash: set.hash().to_owned(),
                    policies: sources.into_iter().map(|s| (s.id, s.text)).collect(),
                    author: "system".into(),
                    message: "default policy".into(),
                    created_at: now,
                };
                directory.push_policy(&v).map_err(|e| e.to_string())?;
                v
            }
        };
        let set = PolicySet::compile(&intents, &sources_of(&version))
            .map_err(|e| format!("stored policy version {} no longer compiles: {e}", version.version))?;
        Ok(Self { slot: RwLock::new((version.version, Arc::new(set))), intents })
    }

    /// The active set and its version.
    pub fn current(&self) -> Option<(u64, Arc<PolicySet>)> {
        self.slot.read().ok().map(|s| (s.0, Arc::clone(&s.1)))
    }

    fn install(&self, version: u64, set: PolicySet) {
        if let Ok(mut slot) = self.slot.write() {
            *slot = (version, Arc::new(set));
        }
    }
}

fn sources_of(v: &PolicyVersion) -> Vec<PolicySource> {
    v.policies.iter().map(|(id, text)| PolicySource { id: id.clone(), text: text.clone() }).collect()
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/policies", get(show).post(push))
        .route("/v1/policies/history", get(history))
        .route("/v1/policies/diff", get(diff))
        .route("/v1/policies/rollback", post(rollback))
        .route("/v1/policies/schema", get(schema))
}

fn invalid(e: PolicyError) -> ApiError {
    match e {
        PolicyError::Invalid { diagnostics } => ApiError::InvalidRequest {
            message: format!("policy set is invalid: {}", diagnostics.join("; ")),
            fields: diagnostics
                .into_iter()
                .map(|d| warden_core::FieldError { field: "policies".into(), message: d })
                .collect(),
        },
        other => ApiError::field("policies", other.to_string()),
    }
}

async fn show(State(state): State<AppState>, _op: Operator) -> Result<Json<Value>, ApiError> {
    let (version, _) =
        state.policy.current().ok_or_else(|| ApiError::Unavailable("policy unavailable".into()))?;
    let v = state
        .directory
        .policy(version)?
        .ok_or_else(|| ApiError::NotFound(format!("no policy version {version}")))?;
    Ok(Json(version_json(&v, true)))
}

fn version_json(v: &PolicyVersion, with_text: bool) -> Value {
    let mut out = json!({"version": v.version, "hash": v.hash, "author": v.author, "message": v.message,
        "created_at": v.created_at, "count": v.policies.len()});
    if let (true, Some(obj)) = (with_text, out.as_object_mut()) {
        obj.insert(
            "policies".into(),
            json!(v.policies.iter().map(|(id, text)| json!({"id": id, "text": text})).collect::<Vec<_>>()),
        );
    }
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PushBody {
    policies: Vec<PolicySource>,
    #[serde(default)]
    message: String,
}

async fn store_version(
    state: &AppState,
    operator: &Operator,
    sources: Vec<PolicySource>,
    message: String,
    kind: &str,
) -> Result<Json<Value>, ApiError> {
    operator.admin()?;
    let set = PolicySet::compile(&state.policy.intents, &sources).map_err(invalid)?;
    let (current, _) =
        state.policy.current().ok_or_else(|| ApiError::Unavailable("policy unavailable".into()))?;
    let v = PolicyVersion {
        version: current + 1,
        hash: set.hash().to_owned(),
        policies: sources.into_iter().map(|s| (s.id, s.text)).collect(),
        author: operator.0.id.clone(),
        message,
        created_at: state.clock.now().unix_timestamp(),
    };
    record(
        state,
        kind,
        &operator.0.id,
        &format!("policy/{}", v.version),
        Severity::Warning,
        json!({"version": v.version, "hash": v.hash, "count": v.policies.len(), "message": v.message}),
    )
    .await?;
    state.directory.push_policy(&v).map_err(|e| ApiError::Conflict(e.to_string()))?;
    state.policy.install(v.version, set);
    Ok(Json(version_json(&v, false)))
}

async fn push(
    State(state): State<AppState>,
    operator: Operator,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: PushBody = parse_body(&body)?;
    store_version(&state, &operator, body.policies, body.message, "policy.pushed").await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    version: u64,
}

async fn rollback(
    State(state): State<AppState>,
    operator: Operator,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: RollbackBody = parse_body(&body)?;
    let old = state
        .directory
        .policy(body.version)?
        .ok_or_else(|| ApiError::field("version", format!("no policy version {}", body.version)))?;
    store_version(
        &state,
        &operator,
        sources_of(&old),
        format!("rollback to version {}", body.version),
        "policy.rolled_back",
    )
    .await
}

async fn history(State(state): State<AppState>, _op: Operator) -> Result<Json<Value>, ApiError> {
    const HISTORY_MAX: usize = 1_000;
    let versions = state.directory.policy_history(HISTORY_MAX)?;
    Ok(Json(json!({"versions": versions.iter().map(|v| version_json(v, false)).collect::<Vec<_>>()})))
}

#[derive(Deserialize)]
struct DiffQuery {
    from: u64,
    to: Option<u64>,
}

async fn diff(
    State(state): State<AppState>,
    _op: Operator,
    Query(q): Query<DiffQuery>,
) -> Result<Json<Value>, ApiError> {
    let to = match q.to {
        Some(t) => t,
        None => state.policy.current().map(|c| c.0).unwrap_or(0),
    };
    let load = |v: u64, field: &str| -> Result<PolicyVersion, ApiError> {
        state.directory.policy(v)?.ok_or_else(|| ApiError::field(field, format!("no policy version {v}")))
    };
    let (a, b) = (load(q.from, "from")?, load(to, "to")?);
    let changes = warden_policy::diff(&sources_of(&a), &sources_of(&b));
    Ok(Json(json!({"from": q.from, "to": to, "changes": changes})))
}

async fn schema(State(state): State<AppState>, _op: Operator) -> Result<String, ApiError> {
    warden_policy::schema_text(&state.policy.intents).map_err(|e| ApiError::Unavailable(e.to_string()))
}
