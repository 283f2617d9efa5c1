//! Helpers for the gateway tests: the test upstreams (`warden-testkit`, built on
//! demand), a `warden serve` started with a configuration file, agents with
//! session tokens, policy pushes and reading the log back.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use serde_json::{Value, json};

const WARDEN: &str = env!("CARGO_BIN_EXE_warden");
const START_TIMEOUT: Duration = Duration::from_secs(120);

static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The `warden-testkit` binary, built with the same profile and target directory
/// as `warden` (cargo does not build other packages' binaries for tests).
pub fn testkit_bin() -> PathBuf {
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.as_ref() {
        return p.clone();
    }
    let bin_dir = Path::new(WARDEN).parent().unwrap().to_owned();
    let target_dir = bin_dir.parent().unwrap().to_owned();
    let release = bin_dir.file_name().is_some_and(|n| n == "release");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-q", "-p", "warden-testkit", "--bin", "warden-testkit"])
        .env("CARGO_TARGET_DIR", &target_dir);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("cargo runs");
    assert!(status.success(), "building warden-testkit failed");
    let path = bin_dir.join("warden-testkit");
    *built = Some(path.clone());
    path
}

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub url: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_listening(child: &mut Child, what: &str) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx
            .recv_timeout(START_TIMEOUT)
            .unwrap_or_else(|_| panic!("{what} printed no `listening on` line"));
        if let Some(rest) = line.split("listening on ").nth(1) {
            return rest.trim().to_owned();
        }
    }
}

/// Starts `warden-testkit ARGS` (echo or MCP over HTTP) and waits for its URL.
pub fn start_testkit(args: &[&str]) -> Proc {
    let mut child = Command::new(testkit_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let url = wait_for_listening(&mut child, "warden-testkit");
    Proc { child, url }
}

/// A `warden serve` with a configuration file, killed when dropped.
pub struct Gateway {
    pub proc: Proc,
    pub admin: String,
    pub dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts Warden with `config` (TOML) and extra environment.
    pub fn start(config: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let file = dir.path().join("warden.toml");
        std::fs::write(&file, config).unwrap();
        let mut cmd = Command::new(WARDEN);
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("WARDEN_")) {
            cmd.env_remove(key);
        }
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"]).arg(&file).arg("--data-dir").arg(&data);
        cmd.envs(env.iter().copied()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap();
        let url = wait_for_listening(&mut child, "warden serve");
        let admin = std::fs::read_to_string(data.join("admin.token")).unwrap().trim().to_owned();
        Self { proc: Proc { child, url }, admin, dir }
    }

    pub fn url(&self) -> &str {
        &self.proc.url
    }

    /// A POST with a bearer token; (status, JSON body or Null, headers).
    pub fn post(&self, path: &str, bearer: &str, body: &Value) -> (u16, Value) {
        let mut request = http_agent().post(&format!("{}{path}", self.url()));
        // An empty bearer sends no credential at all.
        if !bearer.is_empty() {
            request = request.header("authorization", &format!("Bearer {bearer}"));
        }
        let mut r = request.send_json(body).unwrap();
        (r.status().as_u16(), r.body_mut().read_json().unwrap_or(Value::Null))
    }

    pub fn admin_post(&self, path: &str, body: &Value) -> Value {
        let (status, v) = self.post(path, &self.admin, body);
        assert!(status == 200 || status == 201, "{path}: {status} {v}");
        v
    }

    /// Replaces the policy set.
    pub fn push_policy(&self, policies: &[(&str, &str)]) {
        let list: Vec<Value> = policies.iter().map(|(id, text)| json!({"id": id, "text": text})).collect();
        self.admin_post("/v1/policies", &json!({"policies": list, "message": "test"}));
    }

    /// Registers an agent, starts a session and returns (agent, session, token).
    pub fn agent_token(&self) -> (String, String, String) {
        let a = self.admin_post(
            "/v1/agents",
            &json!({"owner": "team-x", "environment": "prod", "scopes": ["tickets"]}),
        );
        let s = self.admin_post("/v1/sessions", &json!({"agent_id": a["id"], "purpose": "triage"}));
        let (agent, secret, session) =
            (a["id"].as_str().unwrap(), a["client_secret"].as_str().unwrap(), s["id"].as_str().unwrap());
        let subject = self.token_form(&[
            ("grant_type", "client_credentials"),
            ("client_id", agent),
            ("client_secret", secret),
            ("scope", "tickets"),
        ]);
        let token = self.token_form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", &subject),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ("resource", self.url()),
            ("session_id", session),
        ]);
        (agent.to_owned(), session.to_owned(), token)
    }

    fn token_form(&self, fields: &[(&str, &str)]) -> String {
        let mut r = http_agent()
            .post(&format!("{}/oauth/token", self.url()))
            .send_form(fields.iter().copied())
            .unwrap();
        let v: Value = r.body_mut().read_json().unwrap();
        v["access_token"].as_str().unwrap_or_else(|| panic!("no token: {v}")).to_owned()
    }

    /// Every event in the log, in order.
    pub fn events(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for i in 0.. {
            let mut r = http_agent().get(&format!("{}/v1/log/entries/{i}", self.url())).call().unwrap();
            if r.status().as_u16() != 200 {
                break;
            }
            let v: Value = r.body_mut().read_json().unwrap();
            out.push(v["event"].clone());
        }
        out
    }

    /// Waits until an event matching `pred` is in the log (action events are
    /// written when the answer is complete, just after the agent gets it).
    pub fn wait_event(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..100 {
            if let Some(e) = self.events().into_iter().find(|e| pred(e)) {
                return e;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no {what} in the log: {:#?}", self.events());
    }
}

pub fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .proxy(None)
        .build()
        .new_agent()
}
