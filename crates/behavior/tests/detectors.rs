//! The engine through its public API: each detector fires when it should and stays
//! quiet on normal traffic; snapshots restore identical behavior; risk stays in [0, 1].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;

use proptest::prelude::*;
use warden_behavior::{
    BreakerAction, BreakerState, Config, Detector, Engine, FindingKind, Observation, Outcome, Tactic,
};
use warden_core::FixedClock;

/// 2026-04-13 00:00 UTC.
const DAY0_MS: i64 = 1_776_038_400_000;
const MINUTE_MS: i64 = 60_000;

fn config() -> Config {
    Config { learning_events_min: 300, learning_ms_min: 0, ..Config::default() }
}

fn engine(config: Config) -> Engine {
    let clock = FixedClock(time::OffsetDateTime::from_unix_timestamp(DAY0_MS / 1000).unwrap());
    Engine::new(config, Arc::new(clock)).unwrap()
}

/// One call as a test writes it.
#[derive(Debug, Clone)]
struct Call {
    agent: String,
    session: String,
    at: i64,
    intent: &'static str,
    resource: String,
    class: &'static str,
    destinations: Vec<String>,
    self_governance: bool,
}

impl Call {
    fn new(agent: &str, session: &str, at: i64, intent: &'static str, resource: &str) -> Call {
        Call {
            agent: agent.into(),
            session: session.into(),
            at,
            intent,
            resource: resource.into(),
            class: "prod/data/internal",
            destinations: Vec::new(),
            self_governance: false,
        }
    }

    fn to(mut self, destination: &str) -> Call {
        self.destinations.push(destination.into());
        self
    }

    fn observe(&self, engine: &Engine) -> Outcome {
        engine.observe(&Observation {
            agent: &self.agent,
            session: &self.session,
            at_unix_ms: self.at,
            intent: self.intent,
            resource: &self.resource,
            resource_class: self.class,
            destinations: &self.destinations,
            self_governance: self.self_governance,
        })
    }
}

/// A support agent's working day: tickets and customer look-ups, emails to two
/// customer domains, about two calls a minute, 09:00–17:00 UTC, one session a day.
fn workday(agent: &str, day: i64) -> Vec<Call> {
    let mut calls = Vec::new();
    let session = format!("sess_{agent}_{day}");
    let start = DAY0_MS + day * 86_400_000 + 9 * 3_600_000;
    for i in 0..960i64 {
        let at = start + i * 30_000;
        let call = match i % 4 {
            0 => Call::new(agent, &session, at, "ticket.read", "tickets"),
            1 => Call::new(agent, &session, at, "crm.read", "crm:customers"),
            2 => Call::new(agent, &session, at, "ticket.update", "tickets"),
            _ => Call::new(agent, &session, at, "email.send", "mail:outbound").to(if i % 8 == 3 {
                "email:acme.example"
            } else {
                "email:globex.example"
            }),
        };
        calls.push(call);
    }
    calls
}

/// An engine where `agent` has learned two working days.
fn trained(agent: &str) -> Engine {
    let engine = engine(config());
    for day in 0..2 {
        for call in workday(agent, day) {
            call.observe(&engine);
        }
    }
    assert!(engine.baseline(agent).unwrap().enforced);
    engine
}

fn kinds(outcome: &Outcome) -> Vec<FindingKind> {
    outcome.findings.iter().map(|f| f.kind).collect()
}

#[test]
fn normal_traffic_after_learning_raises_nothing() {
    let engine = trained("agt_support");
    for call in workday("agt_support", 2) {
        let outcome = call.observe(&engine);
        assert!(outcome.findings.is_empty(), "{:?}", outcome.findings);
        assert_eq!(outcome.session_risk, 0.0);
    }
}

#[test]
fn learning_records_novelty_without_reporting_or_scoring_it() {
    let engine = engine(config());
    let first = Call::new("agt_new", "sess_1", DAY0_MS, "secrets.read", "vault:prod").to("host:x.example");
    let outcome = first.observe(&engine);
    assert!(outcome.learning);
    assert!(outcome.findings.is_empty());
    assert_eq!(engine.risk_at("agt_new", "sess_1", DAY0_MS), (0.0, 0.0));
    assert_eq!(engine.baseline("agt_new").unwrap().intents, 1);
}

#[test]
fn novelty_names_the_agent_the_thing_and_the_baseline() {
    let engine = trained("agt_support");
    let at = DAY0_MS + 2 * 86_400_000 + 10 * 3_600_000;
    let outcome = Call::new("agt_support", "sess_x", at, "secrets.read", "vault:payments").observe(&engine);
    let intent = outcome.findings.iter().find(|f| f.kind == FindingKind::NewIntent).unwrap();
    assert!(intent.explanation.contains("agt_support") && intent.explanation.contains("secrets.read"));
    assert!(intent.explanation.contains("4 intents"), "{}", intent.explanation);
    // A dangerous family weighs more than an ordinary new intent.
    let ordinary = Call::new("agt_support", "sess_y", at + 1, "calendar.read", "calendar").observe(&engine);
    let ordinary = ordinary.findings.iter().find(|f| f.kind == FindingKind::NewIntent).unwrap();
    assert!(intent.score > ordinary.score, "{} vs {}", intent.score, ordinary.score);
    assert!(outcome.findings.iter().any(|f| f.kind == FindingKind::NewResource));

    let outcome = Call::new("agt_support", "sess_x", at + 2, "email.send", "mail:outbound")
        .to("email:collect.example")
        .observe(&engine);
    let destination = outcome.findings.iter().find(|f| f.kind == FindingKind::NewDestination).unwrap();
    assert_eq!(destination.subject, "email:collect.example");
    assert!(destination.explanation.contains("no agent of the fleet has used it before"));
    // Reported once: the destination is now part of the baseline.
    let again = Call::new("agt_support", "sess_x", at + 3, "email.send", "mail:outbound")
        .to("email:collect.example")
        .observe(&engine);
    assert!(!again.findings.iter().any(|f| f.kind == FindingKind::NewDestination), "{:?}", again.findings);
}

#[test]
fn a_burst_far_above_the_agents_own_rate_is_reported_once_a_minute() {
    let engine = trained("agt_support");
    let at = DAY0_MS + 2 * 86_400_000 + 10 * 3_600_000;
    let mut bursts = Vec::new();
    for i in 0..120i64 {
        let outcome =
            Call::new("agt_support", "sess_b", at + i * 400, "ticket.read", "tickets").observe(&engine);
        bursts.extend(outcome.findings.into_iter().filter(|f| f.kind == FindingKind::Burst));
    }
    assert_eq!(bursts.len(), 1, "{bursts:?}");
    assert!(bursts[0].score >= 0.6);
    assert!(bursts[0].explanation.contains("standard deviations above its own norm"));
}

#[test]
fn off_hours_activity_is_reported_once_per_session() {
    let engine = trained("agt_support");
    let night = DAY0_MS + 2 * 86_400_000 + 3 * 3_600_000;
    let first = Call::new("agt_support", "sess_n", night, "ticket.read", "tickets").observe(&engine);
    assert_eq!(kinds(&first), vec![FindingKind::OffHours]);
    assert!(first.findings[0].explanation.contains("03:00 UTC"));
    let second =
        Call::new("agt_support", "sess_n", night + 1_000, "crm.read", "crm:customers").observe(&engine);
    assert!(second.findings.is_empty());
}

#[test]
fn a_transition_the_agent_never_makes_is_reported() {
    let engine = trained("agt_support");
    let at = DAY0_MS + 2 * 86_400_000 + 10 * 3_600_000;
    Call::new("agt_support", "sess_t", at, "email.send", "mail:outbound")
        .to("email:acme.example")
        .observe(&engine);
    let outcome = Call::new("agt_support", "sess_t", at + 1_000, "email.send", "mail:outbound")
        .to("email:acme.example")
        .observe(&engine);
    assert_eq!(kinds(&outcome), vec![FindingKind::RareTransition]);
    assert!(outcome.findings[0].explanation.contains("from `email.send` to `email.send`"));
}

#[test]
fn a_credential_then_lateral_movement_chain_names_its_tactics() {
    let engine = trained("agt_support");
    let at = DAY0_MS + 2 * 86_400_000 + 11 * 3_600_000;
    Call::new("agt_support", "sess_c", at, "secrets.read", "vault:prod").observe(&engine);
    let outcome = Call::new("agt_support", "sess_c", at + 5_000, "k8s.exec", "cluster:prod").observe(&engine);
    let chain = outcome.findings.iter().find(|f| f.kind == FindingKind::Chain).unwrap();
    assert_eq!(chain.subject, "credential-lateral-movement");
    assert_eq!(chain.tactics, vec![Tactic::CredentialAccess, Tactic::LateralMovement]);
    assert!(chain.explanation.contains("TA0006 Credential Access → TA0008 Lateral Movement"));
    assert!(outcome.session_risk > 0.8);
}

#[test]
fn a_first_credential_read_is_credential_access_on_its_own() {
    for (session, intent, resource) in [
        ("sess_k1", "shell.python", "env:AWS_SECRET_ACCESS_KEY"),
        ("sess_k2", "shell.cat", "file:/root/.secret_token"),
        ("sess_k3", "shell.cat", "file:/workspace/.env"),
    ] {
        let engine = trained("agt_support");
        let at = DAY0_MS + 2 * 86_400_000 + 11 * 3_600_000;
        let outcome = Call::new("agt_support", session, at, intent, resource).observe(&engine);
        let chain = outcome.findings.iter().find(|f| f.kind == FindingKind::Chain).unwrap();
        assert_eq!(chain.subject, "credential-access", "{resource}");
        assert_eq!(chain.tactics, vec![Tactic::CredentialAccess]);
        assert!(outcome.session_risk >= 0.6, "{resource}: {:?}", outcome.findings);
    }
    // Not every environment variable is a secret.
    let engine = trained("agt_support");
    let at = DAY0_MS + 2 * 86_400_000 + 11 * 3_600_000;
    let outcome = Call::new("agt_support", "sess_k4", at, "shell.echo", "env:HOME").observe(&engine);
    assert!(outcome.findings.iter().all(|f| f.kind != FindingKind::Chain), "{:?}", outcome.findings);
}

#[test]
fn collection_then_exfiltration_to_a_new_host_is_a_chain() {
    let engine = trained("agt_support");
    let at = DAY0_MS + 2 * 86_400_000 + 11 * 3_600_000;
    Call::new("agt_support", "sess_e", at, "db.read:raw", "db:customers").observe(&engine);
    let outcome = Call::new("agt_support", "sess_e", at + 5_000, "http.post", "http:outbound")
        .to("host:collect.attacker.example")
        .observe(&engine);
    let chain = outcome.findings.iter().find(|f| f.kind == FindingKind::Chain).unwrap();
    assert_eq!(chain.subject, "collect-exfiltrate");
    assert_eq!(chain.tactics.last(), Some(&Tactic::Exfiltration));
}

#[test]
fn a_new_address_at_an_organization_it_sends_to_weighs_less_than_a_new_organization() {
    let engine = trained("agt_support");
    let at = DAY0_MS + 2 * 86_400_000 + 11 * 3_600_000;
    let score = |outcome: &Outcome| {
        outcome.findings.iter().find(|f| f.kind == FindingKind::NewDestination).map(|f| f.score).unwrap()
    };
    let near = Call::new("agt_support", "sess_d", at, "email.send", "mail:outbound")
        .to("email:billing.acme.example")
        .observe(&engine);
    let far = Call::new("agt_support", "sess_e", at, "email.send", "mail:outbound")
        .to("email:drop.example")
        .observe(&engine);
    assert!(score(&near) < score(&far), "{} vs {}", score(&near), score(&far));
    assert!(far.findings.iter().any(|f| f.explanation.contains("a domain it never sent to")));
    // A fetch brings data in: its host does not make the host's domain one the
    // agent sends to.
    Call::new("agt_support", "sess_f", at, "web.fetch", "web:evil.example")
        .to("host:cdn.evil.example")
        .observe(&engine);
    let post = Call::new("agt_support", "sess_f", at + 1_000, "email.send", "mail:outbound")
        .to("email:collect.evil.example")
        .observe(&engine);
    assert!(
        post.findings.iter().any(|f| f.explanation.contains("a domain it never sent to")),
        "{:?}",
        post.findings
    );
}

/// An agent that reads a ticket, then sends, 100 times a day: to `orgs`
/// organizations in turn (a closed set) or, with `orgs == 0`, to a new customer
/// organization on every other send.
fn sender(engine: &Engine, agent: &str, orgs: usize, days: i64) {
    for day in 0..days {
        let session = format!("sess_{agent}_{day}");
        let start = DAY0_MS + day * 86_400_000 + 9 * 3_600_000;
        for i in 0..100usize {
            let at = start + i as i64 * 60_000;
            Call::new(agent, &session, at, "ticket.read", "tickets").observe(engine);
            let to = match orgs {
                0 if i % 2 == 0 => format!("email:customer{day}x{i}.example"),
                0 => "email:acme.example".to_owned(),
                n => format!("email:partner{}.example", i % n),
            };
            Call::new(agent, &session, at + 30_000, "email.send", "mail:outbound").to(&to).observe(engine);
        }
    }
}

fn new_destination_score(outcome: &Outcome) -> f32 {
    outcome.findings.iter().find(|f| f.kind == FindingKind::NewDestination).map_or(0.0, |f| f.score)
}

#[test]
fn a_new_organization_is_measured_by_how_concentrated_the_agents_sends_are() {
    let engine = engine(config());
    sender(&engine, "agt_closed", 3, 4);
    sender(&engine, "agt_open", 0, 4);
    let at = DAY0_MS + 4 * 86_400_000 + 10 * 3_600_000;
    let send = |agent: &str| {
        Call::new(agent, "sess_probe", at, "email.send", "mail:outbound")
            .to("email:drop.example")
            .observe(&engine)
    };
    let (closed, open) = (send("agt_closed"), send("agt_open"));
    // 400 sends to three partners, each reached again and again: a send to an
    // organization no agent knows is enough, alone, to hold the session.
    assert!(closed.session_risk >= 0.6, "{:?}", closed.findings);
    let finding = closed.findings.iter().find(|f| f.kind == FindingKind::NewDestination).unwrap();
    assert!(
        finding.explanation.contains("its 400 sends reached 3 organizations, 0 of them once"),
        "{finding}"
    );
    assert_eq!(kinds(&closed), vec![FindingKind::NewDestination]);
    // One that meets a new customer on every other send is barely surprised.
    assert!(new_destination_score(&open) < 0.1, "{:?}", open.findings);
}

#[test]
fn a_closed_set_of_organizations_surprises_more_the_longer_it_held() {
    let (short, long) = (engine(config()), engine(config()));
    sender(&short, "agt_a", 3, 2);
    sender(&long, "agt_a", 3, 6);
    // Two days: 200 sends; six: 600.
    let probe = |engine: &Engine, day: i64| {
        let at = DAY0_MS + day * 86_400_000 + 10 * 3_600_000;
        let call =
            Call::new("agt_a", "sess_probe", at, "email.send", "mail:outbound").to("email:drop.example");
        new_destination_score(&call.observe(engine))
    };
    let (after_two_days, after_six_days) = (probe(&short, 2), probe(&long, 6));
    assert!(after_six_days > after_two_days + 0.02, "{after_two_days} vs {after_six_days}");
}

#[test]
fn an_agent_that_never_sends_is_surprised_by_a_first_send_anywhere() {
    let engine = trained("agt_support");
    let at = DAY0_MS + 2 * 86_400_000 + 10 * 3_600_000;
    // The support agent sends; a second agent only reads.
    for i in 0..400i64 {
        Call::new("agt_reader", "sess_r", DAY0_MS + 9 * 3_600_000 + i * 30_000, "ticket.read", "tickets")
            .observe(&engine);
    }
    let reader = Call::new("agt_reader", "sess_x", at, "sync_workspace", "tool:sync")
        .to("host:cdn.example")
        .observe(&engine);
    assert!(new_destination_score(&reader) >= 0.5, "{:?}", reader.findings);
}

#[test]
fn a_first_look_weighs_less_than_a_first_change_and_credentials_are_not_a_look() {
    // One engine per call, so no call makes the next one less new.
    let engines: Vec<Engine> = (0..4).map(|_| trained("agt_support")).collect();
    let at = DAY0_MS + 2 * 86_400_000 + 11 * 3_600_000;
    let score = |outcome: &Outcome, kind: FindingKind| {
        outcome.findings.iter().find(|f| f.kind == kind).map(|f| f.score).unwrap()
    };
    // A new read-only tool on what it works on, against a new tool that changes it.
    let view = Call::new("agt_support", "sess_v", at, "ticket.view_history", "tickets").observe(&engines[0]);
    let merge = Call::new("agt_support", "sess_m", at, "ticket.merge", "tickets").observe(&engines[1]);
    let (view, merge) = (score(&view, FindingKind::NewIntent), score(&merge, FindingKind::NewIntent));
    assert!(view <= 0.5 * merge + 0.01, "{view} vs {merge}");
    // A first look at a file in a place it never worked in, against a first read of
    // credentials there.
    let config = Call::new("agt_support", "sess_c", at, "file.read", "file:~/.agent/settings.toml")
        .observe(&engines[2]);
    let key =
        Call::new("agt_support", "sess_k", at, "file.read", "file:~/.ssh/id_ed25519").observe(&engines[3]);
    let (config, key) = (score(&config, FindingKind::NewResource), score(&key, FindingKind::NewResource));
    assert!(config < 0.2, "{config}");
    assert!(key > 2.0 * config, "{config} vs {key}");
}

#[test]
fn reading_the_control_plane_weighs_less_than_changing_it() {
    // Two engines, so the read does not make the place and the class known to the write.
    let (engine, other) = (trained("agt_support"), trained("agt_support"));
    let at = DAY0_MS + 2 * 86_400_000 + 11 * 3_600_000;
    let score = |outcome: &Outcome| {
        outcome.findings.iter().find(|f| f.kind == FindingKind::NewResource).map(|f| f.score).unwrap()
    };
    let mut read = Call::new("agt_support", "sess_r", at, "file.read", "file:~/.agent/scheduler.conf");
    read.class = "prod/control/internal";
    let read = read.observe(&engine);
    let mut write = Call::new("agt_support", "sess_w", at, "file.write", "file:~/.agent/scheduler.conf");
    write.class = "prod/control/internal";
    let write = write.observe(&other);
    // The control plane is a dangerous family new to the agent only for a change.
    assert!(score(&write) > score(&read) + 0.1, "{} vs {}", score(&write), score(&read));
    assert!(read.session_risk < 0.6, "{:?}", read.findings);
}

#[test]
fn a_chain_run_while_learning_is_part_of_the_baseline() {
    let engine = engine(config());
    let mut at = DAY0_MS + 9 * 3_600_000;
    for i in 0..400 {
        let session = format!("sess_{}", i / 40);
        Call::new("agt_ci", &session, at, "secrets.read", "vault:deploy").observe(&engine);
        at += 10_000;
        Call::new("agt_ci", &session, at, "k8s.exec", "cluster:prod").observe(&engine);
        at += 10_000;
    }
    assert!(engine.baseline("agt_ci").unwrap().enforced);
    Call::new("agt_ci", "sess_z", at, "secrets.read", "vault:deploy").observe(&engine);
    let outcome = Call::new("agt_ci", "sess_z", at + 10_000, "k8s.exec", "cluster:prod").observe(&engine);
    assert!(outcome.findings.is_empty(), "{:?}", outcome.findings);
}

#[test]
fn self_governance_scores_even_while_learning() {
    let engine = engine(config());
    let mut call = Call::new("agt_new", "sess_g", DAY0_MS, "policy.update", "policy:agt_new");
    call.self_governance = true;
    let outcome = call.observe(&engine);
    assert!(outcome.learning);
    let finding = &outcome.findings[0];
    assert_eq!(finding.detector(), Detector::SelfGovernance);
    assert!(!finding.learning && finding.score > 0.9);
    assert!(finding.explanation.contains("governs the agent itself"));
    let (session, agent) = engine.risk_at("agt_new", "sess_g", DAY0_MS);
    assert!(session > 0.9 && agent > 0.9);
}

#[test]
fn a_fleet_surge_trips_the_breaker_until_an_operator_resets_it() {
    let engine = engine(config());
    // A day of ordinary arrivals in `prod`: one new session every two minutes.
    for i in 0..720i64 {
        let call = Call::new(
            &format!("agt_w{}", i % 20),
            &format!("sess_w{i}"),
            DAY0_MS + i * 120_000,
            "db.read",
            "db",
        );
        assert!(call.observe(&engine).breaker.is_none());
    }
    let surge_start = DAY0_MS + 86_400_000;
    let mut tripped_at = None;
    for i in 0..150i64 {
        let call =
            Call::new(&format!("agt_p{i}"), &format!("sess_p{i}"), surge_start + i * 300, "db.read", "db");
        let outcome = call.observe(&engine);
        if outcome.breaker == Some(BreakerAction::Tripped) {
            let finding = outcome.findings.iter().find(|f| f.kind == FindingKind::SurgeTripped).unwrap();
            assert!(finding.explanation.contains("`prod/data/internal`"));
            tripped_at = Some(i);
            break;
        }
    }
    assert_eq!(tripped_at, Some(99));
    assert!(matches!(
        engine.breaker_state("prod/data/internal"),
        BreakerState::Tripped { arrivals: 100, .. }
    ));
    // New sessions are held; a session already in the class goes on.
    let held = Call::new("agt_late", "sess_late", surge_start + 60_000, "db.read", "db").observe(&engine);
    assert_eq!(held.breaker, Some(BreakerAction::Held));
    assert_eq!(held.findings.iter().filter(|f| f.kind == FindingKind::HeldByBreaker).count(), 1);
    let existing = Call::new("agt_p5", "sess_p5", surge_start + 60_000, "db.read", "db").observe(&engine);
    assert_eq!(existing.breaker, None);
    // Other classes are not affected.
    assert_eq!(engine.breaker_state("dev/data/internal"), BreakerState::Closed);
    assert!(engine.reset_breaker("prod/data/internal"));
    assert_eq!(engine.breaker_state("prod/data/internal"), BreakerState::Closed);
    let after = Call::new("agt_late", "sess_late", surge_start + 70_000, "db.read", "db").observe(&engine);
    assert_eq!(after.breaker, None);
}

/// Everything that must behave identically after a restore.
fn replay(engine: &Engine, calls: &[Call]) -> Vec<(Vec<FindingKind>, u32, u32, Option<BreakerAction>)> {
    calls
        .iter()
        .map(|c| {
            let o = c.observe(engine);
            (kinds(&o), (o.session_risk * 1e6) as u32, (o.agent_risk * 1e6) as u32, o.breaker)
        })
        .collect()
}

fn probe_calls() -> Vec<Call> {
    let at = DAY0_MS + 2 * 86_400_000 + 10 * 3_600_000;
    let mut calls = workday("agt_support", 2).into_iter().take(50).collect::<Vec<_>>();
    calls.push(Call::new("agt_support", "sess_agt_support_2", at + 1, "db.read:raw", "db:customers"));
    calls.push(
        Call::new("agt_support", "sess_agt_support_2", at + 2, "http.post", "http").to("host:evil.example"),
    );
    calls.push(Call::new(
        "agt_support",
        "sess_n",
        DAY0_MS + 2 * 86_400_000 + 3_600_000,
        "ticket.read",
        "tickets",
    ));
    calls.extend(
        (0..80).map(|i| {
            Call::new("agt_support", "sess_b", at + 5 * MINUTE_MS + i * 300, "ticket.read", "tickets")
        }),
    );
    calls
}

#[test]
fn engine_snapshot_restores_identical_behavior() {
    let original = trained("agt_support");
    let bytes = original.snapshot();
    assert_eq!(&bytes[..4], b"WBEN");
    assert_eq!(bytes[4], warden_behavior::SNAPSHOT_VERSION);
    let clock = FixedClock(time::OffsetDateTime::from_unix_timestamp(DAY0_MS / 1000).unwrap());
    let restored = Engine::restore(config(), Arc::new(clock), &bytes).unwrap();
    assert_eq!(restored.baseline("agt_support"), original.baseline("agt_support"));
    assert_eq!(restored.snapshot(), bytes);
    let calls = probe_calls();
    assert_eq!(replay(&restored, &calls), replay(&original, &calls));
}

#[test]
fn agent_snapshot_restores_identical_behavior_in_another_engine() {
    let original = trained("agt_support");
    let bytes = original.snapshot_agent("agt_support").unwrap();
    assert_eq!(&bytes[..4], b"WBAG");
    let other = engine(config());
    // The other engine interned names in a different order first.
    Call::new("agt_other", "sess_o", DAY0_MS, "zzz.call", "zzz").to("host:zzz.example").observe(&other);
    other.restore_agent("agt_support", &bytes).unwrap();
    assert_eq!(other.snapshot_agent("agt_support").map(|b| b.len()), Some(bytes.len()));
    let calls = probe_calls();
    assert_eq!(replay(&other, &calls), replay(&original, &calls));
    assert!(engine(config()).restore_agent("agt_x", b"WBAG\x02").is_err());
    assert!(engine(config()).restore_agent("agt_x", b"nope").is_err());
}

#[test]
fn a_snapshot_restores_into_a_chain_table_with_chains_appended_but_not_reordered() {
    let original = trained("agt_support");
    let bytes = original.snapshot();
    let clock = || Arc::new(FixedClock(time::OffsetDateTime::from_unix_timestamp(DAY0_MS / 1000).unwrap()));
    let mut appended = config();
    let extra = appended.taxonomy.chains[0].clone();
    appended.taxonomy.chains.push(warden_behavior::Chain { id: "appended".into(), ..extra });
    let restored = Engine::restore(appended, clock(), &bytes).unwrap();
    assert_eq!(restored.baseline("agt_support"), original.baseline("agt_support"));
    let mut reordered = config();
    reordered.taxonomy.chains.swap(0, 1);
    let error = Engine::restore(reordered, clock(), &bytes).unwrap_err().to_string();
    assert!(error.contains("chains may only be appended"), "{error}");
    let mut shorter = config();
    shorter.taxonomy.chains.pop();
    assert!(Engine::restore(shorter, clock(), &bytes).is_err());
}

/// Snapshots written by the previous format (version 2) of [`trained`]`("agt_support")`.
const ENGINE_V2: &[u8] = include_bytes!("data/engine-v2.snapshot");
const AGENT_V2: &[u8] = include_bytes!("data/agent-v2.snapshot");

#[test]
fn version_2_snapshots_restore_and_are_written_again_as_the_current_version() {
    assert_eq!(ENGINE_V2[4], 2);
    let original = trained("agt_support");
    let clock = FixedClock(time::OffsetDateTime::from_unix_timestamp(DAY0_MS / 1000).unwrap());
    let restored = Engine::restore(config(), Arc::new(clock), ENGINE_V2).unwrap();
    assert_eq!(restored.baseline("agt_support"), original.baseline("agt_support"));
    assert_eq!(restored.snapshot()[4], warden_behavior::SNAPSHOT_VERSION);
    let other = engine(config());
    other.restore_agent("agt_support", AGENT_V2).unwrap();
    assert_eq!(other.snapshot_agent("agt_support").unwrap()[4], warden_behavior::SNAPSHOT_VERSION);
    // Normal work raises nothing after the upgrade, and a new organization is still
    // reported, though an upgraded agent does not yet know how often it returns to
    // each: its organizations count as reached once.
    let at = DAY0_MS + 2 * 86_400_000 + 11 * 3_600_000;
    for engine in [&restored, &other] {
        for call in workday("agt_support", 2).into_iter().take(40) {
            assert!(call.observe(engine).findings.is_empty());
        }
        let outcome = Call::new("agt_support", "sess_u", at, "email.send", "mail:outbound")
            .to("email:drop.example")
            .observe(engine);
        assert!(new_destination_score(&outcome) > 0.0, "{:?}", outcome.findings);
    }
}

#[test]
fn a_snapshot_from_a_newer_format_is_refused_with_a_clear_error() {
    let mut bytes = trained("agt_support").snapshot_agent("agt_support").unwrap();
    bytes[4] = warden_behavior::SNAPSHOT_VERSION + 1;
    let error = engine(config()).restore_agent("agt_x", &bytes).unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&format!("version {} is not supported", bytes[4])), "{message}");
    assert!(
        message.contains(&format!("reads versions 1 to {}", warden_behavior::SNAPSHOT_VERSION)),
        "{message}"
    );
}

#[test]
fn memory_per_agent_is_small() {
    let engine = trained("agt_support");
    let state = engine.heap_bytes();
    assert!(state < 64 * 1024, "{state}");
    assert_eq!(engine.agents(), 1);
    assert!(engine.forget_agent("agt_support"));
    assert_eq!(engine.agents(), 0);
}

fn arbitrary_call() -> impl Strategy<Value = Call> {
    let intents = prop::sample::select(vec![
        "ticket.read",
        "secrets.read",
        "http.post",
        "k8s.exec",
        "policy.update",
        "db.read:raw",
        "file.delete",
    ]);
    (0u8..6, 0u8..3, 0i64..3_000_000, intents, 0u8..5, prop::option::of(0u8..6), any::<bool>()).prop_map(
        |(agent, session, at, intent, resource, destination, governance)| {
            let mut call = Call::new(
                &format!("agt_{agent}"),
                &format!("sess_{session}"),
                DAY0_MS + at * 100,
                intent,
                &format!("res_{resource}"),
            );
            if let Some(d) = destination {
                call = call.to(&format!("host:h{d}.example"));
            }
            call.self_governance = governance && at % 7 == 0;
            call
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn risk_stays_in_the_unit_interval(calls in prop::collection::vec(arbitrary_call(), 1..400)) {
        let engine = engine(Config { learning_events_min: 20, learning_ms_min: 0, surge_arrivals_min: 3, ..Config::default() });
        for call in &calls {
            let o = call.observe(&engine);
            prop_assert!((0.0..=1.0).contains(&o.session_risk) && (0.0..=1.0).contains(&o.agent_risk));
            for f in &o.findings {
                prop_assert!((0.0..=1.0).contains(&f.score));
                prop_assert!(!f.explanation.is_empty());
            }
            let (s, a) = engine.risk_at(&call.agent, &call.session, call.at + 1_000);
            prop_assert!((0.0..=1.0).contains(&s) && (0.0..=1.0).contains(&a));
        }
    }

    #[test]
    fn restoring_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = engine(config()).restore_agent("agt_x", &bytes);
        let clock = FixedClock(time::OffsetDateTime::from_unix_timestamp(0).unwrap());
        let _ = Engine::restore(config(), Arc::new(clock), &bytes);
    }

    #[test]
    fn restoring_damaged_snapshots_never_panics(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let source = engine(config());
        for call in workday("agt_s", 0).into_iter().take(400) {
            call.observe(&source);
        }
        let mut agent = source.snapshot_agent("agt_s").unwrap();
        let mut whole = source.snapshot();
        for (index, byte) in &flips {
            let i = index.index(agent.len());
            agent[i] = *byte;
            let j = index.index(whole.len());
            whole[j] = *byte;
        }
        let _ = engine(config()).restore_agent("agt_s", &agent);
        let clock = FixedClock(time::OffsetDateTime::from_unix_timestamp(0).unwrap());
        let _ = Engine::restore(config(), Arc::new(clock), &whole);
    }
}
