//! Quarantines, replay and trust histories inside one process, over a real data
//! directory and real HTTP: roles, every validation, durability across a restart,
//! the event index read with inclusion proofs, paging, and a summary that
//! verifies with nothing but the log's verifier key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use warden_ledger::checkpoint::Checkpoint;
use warden_ledger::hash::{Hash, leaf_hash};
use warden_ledger::note::NoteVerifier;
use warden_ledger::verify::verify_inclusion;
use warden_server::trust::summary::{self, TrustDocument};
use warden_server::{AppState, Config};
use warden_store::directory::{OperatorRecord, Role};

const ADMIN: &str = "wop_test-admin-secret";
const APPROVER: &str = "wop_test-approver-secret";
const AUDITOR: &str = "wop_test-auditor-secret";
const WAIT: Duration = Duration::from_secs(20);

struct Harness {
    dir: tempfile::TempDir,
    state: AppState,
    addr: SocketAddr,
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

async fn start(dir: tempfile::TempDir) -> Harness {
    let config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
    let state = warden_server::test_state(config).await.unwrap();
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = warden_server::routes::router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Harness { dir, state, addr }
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
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            dechunk(body)
        } else {
            body.to_owned()
        };
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    })
    .await
    .unwrap()
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

fn now(state: &AppState) -> i64 {
    state.clock.now().unix_timestamp()
}

async fn register(h: &Harness, id: &str) {
    let body = json!({"id": id, "owner": "team-x", "environment": "prod"}).to_string();
    let (status, v) = http(h.addr, "POST", "/v1/agents", Some(ADMIN), Some(&body)).await;
    assert_eq!(status, 200, "{v}");
}

/// Waits until everything sequenced is integrated, then signs a checkpoint over it.
async fn publish(state: &AppState) -> u64 {
    let deadline = Instant::now() + WAIT;
    while state.log.head().size < state.log.sequenced_size() {
        assert!(Instant::now() < deadline, "the log did not integrate");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    state.log.publish(&state.signer).unwrap();
    state.log.checkpoint().unwrap().size
}

fn log_events(state: &AppState) -> Vec<Value> {
    (0..state.log.sequenced_size())
        .map(|i| serde_json::from_slice(&state.log.entry(i).unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn quarantines_need_an_admin_validate_every_field_log_every_change_and_survive_a_restart() {
    let h = start(tempfile::tempdir().unwrap()).await;
    register(&h, "agt_suspect").await;
    let place = |token: &'static str, body: Value| {
        let addr = h.addr;
        async move { http(addr, "POST", "/v1/quarantines", Some(token), Some(&body.to_string())).await }
    };
    let good = json!({"target": {"agent": "agt_suspect"}, "expires_in_s": 3600, "reason": "incident 7: exfiltration"});
    for token in [AUDITOR, APPROVER] {
        let (status, v) = place(token, good.clone()).await;
        assert_eq!(status, 403, "{v}");
    }
    let (status, v) = http(h.addr, "POST", "/v1/quarantines", None, Some(&good.to_string())).await;
    assert_eq!(status, 401, "{v}");
    let max = warden_server::incident::quarantine::QUARANTINE_DURATION_S_MAX;
    for (body, field) in [
        (json!({"target": {"agent": "agt_suspect"}, "reason": "x"}), "expires_in_s"),
        (
            json!({"target": {"agent": "agt_suspect"}, "expires_in_s": 60, "expires_at": "2100-01-01T00:00:00Z", "reason": "x"}),
            "expires_in_s",
        ),
        (json!({"target": {"agent": "agt_suspect"}, "expires_in_s": max + 1, "reason": "x"}), "expires_in_s"),
        (json!({"target": {"agent": "agt_suspect"}, "expires_in_s": 0, "reason": "x"}), "expires_in_s"),
        (
            json!({"target": {"agent": "agt_suspect"}, "expires_at": "2000-01-01T00:00:00Z", "reason": "x"}),
            "expires_at",
        ),
        (
            json!({"target": {"agent": "agt_suspect"}, "expires_at": "next tuesday", "reason": "x"}),
            "expires_at",
        ),
        (json!({"target": {"agent": "agt_nobody"}, "expires_in_s": 60, "reason": "x"}), "target.agent"),
        (json!({"target": {"agent": "bob"}, "expires_in_s": 60, "reason": "x"}), "target.agent"),
        (
            json!({"target": {"resource_prefix": ""}, "expires_in_s": 60, "reason": "x"}),
            "target.resource_prefix",
        ),
        (json!({"target": {"agent": "agt_suspect"}, "expires_in_s": 60, "reason": "  "}), "reason"),
        (json!({"target": {"agent": "agt_suspect"}, "expires_in_s": 60, "reason": "x", "extra": 1}), "extra"),
    ] {
        let (status, v) = place(ADMIN, body.clone()).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["fields"][0]["field"], field, "{body}: {v}");
    }
    assert!(h.state.quarantines.check("agt_suspect", "jira", now(&h.state)).is_none(), "nothing was placed");

    let (status, agent_q) = place(ADMIN, good).await;
    assert_eq!(status, 200, "{agent_q}");
    assert_eq!(
        (agent_q["status"].as_str(), agent_q["created_by"].as_str()),
        (Some("active"), Some("opr_admin"))
    );
    let agent_qid = agent_q["id"].as_str().unwrap().to_owned();
    let (status, prefix_q) = place(
        ADMIN,
        json!({"target": {"resource_prefix": "prod/db/"}, "expires_at": (now(&h.state) + 600).to_string(), "reason": "rotating keys"}),
    )
    .await;
    assert_eq!(status, 200, "{prefix_q}");
    let prefix_qid = prefix_q["id"].as_str().unwrap().to_owned();

    let why = h.state.quarantines.check("agt_suspect", "jira", now(&h.state)).unwrap();
    assert!(why.contains(&agent_qid) && why.contains("incident 7: exfiltration"), "{why}");
    assert!(why.contains(agent_q["expires_at"].as_str().unwrap()), "names the end: {why}");
    let why = h.state.quarantines.check("agt_other", "prod/db/users", now(&h.state)).unwrap();
    assert!(why.contains(&prefix_qid) && why.contains("prod/db/"), "{why}");
    assert!(h.state.quarantines.check("agt_other", "prod/dbx", now(&h.state)).is_none());

    // Auditors may list; approvers may not lift.
    let (status, list) = http(h.addr, "GET", "/v1/quarantines", Some(AUDITOR), None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["quarantines"].as_array().unwrap().len(), 2, "{list}");
    let (status, v) =
        http(h.addr, "DELETE", &format!("/v1/quarantines/{agent_qid}"), Some(APPROVER), None).await;
    assert_eq!(status, 403, "{v}");
    for (path, code) in [("/v1/quarantines/qua_nothere", 404), ("/v1/quarantines/agt_x", 400)] {
        let (status, v) = http(h.addr, "DELETE", path, Some(ADMIN), None).await;
        assert_eq!(status, code, "{path}: {v}");
    }
    let (status, lifted) =
        http(h.addr, "DELETE", &format!("/v1/quarantines/{agent_qid}"), Some(ADMIN), None).await;
    assert_eq!(status, 200, "{lifted}");
    assert_eq!(
        (lifted["status"].as_str(), lifted["lifted_by"].as_str()),
        (Some("lifted"), Some("opr_admin"))
    );
    assert!(h.state.quarantines.check("agt_suspect", "jira", now(&h.state)).is_none(), "lifted at once");
    let (status, v) =
        http(h.addr, "DELETE", &format!("/v1/quarantines/{agent_qid}"), Some(ADMIN), None).await;
    assert_eq!(status, 409, "{v}");
    let (_, all) = http(h.addr, "GET", "/v1/quarantines?all=true", Some(AUDITOR), None).await;
    let statuses: Vec<&str> =
        all["quarantines"].as_array().unwrap().iter().map(|q| q["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.len(), 2, "{all}");
    assert!(statuses.contains(&"lifted") && statuses.contains(&"active"), "{all}");
    let (status, v) = http(h.addr, "GET", "/v1/quarantines?limit=0", Some(AUDITOR), None).await;
    assert_eq!((status, v["fields"][0]["field"].as_str()), (400, Some("limit")), "{v}");

    // Every change is in the log: placed twice, lifted once, each naming its target.
    let events = log_events(&h.state);
    let of_kind = |k: &str| events.iter().filter(|e| e["kind"] == k).cloned().collect::<Vec<_>>();
    let placed = of_kind("quarantine.placed");
    assert_eq!(placed.len(), 2, "{events:#?}");
    assert_eq!(placed[0]["subject"], agent_qid.as_str());
    assert_eq!(placed[0]["details"]["target"], json!({"agent": "agt_suspect"}));
    assert_eq!(placed[0]["details"]["agent_id"], "agt_suspect");
    assert_eq!(placed[1]["details"]["target"], json!({"resource_prefix": "prod/db/"}));
    let lifted_events = of_kind("quarantine.lifted");
    assert_eq!(lifted_events.len(), 1);
    assert_eq!(
        (lifted_events[0]["subject"].as_str(), lifted_events[0]["actor"].as_str()),
        (Some(agent_qid.as_str()), Some("opr_admin"))
    );

    // A restart loads what is still active, and nothing that was lifted.
    let Harness { dir, state, .. } = h;
    state.log.shutdown();
    drop(state);
    let h = start(dir).await;
    assert!(
        h.state.quarantines.check("agt_other", "prod/db/users", now(&h.state)).is_some(),
        "survives a restart"
    );
    assert!(h.state.quarantines.check("agt_suspect", "jira", now(&h.state)).is_none());
}

fn telemetry(agent: &str, session: &str, n: u64) -> Value {
    json!({"agent_id": agent, "session_id": session, "timestamp": "2025-06-01T12:00:00Z",
        "action_type": "write", "outcome": "success", "axiom_hash": format!("sha256:{n:064x}")})
}

/// Checks a replay page's checkpoint and every entry's proof; returns the entries' events.
fn verified_page(page: &Value, verifier: &NoteVerifier) -> Vec<(u64, Value)> {
    let cp = Checkpoint::parse(verifier.verify(page["checkpoint"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(page["tree_size"].as_u64(), Some(cp.size));
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let index = e["index"].as_u64().unwrap();
            let leaf = STANDARD.decode(e["leaf"].as_str().unwrap()).unwrap();
            let proof: Vec<Hash> = e["inclusion_proof"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| Hash::from_base64(h.as_str().unwrap()).unwrap())
                .collect();
            verify_inclusion(index, cp.size, leaf_hash(&leaf), &proof, cp.root).unwrap();
            (index, serde_json::from_slice(&leaf).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn replay_reads_an_agents_or_sessions_entries_through_the_index_with_proofs_and_pages() {
    let h = start(tempfile::tempdir().unwrap()).await;
    let verifier = NoteVerifier::from_verifier_key(&h.state.signer.verifier_key()).unwrap();
    register(&h, "agt_replayed").await;
    let (status, session) = http(
        h.addr,
        "POST",
        "/v1/sessions",
        Some(ADMIN),
        Some(r#"{"agent_id": "agt_replayed", "purpose": "triage"}"#),
    )
    .await;
    assert_eq!(status, 200, "{session}");
    let sid = session["id"].as_str().unwrap().to_owned();
    let batch: Vec<Value> = (0..5)
        .map(|n| telemetry("agt_replayed", &sid, n))
        .chain((5..8).map(|n| telemetry("agt_bystander", "sess_elsewhere", n)))
        .collect();
    let (status, v) =
        http(h.addr, "POST", "/v1/telemetry/submit", None, Some(&json!({"events": batch}).to_string())).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = http(h.addr, "POST", &format!("/v1/sessions/{sid}/end"), Some(ADMIN), None).await;
    assert_eq!(status, 200, "{v}");
    let size = publish(&h.state).await;
    // Not covered by a checkpoint yet, so not replayed.
    let late = json!({"events": [telemetry("agt_replayed", &sid, 99)]}).to_string();
    assert_eq!(http(h.addr, "POST", "/v1/telemetry/submit", None, Some(&late)).await.0, 200);

    let (status, page) = http(h.addr, "GET", "/v1/replay?agent=agt_replayed", Some(AUDITOR), None).await;
    assert_eq!(status, 200, "{page}");
    let entries = verified_page(&page, &verifier);
    let kinds: Vec<&str> = entries.iter().map(|(_, e)| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "agent.registered",
            "session.started",
            "telemetry",
            "telemetry",
            "telemetry",
            "telemetry",
            "telemetry",
            "session.ended"
        ],
        "registration, the session (its end filed under the agent through the directory) and its events: {page}"
    );
    assert!(entries.iter().all(|(i, _)| *i < size), "only what the checkpoint covers");
    assert_eq!(page["next_cursor"], Value::Null);
    assert_eq!(page["indexed_size"].as_u64(), Some(size));

    // Pages of two, followed to the end, are the same entries.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/replay?agent=agt_replayed&limit=2&cursor={c}"),
            None => "/v1/replay?agent=agt_replayed&limit=2".to_owned(),
        };
        let (status, page) = http(h.addr, "GET", &path, Some(AUDITOR), None).await;
        assert_eq!(status, 200, "{page}");
        paged.extend(verified_page(&page, &verifier).into_iter().map(|(i, _)| i));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, entries.iter().map(|(i, _)| *i).collect::<Vec<_>>());

    let (_, by_session) = http(h.addr, "GET", &format!("/v1/replay?session={sid}"), Some(ADMIN), None).await;
    let kinds: Vec<String> = verified_page(&by_session, &verifier)
        .iter()
        .map(|(_, e)| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        ["session.started", "telemetry", "telemetry", "telemetry", "telemetry", "telemetry", "session.ended"]
    );
    let (_, early) =
        http(h.addr, "GET", "/v1/replay?agent=agt_replayed&until=2000-01-01T00:00:00Z", Some(ADMIN), None)
            .await;
    assert_eq!(early["entries"], json!([]), "{early}");
    let since = now(&h.state) + 3600;
    let (_, future) =
        http(h.addr, "GET", &format!("/v1/replay?agent=agt_replayed&since={since}"), Some(ADMIN), None).await;
    assert_eq!(future["entries"], json!([]), "{future}");
    let (_, other) = http(h.addr, "GET", "/v1/replay?agent=agt_bystander", Some(ADMIN), None).await;
    assert_eq!(verified_page(&other, &verifier).len(), 3);

    for (path, field) in [
        ("/v1/replay", "agent"),
        ("/v1/replay?agent=agt_a&session=sess_b", "agent"),
        ("/v1/replay?agent=bob", "agent"),
        ("/v1/replay?session=nope", "session"),
        ("/v1/replay?agent=agt_a&limit=0", "limit"),
        ("/v1/replay?agent=agt_a&cursor=zz", "cursor"),
        ("/v1/replay?agent=agt_a&since=yesterday", "since"),
        ("/v1/replay?agent=agt_a&since=20&until=10", "since"),
        ("/v1/replay?agent=agt_a&colour=red", "colour"),
    ] {
        let (status, v) = http(h.addr, "GET", path, Some(AUDITOR), None).await;
        assert_eq!((status, v["fields"][0]["field"].as_str()), (400, Some(field)), "{path}: {v}");
    }
    let (status, _) = http(h.addr, "GET", "/v1/replay?agent=agt_replayed", None, None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_history_is_signed_anchored_and_verifies_with_only_the_log_key() {
    let h = start(tempfile::tempdir().unwrap()).await;
    register(&h, "agt_partnered").await;
    let batch: Vec<Value> = (0..4).map(|n| telemetry("agt_partnered", "sess_p", n)).collect();
    let (status, _) =
        http(h.addr, "POST", "/v1/telemetry/submit", None, Some(&json!({"events": batch}).to_string())).await;
    assert_eq!(status, 200);
    let size = publish(&h.state).await;
    let (status, doc) = http(h.addr, "GET", "/v1/agents/agt_partnered/history", Some(AUDITOR), None).await;
    assert_eq!(status, 200, "{doc}");
    let doc: TrustDocument = serde_json::from_value(doc).unwrap();
    let verifier = NoteVerifier::from_verifier_key(&h.state.signer.verifier_key()).unwrap();
    let verified = summary::verify(&doc, &verifier).unwrap();
    let s = verified.summary;
    assert_eq!((s.agent_id.as_str(), s.tree_size, s.status.as_str()), ("agt_partnered", size, "active"));
    assert_eq!(s.counts.events, 5, "registration and four self-reported events: {:?}", s.counts);
    assert_eq!(s.counts.self_reported.total, 4);
    assert_eq!(s.counts.self_reported.by_intent["write"]["success"], 4);
    assert_eq!(s.counts.administrative, 1);
    assert_eq!(
        s.risk, None,
        "unauthenticated self-reported telemetry is logged and counted, not learned from"
    );
    let first = s.first_seen.unwrap();
    assert_eq!(s.cited[0].claims["kind"], "agent.registered");
    assert_eq!(s.cited[0].index, first.index);

    register(&h, "agt_idle").await;
    publish(&h.state).await;
    let (status, idle) = http(h.addr, "GET", "/v1/agents/agt_idle/history", Some(ADMIN), None).await;
    assert_eq!(status, 200, "{idle}");
    let idle = summary::verify(&serde_json::from_value(idle).unwrap(), &verifier).unwrap().summary;
    assert_eq!((idle.risk, idle.counts.events), (None, 1), "never acted, so no risk to report");

    let (status, v) = http(h.addr, "GET", "/v1/agents/agt_nobody/history", Some(AUDITOR), None).await;
    assert_eq!(status, 404, "{v}");
    let (status, v) = http(h.addr, "GET", "/v1/agents/bob/history", Some(AUDITOR), None).await;
    assert_eq!(status, 400, "{v}");
}
