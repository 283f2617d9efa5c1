//! Incident response and cross-organization trust end to end, with the real
//! binary: `warden quarantine`, `warden agent revoke`, `warden replay` (every
//! entry verified before it is printed, and the event index resuming after
//! `kill -9`), and `warden trust history` / `warden trust verify` with every kind
//! of tampering named.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
#[path = "common/gateway.rs"]
mod gateway;

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{CliOutput, Server, TestDir, path_str, warden};
use gateway::{Gateway, http_agent};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn token_file(g: &Gateway) -> PathBuf {
    g.dir.path().join("data").join("admin.token")
}

/// `warden ARGS --url URL --token-file FILE` against `g`, which must succeed.
fn cli_ok(g: &Gateway, args: &[&str]) -> String {
    let out = cli(g, args);
    assert_eq!(out.code(), Some(0), "warden {args:?}: {}", out.describe());
    out.stdout
}

fn cli(g: &Gateway, args: &[&str]) -> CliOutput {
    let file = token_file(g);
    let mut all = args.to_vec();
    all.extend_from_slice(&["--url", g.url(), "--token-file", path_str(&file)]);
    warden(&all)
}

fn assert_exit(out: &CliOutput, code: i32, expect: &str, what: &str) {
    assert_eq!(out.code(), Some(code), "{what}: {}", out.describe());
    assert!(out.stderr.contains(expect), "{what}: stderr lacks `{expect}`: {}", out.describe());
    assert_eq!(out.stderr.trim().lines().count(), 1, "{what}: one line: {}", out.describe());
}

/// `POST /v1/authorize` for `ticket.create` on `resource`.
fn authorize(g: &Gateway, token: &str, resource: &str) -> (u16, Value) {
    let body = json!({"intent": "ticket.create",
        "resource": {"id": resource, "plane": "data", "environment": "prod", "data_class": "internal"}});
    g.post("/v1/authorize", token, &body)
}

fn assert_allowed(g: &Gateway, token: &str, resource: &str, what: &str) {
    let (status, v) = authorize(g, token, resource);
    assert_eq!((status, v["decision"].as_str()), (200, Some("allow")), "{what}: {v}");
}

fn assert_quarantined(g: &Gateway, token: &str, resource: &str, names: &[&str]) {
    let (status, v) = authorize(g, token, resource);
    assert_eq!(status, 200, "{v}");
    assert_eq!((v["decision"].as_str(), v["refusal"].as_str()), (Some("deny"), Some("quarantine")), "{v}");
    let reasons = v["reasons"].to_string();
    for name in names {
        assert!(reasons.contains(name), "the reason names `{name}`: {v}");
    }
}

fn admin_get(g: &Gateway, path: &str) -> Value {
    let mut r = http_agent()
        .get(&format!("{}{path}", g.url()))
        .header("authorization", &format!("Bearer {}", g.admin))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{path}");
    r.body_mut().read_json().unwrap()
}

/// Needs the hook in `authorize::decide_action`: a quarantined agent or resource
/// is denied with refusal `quarantine`, and the denial is recorded.
#[test]
fn a_quarantine_from_the_cli_denies_authorize_until_it_is_lifted_or_expires() {
    let g = Gateway::start("", &[]);
    let (agent, _session, token) = g.agent_token();
    assert_allowed(&g, &token, "jira", "before any quarantine");

    let placed = cli_ok(
        &g,
        &["quarantine", "add", "--agent", &agent, "--for", "1h", "--reason", "incident 7: exfiltration"],
    );
    let id = placed.split_whitespace().next().unwrap().to_owned();
    assert!(id.starts_with("qua_") && placed.contains("active"), "{placed}");
    assert_quarantined(&g, &token, "jira", &[&id, &agent, "incident 7: exfiltration"]);
    g.wait_event("the recorded denial", |e| {
        e["kind"] == "decision" && e["actor"] == agent.as_str() && e["refusal"] == "quarantine"
    });
    let listed = cli_ok(&g, &["quarantine", "list"]);
    assert!(listed.contains(&id) && listed.contains(&agent), "{listed}");

    let lifted = cli_ok(&g, &["quarantine", "lift", &id]);
    assert!(lifted.contains("lifted"), "{lifted}");
    assert_allowed(&g, &token, "jira", "after the lift");
    assert_eq!(cli_ok(&g, &["quarantine", "list"]).trim(), "no active quarantines");
    assert!(cli_ok(&g, &["quarantine", "list", "--all"]).contains(&id));

    // A resource prefix, expiring by itself.
    let placed = cli_ok(
        &g,
        &["quarantine", "add", "--resource-prefix", "prod/db/", "--for", "2s", "--reason", "rotating keys"],
    );
    let id = placed.split_whitespace().next().unwrap().to_owned();
    assert_quarantined(&g, &token, "prod/db/users", &[&id, "prod/db/", "rotating keys"]);
    assert_allowed(&g, &token, "jira", "another resource");
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, v) = authorize(&g, &token, "prod/db/users");
        if v["decision"] == "allow" {
            break;
        }
        assert!(Instant::now() < deadline, "the quarantine never expired: {v}");
        thread::sleep(Duration::from_millis(200));
    }
    let events = g.events();
    let kinds: Vec<&str> =
        events.iter().filter_map(|e| e["kind"].as_str()).filter(|k| k.starts_with("quarantine.")).collect();
    assert_eq!(
        kinds,
        ["quarantine.placed", "quarantine.lifted", "quarantine.placed"],
        "every change is an event"
    );
}

#[test]
fn quarantine_bad_input_exits_2_and_refusals_exit_1() {
    let g = Gateway::start("", &[]);
    let (agent, _session, _token) = g.agent_token();
    let add = |extra: &[&str]| {
        let mut args = vec!["quarantine", "add"];
        args.extend_from_slice(extra);
        cli(&g, &args)
    };
    assert_exit(
        &add(&["--agent", &agent, "--for", "8d", "--reason", "x"]),
        2,
        "longer than the maximum of 7 days",
        "too long",
    );
    assert_exit(
        &add(&["--agent", &agent, "--for", "2x", "--reason", "x"]),
        2,
        "is not a duration",
        "bad duration",
    );
    assert_exit(
        &add(&["--agent", "agt_nobody", "--for", "1h", "--reason", "x"]),
        2,
        "no agent `agt_nobody`",
        "unknown agent",
    );
    assert_exit(
        &add(&["--agent", &agent, "--until", "tomorrow", "--reason", "x"]),
        2,
        "expires_at",
        "bad time",
    );
    for (args, what) in [
        (
            vec!["--agent", agent.as_str(), "--resource-prefix", "p/", "--for", "1h", "--reason", "x"],
            "two targets",
        ),
        (vec!["--agent", agent.as_str(), "--reason", "x"], "no expiry"),
        (vec!["--agent", agent.as_str(), "--for", "1h"], "no reason"),
    ] {
        assert_eq!(add(&args).code(), Some(2), "{what}");
    }
    assert_exit(&cli(&g, &["quarantine", "lift", "nope"]), 2, "is not a quarantine id", "bad id");
    assert_exit(
        &cli(&g, &["quarantine", "lift", "qua_unknown"]),
        2,
        "no quarantine `qua_unknown`",
        "unknown id",
    );
    let placed = cli_ok(&g, &["quarantine", "add", "--agent", &agent, "--for", "1h", "--reason", "x"]);
    let id = placed.split_whitespace().next().unwrap().to_owned();
    cli_ok(&g, &["quarantine", "lift", &id]);
    assert_exit(&cli(&g, &["quarantine", "lift", &id]), 1, "has already ended", "lifted twice");
    let out = warden(&["quarantine", "list", "--url", g.url(), "--token-file", "/nonexistent/token"]);
    assert_exit(&out, 2, "cannot read the operator credential", "no credential");
    let out =
        warden(&["quarantine", "list", "--server", "ftp://x", "--token-file", path_str(&token_file(&g))]);
    assert_exit(&out, 2, "must start with http://", "bad url");
}

#[test]
fn agent_revoke_from_the_cli_stops_a_working_token_at_the_next_request_and_ends_its_sessions() {
    let g = Gateway::start("", &[]);
    let (agent, session, token) = g.agent_token();
    assert_allowed(&g, &token, "jira", "before the revocation");
    let revoked: Value = serde_json::from_str(&cli_ok(&g, &["agent", "revoke", &agent])).unwrap();
    assert_eq!(revoked["status"], "revoked", "{revoked}");

    // The very next request with the same token is refused.
    let (status, v) = authorize(&g, &token, "jira");
    assert_eq!(status, 401, "{v}");
    assert!(v["message"].as_str().unwrap_or_default().contains("revoked"), "{v}");
    let shown = admin_get(&g, &format!("/v1/sessions/{session}"));
    assert_eq!(
        (shown["status"].as_str(), shown["status_reason"].as_str()),
        (Some("ended"), Some("agent revoked")),
        "{shown}"
    );
    let shown: Value = serde_json::from_str(&cli_ok(&g, &["session", "show", &session])).unwrap();
    assert_eq!(shown["status"], "ended");
    let agent_view = admin_get(&g, &format!("/v1/agents/{agent}"));
    assert_eq!(agent_view["sessions"][0]["status"], "ended", "{agent_view}");
    g.wait_event("the revocation", |e| e["kind"] == "agent.revoked" && e["subject"] == agent.as_str());
    // Revoked for good: no reactivation, and the token stays dead.
    assert_exit(&cli(&g, &["agent", "activate", &agent]), 2, "is revoked for good", "reactivation");
    assert_eq!(authorize(&g, &token, "jira").0, 401);
}

// ---- replay ---------------------------------------------------------------------------

fn admin_token(data: &Path) -> String {
    std::fs::read_to_string(data.join("admin.token")).unwrap().trim().to_owned()
}

fn admin_post(base: &str, token: &str, path: &str, body: &Value) -> Value {
    let mut r = http_agent()
        .post(&format!("{base}{path}"))
        .header("authorization", &format!("Bearer {token}"))
        .send_json(body)
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.body_mut().read_json().unwrap();
    assert_eq!(status, 200, "{path}: {v}");
    v
}

fn telemetry(agent: &str, session: &str, n: u64) -> Value {
    json!({"agent_id": agent, "session_id": session, "timestamp": common::PAST_TIMESTAMP,
        "action_type": "read", "outcome": "success", "axiom_hash": format!("sha256:{n:064x}")})
}

fn replay(server: &Server, args: &[&str]) -> CliOutput {
    let file = server.data_dir.join("admin.token");
    let mut all = vec!["replay", "--server", server.base.as_str(), "--token-file", path_str(&file)];
    all.extend_from_slice(args);
    warden(&all)
}

/// The log indexes `warden replay` printed, in order.
fn printed_indexes(out: &CliOutput) -> Vec<u64> {
    out.stdout.lines().filter_map(|l| l.strip_prefix('#')?.split_whitespace().next()?.parse().ok()).collect()
}

/// The indexes of the entries naming `agent`, read back entry by entry.
fn entries_naming(server: &Server, agent: &str) -> Vec<u64> {
    (0..server.entry_count())
        .filter(|&i| {
            let e = server.entry(i).event;
            e["agent_id"] == agent || e["subject"] == agent || e["details"]["agent_id"] == agent
        })
        .collect()
}

fn index_watermark(data: &Path) -> u64 {
    let db = rusqlite::Connection::open_with_flags(
        data.join("events.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    db.query_row("SELECT value FROM meta WHERE key = 'event_index_size'", [], |r| r.get::<_, String>(0))
        .map_or(0, |v| v.parse().unwrap())
}

#[test]
fn replay_prints_only_verified_entries_and_the_index_resumes_after_kill_9() {
    let dir = TestDir::new();
    let data = dir.data();
    let server = Server::start(&data);
    let admin = admin_token(&data);
    admin_post(
        &server.base,
        &admin,
        "/v1/agents",
        &json!({"id": "agt_replayed", "owner": "team-x", "environment": "prod"}),
    );
    let session = admin_post(
        &server.base,
        &admin,
        "/v1/sessions",
        &json!({"agent_id": "agt_replayed", "purpose": "triage"}),
    );
    let sid = session["id"].as_str().unwrap().to_owned();
    let mut batch: Vec<Value> = (0..5).map(|n| telemetry("agt_replayed", &sid, n)).collect();
    batch.extend((5..8).map(|n| telemetry("agt_bystander", "sess_other", n)));
    server.submit_batch(&batch);
    let vkey = server.verifier_key();
    server.wait_for_checkpoint(server.entry_count(), &vkey);

    let out = replay(&server, &["--agent", "agt_replayed", "--key", &vkey]);
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    let expected = entries_naming(&server, "agt_replayed");
    assert_eq!(expected.len(), 7, "registration, session start and five events");
    assert_eq!(printed_indexes(&out), expected, "{}", out.describe());
    assert!(
        out.stdout.contains("telemetry success  read in")
            && out.stdout.contains("admin     agent.registered"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("7 entries of agent `agt_replayed`, each proven included"), "{}", out.stderr);
    let by_session = replay(&server, &["--session", &sid, "--key", &vkey, "--limit", "3"]);
    assert_eq!(printed_indexes(&by_session).len(), 3, "{}", by_session.describe());
    let none =
        replay(&server, &["--agent", "agt_replayed", "--key", &vkey, "--until", "2000-01-01T00:00:00Z"]);
    assert_eq!((none.code(), printed_indexes(&none).len()), (Some(0), 0), "{}", none.describe());
    let recent = replay(&server, &["--agent", "agt_replayed", "--since", "1h"]);
    assert_eq!(printed_indexes(&recent), expected, "the key the server publishes: {}", recent.describe());
    assert!(recent.stderr.contains("pass --key"), "{}", recent.stderr);

    // Another log's key (same name, different key) refuses every page.
    let other = TestDir::new();
    let origin = vkey.split('+').next().unwrap();
    let stranger = warden_server::datadir::DataDir::open_or_create(&other.data())
        .unwrap()
        .log_signer(Some(origin))
        .unwrap();
    let out = replay(&server, &["--agent", "agt_replayed", "--key", &stranger.verifier_key()]);
    assert_exit(&out, 1, "checkpoint signature", "another log's key");
    assert!(out.stdout.is_empty(), "nothing unverified is printed: {}", out.stdout);
    assert_exit(
        &replay(&server, &["--agent", "agt_replayed", "--key", "not+a+key"]),
        2,
        "verifier key",
        "bad key",
    );
    assert_exit(
        &replay(&server, &["--agent", "agt_replayed", "--key", &vkey, "--since", "soon"]),
        2,
        "--since",
        "bad time",
    );
    assert_eq!(replay(&server, &["--agent", "agt_replayed", "--session", &sid]).code(), Some(2));
    assert_exit(&replay(&server, &["--agent", "bob", "--key", &vkey]), 2, "`agent`", "bad agent id");

    // New entries, then kill -9 before (or while) the index tails them: after a
    // restart the background task resumes from its watermark and misses nothing.
    let more: Vec<Value> = (100..130).map(|n| telemetry("agt_replayed", &sid, n)).collect();
    server.submit_batch(&more);
    let size = server.entry_count();
    server.wait_for_checkpoint(size, &vkey);
    server.kill9();
    assert!(index_watermark(&data) <= size);
    let server = Server::start(&data);
    let deadline = Instant::now() + WAIT;
    while index_watermark(&data) < server.entry_count() {
        assert!(Instant::now() < deadline, "the index did not catch up by itself after the restart");
        thread::sleep(Duration::from_millis(50));
    }
    let out = replay(&server, &["--agent", "agt_replayed", "--key", &vkey]);
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    assert_eq!(printed_indexes(&out), entries_naming(&server, "agt_replayed"));
    assert_eq!(printed_indexes(&out).len(), 37);
}

// ---- trust ----------------------------------------------------------------------------

/// Polls until a checkpoint covers every entry `g` holds; returns its size.
fn wait_covered(g: &Gateway) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let size = g.events().len() as u64;
        let mut r = http_agent().get(&format!("{}/v1/log/checkpoint", g.url())).call().unwrap();
        let note = r.body_mut().read_to_string().unwrap();
        let covered: u64 = note.lines().nth(1).and_then(|l| l.parse().ok()).unwrap_or(0);
        if covered >= size {
            return covered;
        }
        assert!(Instant::now() < deadline, "no checkpoint covers {size} entries");
        thread::sleep(Duration::from_millis(100));
    }
}

fn log_key(g: &Gateway) -> String {
    let mut r = http_agent().get(&format!("{}/v1/log/key", g.url())).call().unwrap();
    r.body_mut().read_to_string().unwrap().trim().to_owned()
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

fn verify_file(path: &Path, key: &str) -> CliOutput {
    warden(&["trust", "verify", path_str(path), "--key", key])
}

#[test]
fn a_trust_history_verifies_offline_and_every_tampering_is_named() {
    let g = Gateway::start("", &[]);
    let (agent, session, token) = g.agent_token();
    for _ in 0..3 {
        assert_allowed(&g, &token, "jira", "a decision to summarize");
    }
    let events: Vec<Value> = (0..2).map(|n| telemetry(&agent, &session, n)).collect();
    let (status, v) = g.post("/v1/telemetry/submit", "", &json!({"events": events}));
    assert_eq!(status, 200, "{v}");
    let size = wait_covered(&g);
    let vkey = log_key(&g);
    let file = g.dir.path().join("history.json");
    let out = cli(&g, &["trust", "history", &agent, "-o", path_str(&file)]);
    assert_eq!(out.code(), Some(0), "{}", out.describe());

    let out = verify_file(&file, &vkey);
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    assert!(out.stdout.starts_with(&format!("OK: agent {agent} (active, prod, risk ")), "{}", out.stdout);
    assert!(
        out.stdout.contains("3 decisions (allow 3)") && out.stdout.contains("2 self-reported"),
        "{}",
        out.stdout
    );

    let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let summary = &doc["summary"];
    assert!(summary["tree_size"].as_u64().unwrap() >= size);
    assert_eq!(summary["counts"]["decisions"]["by_intent"]["ticket.create"]["allow"], 3, "{summary}");
    assert_eq!(summary["cited"][0]["role"], "first_seen");
    assert_eq!(summary["cited"][0]["claims"]["kind"], "agent.registered");
    let decisions =
        summary["cited"].as_array().unwrap().iter().filter(|c| c["role"] == "recent_decision").count();
    assert_eq!(decisions, 3);
    // Standard formats, checked by code written elsewhere: the checkpoint is a C2SP
    // checkpoint and the signature a C2SP signed note by the log's key.
    common::verify_checkpoint(summary["checkpoint"].as_str().unwrap(), &vkey).unwrap();
    let verifier = signed_note::StandardVerifier::new(&vkey).unwrap();
    let note = signed_note::Note::from_bytes(doc["signature"].as_str().unwrap().as_bytes()).unwrap();
    note.verify(&signed_note::VerifierList::new(vec![Box::new(verifier)])).unwrap();
    assert!(std::str::from_utf8(note.text()).unwrap().starts_with("warden trust summary v1\n"));

    let tampered = |name: &str, change: &dyn Fn(&mut Value)| {
        let mut bad = doc.clone();
        change(&mut bad);
        let path = g.dir.path().join(name);
        write_json(&path, &bad);
        verify_file(&path, &vkey)
    };
    let out = tampered("count.json", &|d| d["summary"]["counts"]["decisions"]["total"] = json!(2));
    assert_exit(&out, 1, "trust summary is invalid: the signature is not over this summary", "altered count");
    let out = tampered("claim.json", &|d| d["summary"]["cited"][1]["claims"]["decision"] = json!("deny"));
    assert_exit(&out, 1, "the signature is not over this summary", "altered claim");

    let cited = doc["evidence"][1]["index"].as_u64().unwrap();
    let out = tampered("leaf.json", &|d| {
        let leaf =
            String::from_utf8(STANDARD.decode(d["evidence"][1]["leaf"].as_str().unwrap()).unwrap()).unwrap();
        let doctored = leaf.replacen("\"allow\"", "\"deny\"", 1);
        assert_ne!(leaf, doctored);
        d["evidence"][1]["leaf"] = json!(STANDARD.encode(doctored));
    });
    let expect = format!(
        "cited entry {cited}: inclusion proof against the checkpoint root: proof does not lead to the expected root"
    );
    assert_exit(&out, 1, &expect, "altered leaf");

    // A genuine proof of the same entry, but for a later tree: another root.
    assert_allowed(&g, &token, "jira", "grow the log");
    let later = wait_covered(&g);
    assert!(later > summary["tree_size"].as_u64().unwrap());
    let proof = admin_get(&g, &format!("/v1/log/proof/inclusion?index={cited}&tree_size={later}"));
    let out = tampered("root.json", &|d| d["evidence"][1]["inclusion_proof"] = proof["hashes"].clone());
    assert_exit(
        &out,
        1,
        &format!("cited entry {cited}: inclusion proof against the checkpoint root"),
        "another root",
    );
    let out = tampered("missing.json", &|d| {
        d["evidence"].as_array_mut().unwrap().remove(1);
    });
    assert_exit(&out, 1, &format!("cited entry {cited}: no evidence for it"), "missing evidence");

    // Another log's key, with the same name.
    let other = TestDir::new();
    let stranger = warden_server::datadir::DataDir::open_or_create(&other.data())
        .unwrap()
        .log_signer(Some(vkey.split('+').next().unwrap()))
        .unwrap();
    let out = verify_file(&file, &stranger.verifier_key());
    assert_exit(
        &out,
        1,
        "trust summary is invalid: summary signature: note has no signature by key",
        "wrong key",
    );

    // Bad input is exit 2.
    let not_json = g.dir.path().join("not.json");
    std::fs::write(&not_json, "{").unwrap();
    assert_exit(&verify_file(&not_json, &vkey), 2, "is not a trust summary", "not JSON");
    assert_exit(&verify_file(&g.dir.path().join("absent.json"), &vkey), 2, "cannot read", "no file");
    assert_exit(&verify_file(&file, "no+such+key"), 2, "verifier key", "bad key");
    assert_exit(&cli(&g, &["trust", "history", "agt_nobody"]), 2, "no agent `agt_nobody`", "unknown agent");
}
