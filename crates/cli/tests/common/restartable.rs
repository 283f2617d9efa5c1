//! `warden serve` as a child process that a test can `kill -9`, stop with SIGTERM
//! and start again on the same data directory, with the HTTP calls the behavior
//! tests make against it.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden_store::directory::Role;

use super::common::WARDEN;
use super::gateway::http_agent;

pub const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

// ---- a server that can be restarted on the same data directory -------------------

/// `warden serve --config ROOT/warden.toml --data-dir ROOT/data`, killed when dropped.
pub struct Warden {
    pub child: Option<Child>,
    pub url: String,
    pub admin: String,
    pub root: PathBuf,
}

impl Warden {
    /// Starts on `root` with `config` (written to `root/warden.toml`).
    pub fn start(root: &Path, config: &str) -> Self {
        std::fs::create_dir_all(root).unwrap();
        let file = root.join("warden.toml");
        std::fs::write(&file, config).unwrap();
        let data = root.join("data");
        let log = OpenOptions::new().create(true).append(true).open(root.join("server.log")).unwrap();
        let mut cmd = Command::new(WARDEN);
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("WARDEN_")) {
            cmd.env_remove(key);
        }
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"]).arg(&file).arg("--data-dir").arg(&data);
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut w =
            Self { child: Some(child), url: String::new(), admin: String::new(), root: root.to_owned() };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        w.url = rest.trim().to_owned();
                        break;
                    }
                }
                Err(_) => panic!("warden serve printed no `listening on` line\n{}", w.log()),
            }
        }
        w.admin = std::fs::read_to_string(data.join("admin.token")).unwrap().trim().to_owned();
        w
    }

    pub fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    pub fn log(&self) -> String {
        format!(
            "--- server log\n{}",
            std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default()
        )
    }

    /// `kill -9`: no snapshot, no final checkpoint.
    pub fn kill9(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM; the server must exit successfully.
    pub fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status: ExitStatus = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no exit within {STOP_TIMEOUT:?} of SIGTERM\n{}", self.log());
            }
            thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "exit after SIGTERM: {status:?}\n{}", self.log());
    }

    // ---- HTTP ----

    pub fn get(&self, path: &str, bearer: &str) -> (u16, Value) {
        let mut r = http_agent()
            .get(&format!("{}{path}", self.url))
            .header("authorization", &format!("Bearer {bearer}"))
            .call()
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_json().unwrap_or(Value::Null))
    }

    pub fn post(&self, path: &str, bearer: &str, body: &Value) -> (u16, Value) {
        let mut request = http_agent().post(&format!("{}{path}", self.url));
        // An empty bearer sends no credential at all.
        if !bearer.is_empty() {
            request = request.header("authorization", &format!("Bearer {bearer}"));
        }
        let mut r = request.send_json(body).unwrap();
        (r.status().as_u16(), r.body_mut().read_json().unwrap_or(Value::Null))
    }

    pub fn admin_get(&self, path: &str) -> Value {
        let (status, v) = self.get(path, &self.admin);
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    pub fn admin_post(&self, path: &str, body: &Value) -> Value {
        let (status, v) = self.post(path, &self.admin, body);
        assert!(status == 200 || status == 201, "POST {path}: {status} {v}");
        v
    }

    pub fn push_policy(&self, policies: &[(&str, &str)]) {
        let list: Vec<Value> = policies.iter().map(|(id, text)| json!({"id": id, "text": text})).collect();
        self.admin_post("/v1/policies", &json!({"policies": list, "message": "behavior test"}));
    }

    /// Registers an agent; (id, client secret).
    pub fn agent(&self) -> Agent {
        let a = self.admin_post(
            "/v1/agents",
            &json!({"owner": "support", "environment": "prod", "scopes": ["tickets"]}),
        );
        Agent {
            id: a["id"].as_str().unwrap().to_owned(),
            secret: a["client_secret"].as_str().unwrap().to_owned(),
        }
    }

    /// Starts a session for `agent`; its id.
    pub fn session(&self, agent: &Agent) -> String {
        let s = self.admin_post("/v1/sessions", &json!({"agent_id": agent.id, "purpose": "ticket.triage"}));
        s["id"].as_str().unwrap().to_owned()
    }

    /// A token for `session` of `agent`: `client_credentials`, then token exchange.
    pub fn token(&self, agent: &Agent, session: &str) -> String {
        let subject = self.token_form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &agent.id),
            ("client_secret", &agent.secret),
            ("scope", "tickets"),
        ]);
        self.token_form(&[
            ("grant_type", EXCHANGE),
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("resource", &self.url),
            ("session_id", session),
        ])
    }

    pub fn token_form(&self, fields: &[(&str, &str)]) -> String {
        let mut r = http_agent()
            .post(&format!("{}/oauth/token", self.url))
            .send_form(fields.iter().copied())
            .unwrap();
        let v: Value = r.body_mut().read_json().unwrap();
        v["access_token"].as_str().unwrap_or_else(|| panic!("no token: {v}")).to_owned()
    }

    /// `POST /v1/authorize`; the answer must be 200.
    pub fn authorize(&self, token: &str, act: &Act<'_>) -> Value {
        let body = json!({
            "intent": act.intent,
            "resource": {"id": act.resource, "plane": "data", "environment": "prod", "data_class": act.data_class},
            "argument_destinations": act.destinations,
        });
        let (status, v) = self.post("/v1/authorize", token, &body);
        assert_eq!(status, 200, "authorize {}: {v}", act.intent);
        v
    }

    /// `GET /v1/agents/{id}/behavior`.
    pub fn behavior(&self, agent: &str) -> Value {
        self.admin_get(&format!("/v1/agents/{agent}/behavior"))
    }

    /// Baseline events of `agent` as the server reports them (0 when it has none).
    pub fn baseline_events(&self, agent: &str) -> u64 {
        self.behavior(agent)["baseline"]["events"].as_u64().unwrap_or(0)
    }

    /// `GET /v1/log/entries/{i}` for every entry from `from`, as `(index, event)`.
    pub fn entries_from(&self, from: u64) -> Vec<(u64, Value)> {
        let mut out = Vec::new();
        for i in from.. {
            let mut r = http_agent().get(&format!("{}/v1/log/entries/{i}", self.url)).call().unwrap();
            match r.status().as_u16() {
                200 => out.push((i, r.body_mut().read_json::<Value>().unwrap()["event"].clone())),
                404 => break,
                s => panic!("GET /v1/log/entries/{i}: {s}"),
            }
        }
        out
    }

    /// The number of entries the log serves.
    pub fn log_size(&self) -> u64 {
        self.entries_from(0).len() as u64
    }

    /// Adds an operator credential with `role` straight into the directory; returns
    /// its bearer secret.
    pub fn add_operator(&self, id: &str, role: Role) -> String {
        super::common::add_operator(&self.data(), id, role)
    }
}

impl Drop for Warden {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub struct Agent {
    pub id: String,
    pub secret: String,
}

/// One action: intent, resource id, data class (the class is `prod/data/<data_class>`)
/// and argument destinations.
pub struct Act<'a> {
    pub intent: &'a str,
    pub resource: &'a str,
    pub data_class: &'a str,
    pub destinations: &'a [&'a str],
}

pub fn act<'a>(intent: &'a str, resource: &'a str, destinations: &'a [&'a str]) -> Act<'a> {
    Act { intent, resource, data_class: "internal", destinations }
}
