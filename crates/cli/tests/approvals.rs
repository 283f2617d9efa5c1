//! `warden approvals …` end to end: the real binary in front of a real upstream,
//! an agent's request held by an `approve` policy, and an operator listing,
//! showing, approving and denying it from the command line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
#[path = "common/gateway.rs"]
mod gateway;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use common::{CliOutput, warden};
use gateway::{Gateway, http_agent};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// A tiny upstream answering every request with `{"forwarded": "<path>"}`.
fn start_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            thread::spawn(move || {
                stream.set_read_timeout(Some(WAIT)).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0u8; length];
                reader.read_exact(&mut body).unwrap();
                let path = request_line.split(' ').nth(1).unwrap_or("?");
                let answer = format!("{{\"forwarded\":\"{path}\"}}");
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            });
        }
    });
    url
}

fn config(upstream: &str) -> String {
    format!(
        r#"
[gateway]
hold_timeout_ms = 60000

[[gateway.upstreams]]
name = "payments"
kind = "http"
url = "{upstream}"
classification = {{ plane = "data", environment = "prod", data_class = "confidential" }}

[[gateway.routes]]
upstream = "payments"
method = "POST"
path = "/customers/{{customer}}/refunds"
intent = "payment.create"
resource = "payments:{{customer}}"
"#
    )
}

const APPROVE_PAYMENTS: &str = "@decision(\"approve\")\n@reason(\"payments need a human\")\n\
     permit(principal, action == Warden::Action::\"payment.create\", resource);";

struct Setup {
    g: Gateway,
    token: String,
    agent: String,
    session: String,
}

fn setup() -> Setup {
    let g = Gateway::start(&config(&start_upstream()), &[]);
    g.push_policy(&[("approve-payments", APPROVE_PAYMENTS)]);
    let (agent, session, token) = g.agent_token();
    Setup { g, token, agent, session }
}

impl Setup {
    /// `warden approvals ARGS` against this server with its admin credential.
    fn cli(&self, args: &[&str]) -> CliOutput {
        let token_file = self.g.dir.path().join("data").join("admin.token");
        let mut all = vec!["approvals", "--url", self.g.url(), "--token-file", token_file.to_str().unwrap()];
        all.extend_from_slice(args);
        warden(&all)
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert_eq!(out.code(), Some(0), "warden approvals {args:?}: {}", out.describe());
        out.stdout
    }

    fn cli_json(&self, args: &[&str]) -> Value {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        serde_json::from_str(&self.cli_ok(&with_json)).unwrap()
    }

    /// Sends a refund through the gateway on another thread; it is held until decided.
    fn send_refund(&self, customer: &str) -> thread::JoinHandle<(u16, Value)> {
        let url = format!("{}/proxy/payments/customers/{customer}/refunds", self.g.url());
        let token = self.token.clone();
        thread::spawn(move || {
            let mut r = http_agent()
                .post(&url)
                .header("authorization", &format!("Bearer {token}"))
                .header("warden-rollback", "POST /customers/{customer}/refunds/{id}/reverse")
                .send(r#"{"amount": 900, "currency": "EUR"}"#)
                .unwrap();
            (r.status().as_u16(), r.body_mut().read_json().unwrap_or(Value::Null))
        })
    }

    /// Waits until the CLI lists a pending approval for `customer`; returns its id.
    fn pending_for(&self, customer: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let list = self.cli_json(&["list", "--status", "pending"]);
            let resource = format!("payments:{customer}");
            if let Some(a) =
                list["approvals"].as_array().unwrap().iter().find(|a| a["resource"] == resource.as_str())
            {
                return a["id"].as_str().unwrap().to_owned();
            }
            assert!(Instant::now() < deadline, "no pending approval for {customer}");
            thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn an_operator_lists_shows_approves_and_denies_held_requests() {
    let s = setup();
    assert!(s.cli_ok(&["list"]).contains("no approvals"));

    // Approve: the held request proceeds to the upstream.
    let held = s.send_refund("cus_42");
    let id = s.pending_for("cus_42");
    let listed = s.cli_ok(&["list", "--status", "pending"]);
    assert!(listed.contains(&id) && listed.contains("payment.create on payments:cus_42"), "{listed}");
    let shown = s.cli_ok(&["show", &id]);
    for needle in [
        format!("approval   {id} (pending)"),
        format!("by agent {} in session {}", s.agent, s.session),
        "action     POST /customers/cus_42/refunds".into(),
        "rollback   POST /customers/{customer}/refunds/{id}/reverse".into(),
        "reason     payments need a human".into(),
        "arguments  sha256:".into(),
        "evidence   sha256:".into(),
    ] {
        assert!(shown.contains(&needle), "`{needle}` not in\n{shown}");
    }
    let evidence = s.cli_json(&["show", &id]);
    assert_eq!(evidence["evidence"]["affected_assets"][0], "payments:cus_42");
    assert_eq!(evidence["evidence"]["recent_actions"][0]["decision"], "approve");

    let approved = s.cli_ok(&["approve", &id, "--reason", "customer called"]);
    assert!(approved.starts_with(&format!("approved {id}")), "{approved}");
    let (status, body) = held.join().unwrap();
    assert_eq!(status, 200, "the approved request was forwarded: {body}");
    assert_eq!(body["forwarded"], "/customers/cus_42/refunds");

    // A decision is final: exit 1 with a clear message.
    let again = s.cli(&["deny", &id]);
    assert_eq!(again.code(), Some(1), "{}", again.describe());
    assert!(again.stderr.contains("already approved"), "{}", again.describe());

    // Deny: the held request fails with the operator's reason, and is never forwarded.
    let held = s.send_refund("cus_43");
    let id2 = s.pending_for("cus_43");
    let denied = s.cli_json(&["deny", &id2, "--reason", "refunds are frozen"]);
    assert_eq!(denied["status"], "denied");
    let (status, body) = held.join().unwrap();
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "held_for_approval");
    assert!(body["message"].as_str().unwrap().contains("refunds are frozen"), "{body}");

    let decided = s.cli_ok(&["list", "--status", "denied"]);
    assert!(decided.contains(&id2) && !decided.contains(&id), "{decided}");
    let shown = s.cli_ok(&["show", &id2]);
    assert!(shown.contains("decided    denied by opr_") && shown.contains(": refunds are frozen"), "{shown}");

    // Every step of both chains is in the log.
    let events = s.g.events();
    let kinds_of = |id: &str| -> Vec<String> {
        events.iter().filter(|e| e["subject"] == id).map(|e| e["kind"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(kinds_of(&id), ["approval.requested", "approval.approved"]);
    assert_eq!(kinds_of(&id2), ["approval.requested", "approval.denied"]);
    let action = events.iter().find(|e| e["kind"] == "action").expect("the approved request's action event");
    assert_eq!(action["intent"], "payment.create");
    assert_eq!(
        events.iter().filter(|e| e["kind"] == "action").count(),
        1,
        "the denied request was never forwarded"
    );
}

#[test]
fn bad_input_exits_2_and_refusals_exit_1() {
    let s = setup();
    for (args, want, needle) in [
        (&["list", "--status", "held"][..], 2, "invalid value 'held'"),
        (&["list", "--limit", "0"][..], 2, "--limit 0"),
        (&["show", "not-an-id"][..], 2, "not an approval id"),
        (&["show", "apr_doesnotexist"][..], 2, "no approval `apr_doesnotexist`"),
        (&["approve", "apr_doesnotexist"][..], 2, "no approval `apr_doesnotexist`"),
    ] {
        let out = s.cli(args);
        assert_eq!(out.code(), Some(want), "{args:?}: {}", out.describe());
        assert!(out.stderr.contains(needle), "{args:?}: `{needle}` not in {}", out.describe());
    }
    // An unreadable credential is bad input; an unreachable server is a failure.
    let out = warden(&["approvals", "--url", s.g.url(), "--token-file", "/nonexistent/token", "list"]);
    assert_eq!(out.code(), Some(2), "{}", out.describe());
    let token_file = s.g.dir.path().join("data").join("admin.token");
    let out = warden(&[
        "approvals",
        "--url",
        "http://127.0.0.1:9",
        "--token-file",
        token_file.to_str().unwrap(),
        "list",
    ]);
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    // A credential that is not an operator's is refused.
    let agent_token = s.g.dir.path().join("agent.token");
    std::fs::write(&agent_token, &s.token).unwrap();
    let out =
        warden(&["approvals", "--url", s.g.url(), "--token-file", agent_token.to_str().unwrap(), "list"]);
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    assert!(out.stderr.contains("agent credentials can never call the control API"), "{}", out.describe());
}
