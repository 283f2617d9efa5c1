//! `warden quarantine …` and `warden replay`: incident response over the control
//! API. Replay verifies every entry it prints (inclusion proof against a checkpoint
//! signed by the log's key) before printing it.
//!
//! Exit codes: 0 done; 2 the input was wrong (a bad flag, duration or id, an
//! unknown agent or quarantine, an unusable credential); 1 the server refused (the
//! operator's role may not, the quarantine already ended) or failed, or an entry
//! did not verify.

use std::io::Write;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use warden_ledger::checkpoint::Checkpoint;
use warden_ledger::hash::{Hash, leaf_hash};
use warden_ledger::note::NoteVerifier;
use warden_ledger::verify::verify_inclusion;
use warden_server::incident::quarantine::QUARANTINE_DURATION_S_MAX;

use crate::Failure;

/// Entries `warden replay` prints unless `--limit` says otherwise.
const REPLAY_ENTRIES_DEFAULT: u64 = 10_000;
/// Entries asked for per page.
const REPLAY_PAGE_ENTRIES: u64 = 500;

/// Where the server is and which operator credential to use.
#[derive(Args, Debug, Clone)]
pub struct Server {
    /// Base URL of the Warden server.
    #[arg(
        long = "server",
        visible_alias = "url",
        env = "WARDEN_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// File holding the operator credential (`wop_…`).
    #[arg(long, env = "WARDEN_TOKEN_FILE", default_value = "./warden-data/admin.token", global = true)]
    token_file: PathBuf,
}

impl Server {
    fn token(&self) -> Result<String, Failure> {
        let text = std::fs::read_to_string(&self.token_file).map_err(|e| {
            Failure::BadInput(format!(
                "cannot read the operator credential `{}`: {e}",
                self.token_file.display()
            ))
        })?;
        Ok(text.trim().to_owned())
    }

    fn base(&self) -> Result<&str, Failure> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(Failure::BadInput(format!(
                "--server `{}` must start with http:// or https://",
                self.url
            )));
        }
        Ok(self.url.trim_end_matches('/'))
    }

    /// One call to the control API; wrong input is exit 2, a refusal or a
    /// failure exit 1.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.base()?);
        let auth = format!("Bearer {}", self.token()?);
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
        let response = match (method, body) {
            ("DELETE", _) => agent.delete(&url).header("authorization", &auth).call(),
            ("POST", Some(b)) => agent.post(&url).header("authorization", &auth).send_json(b),
            _ => agent.get(&url).header("authorization", &auth).call(),
        };
        let mut response = response.map_err(|e| Failure::Failed(format!("{method} {url}: {e}")))?;
        let status = response.status().as_u16();
        let value: Value = response.body_mut().read_json().unwrap_or(Value::Null);
        let message = || {
            value
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| format!("server answered {status}"), str::to_owned)
        };
        match status {
            200..=299 => Ok(value),
            // Wrong input; a refusal (403, 409: the role may not, it already ended) is not.
            400 | 401 | 404 | 413 | 415 => Err(Failure::BadInput(message())),
            _ => Err(Failure::Failed(message())),
        }
    }

    /// The log's verifier key as the server publishes it.
    pub(crate) fn published_key(&self) -> Result<String, Failure> {
        let url = format!("{}/v1/log/key", self.base()?);
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
        let mut response = agent.get(&url).call().map_err(|e| Failure::Failed(format!("GET {url}: {e}")))?;
        response.body_mut().read_to_string().map_err(|e| Failure::Failed(format!("GET {url}: {e}")))
    }
}

/// Writes a line to stdout; a closed pipe (`| head`) is not an error.
pub fn out(text: &str) -> Result<(), Failure> {
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::Failed(e.to_string())),
        _ => Ok(()),
    }
}

/// Parses `90s`, `15m`, `2h`, `1d` or a sum such as `1h30m` into seconds.
pub fn parse_duration_s(flag: &str, raw: &str) -> Result<i64, Failure> {
    let bad = || Failure::BadInput(format!("{flag} `{raw}` is not a duration such as 90s, 15m, 2h or 1d"));
    let (mut total, mut number) = (0i64, String::new());
    for c in raw.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: i64 = number.parse().map_err(|_| bad())?;
        total = n.checked_mul(unit).and_then(|s| total.checked_add(s)).ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() || total <= 0 {
        return Err(bad());
    }
    Ok(total)
}

#[derive(Subcommand, Debug)]
pub enum QuarantineCommand {
    /// Deny every action of an agent, or on every resource under a prefix, for a while.
    Add {
        /// The agent to quarantine (`agt_…`).
        #[arg(long, required_unless_present = "resource_prefix", conflicts_with = "resource_prefix")]
        agent: Option<String>,
        /// A resource id prefix, such as `prod/db/`.
        #[arg(long)]
        resource_prefix: Option<String>,
        /// How long: `90s`, `15m`, `2h`, `1d` (at most 7 days).
        #[arg(long = "for", required_unless_present = "until", conflicts_with = "until")]
        duration: Option<String>,
        /// Until when (RFC 3339), instead of --for.
        #[arg(long)]
        until: Option<String>,
        /// Why (recorded in the log and told to the agent).
        #[arg(long)]
        reason: String,
    },
    /// List active quarantines (`--all`: also lifted and expired ones).
    List {
        /// Include quarantines that ended.
        #[arg(long)]
        all: bool,
    },
    /// Lift a quarantine before it expires.
    Lift {
        /// The quarantine id (`qua_…`).
        id: String,
    },
}

fn quarantine_line(q: &Value) -> String {
    let s = |k: &str| q.get(k).and_then(Value::as_str).unwrap_or("-").to_owned();
    let target = q.get("target");
    let named = |k: &str| target.and_then(|t| t.get(k)).and_then(Value::as_str);
    let target = match (named("agent"), named("resource_prefix")) {
        (Some(agent), _) => format!("agent {agent}"),
        (None, Some(prefix)) => format!("resources {prefix}*"),
        (None, None) => "-".into(),
    };
    format!(
        "{}  {:<8} {}  until {}  by {}: {}",
        s("id"),
        s("status"),
        target,
        s("expires_at"),
        s("created_by"),
        s("reason")
    )
}

/// Runs a quarantine command.
pub fn quarantine(server: &Server, command: QuarantineCommand) -> Result<(), Failure> {
    match command {
        QuarantineCommand::Add { agent, resource_prefix, duration, until, reason } => {
            let target = match (agent, resource_prefix) {
                (Some(a), None) => json!({"agent": a}),
                (None, Some(p)) => json!({"resource_prefix": p}),
                _ => {
                    return Err(Failure::BadInput(
                        "give exactly one of --agent and --resource-prefix".into(),
                    ));
                }
            };
            let (field, expiry) = match (duration, until) {
                (Some(d), None) => {
                    let s = parse_duration_s("--for", &d)?;
                    if s > QUARANTINE_DURATION_S_MAX {
                        return Err(Failure::BadInput(format!(
                            "--for `{d}` is longer than the maximum of {} days",
                            QUARANTINE_DURATION_S_MAX / 86_400
                        )));
                    }
                    ("expires_in_s", json!(s))
                }
                (None, Some(u)) => ("expires_at", json!(u)),
                _ => return Err(Failure::BadInput("give exactly one of --for and --until".into())),
            };
            let mut body = serde_json::Map::new();
            body.insert("target".into(), target);
            body.insert("reason".into(), json!(reason));
            body.insert(field.into(), expiry);
            let body = Value::Object(body);
            let q = server.call("POST", "/v1/quarantines", Some(&body))?;
            out(&quarantine_line(&q))
        }
        QuarantineCommand::List { all } => {
            let list = server.call("GET", &format!("/v1/quarantines?all={all}&limit=1000"), None)?;
            let items = list.get("quarantines").and_then(Value::as_array).cloned().unwrap_or_default();
            if items.is_empty() {
                return out(if all { "no quarantines" } else { "no active quarantines" });
            }
            items.iter().try_for_each(|q| out(&quarantine_line(q)))
        }
        QuarantineCommand::Lift { id } => {
            let ok = id
                .strip_prefix("qua_")
                .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_alphanumeric()));
            if !ok {
                return Err(Failure::BadInput(format!("`{id}` is not a quarantine id (`qua_…`)")));
            }
            let q = server.call("DELETE", &format!("/v1/quarantines/{id}"), None)?;
            out(&quarantine_line(&q))
        }
    }
}

/// `warden replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    server: Server,
    /// Replay this agent's entries.
    #[arg(long, required_unless_present = "session", conflicts_with = "session")]
    agent: Option<String>,
    /// Replay this session's entries.
    #[arg(long)]
    session: Option<String>,
    /// From this time: RFC 3339, or a duration ago (`2h`).
    #[arg(long)]
    since: Option<String>,
    /// Up to this time: RFC 3339, or a duration ago (`30m`).
    #[arg(long)]
    until: Option<String>,
    /// The log's verifier key (or a file holding it); default: the key the server publishes.
    #[arg(long)]
    key: Option<String>,
    /// Print at most this many entries.
    #[arg(long, default_value_t = REPLAY_ENTRIES_DEFAULT)]
    limit: u64,
}

/// A time flag as the server takes it: RFC 3339 as given, or `now - duration`.
fn time_param(flag: &str, raw: &str) -> Result<String, Failure> {
    if raw.contains('T') {
        return Ok(raw.to_owned());
    }
    let ago = parse_duration_s(flag, raw).map_err(|_| {
        Failure::BadInput(format!("{flag} `{raw}` is neither an RFC 3339 time nor a duration such as 2h"))
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    Ok((now - ago).to_string())
}

/// The page's checkpoint, once its signature by `verifier` checks.
pub(crate) fn verified_checkpoint(page: &Value, verifier: &NoteVerifier) -> Result<Checkpoint, Failure> {
    let note = page.get("checkpoint").and_then(Value::as_str).unwrap_or_default();
    let text = verifier.verify(note).map_err(|e| Failure::Failed(format!("checkpoint signature: {e}")))?;
    let cp = Checkpoint::parse(text).map_err(|e| Failure::Failed(format!("checkpoint: {e}")))?;
    if cp.origin != verifier.name() {
        return Err(Failure::Failed(format!(
            "checkpoint is for log `{}`, not `{}`",
            cp.origin,
            verifier.name()
        )));
    }
    if page.get("tree_size").and_then(Value::as_u64) != Some(cp.size) {
        return Err(Failure::Failed("the page's tree size is not its checkpoint's".into()));
    }
    Ok(cp)
}

/// Checks one entry's inclusion proof against `cp` and returns its event.
pub(crate) fn verified_entry(entry: &Value, cp: &Checkpoint) -> Result<(u64, Value), Failure> {
    let index = entry
        .get("index")
        .and_then(Value::as_u64)
        .ok_or_else(|| Failure::Failed("an entry has no index".into()))?;
    let fail = |why: String| Failure::Failed(format!("entry {index}: {why}"));
    let leaf = entry
        .get("leaf")
        .and_then(Value::as_str)
        .and_then(|l| STANDARD.decode(l).ok())
        .ok_or_else(|| fail("the leaf is not base64".into()))?;
    let proof = entry
        .get("inclusion_proof")
        .and_then(Value::as_array)
        .map(|list| list.iter().map(|h| h.as_str().and_then(Hash::from_base64)).collect::<Option<Vec<_>>>())
        .and_then(|p| p)
        .ok_or_else(|| fail("the inclusion proof is not a list of base64 hashes".into()))?;
    verify_inclusion(index, cp.size, leaf_hash(&leaf), &proof, cp.root)
        .map_err(|e| fail(format!("inclusion proof against the checkpoint: {e}")))?;
    let event: Value =
        serde_json::from_slice(&leaf).map_err(|e| fail(format!("the leaf is not JSON: {e}")))?;
    Ok((index, event))
}

/// `Some(false)` when the event explicitly names another agent or session than
/// the one replayed; `None` when it names none (an administrative event about a
/// session, filed under its agent by the server).
fn names_subject(event: &Value, field: &str, id: &str) -> Option<bool> {
    let s = |k: &str| event.get(k).and_then(Value::as_str);
    let named: Vec<&str> = if field == "agent" {
        [
            s("agent_id"),
            s("actor"),
            s("subject"),
            event.get("details").and_then(|d| d.get("agent_id")).and_then(Value::as_str),
        ]
        .into_iter()
        .flatten()
        .filter(|v| v.starts_with("agt_"))
        .collect()
    } else {
        [
            s("session_id"),
            s("subject"),
            event.get("details").and_then(|d| d.get("session_id")).and_then(Value::as_str),
        ]
        .into_iter()
        .flatten()
        .filter(|v| v.starts_with("sess_"))
        .collect()
    };
    if named.is_empty() { None } else { Some(named.contains(&id)) }
}

/// One line describing an event.
fn describe(event: &Value) -> String {
    let s = |k: &str| event.get(k).and_then(Value::as_str).unwrap_or("-");
    let detail = |k: &str| {
        event
            .get("details")
            .and_then(|d| d.get(k))
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .unwrap_or_else(|| "-".into())
    };
    match s("kind") {
        "decision" => {
            let refusal = match s("refusal") {
                "" | "-" => String::new(),
                r => format!(" refusal={r}"),
            };
            format!(
                "decision  {:<8} {} on {} in {}{refusal}",
                s("decision"),
                s("intent"),
                s("resource"),
                s("session_id")
            )
        }
        "action" => format!(
            "action    {:<8} {} {} {} on {} status={}{}",
            s("outcome"),
            s("intent"),
            s("method"),
            s("target"),
            s("upstream"),
            event.get("status").map_or_else(|| "-".into(), Value::to_string),
            // Bodies kept: `warden forensics show <decision>` opens them.
            if event.get("forensics").is_some() {
                format!(" forensics={}", s("decision_id"))
            } else {
                String::new()
            }
        ),
        "telemetry" => format!(
            "telemetry {:<8} {} in {} (self-reported)",
            s("outcome"),
            s("action_type"),
            s("session_id")
        ),
        "anomaly" => format!(
            "anomaly   {:<8} {} score={}: {}",
            s("severity"),
            detail("finding"),
            detail("score"),
            detail("explanation")
        ),
        kind => format!("admin     {kind} by {} on {}", s("actor"), s("subject")),
    }
}

/// Runs `warden replay`.
pub fn replay(args: &ReplayArgs) -> Result<(), Failure> {
    let (field, id) = match (&args.agent, &args.session) {
        (Some(a), None) => ("agent", a.as_str()),
        (None, Some(s)) => ("session", s.as_str()),
        _ => return Err(Failure::BadInput("give exactly one of --agent and --session".into())),
    };
    let mut query = format!("{field}={id}&limit={REPLAY_PAGE_ENTRIES}");
    for (flag, name, value) in [("--since", "since", &args.since), ("--until", "until", &args.until)] {
        if let Some(v) = value {
            query.push_str(&format!("&{name}={}", time_param(flag, v)?.replace('+', "%2B")));
        }
    }
    let key = match &args.key {
        Some(k) => k.clone(),
        None => {
            eprintln!("note: verifying with the key the server publishes; pass --key to pin the log's key");
            args.server.published_key()?
        }
    };
    let verifier = crate::log_cmd::load_verifier(&key)?;
    let (mut printed, mut cursor, mut last_cp) = (0u64, None::<String>, None::<Checkpoint>);
    while printed < args.limit {
        let page_query = match &cursor {
            Some(c) => format!("{query}&cursor={c}"),
            None => query.clone(),
        };
        let page = args.server.call("GET", &format!("/v1/replay?{page_query}"), None)?;
        let cp = verified_checkpoint(&page, &verifier)?;
        if let Some(indexed) = page.get("indexed_size").and_then(Value::as_u64).filter(|&n| n < cp.size) {
            eprintln!(
                "note: the server's index covers {indexed} of {} entries yet; later ones are not shown",
                cp.size
            );
        }
        let entries = page.get("entries").and_then(Value::as_array).cloned().unwrap_or_default();
        for entry in entries.iter().take(usize::try_from(args.limit - printed).unwrap_or(usize::MAX)) {
            let (index, event) = verified_entry(entry, &cp)?;
            if names_subject(&event, field, id) == Some(false) {
                return Err(Failure::Failed(format!("entry {index} is not about {field} `{id}`: {event}")));
            }
            out(&format!(
                "#{index:<8} {}  {}",
                event.get("received_at").and_then(Value::as_str).unwrap_or("-"),
                describe(&event)
            ))?;
            printed += 1;
        }
        last_cp = Some(cp);
        cursor = page.get("next_cursor").and_then(Value::as_str).map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    match last_cp {
        Some(cp) => eprintln!(
            "{printed} entries of {field} `{id}`, each proven included in log `{}` at tree size {} (root {})",
            cp.origin,
            cp.size,
            cp.root.to_base64()
        ),
        None => eprintln!("no entries"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_sums_of_numbers_with_units() {
        assert_eq!(parse_duration_s("--for", "90s").ok(), Some(90));
        assert_eq!(parse_duration_s("--for", "1h30m").ok(), Some(5_400));
        assert_eq!(parse_duration_s("--for", "2d").ok(), Some(172_800));
        for bad in ["", "2", "h", "2x", "0s", "-1h", "99999999999999999999d"] {
            assert!(parse_duration_s("--for", bad).is_err(), "{bad}");
        }
    }
}
