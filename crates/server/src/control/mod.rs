//! The control API: everything that changes agents, sessions, policy, budgets or
//! approvals. Every call needs an operator credential with a fitting role; an agent
//! credential is refused here whatever its policy says, and the attempt is logged.

mod agents;
mod body;
mod sessions;

pub use body::parse_body;
pub(crate) use sessions::load as load_session;

use std::path::PathBuf;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use warden_core::admin::{AdminEvent, Severity};
use warden_core::event::format_rfc3339;
use warden_store::NewLeaf;
use warden_store::directory::{OperatorRecord, Role};

use crate::error::ApiError;
use crate::{AppState, ServeError, datadir};

/// File (in the data directory) holding the first admin credential.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// Prefix of operator bearer secrets.
pub const OPERATOR_TOKEN_PREFIX: &str = "wop_";

/// The control API routes.
pub fn router() -> Router<AppState> {
    Router::new().merge(agents::router()).merge(sessions::router())
}

/// A random id with a prefix: 20 characters of base32 (100 bits).
pub fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bytes = [0u8; 20];
    // The thread's ChaCha generator, seeded from the OS and reseeded by it: one
    // id per decision would otherwise cost a `getrandom` system call each.
    rand::thread_rng().fill_bytes(&mut bytes);
    let suffix: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET.get(usize::from(b % 32)).copied().unwrap_or(b'a')))
        .collect();
    format!("{prefix}{suffix}")
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates the first admin credential when there is no operator yet; returns the
/// file it was written to.
pub async fn bootstrap_admin(
    state: &AppState,
    dir: &datadir::DataDir,
) -> Result<Option<PathBuf>, ServeError> {
    let setup = |e: String| ServeError::Setup(e);
    if state.directory.operator_count().map_err(|e| setup(e.to_string()))? > 0 {
        return Ok(None);
    }
    let path = dir.root().join(ADMIN_TOKEN_FILE);
    // The token file is written first, then the event, then the operator. A start
    // that stopped part-way left the file (and maybe the event): finish that
    // bootstrap, with the same token and the same operator, instead of logging the
    // creation of a second admin that never existed.
    let left = std::fs::read_to_string(&path).ok().map(|t| t.trim().to_owned());
    let token = match left {
        Some(t) if t.starts_with(OPERATOR_TOKEN_PREFIX) && t.len() > OPERATOR_TOKEN_PREFIX.len() + 32 => t,
        _ => {
            let mut secret = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut secret);
            let token = format!("{OPERATOR_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
            if path.exists() {
                std::fs::remove_file(&path)
                    .map_err(|e| setup(format!("cannot replace `{}`: {e}", path.display())))?;
            }
            datadir::write_private_file(&path, format!("{token}\n").as_bytes())
                .map_err(|e| setup(e.to_string()))?;
            token
        }
    };
    let token_sha256 = sha256_hex(&token);
    // Derived from the token, so a resumed bootstrap names the same operator.
    let id = format!("opr_{}", token_sha256.get(..20).unwrap_or(&token_sha256));
    let operator = OperatorRecord {
        id,
        name: "bootstrap admin".into(),
        role: Role::Admin,
        token_sha256,
        created_at: state.clock.now().unix_timestamp(),
        revoked: false,
    };
    if !creation_logged(state, &operator.id).map_err(|e| setup(e.to_string()))? {
        record(
            state,
            "operator.created",
            "system",
            &operator.id,
            Severity::Info,
            serde_json::json!({"role": "admin"}),
        )
        .await
        .map_err(|e| setup(e.to_string()))?;
    }
    state.directory.put_operator(&operator).map_err(|e| setup(e.to_string()))?;
    Ok(Some(path))
}

/// Entries a first start looks through for its own bootstrap event (the log of a
/// data directory without operators holds only what its first start wrote).
const BOOTSTRAP_SCAN_ENTRIES_MAX: u64 = 10_000;

/// True if the log already records the bootstrap admin `id`'s creation.
fn creation_logged(state: &AppState, id: &str) -> Result<bool, warden_store::StoreError> {
    let end = state.log.sequenced_size().min(BOOTSTRAP_SCAN_ENTRIES_MAX);
    let leaves = state.log.store().read_leaves(0, end)?;
    Ok(leaves.iter().any(|leaf| {
        serde_json::from_slice::<serde_json::Value>(leaf).is_ok_and(|e| {
            e.get("kind").and_then(|k| k.as_str()) == Some("operator.created")
                && e.get("subject").and_then(|s| s.as_str()) == Some(id)
        })
    }))
}

/// Writes an administrative event to the log; the change it records must not
/// happen if this fails (fail closed).
pub async fn record(
    state: &AppState,
    kind: &str,
    actor: &str,
    subject: &str,
    severity: Severity,
    details: serde_json::Value,
) -> Result<u64, ApiError> {
    let event = AdminEvent {
        kind: kind.to_owned(),
        actor: actor.to_owned(),
        subject: subject.to_owned(),
        severity,
        details,
        received_at: format_rfc3339(state.clock.now()),
        source: "warden".into(),
    };
    let leaf = event.to_leaf().map_err(|e| ApiError::Unavailable(format!("cannot encode event: {e}")))?;
    Ok(state.log.append(vec![NewLeaf::new(leaf, None)]).await?)
}

/// An authenticated operator.
#[derive(Debug, Clone)]
pub struct Operator(pub OperatorRecord);

impl Operator {
    /// Refuses unless the operator has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.0.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                format!("operator role `{:?}` may not do this", self.0.role).to_lowercase(),
            ))
        }
    }

    /// Requires the admin role.
    pub fn admin(&self) -> Result<(), ApiError> {
        self.require(&[Role::Admin])
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token = header
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "the control API needs an operator credential: `Authorization: Bearer wop_…`".into(),
                )
            })?;
        if !token.starts_with(OPERATOR_TOKEN_PREFIX) {
            // An agent credential (or anything else) at the control API: refuse and
            // record it, because it is how an agent would try to govern itself.
            let path = parts.uri.path().to_owned();
            let _ = record(state, "governance.denied", "unknown-bearer", &path, Severity::High,
                serde_json::json!({"reason": "a non-operator credential called the control API", "path": path})).await;
            return Err(ApiError::Forbidden("agent credentials can never call the control API".into()));
        }
        let found = state.directory.operator_by_token(&sha256_hex(token))?;
        match found {
            Some(op) if !op.revoked => Ok(Self(op)),
            _ => Err(ApiError::Unauthorized("operator credential is unknown or revoked".into())),
        }
    }
}
