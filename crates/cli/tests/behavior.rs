//! The behavior engine end to end, with the real binary: an agent learns a routine,
//! departs from it and the departure is logged as `anomaly` events and raises its
//! risk; that risk reaches Cedar as `context.risk_permille`; learning survives
//! `kill -9` (replayed from the log) and a graceful stop (the snapshot); a
//! fleet-wide surge trips a class's circuit breaker, which holds new sessions until
//! an operator resets it; and bad input and bad `[behavior]` values are refused,
//! naming what is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
#[path = "common/gateway.rs"]
mod gateway;
#[path = "common/restartable.rs"]
mod restartable;

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{WARDEN, path_str, warden};
use restartable::{Act, START_TIMEOUT, Warden, act};
use serde_json::{Value, json};
use warden_store::directory::Role;

/// The snapshot file in the data directory, and the header the server writes
/// before the engine's state: magic, then the log size it covers (u64, LE).
const SNAPSHOT_FILE: &str = "behavior.snapshot";
const SNAPSHOT_MAGIC: &[u8; 8] = b"WBSNAP01";

/// `[behavior]` for the tests: a short learning period, no wall-time requirement,
/// and no periodic snapshot during a test (the first tick at start aside).
const LEARNING: &str =
    "[behavior]\nlearning_events_min = 20\nlearning_hours_min = 0\nsnapshot_interval_s = 3600\n";

/// Routine work, `rounds` × (read a ticket, update it mailing example.com): 2 events a round.
fn routine(w: &Warden, token: &str, rounds: usize) {
    for i in 0..rounds {
        let ticket = format!("ticket:{}", i % 3);
        for a in [act("ticket.read", &ticket, &[]), act("ticket.update", &ticket, &["email:example.com"])] {
            let v = w.authorize(token, &a);
            assert_eq!(v["decision"], "allow", "routine {} {ticket}: {v}", a.intent);
        }
    }
}

/// The departure: mail out, never done before, to a domain no agent ever used.
fn departure<'a>() -> Act<'a> {
    act("email.send", "mail:outbox", &["email:exfil.example"])
}

fn anomalies(entries: &[(u64, Value)]) -> Vec<&Value> {
    entries.iter().map(|(_, e)| e).filter(|e| e["kind"] == "anomaly").collect()
}

/// `(magic ok, covered log size)` of the snapshot file in `data`.
fn snapshot_header(data: &Path) -> Option<u64> {
    let bytes = std::fs::read(data.join(SNAPSHOT_FILE)).ok()?;
    assert!(bytes.len() >= 16 && &bytes[..8] == SNAPSHOT_MAGIC, "not a behavior snapshot");
    Some(u64::from_le_bytes(bytes[8..16].try_into().unwrap()))
}

fn encode_class(class: &str) -> String {
    class.replace('/', "%2F")
}

// ---- 1. learning, then enforcement -------------------------------------------------------

#[test]
fn after_learning_a_departure_is_logged_as_anomalies_and_raises_the_agents_risk() {
    let dir = tempfile::tempdir().unwrap();
    let w = Warden::start(dir.path(), LEARNING);
    // Every intent allowed: what is tested is behavior, not policy.
    w.push_policy(&[("everything", "permit(principal, action, resource);")]);
    let agent = w.agent();
    let session = w.session(&agent);
    let token = w.token(&agent, &session);
    let start = w.log_size();

    // Learning (events 1–20) and beyond it (21–30): routine raises nothing.
    routine(&w, &token, 10);
    let b = w.behavior(&agent.id);
    assert_eq!(b["baseline"]["events"], 20, "{b}");
    assert_eq!(b["baseline"]["enforced"], true, "20 events and 0 hours end learning: {b}");
    routine(&w, &token, 5);
    let b = w.behavior(&agent.id);
    assert_eq!(b["agent_id"], agent.id.as_str());
    assert_eq!(b["risk"], 0.0, "routine work is not risky: {b}");
    assert_eq!(b["baseline"]["events"], 30, "{b}");
    assert_eq!(b["baseline"]["intents"], 2, "{b}");
    assert_eq!(b["baseline"]["resources"], 3, "{b}");
    assert_eq!(b["baseline"]["destinations"], 1, "{b}");
    assert_eq!(b["baseline"]["transitions"], 2, "read→update and update→read: {b}");
    assert!(anomalies(&w.entries_from(start)).is_empty(), "routine work logs no anomaly");

    // The departure: anomalies in the same append as its decision, right after it.
    let decided = w.authorize(&token, &departure());
    let decision_id = decided["decision_id"].as_str().unwrap();
    let entries = w.entries_from(start);
    let (decision_at, decision) =
        entries.iter().find(|(_, e)| e["kind"] == "decision" && e["subject"] == decision_id).unwrap();
    assert_eq!(decision["intent"], "email.send");
    assert_eq!(decision["destinations"], json!(["email:exfil.example"]), "{decision}");
    assert_eq!(decision["resource_class"], "prod/data/internal", "{decision}");
    let found: Vec<&Value> =
        entries.iter().filter(|(i, e)| i > decision_at && e["kind"] == "anomaly").map(|(_, e)| e).collect();
    assert_eq!(found.len(), anomalies(&entries).len(), "every anomaly came with this decision");
    let mut kinds = Vec::new();
    for a in &found {
        assert_eq!(a["actor"], agent.id.as_str(), "{a}");
        assert_eq!(a["subject"], session.as_str(), "{a}");
        assert_eq!(a["source"], "warden", "{a}");
        assert!(a["severity"] == "warning" || a["severity"] == "high", "{a}");
        let d = &a["details"];
        assert_eq!(d["decision_id"], decision_id, "{a}");
        assert!(d["detector"].is_string() && d["finding"].is_string(), "{a}");
        assert!(d["explanation"].as_str().unwrap().len() > 20, "explained in a sentence: {a}");
        assert!(d["score"].as_f64().unwrap() > 0.0, "{a}");
        assert!(d["tactics"].is_array(), "{a}");
        assert!(d["session_risk"].as_f64().unwrap() > 0.0 && d["agent_risk"].as_f64().unwrap() > 0.0, "{a}");
        kinds.push((d["detector"].as_str().unwrap(), d["finding"].as_str().unwrap(), d["about"].clone()));
    }
    let has = |detector: &str, finding: &str, about: &str| {
        kinds.iter().any(|(d, f, a)| *d == detector && *f == finding && a == about)
    };
    assert!(has("novelty", "new_intent", "email.send"), "{kinds:?}");
    assert!(has("novelty", "new_destination", "email:exfil.example"), "{kinds:?}");
    let explanation = found
        .iter()
        .find(|a| a["details"]["finding"] == "new_destination")
        .map(|a| a["details"]["explanation"].as_str().unwrap().to_owned())
        .unwrap();
    assert!(
        explanation.contains("email:exfil.example"),
        "the explanation names the destination: {explanation}"
    );

    let b = w.behavior(&agent.id);
    let risk = b["risk"].as_f64().unwrap();
    assert!(risk > 0.0 && risk <= 1.0, "the agent's risk rose: {b}");
    assert_eq!(b["baseline"]["events"], 31, "{b}");
    assert_eq!(b["baseline"]["intents"], 3, "the departure is learned too: {b}");
}

#[test]
fn nothing_is_logged_as_an_anomaly_while_learning() {
    let dir = tempfile::tempdir().unwrap();
    let w = Warden::start(dir.path(), LEARNING);
    w.push_policy(&[("everything", "permit(principal, action, resource);")]);
    let agent = w.agent();
    let session = w.session(&agent);
    let token = w.token(&agent, &session);
    let start = w.log_size();
    routine(&w, &token, 3);
    w.authorize(&token, &departure());
    let b = w.behavior(&agent.id);
    assert_eq!(b["baseline"]["enforced"], false, "{b}");
    assert_eq!(b["risk"], 0.0, "{b}");
    assert!(anomalies(&w.entries_from(start)).is_empty(), "learning scores no novelty");
}

// ---- 2. risk in policy ---------------------------------------------------------------------

#[test]
fn the_sessions_risk_reaches_policy_as_context_risk_permille() {
    let dir = tempfile::tempdir().unwrap();
    let w = Warden::start(dir.path(), LEARNING);
    let held = "@decision(\"approve\")\n@reason(\"a session at risk above 0.2 needs a human\")\n\
                forbid(principal, action, resource) when { context.risk_permille > 200 };";
    w.push_policy(&[("everything", "permit(principal, action, resource);"), ("risky-needs-a-human", held)]);
    let agent = w.agent();
    let session = w.session(&agent);
    let token = w.token(&agent, &session);
    routine(&w, &token, 12);

    let read = act("ticket.read", "ticket:0", &[]);
    let before = w.authorize(&token, &read);
    assert_eq!(before["decision"], "allow", "{before}");

    let departed = w.authorize(&token, &departure());
    let entries = w.entries_from(0);
    let session_risk =
        anomalies(&entries).iter().filter_map(|a| a["details"]["session_risk"].as_f64()).fold(0.0, f64::max);
    assert!(session_risk > 0.2, "the departure put the session above the policy's line: {session_risk}");
    assert_eq!(
        departed["decision"], "approve",
        "the departure itself is judged with its own risk: {departed}"
    );

    let after = w.authorize(&token, &read);
    assert_eq!(after["decision"], "approve", "the same routine read, now in a risky session: {after}");
    assert_eq!(after["determining_policies"], json!(["risky-needs-a-human"]), "{after}");
    assert!(after["reasons"].to_string().contains("risk above 0.2"), "{after}");

    // Risk is per session: a fresh session of the same agent is not held.
    let fresh = w.session(&agent);
    let fresh_token = w.token(&agent, &fresh);
    let other = w.authorize(&fresh_token, &read);
    assert_eq!(other["decision"], "allow", "{other}");
}

// ---- 3. persistence ---------------------------------------------------------------------------

#[test]
fn learning_survives_kill_9_by_replay_and_a_graceful_stop_by_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let w = Warden::start(dir.path(), LEARNING);
    let agent = w.agent();
    let session = w.session(&agent);
    let token = w.token(&agent, &session);
    let first_decision = w.log_size();
    routine(&w, &token, 12); // 24 decisions
    let before = w.behavior(&agent.id);
    assert_eq!(before["baseline"]["events"], 24, "{before}");
    let size = w.log_size();
    w.kill9();
    let covered = snapshot_header(&dir.path().join("data")).unwrap_or(0);
    assert!(covered <= first_decision, "no snapshot covers the decisions ({covered}); they must be replayed");

    // Restart: every decision logged after the snapshot is observed again.
    let w = Warden::start(dir.path(), LEARNING);
    assert_eq!(w.behavior(&agent.id)["baseline"], before["baseline"], "replayed from the log");
    assert_eq!(w.log_size(), size, "replay writes nothing");
    // The replayed baseline is enforced: a departure is found at once.
    let token = w.token(&agent, &session);
    routine(&w, &token, 1);
    w.authorize(&token, &departure());
    assert!(!anomalies(&w.entries_from(size)).is_empty(), "the replayed baseline is enforced");
    let learned = w.behavior(&agent.id);
    assert_eq!(learned["baseline"]["events"], 27, "{learned}");

    // SIGTERM writes a snapshot covering the whole log.
    let size = w.log_size();
    w.stop();
    let covered =
        snapshot_header(&dir.path().join("data")).expect("a graceful stop writes behavior.snapshot");
    assert_eq!(covered, size, "the snapshot covers the whole log");

    // Restart from it: the same baseline, nothing observed twice.
    let w = Warden::start(dir.path(), LEARNING);
    let restored = w.behavior(&agent.id);
    assert_eq!(restored["baseline"], learned["baseline"], "restored from the snapshot");
    assert!(restored["risk"].as_f64().unwrap() > 0.0, "risk is restored too: {restored}");

    // Snapshot (at start) plus the decisions after it, then kill -9: exactly both.
    // (A new session: the last one's risk is high enough for the default policy.)
    let session = w.session(&agent);
    let token = w.token(&agent, &session);
    routine(&w, &token, 3);
    assert_eq!(w.baseline_events(&agent.id), 33);
    w.kill9();
    let w = Warden::start(dir.path(), LEARNING);
    assert_eq!(w.baseline_events(&agent.id), 33, "snapshot plus replay, nothing twice");
    w.stop();
}

/// One self-reported event of `agent` in `session`.
fn report(agent: &str, session: &str, n: usize, action: &str) -> Value {
    json!({"agent_id": agent, "session_id": session, "timestamp": "2025-06-01T12:00:00Z",
           "action_type": action, "outcome": "success", "axiom_hash": format!("sha256:{n:064x}")})
}

/// Anonymous telemetry is logged as `self_reported` and not learned from: nothing
/// vouches for the agent it names (see the next test). Under the agent's own session
/// token it is logged as `self_reported_authenticated` and learned; a departure in
/// it is an `anomaly` in the log; what it taught survives `kill -9`. A token cannot
/// report for another agent or session, a bad token is a 401, and nothing of a
/// refused batch is written.
#[test]
fn telemetry_is_learned_only_under_the_agents_own_token_and_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let w = Warden::start(dir.path(), LEARNING);
    let agent = w.agent();
    let session = w.session(&agent);
    let token = w.token(&agent, &session);
    let kinds = |n: usize| if n.is_multiple_of(2) { "read" } else { "write" };

    let anonymous: Vec<Value> = (0..6).map(|n| report(&agent.id, &session, n, kinds(n))).collect();
    let (status, v) = w.post("/v1/telemetry/submit", "", &json!({"events": anonymous}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["entries"].as_array().map(Vec::len), Some(6), "{v}");
    assert!(w.behavior(&agent.id)["baseline"].is_null(), "anonymous telemetry is not learned");

    let from = w.log_size();
    let own: Vec<Value> = (0..30).map(|n| report(&agent.id, &session, 100 + n, kinds(n))).collect();
    let (status, v) = w.post("/v1/telemetry/submit", &token, &json!({"events": own}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(w.baseline_events(&agent.id), 30, "authenticated telemetry is learned");
    let logged = w.entries_from(from);
    assert!(
        logged
            .iter()
            .filter(|(_, e)| e["kind"] == "telemetry")
            .all(|(_, e)| e["source"] == "self_reported_authenticated"),
        "{logged:?}"
    );

    // Past the learning period (20 events), a kind of action it never reported.
    let from = w.log_size();
    let (status, v) = w.post("/v1/telemetry/submit", &token, &report(&agent.id, &session, 999, "delete"));
    assert_eq!(status, 200, "{v}");
    let logged = w.entries_from(from);
    let found = anomalies(&logged);
    assert!(!found.is_empty(), "a new kind of self-reported action is an anomaly: {logged:?}");
    assert_eq!(found[0]["actor"], agent.id.as_str());
    assert_eq!(found[0]["details"]["finding"], "new_intent", "{}", found[0]);
    assert!(found[0]["details"]["decision_id"].is_null(), "no decision behind it: {}", found[0]);
    assert!(w.behavior(&agent.id)["risk"].as_f64().unwrap_or(0.0) > 0.0, "{}", w.behavior(&agent.id));

    let before = w.behavior(&agent.id)["baseline"].clone();
    w.kill9();
    let w = Warden::start(dir.path(), LEARNING);
    assert_eq!(w.behavior(&agent.id)["baseline"], before, "what telemetry taught survives kill -9");

    // A token reports only for its own agent and session, and must be valid (a new
    // one: the restarted server listens on another port, so it is another issuer).
    let token = w.token(&agent, &session);
    let size = w.log_size();
    let other = w.agent();
    let cases = [
        (report(&other.id, &session, 1, "read"), "events[0].agent_id"),
        (report(&agent.id, "sess_someoneelse", 1, "read"), "events[0].session_id"),
    ];
    for (event, field) in cases {
        let (status, v) = w.post("/v1/telemetry/submit", &token, &json!({"events": [event]}));
        assert_eq!((status, v["fields"][0]["field"].as_str()), (400, Some(field)), "{v}");
    }
    let (status, v) = w.post(
        "/v1/telemetry/submit",
        "not-a-token",
        &json!({"events": [report(&agent.id, &session, 1, "read")]}),
    );
    assert_eq!(status, 401, "{v}");
    assert_eq!(w.log_size(), size + 1, "only the second agent's registration was written");
}

/// `POST /v1/telemetry/submit` takes no credential, and what it reports is observed
/// under the `agent_id` and `session_id` the body names. Anyone who can reach the
/// server can then change another agent's baseline and raise the risk of its live
/// session, and so what policy decides for it (PRODUCT.md: no agent can change the
/// baseline that governs itself, let alone someone who is not an agent at all).
#[test]
fn anonymous_telemetry_cannot_raise_another_agents_session_risk() {
    let dir = tempfile::tempdir().unwrap();
    let w = Warden::start(dir.path(), LEARNING);
    let agent = w.agent();
    let session = w.session(&agent);
    let token = w.token(&agent, &session);
    routine(&w, &token, 12);
    let before = w.behavior(&agent.id);
    // No credential at all; the body names the victim's agent and live session.
    let forged: Vec<Value> = ["admin", "execute", "delete", "auth", "send"]
        .iter()
        .enumerate()
        .map(|(n, action)| {
            json!({"agent_id": agent.id, "session_id": session, "timestamp": "2025-06-01T12:00:00Z",
                   "action_type": action, "outcome": "success",
                   "context": {"tool": format!("vault:prod/secret-{n}")}})
        })
        .collect();
    let (status, v) = w.post("/v1/telemetry/submit", "", &json!({"events": forged}));
    assert_eq!(status, 200, "{v}");
    let after = w.behavior(&agent.id);
    let read = w.authorize(&token, &act("ticket.read", "ticket:0", &[]));
    assert_eq!(read["decision"], "allow", "an anonymous caller got the agent's routine read held: {read}");
    assert_eq!(after["risk"], before["risk"], "an anonymous caller raised the agent's risk");
    assert_eq!(after["baseline"], before["baseline"], "an anonymous caller changed the agent's baseline");
}

// ---- 4. fleet surge and the circuit breaker ---------------------------------------------------

/// Surge trips at 5 new sessions in a minute (and 5× the class's usual, which is
/// at most 1 on a fresh server).
const SURGE: &str = "[behavior]\nsurge_arrivals_min = 5\nsnapshot_interval_s = 3600\n";
const CLASS: &str = "prod/data/internal";

/// `n` agents with one session each: their tokens.
fn fleet(w: &Warden, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let agent = w.agent();
            let session = w.session(&agent);
            w.token(&agent, &session)
        })
        .collect()
}

fn read_ticket(w: &Warden, token: &str) -> Value {
    w.authorize(token, &act("ticket.read", "ticket:42", &[]))
}

fn breaker(w: &Warden, bearer: &str) -> (u16, Value) {
    w.get(&format!("/v1/behavior/breakers/{}", encode_class(CLASS)), bearer)
}

fn reset(w: &Warden, bearer: &str) -> (u16, Value) {
    w.post(&format!("/v1/behavior/breakers/{}/reset", encode_class(CLASS)), bearer, &json!({}))
}

fn assert_held(v: &Value, how: &str) {
    assert_eq!(v["decision"], "approve", "{v}");
    let reasons = v["reasons"].to_string();
    assert!(
        reasons.contains(&format!("circuit breaker of resource class `{CLASS}`")) && reasons.contains(how),
        "the reason names the breaker: {v}"
    );
}

#[test]
fn a_fleet_surge_trips_the_breaker_which_holds_new_sessions_until_reset() {
    let dir = tempfile::tempdir().unwrap();
    let w = Warden::start(dir.path(), SURGE);
    let auditor = w.add_operator("opr_auditor", Role::Auditor);
    let approver = w.add_operator("opr_approver", Role::Approver);
    let tokens = fleet(&w, 8);
    let start = w.log_size();
    assert_eq!(breaker(&w, &auditor), (200, json!({"class": CLASS, "state": "closed"})));

    for token in &tokens[..4] {
        assert_eq!(read_ticket(&w, token)["decision"], "allow");
    }
    assert_held(&read_ticket(&w, &tokens[4]), "tripped on this session");
    assert_held(&read_ticket(&w, &tokens[5]), "is open");
    assert_held(&read_ticket(&w, &tokens[6]), "is open");
    // Sessions already in the class go on.
    assert_eq!(read_ticket(&w, &tokens[0])["decision"], "allow");

    let (status, open) = breaker(&w, &auditor);
    assert_eq!(status, 200, "any operator may read a breaker: {open}");
    assert_eq!((open["class"].as_str(), open["state"].as_str()), (Some(CLASS), Some("open")), "{open}");
    assert_eq!(open["arrivals"], 5, "{open}");
    assert!(open["since_unix_ms"].as_i64().unwrap() > 1_600_000_000_000, "{open}");

    let entries = w.entries_from(start);
    let surge: Vec<&Value> =
        anomalies(&entries).into_iter().filter(|a| a["details"]["detector"] == "fleet_surge").collect();
    let tripped: Vec<&&Value> = surge.iter().filter(|a| a["details"]["finding"] == "surge_tripped").collect();
    assert_eq!(tripped.len(), 1, "{surge:#?}");
    assert_eq!(tripped[0]["details"]["about"], CLASS);
    assert!(tripped[0]["details"]["explanation"].as_str().unwrap().contains("5 new sessions"), "{surge:#?}");
    assert_eq!(
        surge.iter().filter(|a| a["details"]["finding"] == "held_by_breaker").count(),
        2,
        "{surge:#?}"
    );

    // Only admins and approvers reset; the auditor is refused and nothing is logged.
    let size = w.log_size();
    let (status, v) = reset(&w, &auditor);
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["error"], "forbidden", "{v}");
    assert_eq!(breaker(&w, &w.admin).1["state"], "open");
    let (status, v) = reset(&w, "wop_not-a-credential");
    assert_eq!(status, 401, "{v}");
    assert_eq!(w.log_size(), size, "refused resets log nothing");

    let (status, v) = reset(&w, &approver);
    assert_eq!((status, v), (200, json!({"class": CLASS, "state": "closed"})));
    let logged: Vec<Value> =
        w.entries_from(size).into_iter().map(|(_, e)| e).filter(|e| e["kind"] == "breaker.reset").collect();
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert_eq!(logged[0]["actor"], "opr_approver", "{logged:#?}");
    assert_eq!(logged[0]["subject"], CLASS, "{logged:#?}");
    assert_eq!(logged[0]["details"]["class"], CLASS, "{logged:#?}");
    assert_eq!(breaker(&w, &auditor).1, json!({"class": CLASS, "state": "closed"}));

    // A reset of a closed breaker is a conflict, and logs nothing.
    let size = w.log_size();
    let (status, v) = reset(&w, &w.admin);
    assert_eq!(status, 409, "{v}");
    assert!(v["message"].as_str().unwrap().contains(CLASS), "{v}");
    assert_eq!(w.log_size(), size);

    // After the reset, held and brand-new sessions proceed.
    assert_eq!(read_ticket(&w, &tokens[4])["decision"], "allow");
    assert_eq!(read_ticket(&w, &tokens[5])["decision"], "allow");
    let late = fleet(&w, 1);
    assert_eq!(read_ticket(&w, &late[0])["decision"], "allow");
    // Other classes never were held.
    let other = w.authorize(&tokens[7], &Act { data_class: "public", ..act("ticket.read", "kb:1", &[]) });
    assert_eq!(other["decision"], "allow", "{other}");
}

/// A held session that asks again is held again; when its risk (0.6 for each hold,
/// compounding) also makes the default policy ask for approval, the reason must
/// still name the breaker: it is what the approver has to know.
#[test]
fn a_held_session_asking_again_is_held_naming_the_breaker() {
    let dir = tempfile::tempdir().unwrap();
    let w = Warden::start(dir.path(), SURGE);
    let tokens = fleet(&w, 6);
    for token in &tokens[..5] {
        read_ticket(&w, token);
    }
    assert_held(&read_ticket(&w, &tokens[5]), "is open");
    assert_held(&read_ticket(&w, &tokens[5]), "is open");
}

/// An open breaker is state the log implies (the arrivals are decisions), so a
/// `kill -9` keeps it open; an operator's reset must survive it too.
#[test]
fn a_reset_breaker_stays_closed_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let w = Warden::start(dir.path(), SURGE);
    let tokens = fleet(&w, 6);
    for token in &tokens {
        read_ticket(&w, token);
    }
    assert_eq!(breaker(&w, &w.admin).1["state"], "open");
    w.kill9();
    let w = Warden::start(dir.path(), SURGE);
    assert_eq!(breaker(&w, &w.admin).1["state"], "open", "an open breaker stays open across kill -9");
    assert_eq!(reset(&w, &w.admin).0, 200);
    w.kill9();
    let w = Warden::start(dir.path(), SURGE);
    assert_eq!(breaker(&w, &w.admin).1["state"], "closed", "the operator's reset survives kill -9");
    let late = fleet(&w, 1);
    assert_eq!(read_ticket(&w, &late[0])["decision"], "allow");
}

// ---- 5. bad input ---------------------------------------------------------------------------------

#[test]
fn bad_classes_unknown_agents_and_missing_credentials_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let w = Warden::start(dir.path(), LEARNING);
    for bad in ["bad%20class", "prod%2Fdata%2Frestricted%3B", &"a".repeat(201)] {
        for (status, v) in [
            w.get(&format!("/v1/behavior/breakers/{bad}"), &w.admin),
            w.post(&format!("/v1/behavior/breakers/{bad}/reset"), &w.admin, &json!({})),
        ] {
            assert_eq!(status, 400, "{bad}: {v}");
            assert_eq!(v["error"], "invalid_request", "{bad}: {v}");
            assert_eq!(v["fields"][0]["field"], "class", "{bad}: {v}");
            assert!(v["fields"][0]["message"].as_str().unwrap().contains("prod/data/restricted"), "{v}");
        }
    }
    // A class never seen is closed, and has nothing to reset.
    let (status, v) = w.get("/v1/behavior/breakers/dev%2Fcontrol%2Fpublic", &w.admin);
    assert_eq!((status, v), (200, json!({"class": "dev/control/public", "state": "closed"})));
    let (status, v) = w.post("/v1/behavior/breakers/dev%2Fcontrol%2Fpublic/reset", &w.admin, &json!({}));
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"], "conflict", "{v}");

    let (status, v) = w.get("/v1/agents/agt_nosuchagent/behavior", &w.admin);
    assert_eq!(status, 404, "{v}");
    assert!(v["message"].as_str().unwrap().contains("agt_nosuchagent"), "{v}");

    // A registered agent that never acted has no baseline yet.
    let agent = w.agent();
    assert_eq!(w.behavior(&agent.id), json!({"agent_id": agent.id, "risk": 0.0, "baseline": null}));

    // Operators only: no credential, or an agent's token, is refused.
    for path in [format!("/v1/agents/{}/behavior", agent.id), "/v1/behavior/breakers/x".to_owned()] {
        let (status, v) = w.get(&path, "");
        assert_eq!(status, 401, "{path}: {v}");
        let session = w.session(&agent);
        let token = w.token(&agent, &session);
        let (status, v) = w.get(&path, &token);
        assert!(status == 401 || status == 403, "{path} with an agent token: {status} {v}");
    }
}

/// `warden serve --data-dir DATA` with `env`; it must exit within a minute:
/// (exit code, stderr).
fn serve_with_env(data: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(WARDEN);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("WARDEN_")) {
        cmd.env_remove(key);
    }
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + START_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("warden serve with {env:?} did not exit");
        }
        thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status.code(), err)
}

#[test]
fn invalid_behavior_configuration_exits_2_naming_each_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("warden.toml");
    std::fs::write(
        &file,
        "[behavior]\nlearning_events_min = 0\nlearning_hours_min = 9000\nsurge_arrivals_min = 1\nsnapshot_interval_s = 0\n",
    )
    .unwrap();
    let out = warden(&["config", "check", path_str(&file)]);
    assert_eq!(out.code(), Some(2), "{}", out.describe());
    for key in [
        "behavior.learning_events_min",
        "behavior.learning_hours_min",
        "behavior.surge_arrivals_min",
        "behavior.snapshot_interval_s",
    ] {
        assert!(out.stderr.contains(key), "names `{key}`: {}", out.describe());
    }

    // `serve` refuses the same, and creates nothing.
    let data = dir.path().join("data");
    let out = warden(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--config",
        path_str(&file),
        "--data-dir",
        path_str(&data),
    ]);
    assert_eq!(out.code(), Some(2), "{}", out.describe());
    assert!(out.stderr.contains("behavior.snapshot_interval_s"), "{}", out.describe());
    assert!(!data.exists(), "a rejected configuration creates nothing");

    // Too large, from a variable.
    let (code, err) = serve_with_env(&data, &[("WARDEN_BEHAVIOR__SNAPSHOT_INTERVAL_S", "3601")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("behavior.snapshot_interval_s") && err.contains("3600"), "{err}");
    let (code, err) = serve_with_env(&data, &[("WARDEN_BEHAVIOR__SURGE_ARRIVALS_MIN", "1")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("behavior.surge_arrivals_min"), "{err}");
    let (code, err) = serve_with_env(&data, &[("WARDEN_GATEWAY__LIMITS__CONNECTIONS_MAX", "0")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("gateway.limits.connections_max"), "{err}");
    assert!(!data.exists(), "a rejected configuration creates nothing");

    // An unknown key in `[behavior]` and a value of the wrong type.
    std::fs::write(&file, "[behavior]\nsnapshot_every = 5\n").unwrap();
    let out = warden(&["config", "check", path_str(&file)]);
    assert_eq!(out.code(), Some(2), "{}", out.describe());
    assert!(out.stderr.contains("snapshot_every"), "{}", out.describe());
    std::fs::write(&file, "[behavior]\nsurge_arrivals_min = \"many\"\n").unwrap();
    let out = warden(&["config", "check", path_str(&file)]);
    assert_eq!(out.code(), Some(2), "{}", out.describe());
    assert!(out.stderr.contains("surge_arrivals_min"), "{}", out.describe());

    // Good values pass.
    std::fs::write(&file, LEARNING).unwrap();
    let out = warden(&["config", "check", path_str(&file)]);
    assert_eq!(out.code(), Some(0), "{}", out.describe());
}
