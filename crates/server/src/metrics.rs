//! `GET /metrics`: what the server has decided, forwarded and logged, in the
//! Prometheus text format, for an operator credential of any role.
//!
//! Counters are atomics bumped on the request path; gauges are read from the
//! log, the event index and the approvals when scraped. Label values come from
//! closed sets (tiers, refusal reasons, detectors, outcomes) or from the
//! configuration (upstream names), never from what an agent sends.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use warden_behavior::Detector;
use warden_core::metrics::{Counter, Exposition, Histogram, Kind};
use warden_policy::Tier;

use crate::AppState;
use crate::control::Operator;
use crate::error::ApiError;

const TIERS: [Tier; 4] = [Tier::Allow, Tier::Confirm, Tier::Approve, Tier::Deny];

/// The server's counters.
#[derive(Debug)]
pub struct Metrics {
    started_unix_s: f64,
    decisions: [Counter; 4],
    refusals: Mutex<BTreeMap<&'static str, u64>>,
    unrecorded: Counter,
    decision_seconds: Histogram,
    decision_log_seconds: Histogram,
    anomalies: [Counter; 6],
    // Upstream name, then outcome: looked up by `&str`, so counting an action
    // allocates only the first time an upstream is seen.
    actions: Mutex<BTreeMap<String, BTreeMap<&'static str, u64>>>,
    action_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started_unix_s: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
            decisions: Default::default(),
            refusals: Mutex::default(),
            unrecorded: Counter::default(),
            decision_seconds: Histogram::latency(),
            decision_log_seconds: Histogram::latency(),
            anomalies: Default::default(),
            actions: Mutex::default(),
            action_seconds: Histogram::latency(),
        }
    }
}

impl Metrics {
    /// A decision that is in the log, and how long it took (including the wait
    /// for its commit).
    pub fn decided(&self, tier: Tier, refusal: Option<&'static str>, took: Duration, log_wait: Duration) {
        self.decision_log_seconds.observe(log_wait);
        if let Some(c) = TIERS.iter().position(|t| *t == tier).and_then(|i| self.decisions.get(i)) {
            c.inc();
        }
        if let Some(r) = refusal
            && let Ok(mut m) = self.refusals.lock()
        {
            *m.entry(r).or_default() += 1;
        }
        self.decision_seconds.observe(took);
    }

    /// A decision the log could not record (the action was refused with a 503).
    pub fn unrecorded(&self) {
        self.unrecorded.inc();
    }

    /// An anomaly event committed with a decision.
    pub fn anomaly(&self, detector: Detector) {
        if let Some(c) = Detector::ALL.iter().position(|d| *d == detector).and_then(|i| self.anomalies.get(i))
        {
            c.inc();
        }
    }

    /// A forwarded action that ended with `outcome` after `took`.
    pub fn action(&self, upstream: &str, outcome: &'static str, took: Duration) {
        if let Ok(mut m) = self.actions.lock() {
            let outcomes = match m.get_mut(upstream) {
                Some(o) => o,
                None => m.entry(upstream.to_owned()).or_default(),
            };
            *outcomes.entry(outcome).or_default() += 1;
        }
        self.action_seconds.observe(took);
    }

    /// The exposition text for `state`.
    pub fn render(&self, state: &AppState) -> String {
        let mut e = Exposition::default();
        e.single(
            "warden_start_time_seconds",
            "When this server started, Unix seconds.",
            Kind::Gauge,
            self.started_unix_s,
        );

        e.family("warden_decisions_total", "Decisions recorded in the log, by tier.", Kind::Counter);
        for (tier, c) in TIERS.iter().zip(&self.decisions) {
            e.sample("warden_decisions_total", &[("tier", tier.as_str())], c.get() as f64);
        }
        e.family(
            "warden_refusals_total",
            "Decisions Warden refused before or beside policy, by reason.",
            Kind::Counter,
        );
        if let Ok(m) = self.refusals.lock() {
            for (reason, n) in m.iter() {
                e.sample("warden_refusals_total", &[("reason", reason)], *n as f64);
            }
        }
        e.single(
            "warden_decisions_unrecorded_total",
            "Actions refused with 503 because the log could not record their decision.",
            Kind::Counter,
            self.unrecorded.get() as f64,
        );
        e.single_histogram(
            "warden_decision_seconds",
            "Time to decide, including the wait for the decision's commit.",
            &self.decision_seconds.snapshot(),
        );
        e.single_histogram(
            "warden_decision_log_seconds",
            "Of the time to decide, the wait for the log to record the decision.",
            &self.decision_log_seconds.snapshot(),
        );

        e.family("warden_anomalies_total", "Anomaly events logged, by detector.", Kind::Counter);
        for (d, c) in Detector::ALL.iter().zip(&self.anomalies) {
            e.sample("warden_anomalies_total", &[("detector", d.name())], c.get() as f64);
        }

        e.family(
            "warden_gateway_actions_total",
            "Forwarded actions, by upstream and outcome.",
            Kind::Counter,
        );
        if let Ok(m) = self.actions.lock() {
            for (upstream, outcomes) in m.iter() {
                for (outcome, n) in outcomes {
                    e.sample(
                        "warden_gateway_actions_total",
                        &[("upstream", upstream), ("outcome", outcome)],
                        *n as f64,
                    );
                }
            }
        }
        e.single_histogram(
            "warden_gateway_action_seconds",
            "Forwarded actions, from forwarding to the end of the answer.",
            &self.action_seconds.snapshot(),
        );
        e.single(
            "warden_approvals_held",
            "Requests held waiting for a human.",
            Kind::Gauge,
            state.approvals.held() as f64,
        );

        let forensics = &state.forensics;
        e.single(
            "warden_forensic_sessions",
            "Sessions in forensics mode.",
            Kind::Gauge,
            forensics.sessions_on() as f64,
        )
        .single(
            "warden_forensic_captures_live",
            "Forensic captures being filled or waiting to be stored.",
            Kind::Gauge,
            forensics.captures_live() as f64,
        )
        .single(
            "warden_forensic_captures_skipped_total",
            "Actions of sessions in forensics mode forwarded without a capture (too many alive at once).",
            Kind::Counter,
            forensics.captures_skipped() as f64,
        );

        let log = &state.log;
        let stats = log.stats();
        let up = if log.is_writer_running() { 1.0 } else { 0.0 };
        let checkpoint = log.checkpoint().map_or(0.0, |c| c.size as f64);
        e.single("warden_log_writer_up", "1 while the log writer runs.", Kind::Gauge, up)
            .single(
                "warden_log_sequenced_entries",
                "Entries sequenced (written: a crash of Warden cannot lose them).",
                Kind::Gauge,
                log.sequenced_size() as f64,
            )
            .single(
                "warden_log_synced_entries",
                "Entries synced to stable storage (a power loss cannot lose them).",
                Kind::Gauge,
                log.synced_size() as f64,
            )
            .single(
                "warden_log_integrated_entries",
                "Entries integrated into the Merkle tree.",
                Kind::Gauge,
                log.head().size as f64,
            )
            .single(
                "warden_log_checkpoint_entries",
                "Size of the latest signed checkpoint.",
                Kind::Gauge,
                checkpoint,
            )
            .single(
                "warden_log_commits_total",
                "Sequencing commits (written; synced by the syncer).",
                Kind::Counter,
                stats.commits.get() as f64,
            )
            .single(
                "warden_log_committed_entries_total",
                "Entries written by those commits.",
                Kind::Counter,
                stats.committed_leaves.get() as f64,
            )
            .single(
                "warden_log_commit_failures_total",
                "Sequencing commits that failed.",
                Kind::Counter,
                stats.commit_failures.get() as f64,
            )
            .single(
                "warden_log_queue_full_total",
                "Appends refused because the writer queue was full.",
                Kind::Counter,
                stats.queue_full.get() as f64,
            )
            .single_histogram(
                "warden_log_commit_seconds",
                "Duration of a sequencing commit (writing, not syncing).",
                &stats.commit_seconds.snapshot(),
            )
            .single(
                "warden_log_syncs_total",
                "Syncs (fdatasync of written entries), each covering every commit before it.",
                Kind::Counter,
                stats.syncs.get() as f64,
            )
            .single(
                "warden_log_sync_failures_total",
                "Syncs that failed; after one the log acknowledges nothing more.",
                Kind::Counter,
                stats.sync_failures.get() as f64,
            )
            .single_histogram(
                "warden_log_sync_seconds",
                "Duration of a sync.",
                &stats.sync_seconds.snapshot(),
            )
            .single_histogram(
                "warden_log_queue_seconds",
                "How long appends waited for the writer before their commit began.",
                &stats.queue_seconds.snapshot(),
            )
            .single_histogram(
                "warden_log_integrate_seconds",
                "Duration of an integration (extending the Merkle tree).",
                &stats.integrate_seconds.snapshot(),
            )
            .single(
                "warden_event_index_entries",
                "Log entries the event index (replay, histories) covers.",
                Kind::Gauge,
                state.events.indexed_size() as f64,
            );
        e.finish()
    }
}

/// `GET /metrics`.
async fn metrics(State(state): State<AppState>, _operator: Operator) -> Result<impl IntoResponse, ApiError> {
    let text = state.metrics.render(&state);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text))
}

/// The route.
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}
