//! Shared helpers for the end-to-end tests: run the real `warden` binary, talk to it
//! over HTTP, and check what it serves with code written outside this project
//! (`tlog_tiles`, `signed_note`).
//!
//! Every wait is bounded: a server that does not start, answer or stop in time fails
//! the test with its log attached instead of hanging it.
#![allow(dead_code)] // each test binary uses a different subset

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read};
use std::ops::{Deref, Range};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tlog_tiles::Hash;

/// The binary under test.
pub const WARDEN: &str = env!("CARGO_BIN_EXE_warden");

/// How long a server may take to print its address and become ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one CLI command may run.
const CLI_TIMEOUT: Duration = Duration::from_secs(180);
/// How long one HTTP request may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for a checkpoint to cover new entries (published at most once a second).
const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between polls.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Tile height of C2SP tlog-tiles.
pub const TILE_HEIGHT: u8 = 8;
/// Entries (or hashes) in a full tile.
pub const TILE_WIDTH: u64 = 256;

/// Every `action_type` the API accepts.
pub const ACTION_TYPES: [&str; 7] = ["read", "write", "delete", "execute", "send", "auth", "admin"];
/// Every `outcome` the API accepts.
pub const OUTCOMES: [&str; 5] = ["success", "failure", "error", "denied", "pending"];
/// A timestamp safely in the past.
pub const PAST_TIMESTAMP: &str = "2025-06-01T12:00:00Z";

/// The administrative event a fresh server logs when it creates the first admin credential.
pub const OPERATOR_CREATED: &str = "operator.created";
/// Where a fresh server writes the first admin credential, in its data dir.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

// ---- test directories ----------------------------------------------------------------

/// A temporary directory holding a server's data dir (`data/`), its logs and scratch files.
#[derive(Debug)]
pub struct TestDir {
    root: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> Self {
        Self { root: tempfile::tempdir().unwrap() }
    }

    /// The server's data directory.
    pub fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// A path for a scratch file or directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }
}

/// Copies a flat directory (the data dir has no subdirectories).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        assert!(entry.file_type().unwrap().is_file(), "unexpected non-file {:?} in data dir", entry.path());
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---- events ------------------------------------------------------------------------------

/// A valid event, distinct for every `n`.
pub fn event(n: u64) -> Value {
    json!({
        "agent_id": format!("agt_test{}", n % 7),
        "session_id": format!("sess_test{}", n % 3),
        "timestamp": PAST_TIMESTAMP,
        "action_type": ACTION_TYPES[(n % 7) as usize],
        "outcome": OUTCOMES[(n % 5) as usize],
        "axiom_hash": format!("sha256:{n:064x}"),
        "context_ref": format!("ref_{n}"),
    })
}

/// Valid events numbered by `range`.
pub fn events(range: Range<u64>) -> Vec<Value> {
    range.map(event).collect()
}

/// What the server acknowledged for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub index: u64,
    pub leaf_hash: String,
}

/// One entry as served by `/v1/log/entries/{index}`.
#[derive(Debug, Clone)]
pub struct Entry {
    pub index: u64,
    pub leaf: Vec<u8>,
    pub leaf_hash: String,
    pub event: Value,
}

/// Checks that `entry` is an administrative event of `kind` (observed by Warden itself),
/// not a telemetry event: exactly the fields `kind`, `actor`, `subject`, `severity`,
/// `details`, `received_at` and `source`, and no `agent_id`.
pub fn check_admin_event(entry: &Entry, kind: &str) {
    let index = entry.index;
    let leaf: Value = serde_json::from_slice(&entry.leaf)
        .unwrap_or_else(|e| panic!("entry {index}: the leaf is not JSON ({e})"));
    assert_eq!(entry.event, leaf, "entry {index}: `event` is not the decoded leaf");
    assert_eq!(leaf_hash_b64(&entry.leaf), entry.leaf_hash, "entry {index}: leaf does not hash to leaf_hash");
    let fields =
        leaf.as_object().unwrap_or_else(|| panic!("entry {index}: the leaf is not an object: {leaf}"));
    let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["actor", "details", "kind", "received_at", "severity", "source", "subject"],
        "entry {index}: not an administrative event: {leaf}"
    );
    assert_eq!(leaf["kind"], kind, "entry {index}: {leaf}");
    assert_eq!(
        leaf["source"], "warden",
        "entry {index}: an administrative event is observed by Warden: {leaf}"
    );
    for field in ["actor", "subject", "severity", "received_at"] {
        assert!(leaf[field].as_str().is_some_and(|v| !v.is_empty()), "entry {index}: no {field}: {leaf}");
    }
    assert!(leaf["details"].is_object(), "entry {index}: details: {leaf}");
}

/// Checks that `entry` is an `operator.created` event for the first admin credential,
/// created by the system at first start.
pub fn check_first_admin_event(entry: &Entry) {
    check_admin_event(entry, OPERATOR_CREATED);
    let event = &entry.event;
    assert_eq!(event["actor"], "system", "entry {}: {event}", entry.index);
    assert!(
        event["subject"].as_str().is_some_and(|s| s.starts_with("opr_")),
        "entry {}: the subject is the operator id: {event}",
        entry.index
    );
    assert_eq!(event["details"]["role"], "admin", "entry {}: {event}", entry.index);
}

/// Checks that `entry` is a telemetry event as the server logs it: self-reported, of
/// kind `telemetry`, with an agent and a session.
pub fn check_telemetry_event(entry: &Entry) {
    let index = entry.index;
    let leaf: Value = serde_json::from_slice(&entry.leaf)
        .unwrap_or_else(|e| panic!("entry {index}: the leaf is not JSON ({e})"));
    assert_eq!(entry.event, leaf, "entry {index}: `event` is not the decoded leaf");
    assert_eq!(leaf["kind"], "telemetry", "entry {index}: not a telemetry event: {leaf}");
    assert_eq!(leaf["source"], "self_reported", "entry {index}: {leaf}");
    for field in ["agent_id", "session_id", "timestamp", "action_type", "outcome", "received_at"] {
        assert!(leaf[field].is_string(), "entry {index}: no {field}: {leaf}");
    }
}

/// RFC 6962 leaf hash, `SHA-256(0x00 ‖ leaf)`, computed by `tlog_tiles`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    tlog_tiles::record_hash(leaf)
}

pub fn leaf_hash_b64(leaf: &[u8]) -> String {
    STANDARD.encode(leaf_hash(leaf).0)
}

pub fn decode_b64(s: &str) -> Vec<u8> {
    STANDARD.decode(s).unwrap_or_else(|e| panic!("`{s}` is not standard base64: {e}"))
}

pub fn decode_hash(s: &str) -> Hash {
    let bytes = decode_b64(s);
    Hash(bytes.try_into().unwrap_or_else(|b: Vec<u8>| panic!("hash `{s}` has {} bytes, not 32", b.len())))
}

pub fn decode_hashes(value: &Value) -> Vec<Hash> {
    let list = value.as_array().unwrap_or_else(|| panic!("expected an array of hashes, got {value}"));
    list.iter().map(|h| decode_hash(h.as_str().unwrap())).collect()
}

// ---- checkpoints -------------------------------------------------------------------------

/// A checkpoint whose signature has been verified.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub note: String,
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// The key name in a verifier key `name+hexid+base64`.
pub fn key_name(vkey: &str) -> &str {
    vkey.split('+').next().unwrap()
}

/// Verifies a signed note with `signed_note` and parses its body with `tlog_tiles`.
pub fn verify_checkpoint(note: &str, vkey: &str) -> Result<Checkpoint, String> {
    let verifier = signed_note::StandardVerifier::new(vkey).map_err(|e| format!("bad verifier key: {e}"))?;
    let verifiers = signed_note::VerifierList::new(vec![Box::new(verifier)]);
    let parsed =
        signed_note::Note::from_bytes(note.as_bytes()).map_err(|e| format!("malformed note: {e}"))?;
    let (verified, _) = parsed.verify(&verifiers).map_err(|e| format!("signature: {e}"))?;
    if verified.len() != 1 {
        return Err(format!("{} signatures verified, expected 1", verified.len()));
    }
    let body = tlog_tiles::Checkpoint::from_bytes(parsed.text())
        .map_err(|e| format!("malformed checkpoint: {e}"))?;
    if body.origin() != key_name(vkey) {
        return Err(format!("origin `{}` is not the key name `{}`", body.origin(), key_name(vkey)));
    }
    Ok(Checkpoint {
        note: note.to_owned(),
        origin: body.origin().to_owned(),
        size: body.size(),
        root: *body.hash(),
    })
}

// ---- running the CLI ---------------------------------------------------------------------

/// The result of one `warden` command.
#[derive(Debug)]
pub struct CliOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Stdout and stderr together, for messages and searches.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    pub fn describe(&self) -> String {
        format!("status {:?}\n--- stdout\n{}--- stderr\n{}", self.status, self.stdout, self.stderr)
    }
}

/// A command for the binary, untouched by any `WARDEN_…` variable of the caller's
/// environment (the server reads its configuration from them).
fn warden_command() -> Command {
    let mut command = Command::new(WARDEN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("WARDEN_") {
            command.env_remove(name);
        }
    }
    command
}

/// Runs `warden ARGS`, with a time limit.
pub fn warden(args: &[&str]) -> CliOutput {
    let mut child = warden_command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = read_in_background(child.stdout.take().unwrap());
    let stderr = read_in_background(child.stderr.take().unwrap());
    let Some(status) = wait_with_timeout(&mut child, CLI_TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("`warden {}` did not finish within {CLI_TIMEOUT:?}", args.join(" "));
    };
    CliOutput { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

fn read_in_background(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// True if `text` contains `n` as a whole number (not as part of a longer one).
pub fn mentions_number(text: &str, n: u64) -> bool {
    text.split(|c: char| !c.is_ascii_digit()).any(|word| word == n.to_string())
}

// ---- HTTP --------------------------------------------------------------------------------

/// A response: status, content type and body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap_or_else(|_| panic!("body is not UTF-8: {:?}", self.body))
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// Panics unless the status is `status`.
    pub fn expect_status(self, status: u16, what: &str) -> Self {
        assert_eq!(
            self.status,
            status,
            "{what}: unexpected status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self
    }
}

/// An HTTP client bound to one server. Cheap to clone and to send to another thread.
#[derive(Debug, Clone)]
pub struct Client {
    pub base: String,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(base: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(HTTP_TIMEOUT))
            .proxy(None)
            .build()
            .new_agent();
        Self { base: base.to_owned(), agent }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn try_get(&self, path: &str) -> Result<Reply, ureq::Error> {
        let response = self.agent.get(&self.url(path)).call()?;
        into_reply(response)
    }

    pub fn try_post_json(&self, path: &str, body: &Value) -> Result<Reply, ureq::Error> {
        let response = self
            .agent
            .post(&self.url(path))
            .header("content-type", "application/json")
            .send(serde_json::to_vec(body).unwrap())?;
        into_reply(response)
    }

    pub fn try_post_raw(&self, path: &str, body: &[u8]) -> Result<Reply, ureq::Error> {
        let response =
            self.agent.post(&self.url(path)).header("content-type", "application/json").send(body)?;
        into_reply(response)
    }

    pub fn get(&self, path: &str) -> Reply {
        self.try_get(path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.try_post_json(path, body).unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// GET that must answer 200 with JSON.
    pub fn get_json(&self, path: &str) -> Value {
        self.get(path).expect_status(200, &format!("GET {path}")).json()
    }

    // ---- telemetry --------------------------------------------------------------------

    /// Submits one event in the single-event form; it must be accepted.
    pub fn submit_one(&self, event: &Value) -> Ack {
        let reply = self.post_json("/v1/telemetry/submit", event);
        let acks = parse_acks(&reply.expect_status(200, "submit one event").json(), 1);
        acks.into_iter().next().unwrap()
    }

    /// Submits a batch; it must be accepted.
    pub fn submit_batch(&self, events: &[Value]) -> Vec<Ack> {
        self.try_submit_batch(events).unwrap_or_else(|e| panic!("submit batch: {e}"))
    }

    /// Submits a batch; a transport error (the server is gone) is an `Err`, any
    /// answer other than 200 fails the test.
    pub fn try_submit_batch(&self, events: &[Value]) -> Result<Vec<Ack>, ureq::Error> {
        let reply = self.try_post_json("/v1/telemetry/submit", &json!({ "events": events }))?;
        Ok(parse_acks(&reply.expect_status(200, "submit batch").json(), events.len()))
    }

    // ---- log reads -------------------------------------------------------------------

    pub fn entry(&self, index: u64) -> Entry {
        let v = self.get_json(&format!("/v1/log/entries/{index}"));
        assert_eq!(v["index"].as_u64(), Some(index), "entry {index}: wrong index in {v}");
        Entry {
            index,
            leaf: decode_b64(v["leaf"].as_str().unwrap()),
            leaf_hash: v["leaf_hash"].as_str().unwrap().to_owned(),
            event: v["event"].clone(),
        }
    }

    /// The verifier key served at `/v1/log/key`, without the trailing newline.
    pub fn verifier_key(&self) -> String {
        let reply = self.get("/v1/log/key").expect_status(200, "GET /v1/log/key");
        assert!(reply.content_type.starts_with("text/plain"), "key content type: {}", reply.content_type);
        reply.text().trim_end().to_owned()
    }

    /// The current checkpoint, verified with `vkey`.
    pub fn checkpoint(&self, vkey: &str) -> Checkpoint {
        let reply = self.get("/v1/log/checkpoint").expect_status(200, "GET /v1/log/checkpoint");
        assert!(
            reply.content_type.starts_with("text/plain"),
            "checkpoint content type: {}",
            reply.content_type
        );
        verify_checkpoint(&reply.text(), vkey).unwrap_or_else(|e| panic!("checkpoint does not verify: {e}"))
    }

    /// How many entries the log serves (sequenced, whether or not a checkpoint covers
    /// them yet): the first index `/v1/log/entries/{index}` answers 404 for.
    pub fn entry_count(&self) -> u64 {
        let exists = |index: u64| {
            let reply = self.get(&format!("/v1/log/entries/{index}"));
            match reply.status {
                200 => true,
                404 => false,
                status => panic!("GET /v1/log/entries/{index}: status {status}: {}", reply.text()),
            }
        };
        if !exists(0) {
            return 0;
        }
        // `low` exists and `high` does not.
        let (mut low, mut high) = (0, 1);
        while exists(high) {
            (low, high) = (high, high * 2);
        }
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            if exists(middle) {
                low = middle;
            } else {
                high = middle;
            }
        }
        high
    }

    /// Polls until a checkpoint covers at least `size` entries.
    pub fn wait_for_checkpoint(&self, size: u64, vkey: &str) -> Checkpoint {
        let deadline = Instant::now() + CHECKPOINT_TIMEOUT;
        loop {
            let reply = self.get("/v1/log/checkpoint");
            if reply.status == 200 {
                let checkpoint = verify_checkpoint(&reply.text(), vkey)
                    .unwrap_or_else(|e| panic!("checkpoint does not verify: {e}"));
                if checkpoint.size >= size {
                    return checkpoint;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no checkpoint of size >= {size} within {CHECKPOINT_TIMEOUT:?}; last answer {} {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            );
            thread::sleep(POLL_INTERVAL);
        }
    }

    pub fn inclusion_proof(&self, index: u64, tree_size: u64) -> Vec<Hash> {
        let v = self.get_json(&format!("/v1/log/proof/inclusion?index={index}&tree_size={tree_size}"));
        assert_eq!((v["index"].as_u64(), v["tree_size"].as_u64()), (Some(index), Some(tree_size)), "{v}");
        decode_hashes(&v["hashes"])
    }

    pub fn consistency_proof(&self, from: u64, to: u64) -> Vec<Hash> {
        let v = self.get_json(&format!("/v1/log/proof/consistency?from={from}&to={to}"));
        assert_eq!((v["from"].as_u64(), v["to"].as_u64()), (Some(from), Some(to)), "{v}");
        decode_hashes(&v["hashes"])
    }

    /// Checks with `tlog_tiles` that `new` extends `old`, using the server's proof.
    pub fn check_consistent(&self, old: &Checkpoint, new: &Checkpoint) {
        assert!(old.size <= new.size, "checkpoint sizes go backwards: {} then {}", old.size, new.size);
        if old.size == 0 {
            return;
        }
        let proof = self.consistency_proof(old.size, new.size);
        tlog_tiles::check_tree(&proof, new.size, new.root, old.size, old.root).unwrap_or_else(|e| {
            panic!("checkpoint of size {} is not consistent with size {}: {e}", old.size, new.size)
        });
    }
}

fn into_reply(mut response: ureq::http::Response<ureq::Body>) -> Result<Reply, ureq::Error> {
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = response.body_mut().with_config().limit(64 * 1024 * 1024).read_to_vec()?;
    Ok(Reply { status, content_type, body })
}

/// Parses `{"entries":[{"index","leaf_hash"}...]}` and checks the indexes are consecutive.
fn parse_acks(v: &Value, expected: usize) -> Vec<Ack> {
    let entries = v["entries"].as_array().unwrap_or_else(|| panic!("no `entries` array in {v}"));
    assert_eq!(entries.len(), expected, "acknowledged {} entries for {expected} events", entries.len());
    let acks: Vec<Ack> = entries
        .iter()
        .map(|e| Ack {
            index: e["index"].as_u64().unwrap_or_else(|| panic!("bad index in {e}")),
            leaf_hash: e["leaf_hash"].as_str().unwrap_or_else(|| panic!("bad leaf_hash in {e}")).to_owned(),
        })
        .collect();
    for pair in acks.windows(2) {
        assert_eq!(pair[1].index, pair[0].index + 1, "batch indexes are not consecutive: {v}");
    }
    acks
}

// ---- the server --------------------------------------------------------------------------

/// A running `warden serve`, killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    pub client: Client,
    pub data_dir: PathBuf,
    log_path: PathBuf,
    /// What the server printed on stdout up to and including its `listening on` line.
    startup_lines: Vec<String>,
    /// The size of the log once the server was ready, before any test wrote to it.
    start_size: u64,
}

impl Deref for Server {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Server {
    /// Starts `warden serve` on `data_dir` and an ephemeral port; waits until ready
    /// and until a checkpoint covers every entry the log holds, and records that
    /// size as [`Server::start_size`].
    pub fn start(data_dir: &Path) -> Self {
        std::fs::create_dir_all(data_dir).unwrap();
        let log_path = data_dir.with_extension("server.log");
        let log = OpenOptions::new().create(true).append(true).open(&log_path).unwrap();
        let mut child = warden_command()
            .args(["serve", "--data-dir", path_str(data_dir), "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let (address_tx, address_rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || watch_stdout(stdout, address_tx));
        let startup = address_rx.recv_timeout(START_TIMEOUT);
        let mut server = Self {
            child: Some(child),
            client: Client::new(""),
            data_dir: data_dir.to_owned(),
            log_path,
            startup_lines: Vec::new(),
            start_size: 0,
        };
        match startup {
            Ok((base, lines)) => {
                server.client = Client::new(&base);
                server.startup_lines = lines;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = server.child.as_mut().and_then(|c| wait_with_timeout(c, STOP_TIMEOUT));
                panic!("server exited ({status:?}) without a `listening on` line\n{}", server.log());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("server printed no `listening on` line within {START_TIMEOUT:?}\n{}", server.log())
            }
        }
        server.wait_ready();
        server.start_size = server.wait_for_covered_log();
        server
    }

    /// Waits until a checkpoint covers every entry served, and returns their number.
    /// Entries logged while starting (administrative events) may be sequenced after the
    /// first checkpoint; nothing else writes to the log while this runs.
    fn wait_for_covered_log(&self) -> u64 {
        let size = self.entry_count();
        let vkey = self.verifier_key();
        let checkpoint = self.wait_for_checkpoint(size, &vkey);
        assert_eq!(checkpoint.size, size, "the log grew while the server started\n{}", self.log());
        assert_eq!(self.entry_count(), size, "the log grew while the server started\n{}", self.log());
        size
    }

    /// The size of the log when the server became ready, before the test wrote
    /// anything: on a fresh data dir, the administrative events of the first start.
    pub fn start_size(&self) -> u64 {
        self.start_size
    }

    /// The lines the server printed on stdout while starting; the last one is its
    /// `listening on` line.
    pub fn startup_lines(&self) -> &[String] {
        &self.startup_lines
    }

    /// Checks that the entries before [`Server::start_size`] are what a first start
    /// logs: the creation of the first admin credential, and nothing else.
    pub fn check_first_start_entries(&self) {
        assert_eq!(self.start_size, 1, "a fresh log holds only the first admin credential's event");
        check_first_admin_event(&self.entry(0));
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let _ = f.read_to_string(&mut text);
        }
        format!("--- server log {:?}\n{text}", self.log_path)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if matches!(self.try_get("/readyz"), Ok(reply) if reply.status == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "/readyz not 200 within {START_TIMEOUT:?}\n{}", self.log());
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Stops the server with SIGTERM and returns its exit status.
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(sent.success(), "kill -TERM failed");
        match wait_with_timeout(&mut child, STOP_TIMEOUT) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not exit within {STOP_TIMEOUT:?} of SIGTERM\n{}", self.log());
            }
        }
    }

    /// Stops the server with SIGTERM; it must exit successfully.
    pub fn stop_gracefully(self) {
        let log = self.log();
        let status = self.stop();
        assert!(status.success(), "server exited with {status:?} after SIGTERM\n{log}");
    }

    /// Kills the server with SIGKILL (`kill -9`): no chance to clean up.
    pub fn kill9(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends the base URL from the `listening on http://…` line with every line printed
/// up to it, then keeps draining stdout so the server never blocks on a full pipe.
fn watch_stdout(stdout: ChildStdout, address_tx: mpsc::Sender<(String, Vec<String>)>) {
    let mut lines = Vec::new();
    let mut sent = false;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { return };
        if sent {
            continue;
        }
        let address = listening_address(&line);
        lines.push(line);
        if let Some(base) = address {
            let _ = address_tx.send((base, std::mem::take(&mut lines)));
            sent = true;
        }
    }
}

fn listening_address(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("listening on ")?;
    let url = rest.split_whitespace().next()?.trim_end_matches('/');
    url.starts_with("http://").then(|| url.to_owned())
}

mod tiles;
#[allow(unused_imports)] // each test binary uses a different subset
pub use tiles::{HttpTiles, bundle_path, parse_bundle, tile_path};

/// Adds an operator credential with `role` straight into the directory of the
/// data directory `data` (there is no HTTP route for that); returns its bearer
/// secret.
pub fn add_operator(data: &Path, id: &str, role: warden_store::directory::Role) -> String {
    use sha2::{Digest, Sha256};
    let secret = format!("wop_test-{id}");
    let record = warden_store::directory::OperatorRecord {
        id: id.to_owned(),
        name: id.to_owned(),
        role,
        token_sha256: Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect(),
        created_at: 0,
        revoked: false,
    };
    let db = rusqlite::Connection::open(data.join("warden.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute(
        "INSERT INTO operators (id, token_sha256, doc) VALUES (?1, ?2, ?3)",
        rusqlite::params![record.id, record.token_sha256, serde_json::to_string(&record).unwrap()],
    )
    .unwrap();
    secret
}
