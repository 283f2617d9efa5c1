//! The behavior engine in the server: every action Warden decides is observed
//! before policy; findings become `anomaly` events in the log beside the decision
//! they came with; risk goes into the policy context and the approval
//! evidence; a tripped circuit breaker holds new sessions of its class for a human.
//!
//! Persistence: the engine's state is snapshotted to `behavior.snapshot` in the
//! data directory (atomically: write, fsync, rename) every
//! `behavior.snapshot_interval_s` and at shutdown, together with the log size it
//! covers. At start the snapshot is restored and the decisions logged after it are
//! observed again (and operators' breaker resets applied again, in log order), so a
//! `kill -9` loses no learning: the log is the source of truth.
//!
//! Self-reported telemetry is learned from only when the agent sent it under its own
//! session token (`source: self_reported_authenticated`): anonymous telemetry names an
//! agent nobody vouches for, and learning from it would let anyone raise (or
//! launder) another agent's risk. What an agent reports is learned under intents,
//! a resource and a class of its own ([`reported_observation`]), so it can raise the
//! agent's risk (a new kind of action, a burst, off-hours work) but can never make
//! an action Warden observes at the gateway look familiar.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use warden_behavior::{BreakerAction, Engine, Finding, Observation, Outcome};
use warden_core::Clock;
use warden_core::admin::{AdminEvent, DecisionEvent, Severity};
use warden_core::event::{ActionType, LoggedEvent, Source};
use warden_store::NewLeaf;
use warden_store::log::Log;

use crate::AppState;
use crate::control::{Operator, record};
use crate::error::ApiError;

/// Snapshot file name in the data directory.
pub const SNAPSHOT_FILE: &str = "behavior.snapshot";
/// Magic and version at the start of the snapshot file.
const SNAPSHOT_MAGIC: &[u8; 8] = b"WBSNAP01";
/// Leaves read per batch when catching up from the log at start.
const REPLAY_BATCH: u64 = 4_096;
/// Findings at or above this score are logged with high severity.
const HIGH_SEVERITY_SCORE: f32 = 0.6;

/// `[behavior]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BehaviorConfig {
    /// Events an agent needs before its baseline is enforced.
    pub learning_events_min: u32,
    /// Hours from an agent's first event before its baseline is enforced.
    pub learning_hours_min: u32,
    /// New sessions reaching one resource class within a minute that can trip the
    /// class's circuit breaker.
    pub surge_arrivals_min: u32,
    /// How often the engine's state is snapshotted, seconds.
    pub snapshot_interval_s: u64,
}

impl Default for BehaviorConfig {
    fn default() -> Self {
        let engine = warden_behavior::Config::default();
        Self {
            learning_events_min: engine.learning_events_min,
            learning_hours_min: u32::try_from(engine.learning_ms_min / 3_600_000).unwrap_or(24),
            surge_arrivals_min: engine.surge_arrivals_min,
            snapshot_interval_s: 30,
        }
    }
}

impl BehaviorConfig {
    /// Problems with the values, as `(key, why)`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.learning_events_min == 0 {
            out.push(("behavior.learning_events_min", "must be at least 1".to_owned()));
        }
        if self.learning_hours_min > 24 * 365 {
            out.push(("behavior.learning_hours_min", "must be at most 8760 (a year)".to_owned()));
        }
        if self.surge_arrivals_min < 2 {
            out.push(("behavior.surge_arrivals_min", "must be at least 2".to_owned()));
        }
        if !(1..=3_600).contains(&self.snapshot_interval_s) {
            out.push(("behavior.snapshot_interval_s", "must be between 1 and 3600".to_owned()));
        }
        out
    }

    fn engine_config(&self) -> warden_behavior::Config {
        warden_behavior::Config {
            learning_events_min: self.learning_events_min,
            learning_ms_min: i64::from(self.learning_hours_min) * 3_600_000,
            surge_arrivals_min: self.surge_arrivals_min,
            ..warden_behavior::Config::default()
        }
    }
}

/// The engine and where its snapshots go.
pub struct Behavior {
    engine: Engine,
    snapshot_path: PathBuf,
    /// Serializes snapshot writers (the periodic task and shutdown).
    snapshot_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Behavior {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Behavior").field("snapshot_path", &self.snapshot_path).finish_non_exhaustive()
    }
}

/// What one observation means for the decision.
#[derive(Debug, Default)]
pub struct Judgement {
    /// The session's risk, per mille, for the policy context.
    pub risk_permille: u16,
    /// Set when a circuit breaker holds this action for a human, with why.
    pub hold: Option<String>,
    /// Findings to log as `anomaly` events.
    pub findings: Vec<Finding>,
    /// Session and agent risk after the action.
    pub risk: (f32, f32),
}

impl Behavior {
    /// Restores the engine from the snapshot in `data_dir` (if any) and observes
    /// again every decision the log holds after it.
    pub fn open(
        config: &BehaviorConfig,
        clock: Arc<dyn Clock>,
        data_dir: &Path,
        log: &Log,
    ) -> Result<Self, String> {
        let snapshot_path = data_dir.join(SNAPSHOT_FILE);
        let engine_config = config.engine_config();
        let (engine, covered) = match std::fs::read(&snapshot_path) {
            Ok(bytes) => {
                let (covered, body) = split_snapshot(&bytes)
                    .ok_or_else(|| format!("{} is not a behavior snapshot", snapshot_path.display()))?;
                let engine = Engine::restore(engine_config, clock, body)
                    .map_err(|e| format!("cannot restore {}: {e}", snapshot_path.display()))?;
                (engine, covered)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (Engine::new(engine_config, clock).map_err(|e| format!("behavior: {e}"))?, 0)
            }
            Err(e) => return Err(format!("cannot read {}: {e}", snapshot_path.display())),
        };
        let behavior = Self { engine, snapshot_path, snapshot_lock: tokio::sync::Mutex::new(()) };
        let replayed = behavior.catch_up(log, covered).map_err(|e| format!("behavior catch-up: {e}"))?;
        if replayed > 0 {
            tracing::info!(replayed, from = covered, "behavior engine caught up from the log");
        }
        Ok(behavior)
    }

    /// Observes every decision and authenticated self-report in the log from `from`
    /// to its current size, and applies operators' breaker resets in order.
    fn catch_up(&self, log: &Log, from: u64) -> Result<u64, warden_store::StoreError> {
        let size = log.sequenced_size();
        let mut at = from.min(size);
        let mut replayed = 0;
        while at < size {
            let end = size.min(at + REPLAY_BATCH);
            for leaf in log.store().read_leaves(at, end)? {
                if let Ok(a) = serde_json::from_slice::<AdminEvent>(&leaf) {
                    // An operator's reset, in log order after the surge it ends.
                    if a.kind == "breaker.reset" {
                        self.engine.reset_breaker(&a.subject);
                    }
                    continue;
                }
                if let Ok(t) = serde_json::from_slice::<LoggedEvent>(&leaf) {
                    if t.source == Source::SelfReportedAuthenticated {
                        let intent = reported_intent(t.action_type);
                        let at_ms = unix_ms(&t.received_at);
                        let session = t.session_id.as_str();
                        self.engine.observe(&reported_observation(
                            t.agent_id.as_str(),
                            session,
                            at_ms,
                            &intent,
                        ));
                        replayed += 1;
                    }
                    continue;
                }
                if let Ok(d) = serde_json::from_slice::<DecisionEvent>(&leaf) {
                    let at_ms = unix_ms(&d.received_at);
                    self.engine.observe(&Observation {
                        agent: &d.actor,
                        session: &d.session_id,
                        at_unix_ms: at_ms,
                        intent: &d.intent,
                        resource: &d.resource,
                        resource_class: &d.resource_class,
                        destinations: &d.destinations,
                        self_governance: d.refusal == "self_governance",
                    });
                    replayed += 1;
                }
            }
            at = end;
        }
        Ok(replayed)
    }

    /// Observes one action before it is decided.
    pub fn judge(&self, o: &Observation<'_>) -> Judgement {
        let Outcome { findings, session_risk, agent_risk, breaker, .. } = self.engine.observe(o);
        let hold = breaker.map(|b| {
            let what = match b {
                BreakerAction::Tripped => "tripped on this session",
                BreakerAction::Held => "is open",
            };
            format!(
                "the circuit breaker of resource class `{}` {what}: new sessions in the class are held \
                 until an operator resets it (a fleet-wide surge)",
                o.resource_class
            )
        });
        let findings = findings.into_iter().filter(|f| !f.learning).collect();
        Judgement { risk_permille: permille(session_risk), hold, findings, risk: (session_risk, agent_risk) }
    }

    /// Session and agent risk now, in `[0, 1]`.
    pub fn risk(&self, agent: &str, session: &str) -> (f32, f32) {
        self.engine.risk(agent, session)
    }

    /// The engine, for operator views.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Writes a snapshot covering the log up to its current sequenced size.
    ///
    /// The size is read before the state is: a decision logged meanwhile is
    /// observed again at the next start, which only repeats what it taught.
    pub async fn snapshot(self: &Arc<Self>, log: &Log) -> Result<u64, String> {
        let _one_writer = self.snapshot_lock.lock().await;
        let covered = log.sequenced_size();
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let body = me.engine.snapshot();
            let mut bytes = Vec::with_capacity(body.len() + 16);
            bytes.extend_from_slice(SNAPSHOT_MAGIC);
            bytes.extend_from_slice(&covered.to_le_bytes());
            bytes.extend_from_slice(&body);
            write_atomically(&me.snapshot_path, &bytes)
                .map_err(|e| format!("cannot write {}: {e}", me.snapshot_path.display()))?;
            Ok(covered)
        })
        .await
        .map_err(|e| format!("snapshot task failed: {e}"))?
    }
}

fn permille(risk: f32) -> u16 {
    // Risk is in [0, 1] by the engine's invariant; clamp anyway.
    (risk.clamp(0.0, 1.0) * 1000.0).round() as u16
}

fn split_snapshot(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let rest = bytes.strip_prefix(SNAPSHOT_MAGIC.as_slice())?;
    let (covered, body) = rest.split_at_checked(8)?;
    Some((u64::from_le_bytes(covered.try_into().ok()?), body))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("snapshot.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// When a logged event was received, Unix milliseconds (0 if unreadable: the
/// server wrote it, so that does not happen).
fn unix_ms(received_at: &str) -> i64 {
    time::OffsetDateTime::parse(received_at, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp() * 1_000)
        .unwrap_or(0)
}

/// The resource every self-report is learned under.
pub const REPORTED_RESOURCE: &str = "reported:self";
/// The resource class of self-reports: a fleet-surge unit of its own.
pub const REPORTED_CLASS: &str = "self_reported";

/// The intent a self-reported action type is learned under (`reported.write`).
pub fn reported_intent(action_type: ActionType) -> String {
    format!("reported.{}", action_type.as_str())
}

/// How the engine sees one authenticated self-report: in a namespace of its own,
/// never claiming self-governance (only Warden's own view of an action can).
pub fn reported_observation<'a>(
    agent: &'a str,
    session: &'a str,
    at_unix_ms: i64,
    intent: &'a str,
) -> Observation<'a> {
    Observation {
        agent,
        session,
        at_unix_ms,
        intent,
        resource: REPORTED_RESOURCE,
        resource_class: REPORTED_CLASS,
        destinations: &[],
        self_governance: false,
    }
}

/// The log leaf of one finding: `decision_id` is the decision it came with, `None`
/// for a finding on an authenticated self-report.
pub fn anomaly_leaf(
    finding: &Finding,
    agent_id: &str,
    session_id: &str,
    decision_id: Option<&str>,
    risk: (f32, f32),
    received_at: &str,
) -> Option<NewLeaf> {
    let event = AdminEvent {
        kind: "anomaly".into(),
        actor: agent_id.to_owned(),
        subject: session_id.to_owned(),
        severity: if finding.score >= HIGH_SEVERITY_SCORE { Severity::High } else { Severity::Warning },
        details: json!({
            "detector": finding.detector().name(),
            "finding": finding.kind.name(),
            "about": finding.subject,
            "score": round3(finding.score),
            "tactics": finding.tactics.iter().map(|t| t.id()).collect::<Vec<_>>(),
            "explanation": finding.explanation,
            "decision_id": decision_id,
            "session_risk": round3(risk.0),
            "agent_risk": round3(risk.1),
        }),
        received_at: received_at.to_owned(),
        source: "warden".into(),
    };
    // Scores are rounded to three decimals: canonical JSON of a float is exact.
    event.to_leaf().ok().map(|leaf| NewLeaf::new(leaf, None))
}

fn round3(x: f32) -> f64 {
    (f64::from(x) * 1000.0).round() / 1000.0
}

/// Operator routes: an agent's baseline and risk, and the circuit breakers.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/agents/{id}/behavior", get(agent_behavior))
        .route("/v1/behavior/breakers/{class}", get(breaker))
        .route("/v1/behavior/breakers/{class}/reset", post(reset_breaker))
}

async fn agent_behavior(
    State(state): State<AppState>,
    _operator: Operator,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    if state.directory.agent(&id)?.is_none() {
        return Err(ApiError::NotFound(format!("no agent `{id}`")));
    }
    let (_, agent_risk) = state.behavior.risk(&id, "");
    let baseline = state.behavior.engine().baseline(&id);
    Ok(Json(json!({
        "agent_id": id,
        "risk": round3(agent_risk),
        "baseline": baseline.map(|b| json!({
            "events": b.events, "enforced": b.enforced, "intents": b.intents,
            "resources": b.resources, "destinations": b.destinations, "transitions": b.transitions,
        })),
    })))
}

fn check_class(class: &str) -> Result<(), ApiError> {
    let ok = !class.is_empty()
        && class.len() <= 200
        && class.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_-.:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::field(
            "class",
            "a resource class such as `prod/data/restricted` (letters, digits, / _ - . :)",
        ))
    }
}

async fn breaker(
    State(state): State<AppState>,
    _operator: Operator,
    UrlPath(class): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    check_class(&class)?;
    Ok(Json(match state.behavior.engine().breaker_state(&class) {
        warden_behavior::BreakerState::Tripped { since_unix_ms, arrivals } => {
            json!({"class": class, "state": "open", "since_unix_ms": since_unix_ms, "arrivals": arrivals})
        }
        _ => json!({"class": class, "state": "closed"}),
    }))
}

async fn reset_breaker(
    State(state): State<AppState>,
    operator: Operator,
    UrlPath(class): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    operator.require(&[warden_store::directory::Role::Admin, warden_store::directory::Role::Approver])?;
    check_class(&class)?;
    if state.behavior.engine().breaker_state(&class) == warden_behavior::BreakerState::Closed {
        return Err(ApiError::Conflict(format!("the circuit breaker of `{class}` is not open")));
    }
    // Logged first: a reset that cannot be recorded does not happen.
    record(&state, "breaker.reset", &operator.0.id, &class, Severity::Warning, json!({"class": class}))
        .await?;
    state.behavior.engine().reset_breaker(&class);
    Ok(Json(json!({"class": class, "state": "closed"})))
}
