//! Approvals end to end inside one process: a held request over a real data
//! directory, operators deciding over HTTP, timeouts, restarts, and every step
//! read back from the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use warden_server::approvals::{
    ApprovalOutcome, CANCELLED_REASON, EvidencePacket, PlannedAction, RESTART_REASON,
};
use warden_server::{AppState, Config};
use warden_store::approvals::ApprovalStatus;
use warden_store::directory::{OperatorRecord, Role};

const ADMIN: &str = "wop_test-admin-secret";
const APPROVER: &str = "wop_test-approver-secret";
const AUDITOR: &str = "wop_test-auditor-secret";
const WAIT: Duration = Duration::from_secs(20);

struct Harness {
    _dir: tempfile::TempDir,
    state: AppState,
    addr: SocketAddr,
}

fn config(data_dir: &std::path::Path) -> Config {
    Config { data_dir: data_dir.to_owned(), ..Config::default() }
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn add_operators(state: &AppState) {
    for (id, role, token) in [
        ("opr_admin", Role::Admin, ADMIN),
        ("opr_approver", Role::Approver, APPROVER),
        ("opr_auditor", Role::Auditor, AUDITOR),
    ] {
        let op = OperatorRecord {
            id: id.into(),
            name: id.into(),
            role,
            token_sha256: sha256_hex(token),
            created_at: 0,
            revoked: false,
        };
        state.directory.put_operator(&op).unwrap();
    }
}

async fn serve(state: AppState) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = warden_server::routes::router(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let state = warden_server::test_state(config(dir.path())).await.unwrap();
    add_operators(&state);
    let addr = serve(state.clone()).await;
    Harness { _dir: dir, state, addr }
}

/// One HTTP/1.1 exchange over a fresh connection: status and JSON body.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let request = {
        let auth = token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
        let body = body.unwrap_or("");
        format!(
            "{method} {path} HTTP/1.1\r\nhost: test\r\n{auth}content-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            // Chunked: a hex size line, the chunk, and the terminator.
            body.split_once("\r\n")
                .map(|(_, rest)| rest.rsplit_once("\r\n0\r\n").map_or(rest, |(c, _)| c))
                .unwrap()
        } else {
            body
        };
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    })
    .await
    .unwrap()
}

fn packet(session: &str) -> EvidencePacket {
    EvidencePacket {
        decision_id: "dec_held1".into(),
        agent_id: "agt_refunder".into(),
        session_id: session.into(),
        intent: "payment.refund".into(),
        resource: "payments-prod".into(),
        action: PlannedAction {
            method: "POST".into(),
            target: "/v1/refunds".into(),
            argument_digest: format!("sha256:{}", sha256_hex("{\"amount\":900}")),
            summary: "refund 900 EUR to customer cus_42".into(),
        },
        affected_assets: vec!["customer:cus_42".into(), "ledger:eur".into()],
        rollback: Some("POST /v1/refunds/{id}/reverse".into()),
        reasons: vec!["refunds above 500 need a human".into()],
    }
}

/// Waits until the store holds a pending approval of `session`; returns its id.
async fn pending_of(state: &AppState, session: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let pending = state.approvals.store().approvals(Some(ApprovalStatus::Pending), 100).unwrap();
        if let Some(a) = pending.iter().find(|a| a.session_id == session) {
            return a.id.clone();
        }
        assert!(Instant::now() < deadline, "no pending approval for {session}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The approval events of `id` in the log, in order.
fn approval_events(state: &AppState, id: &str) -> Vec<Value> {
    (0..state.log.sequenced_size())
        .map(|i| serde_json::from_slice::<Value>(&state.log.entry(i).unwrap()).unwrap())
        .filter(|e| e["subject"] == id && e["kind"].as_str().is_some_and(|k| k.starts_with("approval.")))
        .collect()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn approve_releases_the_hold_and_every_step_is_logged() {
    let h = harness().await;
    h.state.activity.record("sess_a", "dec_before", "ticket.read", "tickets", "allow", 1);
    let held = {
        let state = h.state.clone();
        tokio::spawn(
            async move { state.approvals.hold(&state, packet("sess_a"), Duration::from_secs(60)).await },
        )
    };
    let id = pending_of(&h.state, "sess_a").await;

    // Any operator role may read, with the whole evidence packet.
    let (status, list) = http(h.addr, "GET", "/v1/approvals?status=pending", Some(AUDITOR), None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["approvals"][0]["id"], id.as_str());
    assert_eq!(list["approvals"][0]["intent"], "payment.refund");
    let (status, shown) = http(h.addr, "GET", &format!("/v1/approvals/{id}"), Some(AUDITOR), None).await;
    assert_eq!(status, 200, "{shown}");
    let evidence = &shown["evidence"];
    assert_eq!(evidence["action"]["summary"], "refund 900 EUR to customer cus_42");
    assert_eq!(evidence["affected_assets"][1], "ledger:eur");
    assert_eq!(evidence["rollback"], "POST /v1/refunds/{id}/reverse");
    assert_eq!(evidence["recent_actions"][0]["decision_id"], "dec_before");
    assert_eq!(evidence["risk"], 0.0);
    let canonical = serde_json_canonical(evidence);
    assert_eq!(shown["evidence_sha256"], format!("sha256:{}", hex_sha256(&canonical)));

    // An auditor may not decide.
    let (status, body) =
        http(h.addr, "POST", &format!("/v1/approvals/{id}/approve"), Some(AUDITOR), None).await;
    assert_eq!(status, 403, "{body}");
    assert!(!held.is_finished());

    let (status, body) = http(
        h.addr,
        "POST",
        &format!("/v1/approvals/{id}/approve"),
        Some(APPROVER),
        Some(r#"{"reason": "customer confirmed by phone"}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "approved");
    assert_eq!(body["decided_by"], "opr_approver");
    let outcome = tokio::time::timeout(WAIT, held).await.unwrap().unwrap().unwrap();
    assert_eq!(outcome, ApprovalOutcome::Approved { approval_id: id.clone(), by: "opr_approver".into() });

    // A decision is final.
    for verb in ["approve", "deny"] {
        let (status, body) =
            http(h.addr, "POST", &format!("/v1/approvals/{id}/{verb}"), Some(ADMIN), None).await;
        assert_eq!(status, 409, "{body}");
        assert!(body["message"].as_str().unwrap().contains("already approved by `opr_approver`"), "{body}");
    }

    let events = approval_events(&h.state, &id);
    assert_eq!(kinds(&events), ["approval.requested", "approval.approved"]);
    assert_eq!(events[0]["actor"], "agt_refunder");
    assert_eq!(events[0]["details"]["evidence_sha256"], shown["evidence_sha256"]);
    assert_eq!(events[0]["details"]["decision_id"], "dec_held1");
    assert_eq!(events[1]["actor"], "opr_approver");
    assert_eq!(events[1]["details"]["reason"], "customer confirmed by phone");
    assert_eq!(h.state.approvals.held(), 0);
}

fn serde_json_canonical(v: &Value) -> Vec<u8> {
    warden_core::canonical::to_canonical_vec(v).unwrap()
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn deny_fails_the_hold_with_the_reason() {
    let h = harness().await;
    let held = {
        let state = h.state.clone();
        tokio::spawn(
            async move { state.approvals.hold(&state, packet("sess_b"), Duration::from_secs(60)).await },
        )
    };
    let id = pending_of(&h.state, "sess_b").await;
    let (status, body) = http(
        h.addr,
        "POST",
        &format!("/v1/approvals/{id}/deny"),
        Some(ADMIN),
        Some(r#"{"reason": "not during the freeze"}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "denied");
    let outcome = tokio::time::timeout(WAIT, held).await.unwrap().unwrap().unwrap();
    assert_eq!(
        outcome,
        ApprovalOutcome::Denied {
            approval_id: id.clone(),
            by: "opr_admin".into(),
            reason: "not during the freeze".into()
        }
    );
    let (status, list) = http(h.addr, "GET", "/v1/approvals?status=denied", Some(APPROVER), None).await;
    assert_eq!(status, 200);
    assert_eq!(list["approvals"][0]["reason"], "not during the freeze");
    let (_, pending) = http(h.addr, "GET", "/v1/approvals?status=pending", Some(APPROVER), None).await;
    assert_eq!(pending["approvals"], json!([]));
    let events = approval_events(&h.state, &id);
    assert_eq!(kinds(&events), ["approval.requested", "approval.denied"]);
    assert_eq!(events[1]["actor"], "opr_admin");
}

#[tokio::test]
async fn a_hold_times_out_as_expired() {
    let h = harness().await;
    let outcome =
        h.state.approvals.hold(&h.state, packet("sess_c"), Duration::from_millis(300)).await.unwrap();
    let ApprovalOutcome::TimedOut { approval_id: id } = outcome else { panic!("{outcome:?}") };
    let stored = h.state.approvals.store().approval(&id).unwrap().unwrap();
    assert_eq!(stored.status, ApprovalStatus::Expired);
    assert_eq!(stored.decided_by.as_deref(), Some("system"));
    let (status, body) =
        http(h.addr, "POST", &format!("/v1/approvals/{id}/approve"), Some(APPROVER), None).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains("already expired"), "{body}");
    let events = approval_events(&h.state, &id);
    assert_eq!(kinds(&events), ["approval.requested", "approval.expired"]);
    assert_eq!(events[1]["actor"], "system");
}

#[tokio::test]
async fn a_cancelled_hold_expires_its_approval() {
    let h = harness().await;
    let held = {
        let state = h.state.clone();
        tokio::spawn(
            async move { state.approvals.hold(&state, packet("sess_d"), Duration::from_secs(60)).await },
        )
    };
    let id = pending_of(&h.state, "sess_d").await;
    held.abort();
    let deadline = Instant::now() + WAIT;
    loop {
        let stored = h.state.approvals.store().approval(&id).unwrap().unwrap();
        if stored.status == ApprovalStatus::Expired {
            assert_eq!(stored.reason.as_deref(), Some(CANCELLED_REASON));
            break;
        }
        assert!(Instant::now() < deadline, "the cancelled hold's approval never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(kinds(&approval_events(&h.state, &id)), ["approval.requested", "approval.expired"]);
    assert_eq!(h.state.approvals.held(), 0);
}

#[tokio::test]
async fn pending_approvals_expire_when_the_server_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let first = warden_server::test_state(config(dir.path())).await.unwrap();
    // The first process "dies" while the request is held: its hold is never
    // polled again and nothing of it runs (as after kill -9).
    let mut hold = Box::pin(first.approvals.hold(&first, packet("sess_e"), Duration::from_secs(600)));
    let id = tokio::select! {
        outcome = &mut hold => panic!("the hold ended early: {outcome:?}"),
        id = pending_of(&first, "sess_e") => id,
    };
    std::mem::forget(hold);

    let second = warden_server::test_state(config(dir.path())).await.unwrap();
    let stored = second.approvals.store().approval(&id).unwrap().unwrap();
    assert_eq!(stored.status, ApprovalStatus::Expired);
    assert_eq!(stored.reason.as_deref(), Some(RESTART_REASON));
    let events = approval_events(&second, &id);
    assert_eq!(kinds(&events), ["approval.requested", "approval.expired"]);
    assert_eq!(events[1]["details"]["reason"], RESTART_REASON);
    assert!(second.approvals.store().approvals(Some(ApprovalStatus::Pending), 10).unwrap().is_empty());
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let h = harness().await;
    let cases: [(&str, &str, Option<&str>, u16, &str); 7] = [
        ("GET", "/v1/approvals?status=held", Some(AUDITOR), 400, "status"),
        ("GET", "/v1/approvals?limit=0", Some(AUDITOR), 400, "limit"),
        ("GET", "/v1/approvals?colour=red", Some(AUDITOR), 400, "colour"),
        ("GET", "/v1/approvals/not-an-id", Some(AUDITOR), 400, "id"),
        ("GET", "/v1/approvals/apr_doesnotexist", Some(AUDITOR), 404, ""),
        ("POST", "/v1/approvals/apr_doesnotexist/approve", Some(APPROVER), 404, ""),
        ("GET", "/v1/approvals", None, 401, ""),
    ];
    for (method, path, token, want, field) in cases {
        let (status, body) = http(h.addr, method, path, token, None).await;
        assert_eq!(status, want, "{method} {path}: {body}");
        if !field.is_empty() {
            assert_eq!(body["fields"][0]["field"], field, "{body}");
        }
    }
    // An agent credential never reaches the control API.
    let (status, _) = http(h.addr, "GET", "/v1/approvals", Some("eyJhbGciOiJFZERTQSJ9.x.y"), None).await;
    assert_eq!(status, 403);
    // A reason that is not a string is named.
    let held = {
        let state = h.state.clone();
        tokio::spawn(
            async move { state.approvals.hold(&state, packet("sess_f"), Duration::from_secs(60)).await },
        )
    };
    let id = pending_of(&h.state, "sess_f").await;
    let (status, body) =
        http(h.addr, "POST", &format!("/v1/approvals/{id}/deny"), Some(ADMIN), Some(r#"{"reason": 7}"#))
            .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = http(h.addr, "POST", &format!("/v1/approvals/{id}/deny"), Some(ADMIN), None).await;
    assert_eq!(status, 200);
    let outcome = held.await.unwrap().unwrap();
    assert!(matches!(outcome, ApprovalOutcome::Denied { by, .. } if by == "opr_admin"));

    // A bad packet is refused before anything is held or logged.
    let mut bad = packet("sess_g");
    bad.action.argument_digest = "md5:abc".into();
    let err = h.state.approvals.hold(&h.state, bad, Duration::from_secs(1)).await.unwrap_err();
    assert!(err.to_string().contains("argument_digest"), "{err}");
    assert_eq!(h.state.approvals.held(), 0);
}
