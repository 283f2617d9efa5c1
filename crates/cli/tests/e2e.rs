//! End to end: the real `warden serve` binary, driven over HTTP, its log checked with
//! code written outside this project (`tlog_tiles`, `signed_note`) and with the
//! `warden log` subcommands.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{
    ADMIN_TOKEN_FILE, Ack, Checkpoint, Client, HttpTiles, Server, TILE_WIDTH, TestDir, bundle_path,
    check_first_admin_event, check_telemetry_event, decode_b64, decode_hashes, event, events, leaf_hash,
    leaf_hash_b64, parse_bundle, path_str, verify_checkpoint, warden,
};
use serde_json::{Value, json};
use tlog_tiles::{Tile, TileHashReader};

// ---- the first start ---------------------------------------------------------------------

#[test]
fn a_fresh_log_starts_with_the_first_admin_credential_and_only_once() {
    let dir = TestDir::new();
    let server = Server::start(&dir.data());
    let vkey = server.verifier_key();
    let token_file = dir.data().join(ADMIN_TOKEN_FILE);

    // Exactly one entry, the creation of the first admin credential, covered by a checkpoint.
    server.check_first_start_entries();
    let admin = server.entry(0);
    check_json_error(server.get("/v1/log/entries/1"), 404);
    let checkpoint = server.checkpoint(&vkey);
    assert_eq!(checkpoint.size, 1);
    let proof = server.inclusion_proof(0, 1);
    tlog_tiles::check_record(&proof, 1, checkpoint.root, 0, leaf_hash(&admin.leaf))
        .unwrap_or_else(|e| panic!("the admin event is not in the checkpoint: {e}"));

    // The credential file is private, and named before the `listening on` line.
    let mode = std::fs::metadata(&token_file).expect("admin.token exists").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "admin.token must be readable by its owner only");
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(!token.trim().is_empty(), "admin.token holds a credential");
    let lines = server.startup_lines();
    assert!(lines.last().unwrap().contains("listening on http://"), "listening is the last line: {lines:?}");
    let written: Vec<&String> =
        lines.iter().filter(|l| l.starts_with("first admin credential written to ")).collect();
    assert_eq!(written.len(), 1, "{lines:?}");
    assert!(written[0].contains(path_str(&token_file)), "the line names the file: {lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("oauth issuer: ")), "{lines:?}");
    server.stop_gracefully();

    // A later start adds nothing and keeps the credential.
    let server = Server::start(&dir.data());
    assert_eq!(server.start_size(), 1, "a restart must not log another admin credential");
    check_json_error(server.get("/v1/log/entries/1"), 404);
    let again = server.entry(0);
    assert_eq!(again.leaf, admin.leaf, "the first entry changed across a restart");
    check_first_admin_event(&again);
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), token, "admin.token changed");
    let lines = server.startup_lines();
    assert!(!lines.iter().any(|l| l.contains("admin credential")), "no new credential: {lines:?}");
    assert!(lines.last().unwrap().contains("listening on http://"), "{lines:?}");
}

#[test]
fn a_first_start_stopped_before_storing_its_admin_is_finished_not_repeated() {
    let dir = TestDir::new();
    let server = Server::start(&dir.data());
    server.check_first_start_entries();
    let admin = server.entry(0);
    server.stop_gracefully();
    let token_file = dir.data().join(ADMIN_TOKEN_FILE);
    let token = std::fs::read_to_string(&token_file).unwrap();
    // What a crash between logging the creation and storing the operator leaves:
    // the token file and the event, no operator.
    let db = rusqlite::Connection::open(dir.data().join("warden.db")).unwrap();
    assert_eq!(db.execute("DELETE FROM operators", []).unwrap(), 1);
    db.close().map_err(|(_, e)| e).unwrap();

    let server = Server::start(&dir.data());
    assert_eq!(server.start_size(), 1, "the admin's creation is logged once, not twice");
    assert_eq!(server.entry(0).leaf, admin.leaf);
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), token, "the same credential");
    let agent = ureq::Agent::config_builder().http_status_as_error(false).proxy(None).build().new_agent();
    let status = agent
        .get(&server.client.url("/v1/agents"))
        .header("authorization", &format!("Bearer {}", token.trim()))
        .call()
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 200, "the credential in admin.token is the stored admin's");
}

// ---- submitting and reading back ------------------------------------------------------

#[test]
fn submitted_events_read_back_as_self_reported_leaves() {
    let dir = TestDir::new();
    let server = Server::start(&dir.data());
    server.check_first_start_entries();
    let base = server.start_size();

    let single = event(1);
    let first = server.submit_one(&single);
    assert_eq!(first.index, base, "the first submitted event follows the entries logged at start");
    let batch = events(2..7);
    let acks = server.submit_batch(&batch);
    assert_eq!(acks.iter().map(|a| a.index).collect::<Vec<_>>(), (base + 1..base + 6).collect::<Vec<_>>());

    let submitted: Vec<(Ack, Value)> =
        std::iter::once((first, single)).chain(acks.into_iter().zip(batch)).collect();
    for (ack, sent) in &submitted {
        check_entry_matches(&server, ack, sent);
    }
    // The entries before the submitted ones are still the administrative ones.
    server.check_first_start_entries();
    // Past the end is 404 with a JSON error; not a number is 400.
    check_json_error(server.get(&format!("/v1/log/entries/{}", base + 6)), 404);
    check_json_error(server.get("/v1/log/entries/abc"), 400);
}

/// The entry at `ack.index` is the event that was sent, marked self-reported, and
/// its leaf hashes to what the submission acknowledged.
fn check_entry_matches(server: &Server, ack: &Ack, sent: &Value) {
    let entry = server.entry(ack.index);
    assert_eq!(entry.leaf_hash, ack.leaf_hash, "entry {}: leaf_hash differs from the ack", ack.index);
    assert_eq!(
        leaf_hash_b64(&entry.leaf),
        ack.leaf_hash,
        "entry {}: leaf does not hash to leaf_hash",
        ack.index
    );
    let leaf_json: Value = serde_json::from_slice(&entry.leaf).expect("the leaf is JSON");
    assert_eq!(entry.event, leaf_json, "entry {}: `event` is not the decoded leaf", ack.index);
    check_telemetry_event(&entry);
    for field in
        ["agent_id", "session_id", "timestamp", "action_type", "outcome", "axiom_hash", "context_ref"]
    {
        assert_eq!(entry.event[field], sent[field], "entry {}: field {field}", ack.index);
    }
    assert_eq!(entry.event["source"], "self_reported", "entry {}", ack.index);
    assert!(entry.event["received_at"].is_string(), "entry {}: no received_at", ack.index);
}

#[test]
fn context_is_committed_to_not_logged() {
    let dir = TestDir::new();
    let server = Server::start(&dir.data());
    let mut sent = event(1);
    sent.as_object_mut().unwrap().remove("axiom_hash");
    sent["context"] = json!({ "prompt": "the secret words are blue giraffe", "model": "m-1" });
    let ack = server.submit_one(&sent);
    let entry = server.entry(ack.index);
    let commitment = entry.event["context_commitment"].as_str().expect("a context_commitment");
    assert!(commitment.starts_with("sha256:"), "commitment {commitment}");
    let leaf = String::from_utf8(entry.leaf).unwrap();
    assert!(!leaf.contains("blue giraffe"), "the context itself must stay out of the log: {leaf}");
}

// ---- rejecting bad input -----------------------------------------------------------------

#[test]
fn invalid_submissions_name_each_bad_field() {
    let dir = TestDir::new();
    let server = Server::start(&dir.data());
    let with = |field: &str, value: Value| {
        let mut e = event(1);
        e[field] = value;
        e
    };
    let mut no_commitment = event(1);
    no_commitment.as_object_mut().unwrap().remove("axiom_hash");
    let cases = [
        (with("action_type", json!("fly")), "action_type"),
        (with("outcome", json!("maybe")), "outcome"),
        (with("agent_id", json!("bob")), "agent_id"),
        (with("session_id", json!(17)), "session_id"),
        (with("timestamp", json!("2999-01-01T00:00:00Z")), "timestamp"),
        (with("timestamp", json!("yesterday")), "timestamp"),
        (with("axiom_hash", json!(format!("sha256:{}", "A".repeat(64)))), "axiom_hash"),
        (no_commitment, "axiom_hash"),
        (json!({ "events": [event(1), with("agent_id", json!("bob"))] }), "events[1].agent_id"),
        (json!({ "events": [] }), "events"),
        (json!({ "events": events(0..1001) }), "events"),
    ];
    for (body, field) in cases {
        let reply = server.post_json("/v1/telemetry/submit", &body);
        let fields = invalid_request_fields(reply);
        assert!(fields.contains(field), "expected field `{field}` in {fields:?} for {body}");
    }
    let not_json = server.try_post_raw("/v1/telemetry/submit", b"{not json").unwrap();
    assert!(!invalid_request_fields(not_json).is_empty());
}

/// Checks a 400 `invalid_request` answer and returns the field names it lists.
fn invalid_request_fields(reply: common::Reply) -> BTreeSet<String> {
    let v = reply.expect_status(400, "invalid submission").json();
    assert_eq!(v["error"], "invalid_request", "{v}");
    assert!(v["message"].is_string(), "{v}");
    let fields = v["fields"].as_array().unwrap_or_else(|| panic!("no `fields` in {v}"));
    fields
        .iter()
        .map(|f| {
            assert!(f["message"].is_string(), "field error without a message: {f}");
            f["field"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn a_rejected_batch_writes_nothing() {
    let dir = TestDir::new();
    let server = Server::start(&dir.data());
    let before = server.submit_batch(&events(0..3));
    let last = before.last().unwrap().index;
    assert_eq!(last, server.start_size() + 2);
    let mut bad = events(10..20);
    bad[7]["outcome"] = json!("exploded");
    let fields = invalid_request_fields(server.post_json("/v1/telemetry/submit", &json!({ "events": bad })));
    assert!(fields.contains("events[7].outcome"), "{fields:?}");
    // Nothing of the nine good events was written: the log still ends at the last
    // accepted event ...
    server.entry(last);
    check_json_error(server.get(&format!("/v1/log/entries/{}", last + 1)), 404);
    // ... and the next accepted event takes the very next index.
    let after = server.submit_one(&event(99));
    assert_eq!(after.index, before.last().unwrap().index + 1);
}

/// A 4xx answer with a JSON `{"error", "message"}` body.
fn check_json_error(reply: common::Reply, status: u16) {
    let v = reply.expect_status(status, "error answer").json();
    assert!(v["error"].is_string() && v["message"].is_string(), "error body lacks error/message: {v}");
}

// ---- checkpoints, proofs and tiles ---------------------------------------------------

/// 607 entries: two full level-0 tiles and a partial one, and a partial level-1 tile.
const TILED_LOG_SIZE: u64 = 607;

#[test]
fn checkpoints_proofs_and_tiles_verify_with_independent_code() {
    let dir = TestDir::new();
    let server = Server::start(&dir.data());
    let vkey = server.verifier_key();
    let base = server.start_size();
    // Events fill the log up to exactly TILED_LOG_SIZE entries, the last one on its own.
    let last_event = TILED_LOG_SIZE - base - 1;
    assert!(last_event > 600, "{base} entries at start leave too little room for the events");
    server.submit_batch(&events(0..300));
    let early = server.wait_for_checkpoint(base + 300, &vkey);
    assert_eq!(early.size, base + 300, "nothing else was written");
    server.submit_batch(&events(300..600));
    server.submit_batch(&events(600..last_event));
    server.submit_one(&event(last_event));
    let late = server.wait_for_checkpoint(TILED_LOG_SIZE, &vkey);
    assert_eq!(late.size, TILED_LOG_SIZE, "nothing else was written");
    assert_eq!(server.get("/log/checkpoint").expect_status(200, "/log/checkpoint").text(), late.note);

    let entries: Vec<common::Entry> = (0..late.size).map(|i| server.entry(i)).collect();
    // The log is the entries of the first start, then the submitted events, in order.
    server.check_first_start_entries();
    for (entry, n) in entries[base as usize..].iter().zip(0u64..) {
        check_telemetry_event(entry);
        assert_eq!(entry.event["context_ref"], event(n)["context_ref"], "entry {}", entry.index);
    }
    let leaves: Vec<Vec<u8>> = entries.into_iter().map(|e| e.leaf).collect();
    check_every_inclusion_proof(&server, &late, &leaves);
    server.check_consistent(&early, &late);
    check_hash_tiles(&server, &late, &leaves);
    check_tiles_prove_like_the_api(&server, &early, &late, &leaves);
    check_entry_bundles(&server, &leaves);
}

fn check_every_inclusion_proof(client: &Client, checkpoint: &Checkpoint, leaves: &[Vec<u8>]) {
    for (index, leaf) in (0u64..).zip(leaves) {
        let proof = client.inclusion_proof(index, checkpoint.size);
        tlog_tiles::check_record(&proof, checkpoint.size, checkpoint.root, index, leaf_hash(leaf))
            .unwrap_or_else(|e| panic!("inclusion proof for entry {index} does not verify: {e}"));
    }
}

/// Level-0 tiles hold the leaf hashes; every tile the proofs need verifies against
/// the checkpoint through `tlog_tiles::TileHashReader`.
fn check_hash_tiles(client: &Client, checkpoint: &Checkpoint, leaves: &[Vec<u8>]) {
    for (n, chunk) in (0u64..).zip(leaves.chunks(TILE_WIDTH as usize)) {
        let tile = Tile::new(8, 0, n, u32::try_from(chunk.len()).unwrap(), false);
        let path = common::tile_path(&tile);
        let body = client.get(&path).expect_status(200, &path).body;
        let expected: Vec<u8> = chunk.iter().flat_map(|leaf| leaf_hash(leaf).0).collect();
        assert!(body == expected, "{path} does not hold the leaf hashes");
    }
    let reader = HttpTiles { client };
    let tiled = TileHashReader::new(checkpoint.size, checkpoint.root, &reader);
    assert_eq!(tlog_tiles::tree_hash(checkpoint.size, &tiled).unwrap(), checkpoint.root);
}

/// Proofs computed by `tlog_tiles` from the tiles verify, and equal the API's proofs.
fn check_tiles_prove_like_the_api(
    client: &Client,
    early: &Checkpoint,
    late: &Checkpoint,
    leaves: &[Vec<u8>],
) {
    let reader = HttpTiles { client };
    let tiled = TileHashReader::new(late.size, late.root, &reader);
    for index in [0, 1, 17, 255, 256, early.size - 1, early.size, 511, 512, 600, late.size - 1] {
        let proof = tlog_tiles::prove_record(late.size, index, &tiled)
            .unwrap_or_else(|e| panic!("tiles cannot prove entry {index}: {e}"));
        let leaf = leaf_hash(&leaves[index as usize]);
        tlog_tiles::check_record(&proof, late.size, late.root, index, leaf).unwrap();
        assert_eq!(proof, client.inclusion_proof(index, late.size), "entry {index}: tiles and API disagree");
    }
    let proof = tlog_tiles::prove_tree(late.size, early.size, &tiled).unwrap();
    tlog_tiles::check_tree(&proof, late.size, late.root, early.size, early.root).unwrap();
    assert_eq!(proof, client.consistency_proof(early.size, late.size), "consistency: tiles and API disagree");
}

fn check_entry_bundles(client: &Client, leaves: &[Vec<u8>]) {
    for (n, chunk) in (0u64..).zip(leaves.chunks(TILE_WIDTH as usize)) {
        let path = bundle_path(n, chunk.len() as u64);
        let body = client.get(&path).expect_status(200, &path).body;
        assert!(parse_bundle(&body) == chunk, "{path} does not hold the leaves {}..", n * TILE_WIDTH);
    }
}

// ---- receipts ----------------------------------------------------------------------------

#[test]
fn receipts_verify_offline_and_a_changed_leaf_does_not() {
    let dir = TestDir::new();
    let server = Server::start(&dir.data());
    let vkey = server.verifier_key();
    let base = server.start_size();
    let acks = server.submit_batch(&events(0..10));
    server.wait_for_checkpoint(base + 10, &vkey);

    let index = acks[3].index;
    let receipt = server.get_json(&format!("/v1/log/receipt/{index}"));
    check_receipt_independently(&receipt, index, &vkey);
    assert_eq!(receipt["leaf"].as_str().unwrap(), STANDARD.encode(server.entry(index).leaf));
    let good = dir.path("receipt.json");
    std::fs::write(&good, serde_json::to_vec(&receipt).unwrap()).unwrap();
    let ok = warden(&["log", "verify-receipt", path_str(&good), "--key", &vkey]);
    assert_eq!(ok.code(), Some(0), "a good receipt must verify\n{}", ok.describe());

    let mut tampered = receipt.clone();
    let mut leaf = decode_b64(receipt["leaf"].as_str().unwrap());
    leaf[5] ^= 0x01;
    tampered["leaf"] = json!(STANDARD.encode(&leaf));
    let bad = dir.path("tampered.json");
    std::fs::write(&bad, serde_json::to_vec(&tampered).unwrap()).unwrap();
    let rejected = warden(&["log", "verify-receipt", path_str(&bad), "--key", &vkey]);
    assert!(
        !rejected.status.success(),
        "a receipt with a changed leaf must not verify\n{}",
        rejected.describe()
    );

    let (_, other_key) = signed_note::generate_key(&mut rand::rngs::OsRng, common::key_name(&vkey));
    let wrong_key = warden(&["log", "verify-receipt", path_str(&good), "--key", &other_key]);
    assert!(!wrong_key.status.success(), "another key must not verify the receipt\n{}", wrong_key.describe());

    check_json_error(server.get(&format!("/v1/log/receipt/{}", base + 10)), 404);
}

fn check_receipt_independently(receipt: &Value, index: u64, vkey: &str) {
    assert_eq!(receipt["index"].as_u64(), Some(index), "{receipt}");
    let checkpoint = verify_checkpoint(receipt["checkpoint"].as_str().unwrap(), vkey).unwrap();
    assert_eq!(receipt["tree_size"].as_u64(), Some(checkpoint.size));
    let leaf = decode_b64(receipt["leaf"].as_str().unwrap());
    let proof = decode_hashes(&receipt["inclusion_proof"]);
    tlog_tiles::check_record(&proof, checkpoint.size, checkpoint.root, index, leaf_hash(&leaf))
        .unwrap_or_else(|e| panic!("receipt's inclusion proof does not verify: {e}"));
}

// ---- auditing a running server -------------------------------------------------------

#[test]
fn remote_audit_passes_and_remembers_what_it_saw() {
    let dir = TestDir::new();
    let server = Server::start(&dir.data());
    let vkey = server.verifier_key();
    let base = server.start_size();
    server.submit_batch(&events(0..20));
    server.wait_for_checkpoint(base + 20, &vkey);
    let state = dir.path("audit-state.json");
    let audit = |key: &str| {
        warden(&["log", "verify", "--url", &server.base, "--key", key, "--state", path_str(&state)])
    };

    let first = audit(&vkey);
    assert_eq!(first.code(), Some(0), "first audit\n{}", first.describe());
    assert!(state.exists(), "the audit must write its state file");

    server.submit_batch(&events(20..50));
    server.wait_for_checkpoint(base + 50, &vkey);
    let second = audit(&vkey);
    assert_eq!(second.code(), Some(0), "second audit, from the saved state\n{}", second.describe());

    let (_, other_key) = signed_note::generate_key(&mut rand::rngs::OsRng, common::key_name(&vkey));
    let wrong = audit(&other_key);
    assert!(!wrong.status.success(), "an audit with another key must fail\n{}", wrong.describe());
}

// ---- restarting ------------------------------------------------------------------------

#[test]
fn restart_keeps_the_key_the_entries_and_the_sequence() {
    let dir = TestDir::new();
    let server = Server::start(&dir.data());
    let vkey = server.verifier_key();
    server.check_first_start_entries();
    let base = server.start_size();
    let sent = events(0..5);
    let acks = server.submit_batch(&sent);
    let before = server.wait_for_checkpoint(base + 5, &vkey);
    assert_eq!(before.size, base + 5, "nothing else was written");
    server.stop_gracefully();

    let key_file = dir.data().join("log-signing.key");
    let mode = std::fs::metadata(&key_file).expect("log-signing.key exists").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "log-signing.key must be readable by its owner only");
    let printed = warden(&["log", "key", "--data-dir", path_str(&dir.data())]);
    assert_eq!(printed.code(), Some(0), "{}", printed.describe());
    assert_eq!(printed.stdout.trim_end(), vkey, "`warden log key` must print the served key");

    let server = Server::start(&dir.data());
    assert_eq!(server.verifier_key(), vkey, "the key must survive a restart");
    assert_eq!(server.start_size(), before.size, "a restart must not add entries");
    check_first_admin_event(&server.entry(0));
    for (ack, event) in acks.iter().zip(&sent) {
        check_entry_matches(&server, ack, event);
    }
    let more = server.submit_batch(&events(5..8));
    assert_eq!(more.iter().map(|a| a.index).collect::<Vec<_>>(), (base + 5..base + 8).collect::<Vec<_>>());
    let after = server.wait_for_checkpoint(base + 8, &vkey);
    server.check_consistent(&before, &after);
}

// ---- malformed requests ----------------------------------------------------------------

#[test]
fn malformed_log_requests_are_client_errors() {
    let dir = TestDir::new();
    let server = Server::start(&dir.data());
    let vkey = server.verifier_key();
    server.submit_batch(&events(0..5));
    // `size` entries, indexes 0..size: `size` itself is one past the end.
    let size = server.start_size() + 5;
    let checkpoint = server.wait_for_checkpoint(size, &vkey);
    assert_eq!(checkpoint.size, size, "nothing else was written");
    let past = size + 1;

    let json_4xx = [
        format!("/v1/log/proof/inclusion?index=abc&tree_size={size}"),
        format!("/v1/log/proof/inclusion?index={size}&tree_size={size}"),
        format!("/v1/log/proof/inclusion?index=0&tree_size={past}"),
        "/v1/log/proof/inclusion?index=0&tree_size=0".to_owned(),
        format!("/v1/log/proof/inclusion?index=-1&tree_size={size}"),
        "/v1/log/proof/inclusion?index=0&tree_size=18446744073709551616".to_owned(),
        "/v1/log/proof/inclusion".to_owned(),
        format!("/v1/log/proof/consistency?from=x&to={size}"),
        "/v1/log/proof/consistency?from=4&to=2".to_owned(),
        format!("/v1/log/proof/consistency?from=1&to={past}"),
        "/v1/log/proof/consistency?from=1".to_owned(),
        format!("/v1/log/entries/{size}"),
        "/v1/log/entries/-1".to_owned(),
        "/v1/log/entries/18446744073709551616".to_owned(),
        format!("/v1/log/receipt/{size}"),
        "/v1/log/receipt/abc".to_owned(),
    ];
    for path in &json_4xx {
        let reply = server.get(path);
        assert!(matches!(reply.status, 400 | 404), "{path}: status {} (want 400 or 404)", reply.status);
        let v = reply.json();
        assert!(v["error"].is_string() && v["message"].is_string(), "{path}: error body {v}");
    }
    // The log fits in one partial tile: its width is `size`.
    assert!(size + 4 < 256, "the log must fit in one partial tile");
    let tiles_4xx = [
        "/log/tile/0/1".to_owned(),
        "/log/tile/0/999".to_owned(),
        "/log/tile/0/000".to_owned(),
        format!("/log/tile/0/000.p/{past}"),
        "/log/tile/0/000.p/0".to_owned(),
        "/log/tile/0/000.p/256".to_owned(),
        "/log/tile/1/000.p/1".to_owned(),
        "/log/tile/64/000".to_owned(),
        "/log/tile/entries/001".to_owned(),
        format!("/log/tile/entries/000.p/{}", size + 4),
        "/log/tile/x/000".to_owned(),
    ];
    for path in &tiles_4xx {
        let status = server.get(path).status;
        assert!((400..500).contains(&status), "{path}: status {status} (want 4xx)");
    }
    // The same requests just inside the log succeed: the ones above fail for being past it.
    for path in [
        format!("/v1/log/proof/inclusion?index={}&tree_size={size}", size - 1),
        format!("/v1/log/proof/consistency?from=1&to={size}"),
        format!("/v1/log/entries/{}", size - 1),
        format!("/v1/log/receipt/{}", size - 1),
        format!("/log/tile/0/000.p/{size}"),
        format!("/log/tile/entries/000.p/{size}"),
    ] {
        server.get(&path).expect_status(200, &path);
    }
}

// ---- the command line -------------------------------------------------------------------

#[test]
fn unknown_commands_and_missing_arguments_exit_2() {
    for args in [&["no-such-command"][..], &["log", "verify-receipt"], &["serve", "--no-such-flag"]] {
        let out = warden(args);
        assert_eq!(out.code(), Some(2), "`warden {}`\n{}", args.join(" "), out.describe());
        assert!(!out.stderr.trim().is_empty(), "`warden {}` must say what is wrong", args.join(" "));
    }
}

#[test]
fn bad_values_exit_2_with_one_line() {
    let dir = TestDir::new();
    let (data_dir, missing_dir, receipt) = (dir.path("data"), dir.path("missing"), dir.path("receipt.json"));
    let (data, missing) = (path_str(&data_dir), path_str(&missing_dir));
    std::fs::write(&receipt, "{}").unwrap();
    let cases: [&[&str]; 6] = [
        &["serve", "--data-dir", data, "--listen", "not-an-address"],
        &["log", "verify"],
        &["log", "verify", "--data-dir", missing],
        &["log", "key", "--data-dir", missing],
        &["log", "verify-receipt", missing, "--key", "example.com/log+01234567+AQ=="],
        &["log", "verify-receipt", path_str(&receipt), "--key", "example.com/log+01234567+AQ=="],
    ];
    for args in cases {
        let out = warden(args);
        assert_eq!(out.code(), Some(2), "`warden {}`\n{}", args.join(" "), out.describe());
        let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "`warden {}` must explain in one line\n{}",
            args.join(" "),
            out.describe()
        );
    }
    assert!(!missing_dir.exists(), "a command that only reads must not create the data dir");
}
