//! `warden agent …` and `warden session …` (including `session forensics`): the
//! control API from the command line.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::Failure;

/// Where the server is and which operator credential to use.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// Base URL of the Warden server.
    #[arg(long, env = "WARDEN_URL", default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// File holding the operator credential (`wop_…`).
    #[arg(long, env = "WARDEN_TOKEN_FILE", default_value = "./warden-data/admin.token", global = true)]
    token_file: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// Register an agent; prints its client secret once.
    Register {
        /// Owning team or human.
        #[arg(long)]
        owner: String,
        /// Environment tier: dev, staging or prod.
        #[arg(long)]
        environment: String,
        /// An OAuth scope the agent may be granted (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Choose the id (`agt_…`) instead of generating one.
        #[arg(long)]
        id: Option<String>,
        /// Retention class of its data.
        #[arg(long, default_value = "standard")]
        retention_class: String,
        /// File with an Ed25519 public JWK, for `private_key_jwt` instead of a secret.
        #[arg(long)]
        public_jwk: Option<PathBuf>,
    },
    /// List agents.
    List,
    /// Show one agent and its sessions.
    Show { id: String },
    /// Suspend an agent: its credentials stop working at once.
    Suspend { id: String },
    /// Reactivate a suspended agent.
    Activate { id: String },
    /// Revoke an agent for good: all credentials and sessions, immediately.
    Revoke { id: String },
}

#[derive(Subcommand, Debug)]
pub enum SessionCommand {
    /// Start a session for an agent.
    Start {
        /// The agent.
        #[arg(long)]
        agent: String,
        /// Purpose or task class.
        #[arg(long)]
        purpose: String,
        /// A budget, `name=value` (tool_calls_max, writes_max, bytes_max, in_flight_max, lifetime_s_max).
        #[arg(long = "budget")]
        budgets: Vec<String>,
    },
    /// Show a session, its budgets and usage.
    Show { id: String },
    /// End a session; its tokens are revoked.
    End { id: String },
    /// Pause a session.
    Pause { id: String },
    /// Resume a paused session.
    Resume { id: String },
    /// Turn forensics mode on or off for a session (full request and response
    /// bodies kept apart from the log, which commits to them); without --on or
    /// --off, show it.
    Forensics {
        /// The session (`sess_…`).
        id: String,
        /// Turn it on.
        #[arg(long)]
        on: bool,
        /// Turn it off.
        #[arg(long)]
        off: bool,
        /// Why (recorded in the log); required with --on or --off.
        #[arg(long)]
        reason: Option<String>,
    },
}

fn token(conn: &Connection) -> Result<String, Failure> {
    let text = std::fs::read_to_string(&conn.token_file).map_err(|e| {
        Failure::BadInput(format!("cannot read the operator credential `{}`: {e}", conn.token_file.display()))
    })?;
    Ok(text.trim().to_owned())
}

fn call(conn: &Connection, method: &str, path: &str, body: Option<Value>) -> Result<Value, Failure> {
    let url = format!("{}{path}", conn.url.trim_end_matches('/'));
    let auth = format!("Bearer {}", token(conn)?);
    let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    let response = match (method, body) {
        ("GET", _) => agent.get(&url).header("authorization", &auth).call(),
        (_, Some(b)) => agent.post(&url).header("authorization", &auth).send_json(b),
        (_, None) => agent.post(&url).header("authorization", &auth).send_empty(),
    };
    let mut response = response.map_err(|e| Failure::Failed(format!("{method} {url}: {e}")))?;
    let status = response.status().as_u16();
    let value: Value = response.body_mut().read_json().unwrap_or(Value::Null);
    match status {
        200..=299 => Ok(value),
        400..=499 => Err(Failure::BadInput(message(&value, status))),
        _ => Err(Failure::Failed(message(&value, status))),
    }
}

fn message(value: &Value, status: u16) -> String {
    value
        .get("message")
        .and_then(Value::as_str)
        .map_or_else(|| format!("server answered {status}"), str::to_owned)
}

fn print(value: &Value) -> Result<(), Failure> {
    use std::io::Write;
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::Failed(e.to_string()))?;
    // A closed pipe (`| head`) is not an error worth a panic.
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::Failed(e.to_string())),
        _ => Ok(()),
    }
}

/// Runs an agent command.
pub fn agent(conn: &Connection, command: AgentCommand) -> Result<(), Failure> {
    let value = match command {
        AgentCommand::Register { owner, environment, scopes, id, retention_class, public_jwk } => {
            let mut body = json!({"owner": owner, "environment": environment, "scopes": scopes,
                "retention_class": retention_class});
            if let (Some(id), Some(obj)) = (id, body.as_object_mut()) {
                obj.insert("id".into(), json!(id));
            }
            if let Some(path) = public_jwk {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| Failure::BadInput(format!("cannot read `{}`: {e}", path.display())))?;
                let jwk: Value = serde_json::from_str(&text)
                    .map_err(|e| Failure::BadInput(format!("`{}` is not JSON: {e}", path.display())))?;
                if let Some(obj) = body.as_object_mut() {
                    obj.insert("public_jwk".into(), jwk);
                }
            }
            call(conn, "POST", "/v1/agents", Some(body))?
        }
        AgentCommand::List => call(conn, "GET", "/v1/agents", None)?,
        AgentCommand::Show { id } => call(conn, "GET", &format!("/v1/agents/{id}"), None)?,
        AgentCommand::Suspend { id } => call(conn, "POST", &format!("/v1/agents/{id}/suspend"), None)?,
        AgentCommand::Activate { id } => call(conn, "POST", &format!("/v1/agents/{id}/activate"), None)?,
        AgentCommand::Revoke { id } => call(conn, "POST", &format!("/v1/agents/{id}/revoke"), None)?,
    };
    print(&value)
}

fn parse_budgets(items: &[String]) -> Result<Value, Failure> {
    let mut budgets = serde_json::Map::new();
    for item in items {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| Failure::BadInput(format!("--budget `{item}` must be `name=value`")))?;
        let n: u64 = value
            .parse()
            .map_err(|_| Failure::BadInput(format!("--budget `{item}`: `{value}` is not a number")))?;
        budgets.insert(name.to_owned(), json!(n));
    }
    Ok(Value::Object(budgets))
}

/// Runs a session command.
pub fn session(conn: &Connection, command: SessionCommand) -> Result<(), Failure> {
    let value = match command {
        SessionCommand::Start { agent, purpose, budgets } => {
            let mut body = json!({"agent_id": agent, "purpose": purpose});
            if !budgets.is_empty()
                && let Some(obj) = body.as_object_mut()
            {
                obj.insert("budgets".into(), parse_budgets(&budgets)?);
            }
            call(conn, "POST", "/v1/sessions", Some(body))?
        }
        SessionCommand::Show { id } => call(conn, "GET", &format!("/v1/sessions/{id}"), None)?,
        SessionCommand::End { id } => call(conn, "POST", &format!("/v1/sessions/{id}/end"), None)?,
        SessionCommand::Pause { id } => call(conn, "POST", &format!("/v1/sessions/{id}/pause"), None)?,
        SessionCommand::Resume { id } => call(conn, "POST", &format!("/v1/sessions/{id}/resume"), None)?,
        SessionCommand::Forensics { id, on, off, reason } => forensics(conn, &id, on, off, reason)?,
    };
    print(&value)
}

/// `warden session forensics ID [--on|--off --reason R]`, its input checked
/// before anything is sent.
fn forensics(
    conn: &Connection,
    id: &str,
    on: bool,
    off: bool,
    reason: Option<String>,
) -> Result<Value, Failure> {
    let id_ok = id.strip_prefix("sess_").is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    if !id_ok {
        return Err(Failure::BadInput(format!("`{id}` is not a session id (`sess_…`)")));
    }
    let path = format!("/v1/sessions/{id}/forensics");
    let enabled = match (on, off) {
        (true, true) => return Err(Failure::BadInput("give only one of --on and --off".into())),
        (false, false) if reason.is_some() => {
            return Err(Failure::BadInput("--reason goes with --on or --off".into()));
        }
        (false, false) => return call(conn, "GET", &path, None),
        (on, _) => on,
    };
    let reason = reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()).ok_or_else(|| {
        Failure::BadInput("--reason is required with --on and --off: say why (it is logged)".into())
    })?;
    call(conn, "POST", &path, Some(json!({"enabled": enabled, "reason": reason})))
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Push a new policy version: a directory of `*.cedar` files (one policy each,
    /// id = file name) or one `.cedar` file. Refused with Cedar's diagnostics if invalid.
    Push {
        /// Directory or file.
        path: PathBuf,
        /// Why.
        #[arg(long, short, default_value = "")]
        message: String,
    },
    /// Show the active version and its policies.
    Show,
    /// List versions, newest first.
    History,
    /// What changed between two versions (default: to the active one).
    Diff {
        /// Older version.
        from: u64,
        /// Newer version.
        to: Option<u64>,
    },
    /// Make an earlier version active again (as a new version).
    Rollback {
        /// The version to restore.
        version: u64,
    },
}

fn policy_sources(path: &std::path::Path) -> Result<Value, Failure> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .map_err(|e| Failure::BadInput(format!("cannot read `{}`: {e}", p.display())))
    };
    let id_of =
        |p: &std::path::Path| p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut sources = Vec::new();
    if path.is_dir() {
        let entries = std::fs::read_dir(path)
            .map_err(|e| Failure::BadInput(format!("cannot read `{}`: {e}", path.display())))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
            .collect();
        files.sort();
        for file in files {
            sources.push(json!({"id": id_of(&file), "text": read(&file)?}));
        }
    } else {
        sources.push(json!({"id": id_of(path), "text": read(path)?}));
    }
    if sources.is_empty() {
        return Err(Failure::BadInput(format!("no `.cedar` files in `{}`", path.display())));
    }
    Ok(Value::Array(sources))
}

/// Runs a policy command.
pub fn policy(conn: &Connection, command: PolicyCommand) -> Result<(), Failure> {
    let value = match command {
        PolicyCommand::Push { path, message } => {
            let body = json!({"policies": policy_sources(&path)?, "message": message});
            call(conn, "POST", "/v1/policies", Some(body))?
        }
        PolicyCommand::Show => call(conn, "GET", "/v1/policies", None)?,
        PolicyCommand::History => call(conn, "GET", "/v1/policies/history", None)?,
        PolicyCommand::Diff { from, to } => {
            let to = to.map(|t| format!("&to={t}")).unwrap_or_default();
            call(conn, "GET", &format!("/v1/policies/diff?from={from}{to}"), None)?
        }
        PolicyCommand::Rollback { version } => {
            call(conn, "POST", "/v1/policies/rollback", Some(json!({"version": version})))?
        }
    };
    print(&value)
}
