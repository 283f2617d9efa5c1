//! The behavior engine on the decision path, in one process over a real data
//! directory: learning, anomalies logged with their decision, risk reaching the
//! policy (the default `high-risk-needs-approval`), budget charges committed with
//! decisions, and learning recovered from the log after a crash.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use serde_json::Value;
use warden_core::{AgentId, SessionId};
use warden_identity::AccessClaims;
use warden_policy::{ResourceFacts, Tier};
use warden_server::authorize::{ActionInput, decide_action};
use warden_server::behavior::BehaviorConfig;
use warden_server::{AppState, Config};
use warden_store::directory::{AgentRecord, AgentStatus, Budgets, Environment, SessionRecord, SessionStatus};

const AGENT: &str = "agt_helpdesk";
const SESSION: &str = "sess_helpdesk1";

fn config(dir: &std::path::Path) -> Config {
    Config {
        data_dir: dir.to_owned(),
        behavior: BehaviorConfig {
            learning_events_min: 30,
            learning_hours_min: 0,
            snapshot_interval_s: 3_600,
            ..BehaviorConfig::default()
        },
        ..Config::default()
    }
}

fn register(state: &AppState, budgets: Budgets) {
    state
        .directory
        .put_agent(&AgentRecord {
            id: AGENT.into(),
            owner: "support".into(),
            scopes: vec!["tickets".into()],
            environment: Environment::Prod,
            retention_class: "standard".into(),
            status: AgentStatus::Active,
            client_secret_hash: None,
            public_jwk: None,
            created_at: 0,
        })
        .unwrap();
    state
        .directory
        .put_session(&SessionRecord {
            id: SESSION.into(),
            agent_id: AGENT.into(),
            purpose: "ticket.triage".into(),
            budgets,
            status: SessionStatus::Active,
            status_reason: None,
            created_at: state.clock.now().unix_timestamp(),
            ended_at: None,
        })
        .unwrap();
}

fn claims() -> AccessClaims {
    AccessClaims {
        iss: "http://127.0.0.1:0".into(),
        sub: AgentId::parse(AGENT).unwrap(),
        aud: "http://127.0.0.1:0".into(),
        exp: i64::MAX / 2,
        nbf: 0,
        iat: 0,
        jti: "tok_test".into(),
        sid: Some(SessionId::parse(SESSION).unwrap()),
        client_id: AGENT.into(),
        scope: "tickets".into(),
        purpose: None,
    }
}

fn action(intent: &str, resource: &str, destinations: &[&str]) -> ActionInput {
    ActionInput {
        intent: intent.into(),
        resource: ResourceFacts {
            id: resource.into(),
            plane: "data".into(),
            environment: "prod".into(),
            data_class: "internal".into(),
        },
        arguments: String::new(),
        argument_destinations: destinations.iter().map(|d| (*d).to_owned()).collect(),
        bytes: 10,
        confirmed: false,
    }
}

fn leaves(state: &AppState) -> Vec<Value> {
    (0..state.log.sequenced_size())
        .map(|i| serde_json::from_slice::<Value>(&state.log.entry(i).unwrap()).unwrap())
        .collect()
}

/// Routine work: reads and updates of a few tickets, mail to one domain.
async fn routine(state: &AppState, rounds: usize) {
    for i in 0..rounds {
        let ticket = format!("ticket:{}", i % 3);
        for (intent, dest) in [("ticket.read", None), ("ticket.update", Some("email:example.com"))] {
            let dests: Vec<&str> = dest.into_iter().collect();
            let outcome = decide_action(state, &claims(), &action(intent, &ticket, &dests)).await.unwrap();
            assert_eq!(outcome.tier, Tier::Allow, "{:?}", outcome.decision.reasons);
        }
    }
}

#[tokio::test]
async fn departures_are_logged_raise_risk_and_reach_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let state = warden_server::test_state(config(dir.path())).await.unwrap();
    register(&state, Budgets::default());
    routine(&state, 40).await;
    assert!(
        leaves(&state).iter().all(|l| l["kind"] != "anomaly"),
        "routine work during and after learning raises nothing"
    );
    let baseline = state.behavior.engine().baseline(AGENT).unwrap();
    assert!(baseline.enforced, "{baseline:?}");
    assert_eq!(baseline.events, 80);

    // Credentials the agent never touched, then data out to a domain no one uses.
    let mut last = None;
    for (intent, resource, dest) in [
        ("credential.read", "vault:prod/db-password", None),
        ("ticket.update", "ticket:0", Some("email:evil.example")),
        ("ticket.update", "ticket:1", Some("host:paste.example")),
    ] {
        let dests: Vec<&str> = dest.into_iter().collect();
        last = Some(decide_action(&state, &claims(), &action(intent, resource, &dests)).await.unwrap());
    }
    let anomalies: Vec<Value> = leaves(&state).into_iter().filter(|l| l["kind"] == "anomaly").collect();
    assert!(!anomalies.is_empty());
    for a in &anomalies {
        assert_eq!(a["actor"], AGENT);
        assert_eq!(a["subject"], SESSION);
        assert!(a["details"]["explanation"].as_str().unwrap().len() > 20, "{a}");
        assert!(a["details"]["decision_id"].as_str().unwrap().starts_with("dec_"), "{a}");
    }
    let (session_risk, _) = state.behavior.risk(AGENT, SESSION);
    assert!(session_risk > 0.7, "{session_risk}");
    // The default policy holds any action of a session above 0.7 for a human.
    let last = last.unwrap();
    assert_eq!(last.tier, Tier::Approve, "{:?}", last.decision.reasons);
    assert!(last.decision.determining.iter().any(|p| p == "high-risk-needs-approval"));
    // The decision event carries what the engine needs to learn it again.
    let decision = leaves(&state)
        .into_iter()
        .rev()
        .find(|l| l["kind"] == "decision" && l["resource"] == "ticket:0")
        .unwrap();
    assert_eq!(decision["destinations"][0], "email:evil.example");
    assert_eq!(decision["resource_class"], "prod/data/internal");
}

#[tokio::test]
async fn learning_and_budget_usage_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    {
        let state = warden_server::test_state(config(dir.path())).await.unwrap();
        register(&state, Budgets { tool_calls_max: Some(25), ..Budgets::default() });
        routine(&state, 12).await; // 24 allowed calls
        // No snapshot and no shutdown: what a kill -9 leaves behind.
        state.log.shutdown();
    }
    let state = warden_server::test_state(config(dir.path())).await.unwrap();
    let baseline = state.behavior.engine().baseline(AGENT).unwrap();
    assert_eq!(baseline.events, 24, "every logged decision was observed again");
    let (_, usage) = state.directory.session(SESSION).unwrap().unwrap();
    assert_eq!(usage.tool_calls, 24, "usage is committed with the decisions");
    let ok = decide_action(&state, &claims(), &action("ticket.read", "ticket:0", &[])).await.unwrap();
    assert_eq!(ok.tier, Tier::Allow);
    let over = decide_action(&state, &claims(), &action("ticket.read", "ticket:0", &[])).await.unwrap();
    assert_eq!(over.tier, Tier::Deny);
    assert_eq!(over.refusal, Some("budget"));

    // A snapshot covers the log; a restart from it observes nothing twice.
    let covered = state.behavior.snapshot(&state.log).await.unwrap();
    assert_eq!(covered, state.log.sequenced_size());
    state.log.shutdown();
    drop(state);
    let state = warden_server::test_state(config(dir.path())).await.unwrap();
    assert_eq!(state.behavior.engine().baseline(AGENT).unwrap().events, 26);
}

#[tokio::test]
async fn concurrent_calls_never_overspend_a_budget() {
    let dir = tempfile::tempdir().unwrap();
    let state = warden_server::test_state(config(dir.path())).await.unwrap();
    register(&state, Budgets { tool_calls_max: Some(50), ..Budgets::default() });
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let state = state.clone();
            tokio::spawn(async move {
                let a = action("ticket.read", &format!("ticket:{}", i % 3), &[]);
                decide_action(&state, &claims(), &a).await.map(|o| o.tier)
            })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Ok(Tier::Allow)) {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 50);
    let (_, usage) = state.directory.session(SESSION).unwrap().unwrap();
    assert_eq!(usage.tool_calls, 50);
    // And the store agrees: the charges were committed with the decisions.
    let charged: u64 =
        leaves(&state).iter().filter(|l| l["kind"] == "decision" && l["decision"] == "allow").count() as u64;
    assert_eq!(charged, 50);
}

#[tokio::test]
async fn a_decision_the_log_cannot_take_is_refused_uncharged_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let state = warden_server::test_state(config(dir.path())).await.unwrap();
    register(&state, Budgets { tool_calls_max: Some(10), ..Budgets::default() });
    let ok = decide_action(&state, &claims(), &action("ticket.read", "ticket:0", &[])).await.unwrap();
    assert_eq!(ok.tier, Tier::Allow);
    drop(ok);

    state.log.shutdown();
    let refused = decide_action(&state, &claims(), &action("ticket.read", "ticket:0", &[])).await;
    match refused {
        Err(warden_server::error::ApiError::Unavailable(why)) => assert!(why.contains("log"), "{why}"),
        other => panic!("a decision the log cannot take must fail closed (503): {other:?}"),
    }
    let usage = state.hot.session_entry(SESSION).unwrap().unwrap().usage();
    assert_eq!(usage.tool_calls, 1, "the refused call spends nothing");

    let text = state.metrics.render(&state);
    for line in [
        "warden_decisions_total{tier=\"allow\"} 1",
        "warden_decisions_unrecorded_total 1",
        "warden_log_writer_up 0",
    ] {
        assert!(text.lines().any(|l| l == line), "`{line}` missing from:\n{text}");
    }
}
