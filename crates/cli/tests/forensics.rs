//! Forensics mode end to end, with the real `warden` binary, real SQLite files
//! and real sockets: an operator turns it on for one session with
//! `warden session forensics`, the session's requests go through the HTTP proxy
//! (to `warden-testkit echo`) and the MCP proxy (to `warden-testkit mcp-http`),
//! the bodies come back from `GET /v1/forensics/{id}` exactly as sent and
//! answered, the action event's leaf commits to them, `warden forensics show`
//! verifies all of it — and fails once a stored body is changed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
#[path = "common/gateway.rs"]
mod gateway;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{CliOutput, path_str, warden};
use gateway::{Gateway, http_agent, start_testkit};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use warden_store::directory::Role;

const WAIT: Duration = Duration::from_secs(30);
const ISSUES: &str = "/proxy/github/repos/acme/web/issues";

fn config(echo_url: &str, gateway_keys: &str) -> String {
    format!(
        r#"
[gateway]
{gateway_keys}

[[gateway.upstreams]]
name = "github"
kind = "http"
url = "{echo_url}"
classification = {{ plane = "data", environment = "prod", data_class = "internal" }}

[[gateway.routes]]
upstream = "github"
method = "POST"
path = "/repos/{{owner}}/{{repo}}/issues"
intent = "ticket.create"
resource = "github:{{owner}}/{{repo}}"
"#
    )
}

fn data_dir(g: &Gateway) -> PathBuf {
    g.dir.path().join("data")
}

fn cli(g: &Gateway, args: &[&str]) -> CliOutput {
    let file = data_dir(g).join("admin.token");
    let mut all = args.to_vec();
    all.extend_from_slice(&["--url", g.url(), "--token-file", path_str(&file)]);
    warden(&all)
}

fn cli_ok(g: &Gateway, args: &[&str]) -> CliOutput {
    let out = cli(g, args);
    assert_eq!(out.code(), Some(0), "warden {args:?}: {}", out.describe());
    out
}

fn assert_exit(out: &CliOutput, code: i32, expect: &str, what: &str) {
    assert_eq!(out.code(), Some(code), "{what}: {}", out.describe());
    assert!(out.stderr.contains(expect), "{what}: stderr lacks `{expect}`: {}", out.describe());
    assert_eq!(out.stderr.trim().lines().count(), 1, "{what}: one line: {}", out.describe());
}

/// The log's verifier key, read from the data directory (not from the server).
fn log_key(g: &Gateway) -> String {
    let out = warden(&["log", "key", "--data-dir", path_str(&data_dir(g))]);
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    out.stdout.trim().to_owned()
}

/// A request with a bearer token (none when empty); (status, the raw answer body).
fn request(g: &Gateway, method: &str, path: &str, bearer: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", g.url()))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if !bearer.is_empty() {
        req = req.header("authorization", format!("Bearer {bearer}"));
    }
    let mut r = http_agent().run(req.body(body.to_vec()).unwrap()).unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_vec().unwrap())
}

fn get(g: &Gateway, path: &str, bearer: &str) -> (u16, Value) {
    let (status, body) = request(g, "GET", path, bearer, b"");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// `POST /v1/sessions/{session}/forensics` with `body`; (status, answer).
fn set_forensics(g: &Gateway, session: &str, bearer: &str, body: &Value) -> (u16, Value) {
    g.post(&format!("/v1/sessions/{session}/forensics"), bearer, body)
}

/// The capture of `decision`, once stored (it is stored just after its action
/// event is durable, which is just after the agent got its answer).
fn capture(g: &Gateway, decision: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, v) = get(g, &format!("/v1/forensics/{decision}"), &g.admin);
        if status == 200 {
            return v;
        }
        assert!(status == 404 || status == 503, "GET /v1/forensics/{decision}: {status} {v}");
        assert!(Instant::now() < deadline, "no capture of {decision}: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn decode(v: &Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().unwrap()).unwrap()
}

/// `sha256:` + hex SHA-256(salt ‖ bytes), computed here, independently of Warden.
fn salted(salt: &[u8], bytes: &[u8]) -> String {
    let digest = Sha256::new().chain_update(salt).chain_update(bytes).finalize();
    format!("sha256:{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Checks a capture document against the leaf the log serves at its index.
fn check_commitment(g: &Gateway, doc: &Value) -> Value {
    let index = doc["index"].as_u64().unwrap();
    let (status, entry) = get(g, &format!("/v1/log/entries/{index}"), "");
    assert_eq!(status, 200, "{entry}");
    assert_eq!(entry["leaf"], doc["leaf"], "the document's leaf is the log's entry {index}");
    let event: Value = serde_json::from_slice(&decode(&doc["leaf"])).unwrap();
    assert_eq!(event["kind"], "action");
    assert_eq!(event["decision_id"], doc["decision_id"]);
    let salt = decode(&doc["salt"]);
    assert_eq!(salt.len(), 32);
    let f = &event["forensics"];
    for part in ["request", "response"] {
        let kept = decode(&doc[part]["body"]);
        assert_eq!(f[format!("{part}_sha256")], salted(&salt, &kept), "{part}: {event}");
        assert_eq!(f[format!("{part}_kept_bytes")], kept.len() as u64);
        assert_eq!(f[format!("{part}_bytes")], doc[part]["bytes"]);
    }
    event
}

/// Adds an operator with `role`; returns its bearer secret.
fn add_operator(g: &Gateway, id: &str, role: Role) -> String {
    common::add_operator(&data_dir(g), id, role)
}

fn forensics_db(g: &Gateway) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(data_dir(g).join("forensics.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db
}

/// Stops the server with SIGTERM and starts it again on the same port and data
/// directory (same address, so the agent's token stays valid).
fn restart(g: &mut Gateway) {
    let pid = g.proc.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + WAIT;
    while g.proc.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no exit within {WAIT:?} of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let listen = g.url().trim_start_matches("http://").to_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--listen", &listen, "--config"])
        .arg(g.dir.path().join("warden.toml"))
        .arg("--data-dir")
        .arg(data_dir(g))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok);
    let line = lines.find(|l| l.contains("listening on")).expect("listening again");
    assert!(line.ends_with(g.url()), "same address: {line}");
    // Keep reading, so that the server never writes to a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    g.proc.child = child;
}

fn start(gateway_keys: &str) -> (Gateway, gateway::Proc) {
    let echo = start_testkit(&["echo", "127.0.0.1:0"]);
    let g = Gateway::start(&config(&echo.url, gateway_keys), &[]);
    (g, echo)
}

#[test]
fn bodies_are_kept_committed_and_verified_until_a_stored_body_is_changed() {
    let (g, _echo) = start("");
    let (agent, session, token) = g.agent_token();
    let (_, quiet_session, quiet_token) = g.agent_token();

    let on = cli_ok(&g, &["session", "forensics", &session, "--on", "--reason", "incident 7: exfiltration?"]);
    let on: Value = serde_json::from_str(&on.stdout).unwrap();
    assert_eq!((on["enabled"].as_bool(), on["changed"].as_bool()), (Some(true), Some(true)), "{on}");
    let enabled = &g.events()[on["log_index"].as_u64().unwrap() as usize];
    assert_eq!(enabled["kind"], "session.forensics_enabled", "logged before it took effect: {enabled}");
    assert_eq!(enabled["subject"], session.as_str());
    assert_eq!(enabled["details"]["reason"], "incident 7: exfiltration?");
    let again = cli_ok(&g, &["session", "forensics", &session, "--on", "--reason", "again"]);
    assert!(again.stdout.contains("\"changed\": false"), "asking twice changes nothing: {}", again.stdout);

    let sent = br#"{"title":"printer on fire","body":"toner \u00e9verywhere"}"#;
    let (status, answered) = request(&g, "POST", &format!("{ISSUES}?q=1"), &token, sent);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answered));
    let action =
        g.wait_event("the action event", |e| e["kind"] == "action" && e["session_id"] == session.as_str());
    let decision = action["decision_id"].as_str().unwrap();
    assert!(action["forensics"].is_object(), "the action event commits to the bodies: {action}");

    let doc = capture(&g, decision);
    assert_eq!(
        (doc["session_id"].as_str(), doc["agent_id"].as_str()),
        (Some(session.as_str()), Some(agent.as_str()))
    );
    assert_eq!(decode(&doc["request"]["body"]), sent, "the request body exactly as sent");
    assert_eq!(decode(&doc["response"]["body"]), answered, "the response body exactly as the agent got it");
    assert_eq!(doc["request"]["truncated"], false);
    assert_eq!(doc["response"]["bytes"], answered.len() as u64);
    let event = check_commitment(&g, &doc);
    assert_eq!(event["forensics"]["truncated"], false);
    let by_index = capture(&g, &doc["index"].to_string());
    assert_eq!(by_index["decision_id"], decision, "a capture is also found by its log index");
    // Each read of the bodies is in the log before they are shown: who read which capture.
    let events = g.events();
    let read = &events[doc["read_log_index"].as_u64().unwrap() as usize];
    assert_eq!(read["kind"], "forensics.capture_read", "{read}");
    assert_eq!(
        (read["subject"].as_str(), read["details"]["decision_id"].as_str()),
        (Some(session.as_str()), Some(decision))
    );
    assert_eq!(read["details"]["action_index"], doc["index"], "{read}");
    assert_eq!(read["details"]["role"], "admin", "{read}");
    let reads = events.iter().filter(|e| e["kind"] == "forensics.capture_read").count();
    assert_eq!(reads, 2, "one per read: by decision id, by log index");

    let key = log_key(&g);
    let shown = cli_ok(&g, &["forensics", "show", decision, "--key", &key]);
    assert!(shown.stdout.contains("printer on fire"), "the bodies are printed: {}", shown.describe());
    assert!(shown.stderr.contains("verified"), "{}", shown.describe());
    let out_dir = g.dir.path().join("out");
    cli_ok(&g, &["forensics", "show", decision, "--key", &key, "--out", path_str(&out_dir)]);
    assert_eq!(std::fs::read(out_dir.join(format!("{decision}.request"))).unwrap(), sent);
    assert_eq!(std::fs::read(out_dir.join(format!("{decision}.response"))).unwrap(), answered);
    let listed = cli_ok(&g, &["forensics", "list", "--session", &session]);
    assert!(listed.stdout.contains(decision), "{}", listed.describe());
    let replayed = cli_ok(&g, &["replay", "--session", &session, "--key", &key]);
    assert!(replayed.stdout.contains(&format!("forensics={decision}")), "{}", replayed.describe());

    // A session without forensics keeps nothing, and its action event has no commitment.
    let (status, _) = request(&g, "POST", ISSUES, &quiet_token, br#"{"title":"quiet"}"#);
    assert_eq!(status, 200);
    let quiet = g.wait_event("the quiet action", |e| {
        e["kind"] == "action" && e["session_id"] == quiet_session.as_str()
    });
    assert!(quiet.get("forensics").is_none(), "absent, not null: {quiet}");
    let (status, v) = get(&g, &format!("/v1/forensics/{}", quiet["decision_id"].as_str().unwrap()), &g.admin);
    assert_eq!(status, 404, "{v}");
    let rows: i64 =
        forensics_db(&g).query_row("SELECT COUNT(*) FROM forensic_captures", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 1, "only the forensic session's action was kept");

    // Turned off: logged, and the next action is not kept.
    let off = cli_ok(&g, &["session", "forensics", &session, "--off", "--reason", "cleared"]);
    assert!(off.stdout.contains("\"enabled\": false"), "{}", off.stdout);
    let (status, _) = request(&g, "POST", ISSUES, &token, br#"{"title":"after"}"#);
    assert_eq!(status, 200);
    let after = g.wait_event("the action after", |e| {
        e["kind"] == "action" && e["session_id"] == session.as_str() && e["decision_id"] != decision
    });
    assert!(after.get("forensics").is_none(), "{after}");
    assert!(
        g.events()
            .iter()
            .any(|e| e["kind"] == "session.forensics_disabled" && e["subject"] == session.as_str())
    );

    // A stored body changed afterwards no longer opens the log's commitment.
    let mut tampered = answered.clone();
    tampered[0] ^= 0x01;
    let changed = forensics_db(&g)
        .execute(
            "UPDATE forensic_captures SET response = ?1 WHERE decision_id = ?2",
            rusqlite::params![tampered, decision],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let refused = cli(&g, &["forensics", "show", decision, "--key", &key]);
    assert_eq!(refused.code(), Some(1), "{}", refused.describe());
    assert!(refused.stderr.contains("response body"), "names the body: {}", refused.describe());
    assert!(
        !refused.stdout.contains("printer on fire"),
        "nothing unverified is printed: {}",
        refused.describe()
    );
}

#[test]
fn long_bodies_are_kept_truncated_and_the_mode_survives_a_restart() {
    let (mut g, _echo) = start("forensic_body_bytes_max = 16");
    let (_, session, token) = g.agent_token();
    let (status, v) =
        set_forensics(&g, &session, &g.admin, &json!({"enabled": true, "reason": "incident 8"}));
    assert_eq!(status, 200, "{v}");

    let sent = format!(r#"{{"title":"{}"}}"#, "x".repeat(100));
    let (status, answered) = request(&g, "POST", ISSUES, &token, sent.as_bytes());
    assert_eq!(status, 200);
    assert!(answered.len() > 100, "the whole answer still reaches the agent");
    let first = g.wait_event("the action event", |e| e["kind"] == "action");
    let doc = capture(&g, first["decision_id"].as_str().unwrap());
    assert_eq!(decode(&doc["request"]["body"]), &sent.as_bytes()[..16]);
    assert_eq!(decode(&doc["response"]["body"]), &answered[..16]);
    assert_eq!(
        (doc["request"]["bytes"].as_u64(), doc["request"]["truncated"].as_bool()),
        (Some(sent.len() as u64), Some(true))
    );
    assert_eq!(doc["response"]["bytes"], answered.len() as u64, "the full length is recorded");
    let event = check_commitment(&g, &doc);
    assert_eq!(event["forensics"]["truncated"], true);

    restart(&mut g);
    let (status, setting) = get(&g, &format!("/v1/sessions/{session}/forensics"), &g.admin);
    assert_eq!((status, setting["enabled"].as_bool()), (200, Some(true)), "{setting}");
    let (status, _) = request(&g, "POST", ISSUES, &token, br#"{"title":"after the restart"}"#);
    assert_eq!(status, 200);
    let second = g.wait_event("the action after the restart", |e| {
        e["kind"] == "action" && e["decision_id"] != first["decision_id"]
    });
    let doc = capture(&g, second["decision_id"].as_str().unwrap());
    assert_eq!(decode(&doc["request"]["body"]), &br#"{"title":"after the restart"}"#[..16]);
    let key = log_key(&g);
    for decision in [&first["decision_id"], &second["decision_id"]] {
        cli_ok(&g, &["forensics", "show", decision.as_str().unwrap(), "--key", &key, "--json"]);
    }
}

#[test]
fn bad_input_is_named_and_agents_and_approvers_are_refused() {
    let (g, _echo) = start("");
    let (_, session, token) = g.agent_token();
    let path = format!("/v1/sessions/{session}/forensics");

    let (status, v) = g.post(&path, &token, &json!({"enabled": true, "reason": "let me watch myself"}));
    assert_eq!(status, 403, "an agent credential never reaches the control API: {v}");
    assert!(g.events().iter().any(|e| e["kind"] == "governance.denied" && e["subject"] == path.as_str()));

    for (body, field) in [
        (json!({"reason": "x"}), "enabled"),
        (json!({"enabled": "yes", "reason": "x"}), "enabled"),
        (json!({"enabled": true}), "reason"),
        (json!({"enabled": true, "reason": " "}), "reason"),
        (json!({"enabled": true, "reason": "x", "for": "1h"}), "for"),
    ] {
        let (status, v) = set_forensics(&g, &session, &g.admin, &body);
        assert_eq!((status, v["fields"][0]["field"].as_str()), (400, Some(field)), "{body}: {v}");
    }
    let on = json!({"enabled": true, "reason": "x"});
    let (status, v) = set_forensics(&g, "sess_nobody", &g.admin, &on);
    assert_eq!(status, 404, "{v}");
    let (status, v) = set_forensics(&g, "nobody", &g.admin, &on);
    assert_eq!((status, v["fields"][0]["field"].as_str()), (400, Some("id")), "{v}");
    let (status, v) = get(&g, "/v1/forensics/not-an-id", &g.admin);
    assert_eq!((status, v["fields"][0]["field"].as_str()), (400, Some("id")), "{v}");
    let (status, v) = get(&g, "/v1/forensics/dec_unknown", &g.admin);
    assert_eq!(status, 404, "{v}");
    let (status, v) = get(&g, "/v1/forensics", &g.admin);
    assert_eq!((status, v["fields"][0]["field"].as_str()), (400, Some("session")), "{v}");
    assert!(!g.events().iter().any(|e| e["kind"] == "session.forensics_enabled"), "nothing bad was applied");

    let approver = add_operator(&g, "opr_approver", Role::Approver);
    let auditor = add_operator(&g, "opr_auditor", Role::Auditor);
    assert_eq!(set_forensics(&g, &session, &auditor, &on).0, 403, "changing it needs an admin");
    assert_eq!(
        get(&g, "/v1/forensics/dec_unknown", &approver).0,
        403,
        "reading bodies needs an admin or auditor"
    );
    assert_eq!(get(&g, "/v1/forensics/dec_unknown", &auditor).0, 404);

    for (args, expect) in [
        (vec!["session", "forensics", session.as_str(), "--on"], "--reason is required"),
        (
            vec!["session", "forensics", session.as_str(), "--on", "--off", "--reason", "x"],
            "only one of --on and --off",
        ),
        (vec!["session", "forensics", "nobody", "--on", "--reason", "x"], "not a session id"),
        (vec!["session", "forensics", "sess_nobody", "--on", "--reason", "x"], "no session `sess_nobody`"),
        (vec!["forensics", "show", "nope", "--key", "x"], "neither a decision id"),
        (vec!["forensics", "list", "--session", "nope"], "not a session id"),
    ] {
        assert_exit(&cli(&g, &args), 2, expect, &args.join(" "));
    }
    let ended = cli_ok(&g, &["session", "end", &session]);
    assert!(ended.stdout.contains("ended"), "{}", ended.stdout);
    let (status, v) = set_forensics(&g, &session, &g.admin, &on);
    assert_eq!(status, 409, "an ended session has nothing left to capture: {v}");
}

#[test]
fn mcp_tool_calls_keep_the_agents_message_and_the_upstreams_answer() {
    let upstream = start_testkit(&["mcp-http", "127.0.0.1:0"]);
    let g = Gateway::start(
        &format!(
            r#"
[[gateway.upstreams]]
name = "mail"
kind = "mcp_http"
url = "{}"
tool_list_ttl_ms = 0
classification = {{ plane = "data", environment = "prod", data_class = "internal" }}

[[gateway.routes]]
upstream = "mail"
tool = "send_email"
intent = "email.send"
resource = "mail:outbound"
"#,
            upstream.url
        ),
        &[],
    );
    g.push_policy(&[("mail", "permit(principal, action == Warden::Action::\"email.send\", resource);")]);
    let (_, session, token) = g.agent_token();
    let (status, v) =
        set_forensics(&g, &session, &g.admin, &json!({"enabled": true, "reason": "incident 9"}));
    assert_eq!(status, 200, "{v}");

    // Without an MCP session the version defaults to 2025-06-18: one POST is the
    // whole call.
    let message = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "send_email", "arguments": {"to": "bob@corp.example", "subject": "hi"}}});
    let sent = serde_json::to_vec(&message).unwrap();
    let (status, answered) = request(&g, "POST", "/mcp/mail", &token, &sent);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answered));
    let text = String::from_utf8_lossy(&answered).into_owned();
    assert!(text.contains("sent to bob@corp.example"), "{text}");

    let action = g.wait_event("the tool call", |e| e["kind"] == "action" && e["target"] == "send_email");
    let decision = action["decision_id"].as_str().unwrap();
    let doc = capture(&g, decision);
    check_commitment(&g, &doc);
    assert_eq!(decode(&doc["request"]["body"]), sent, "the agent's JSON-RPC message exactly as sent");
    let answer: Value = serde_json::from_slice(&decode(&doc["response"]["body"])).unwrap();
    assert_eq!(
        answer["result"]["content"][0]["text"], "sent to bob@corp.example",
        "the upstream's answer: {answer}"
    );
    let key = log_key(&g);
    cli_ok(&g, &["forensics", "show", decision, "--key", &key]);
}
