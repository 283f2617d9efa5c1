//! Approvals: an `approve` decision holds the agent's request and opens an
//! approval with its evidence packet; an operator approves or denies it (through
//! [`routes`]), or the hold times out; then the held request proceeds or fails.
//!
//! Every step is an event in the log, written before the step takes effect:
//! `approval.requested` (with the SHA-256 of the evidence packet), then one of
//! `approval.approved`, `approval.denied` or `approval.expired` (with the actor).
//! An approval is decided once: decisions are serialized on this node, and the
//! store moves an approval out of `pending` with a compare-and-set.
//!
//! Held requests live in this process. When the process dies, the held requests
//! die with it, so start-up marks every approval still pending as expired
//! ([`Approvals::expire_orphaned`]); a hold whose caller goes away (the agent
//! disconnected) expires its approval the same way.

pub mod routes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use warden_core::admin::Severity;
use warden_core::event::format_rfc3339;
use warden_store::approvals::{
    ApprovalDecision, ApprovalRecord, ApprovalStatus, ApprovalStore, DecideResult,
};
use warden_store::directory::Role;

use crate::AppState;
use crate::activity::RecentAction;
use crate::control::{Operator, new_id, record};
use crate::error::ApiError;

/// How long a request is held when the caller has no configured limit.
pub const HOLD_TIMEOUT_DEFAULT: Duration = Duration::from_secs(300);
/// The longest a request may be held (one day, as `[gateway] hold_timeout_ms`
/// allows); longer timeouts are cut to this.
pub const HOLD_TIMEOUT_MAX: Duration = Duration::from_secs(86_400);
/// Prefix of approval ids.
pub const APPROVAL_ID_PREFIX: &str = "apr_";
/// Most requests held at once on this node.
pub const PENDING_MAX: usize = 1_000;
/// Most requests of one session held at once.
pub const PENDING_PER_SESSION_MAX: usize = 16;
/// Reason recorded for approvals that were pending when the process stopped.
pub const RESTART_REASON: &str = "the server restarted while the request was held";
/// Reason recorded when the held request went away before anyone decided.
pub const CANCELLED_REASON: &str = "the held request was cancelled before anyone decided";

/// Longest operator reason, in characters.
const REASON_CHARS_MAX: usize = 1_024;
/// Longest method.
const METHOD_CHARS_MAX: usize = 64;
/// Longest target, intent, resource, id or asset.
const NAME_CHARS_MAX: usize = 2_048;
/// Longest summary or rollback path.
const TEXT_CHARS_MAX: usize = 4_096;
/// Most affected assets or reasons in one packet.
const LIST_ITEMS_MAX: usize = 64;
/// Pending approvals expired per page at start-up.
const RECOVERY_PAGE: usize = 500;

/// What the agent asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedAction {
    /// HTTP method, or the MCP method (`tools/call`).
    pub method: String,
    /// The path (HTTP) or tool name (MCP).
    pub target: String,
    /// `sha256:<hex>` of the arguments.
    pub argument_digest: String,
    /// A readable one-line summary for the approver.
    pub summary: String,
}

/// What the gateway knows about a held action: the evidence an approver decides on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidencePacket {
    /// The `approve` decision that held it (`dec_…`).
    pub decision_id: String,
    /// The requesting agent.
    pub agent_id: String,
    /// Its session.
    pub session_id: String,
    /// The intent.
    pub intent: String,
    /// The destination's id.
    pub resource: String,
    /// The planned action.
    pub action: PlannedAction,
    /// What the action would touch.
    pub affected_assets: Vec<String>,
    /// How to undo it, when the agent supplied a rollback path.
    pub rollback: Option<String>,
    /// The decision's reasons.
    pub reasons: Vec<String>,
}

/// The evidence as stored, shown and digested: the packet, and what Warden adds.
#[derive(Debug, Clone, Serialize)]
struct Evidence<'a> {
    #[serde(flatten)]
    packet: &'a EvidencePacket,
    /// The session's recent actions on this node, oldest first.
    recent_actions: Vec<RecentAction>,
    /// The session's risk, 0 (none) to 1.
    risk: f64,
    /// RFC 3339.
    requested_at: String,
    /// RFC 3339: when the hold times out.
    expires_at: String,
}

/// How a hold ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalOutcome {
    /// An operator approved: forward the held request.
    Approved {
        /// The approval.
        approval_id: String,
        /// The operator (`opr_…`).
        by: String,
    },
    /// An operator denied: fail the held request.
    Denied {
        /// The approval.
        approval_id: String,
        /// The operator (`opr_…`).
        by: String,
        /// The operator's reason, or a default one.
        reason: String,
    },
    /// Nobody decided in time: fail the held request.
    TimedOut {
        /// The approval.
        approval_id: String,
    },
}

/// The session's risk, 0 (none) to 1, given the agent and session ids.
pub type RiskSource = Arc<dyn Fn(&str, &str) -> f64 + Send + Sync>;

/// An operator's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let the held request proceed.
    Approve,
    /// Fail the held request.
    Deny,
}

/// Open approvals and the requests they hold.
pub struct Approvals {
    store: Arc<dyn ApprovalStore>,
    /// Held requests on this node, by approval id: the session and the channel
    /// that releases the hold.
    waiters: Mutex<HashMap<String, (String, oneshot::Sender<ApprovalOutcome>)>>,
    /// Serializes decisions, so the log never records two for one approval.
    deciding: tokio::sync::Mutex<()>,
    risk: RwLock<Option<RiskSource>>,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.waiters.lock().map_or(0, |w| w.len());
        f.debug_struct("Approvals").field("store", &self.store).field("held", &held).finish_non_exhaustive()
    }
}

fn sha256_of(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn rfc3339(unix_s: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_s).map(format_rfc3339).unwrap_or_default()
}

fn check_text(field: &str, value: &str, max: usize, required: bool) -> Result<(), ApiError> {
    if required && value.trim().is_empty() {
        return Err(ApiError::field(field, "is required"));
    }
    if value.chars().count() > max {
        return Err(ApiError::field(field, format!("must have at most {max} characters")));
    }
    Ok(())
}

fn check_list(field: &str, items: &[String]) -> Result<(), ApiError> {
    if items.len() > LIST_ITEMS_MAX {
        return Err(ApiError::field(field, format!("must have at most {LIST_ITEMS_MAX} items")));
    }
    items.iter().try_for_each(|i| check_text(field, i, NAME_CHARS_MAX, false))
}

/// Checks a packet's fields are present and bounded.
fn check_packet(p: &EvidencePacket) -> Result<(), ApiError> {
    check_text("decision_id", &p.decision_id, NAME_CHARS_MAX, true)?;
    check_text("agent_id", &p.agent_id, NAME_CHARS_MAX, true)?;
    check_text("session_id", &p.session_id, NAME_CHARS_MAX, true)?;
    check_text("intent", &p.intent, NAME_CHARS_MAX, true)?;
    check_text("resource", &p.resource, NAME_CHARS_MAX, false)?;
    check_text("action.method", &p.action.method, METHOD_CHARS_MAX, true)?;
    check_text("action.target", &p.action.target, NAME_CHARS_MAX, false)?;
    check_text("action.summary", &p.action.summary, TEXT_CHARS_MAX, false)?;
    let digest_ok = p
        .action
        .argument_digest
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if !digest_ok {
        return Err(ApiError::field("action.argument_digest", "must be `sha256:` and 64 hex digits"));
    }
    check_list("affected_assets", &p.affected_assets)?;
    check_list("reasons", &p.reasons)?;
    if let Some(r) = &p.rollback {
        check_text("rollback", r, TEXT_CHARS_MAX, false)?;
    }
    Ok(())
}

/// Checks an approval id's shape (`apr_` and 1 to 64 of `[A-Za-z0-9_-]`).
pub fn check_id(id: &str) -> Result<(), ApiError> {
    let ok = id.strip_prefix(APPROVAL_ID_PREFIX).is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 64
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::field("id", format!("`{id}` is not an approval id (`{APPROVAL_ID_PREFIX}…`)")))
    }
}

/// Checks an operator's reason.
pub fn check_reason(reason: Option<&str>) -> Result<(), ApiError> {
    if let Some(r) = reason
        && (r.chars().count() > REASON_CHARS_MAX || r.chars().any(|c| c.is_control() && c != '\n'))
    {
        return Err(ApiError::field(
            "reason",
            format!("must have at most {REASON_CHARS_MAX} printable characters"),
        ));
    }
    Ok(())
}

/// The outcome a decided approval stands for.
fn outcome_of(r: &ApprovalRecord) -> Option<ApprovalOutcome> {
    let approval_id = r.id.clone();
    let by = r.decided_by.clone().unwrap_or_default();
    match r.status {
        ApprovalStatus::Pending => None,
        ApprovalStatus::Approved => Some(ApprovalOutcome::Approved { approval_id, by }),
        ApprovalStatus::Denied => {
            let reason = r.reason.clone().unwrap_or_else(|| format!("denied by operator `{by}`"));
            Some(ApprovalOutcome::Denied { approval_id, by, reason })
        }
        ApprovalStatus::Expired => Some(ApprovalOutcome::TimedOut { approval_id }),
    }
}

/// Expires the approval if its hold goes away without an answer (the caller's
/// future was dropped: the agent disconnected, or a request timeout fired).
struct HoldGuard {
    state: Option<AppState>,
    id: String,
}

impl HoldGuard {
    fn disarm(mut self) {
        self.state = None;
    }
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        let Some(state) = self.state.take() else { return };
        state.approvals.forget_waiter(&self.id);
        let id = std::mem::take(&mut self.id);
        // Without a runtime (the process is shutting down) start-up recovery
        // expires it instead.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                match state.approvals.expire(&state, &id, CANCELLED_REASON).await {
                    // Cancelled before it was stored: there is nothing to expire.
                    Ok(_) | Err(ApiError::NotFound(_)) => {}
                    Err(e) => {
                        tracing::error!(approval = %id, error = %e, "a cancelled hold could not be expired");
                    }
                }
            });
        }
    }
}

impl Approvals {
    /// Approvals kept in `store`.
    pub fn new(store: Arc<dyn ApprovalStore>) -> Self {
        Self {
            store,
            waiters: Mutex::default(),
            deciding: tokio::sync::Mutex::new(()),
            risk: RwLock::new(None),
        }
    }

    /// Where the session's risk comes from (the behavior engine); until one is
    /// set, every session's risk is 0.
    pub fn set_risk_source(&self, source: RiskSource) {
        if let Ok(mut r) = self.risk.write() {
            *r = Some(source);
        }
    }

    fn risk(&self, agent_id: &str, session_id: &str) -> f64 {
        let source = self.risk.read().ok().and_then(|r| r.clone());
        let risk = source.map_or(0.0, |f| f(agent_id, session_id));
        // An unusable score is treated as the highest risk, never as none.
        if risk.is_finite() { risk.clamp(0.0, 1.0) } else { 1.0 }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ApprovalStore> {
        &self.store
    }

    /// Requests held on this node now.
    pub fn held(&self) -> usize {
        self.waiters.lock().map_or(0, |w| w.len())
    }

    fn forget_waiter(&self, id: &str) -> Option<oneshot::Sender<ApprovalOutcome>> {
        self.waiters.lock().ok().and_then(|mut w| w.remove(id)).map(|(_, tx)| tx)
    }

    /// Opens an approval for `packet` (durably, logged as `approval.requested` with
    /// the evidence digest), adds the session's recent actions and risk, waits up
    /// to `timeout` (at most [`HOLD_TIMEOUT_MAX`]) for an operator, and returns the
    /// outcome. A timeout is logged as `approval.expired` and returns `TimedOut`.
    ///
    /// Errors (a bad packet, too many held requests, the log or store failing)
    /// mean the request must fail: nothing was approved.
    pub async fn hold(
        &self,
        state: &AppState,
        packet: EvidencePacket,
        timeout: Duration,
    ) -> Result<ApprovalOutcome, ApiError> {
        check_packet(&packet)?;
        let timeout = timeout.min(HOLD_TIMEOUT_MAX);
        let now = state.clock.now().unix_timestamp();
        let timeout_s =
            i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX) + i64::from(timeout.subsec_nanos() > 0);
        let expires_at = now.saturating_add(timeout_s);
        let id = new_id(APPROVAL_ID_PREFIX);
        let evidence = Evidence {
            recent_actions: state.activity.recent(&packet.session_id),
            risk: self.risk(&packet.agent_id, &packet.session_id),
            requested_at: rfc3339(now),
            expires_at: rfc3339(expires_at),
            packet: &packet,
        };
        let canonical = warden_core::canonical::to_canonical_vec(&evidence)
            .map_err(|e| ApiError::Unavailable(format!("cannot encode the evidence packet: {e}")))?;
        let evidence_sha256 = sha256_of(&canonical);
        let packet_json = serde_json::to_value(&evidence)
            .map_err(|e| ApiError::Unavailable(format!("cannot encode the evidence packet: {e}")))?;

        // Register the waiter first, so a decision made the moment the approval
        // exists finds it.
        let (tx, mut rx) = oneshot::channel();
        {
            let mut waiters =
                self.waiters.lock().map_err(|_| ApiError::Unavailable("approvals are unavailable".into()))?;
            if waiters.len() >= PENDING_MAX {
                return Err(ApiError::Unavailable(format!(
                    "{PENDING_MAX} requests are already held for approval on this server; retry later"
                )));
            }
            let of_session = waiters.values().filter(|(s, _)| *s == packet.session_id).count();
            if of_session >= PENDING_PER_SESSION_MAX {
                return Err(ApiError::Conflict(format!(
                    "session `{}` already has {PENDING_PER_SESSION_MAX} requests waiting for approval",
                    packet.session_id
                )));
            }
            waiters.insert(id.clone(), (packet.session_id.clone(), tx));
        }
        // From here on, if the caller goes away the waiter is removed and the
        // approval (once stored) expires.
        let guard = HoldGuard { state: Some(state.clone()), id: id.clone() };
        let details = json!({
            "evidence_sha256": evidence_sha256, "decision_id": packet.decision_id,
            "session_id": packet.session_id, "intent": packet.intent, "resource": packet.resource,
            "method": packet.action.method, "target": packet.action.target,
            "argument_digest": packet.action.argument_digest, "risk": evidence.risk,
            "expires_at": rfc3339(expires_at),
        });
        if let Err(e) =
            record(state, "approval.requested", &packet.agent_id, &id, Severity::Info, details).await
        {
            self.forget_waiter(&id);
            guard.disarm();
            return Err(e);
        }
        let approval = ApprovalRecord {
            id: id.clone(),
            status: ApprovalStatus::Pending,
            session_id: packet.session_id.clone(),
            packet: packet_json,
            evidence_sha256,
            created_at: now,
            expires_at,
            decided_at: None,
            decided_by: None,
            reason: None,
        };
        if let Err(e) = self.store.create_approval(&approval) {
            self.forget_waiter(&id);
            guard.disarm();
            // The log says it was requested; say how it ended, if the log can.
            let _ = record(
                state,
                "approval.expired",
                "system",
                &id,
                Severity::Warning,
                json!({"reason": format!("the approval could not be stored: {e}")}),
            )
            .await;
            return Err(e.into());
        }
        tracing::info!(approval = %id, session = %packet.session_id, intent = %packet.intent, "request held for approval");

        let waited = tokio::time::timeout(timeout, &mut rx).await;
        let outcome = match waited {
            Ok(Ok(outcome)) => Ok(outcome),
            // Timed out, or the waiter was dropped without an answer: expire it,
            // unless a decision got there first (then that decision stands).
            _ => {
                let reason = format!("no operator decided within {} s", timeout.as_secs());
                self.expire(state, &id, &reason).await
            }
        };
        guard.disarm();
        outcome
    }

    /// Expires a pending approval (logged as `approval.expired` by `system`) and
    /// releases its hold; returns how the approval ended (if it was already
    /// decided, that decision).
    pub async fn expire(
        &self,
        state: &AppState,
        id: &str,
        reason: &str,
    ) -> Result<ApprovalOutcome, ApiError> {
        let _one_at_a_time = self.deciding.lock().await;
        let current =
            self.store.approval(id)?.ok_or_else(|| ApiError::NotFound(format!("no approval `{id}`")))?;
        if let Some(outcome) = outcome_of(&current) {
            return Ok(outcome);
        }
        let outcome = self.settle(state, &current, ApprovalStatus::Expired, "system", Some(reason)).await?;
        Ok(outcome_of(&outcome).unwrap_or(ApprovalOutcome::TimedOut { approval_id: id.to_owned() }))
    }

    /// Logs and stores a decision for a pending approval, then releases its hold.
    /// The caller holds `deciding`.
    async fn settle(
        &self,
        state: &AppState,
        current: &ApprovalRecord,
        status: ApprovalStatus,
        by: &str,
        reason: Option<&str>,
    ) -> Result<ApprovalRecord, ApiError> {
        let kind = match status {
            ApprovalStatus::Approved => "approval.approved",
            ApprovalStatus::Denied => "approval.denied",
            ApprovalStatus::Expired | ApprovalStatus::Pending => "approval.expired",
        };
        let decision_id = current.packet.get("decision_id").cloned().unwrap_or(Value::Null);
        record(
            state,
            kind,
            by,
            &current.id,
            Severity::Info,
            json!({"reason": reason, "decision_id": decision_id, "session_id": current.session_id,
                "evidence_sha256": current.evidence_sha256}),
        )
        .await?;
        let decision = ApprovalDecision {
            status,
            at: state.clock.now().unix_timestamp(),
            by: by.to_owned(),
            reason: reason.map(str::to_owned),
        };
        let decided = match self.store.decide_approval(&current.id, &decision)? {
            DecideResult::Decided(r) => r,
            DecideResult::AlreadyDecided(r) => return Err(already_decided(&r)),
            DecideResult::NotFound => {
                return Err(ApiError::NotFound(format!("no approval `{}`", current.id)));
            }
        };
        if let (Some(tx), Some(outcome)) = (self.forget_waiter(&decided.id), outcome_of(&decided)) {
            // The holder may have gone in the meantime; then there is nobody to tell.
            let _ = tx.send(outcome);
        }
        tracing::info!(approval = %decided.id, status = decided.status.as_str(), by, "approval settled");
        Ok(decided)
    }

    /// An operator's approve or deny: needs the approver or admin role; refused
    /// with a conflict if the approval is no longer pending. Answers only after the
    /// decision is logged and stored, and then releases the held request.
    pub async fn decide(
        &self,
        state: &AppState,
        operator: &Operator,
        id: &str,
        verdict: Verdict,
        reason: Option<&str>,
    ) -> Result<ApprovalRecord, ApiError> {
        operator.require(&[Role::Admin, Role::Approver])?;
        check_id(id)?;
        check_reason(reason)?;
        let _one_at_a_time = self.deciding.lock().await;
        let current =
            self.store.approval(id)?.ok_or_else(|| ApiError::NotFound(format!("no approval `{id}`")))?;
        if current.status != ApprovalStatus::Pending {
            return Err(already_decided(&current));
        }
        if state.clock.now().unix_timestamp() > current.expires_at {
            // Its hold has timed out (or its holder is gone); it cannot be released.
            let expired = self
                .settle(state, &current, ApprovalStatus::Expired, "system", Some("the hold timed out"))
                .await?;
            return Err(already_decided(&expired));
        }
        let status = match verdict {
            Verdict::Approve => ApprovalStatus::Approved,
            Verdict::Deny => ApprovalStatus::Denied,
        };
        self.settle(state, &current, status, &operator.0.id, reason).await
    }

    /// At start-up: every approval still pending belongs to a request held by a
    /// process that is gone, so none can be released. Marks each expired with
    /// [`RESTART_REASON`] and logs it; returns how many.
    pub async fn expire_orphaned(&self, state: &AppState) -> Result<usize, ApiError> {
        let mut count = 0;
        loop {
            let pending = self.store.approvals(Some(ApprovalStatus::Pending), RECOVERY_PAGE)?;
            if pending.is_empty() {
                return Ok(count);
            }
            let _one_at_a_time = self.deciding.lock().await;
            let mut settled = 0;
            for approval in pending {
                // Held by this process (opened after start-up): not an orphan.
                if self.waiters.lock().is_ok_and(|w| w.contains_key(&approval.id)) {
                    continue;
                }
                self.settle(state, &approval, ApprovalStatus::Expired, "system", Some(RESTART_REASON))
                    .await?;
                settled += 1;
            }
            if settled == 0 {
                return Ok(count);
            }
            count += settled;
        }
    }
}

fn already_decided(r: &ApprovalRecord) -> ApiError {
    let by = r.decided_by.as_deref().unwrap_or("unknown");
    let when = r.decided_at.map(rfc3339).unwrap_or_default();
    let why = r.reason.as_deref().map(|w| format!(" ({w})")).unwrap_or_default();
    ApiError::Conflict(format!(
        "approval `{}` is already {} by `{by}` at {when}{why}; a decision is final",
        r.id,
        r.status.as_str()
    ))
}
