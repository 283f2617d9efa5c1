//! `warden approvals …`: list, show, approve and deny actions held for a human,
//! over the control API.
//!
//! Exit codes: 0 done; 2 the input was wrong (a bad flag, id or reason, an
//! unknown approval, an unusable credential); 1 the server refused or could not
//! do it (the operator's role may not decide, the approval was already decided or
//! expired, the server is unreachable or failing).

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::Failure;

/// The statuses an approval can have.
const STATUSES: [&str; 4] = ["pending", "approved", "denied", "expired"];

/// `warden approvals`: where the server is, which credential, and what to do.
#[derive(Args, Debug)]
pub struct ApprovalsArgs {
    /// Base URL of the Warden server.
    #[arg(long, env = "WARDEN_URL", default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// File holding the operator credential (`wop_…`).
    #[arg(long, env = "WARDEN_TOKEN_FILE", default_value = "./warden-data/admin.token", global = true)]
    token_file: PathBuf,
    /// Print the server's JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: ApprovalsCommand,
}

#[derive(Subcommand, Debug)]
enum ApprovalsCommand {
    /// List approvals, newest first.
    List {
        /// Only approvals with this status.
        #[arg(long, value_parser = STATUSES)]
        status: Option<String>,
        /// At most this many (1 to 1000; default 100).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Show one approval with its whole evidence packet.
    Show {
        /// The approval id (`apr_…`).
        id: String,
    },
    /// Approve a held action: the held request proceeds.
    Approve {
        /// The approval id (`apr_…`).
        id: String,
        /// Why (recorded in the log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deny a held action: the held request fails.
    Deny {
        /// The approval id (`apr_…`).
        id: String,
        /// Why (recorded in the log and told to the agent).
        #[arg(long)]
        reason: Option<String>,
    },
}

fn token(args: &ApprovalsArgs) -> Result<String, Failure> {
    let text = std::fs::read_to_string(&args.token_file).map_err(|e| {
        Failure::BadInput(format!("cannot read the operator credential `{}`: {e}", args.token_file.display()))
    })?;
    Ok(text.trim().to_owned())
}

fn call(args: &ApprovalsArgs, path: &str, post: Option<Value>) -> Result<Value, Failure> {
    if !(args.url.starts_with("http://") || args.url.starts_with("https://")) {
        return Err(Failure::BadInput(format!("--url `{}` must start with http:// or https://", args.url)));
    }
    let url = format!("{}{path}", args.url.trim_end_matches('/'));
    let auth = format!("Bearer {}", token(args)?);
    let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    let (method, response) = match post {
        None => ("GET", agent.get(&url).header("authorization", &auth).call()),
        Some(body) => ("POST", agent.post(&url).header("authorization", &auth).send_json(body)),
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
        400 | 401 | 404 | 413 | 415 => Err(Failure::BadInput(message())),
        _ => Err(Failure::Failed(message())),
    }
}

fn check_id(id: &str) -> Result<(), Failure> {
    let ok = id.strip_prefix("apr_").is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 64
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    if ok { Ok(()) } else { Err(Failure::BadInput(format!("`{id}` is not an approval id (`apr_…`)"))) }
}

fn out(text: &str) -> Result<(), Failure> {
    // A closed pipe (`| head`) is not an error worth reporting.
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::Failed(e.to_string())),
        _ => Ok(()),
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("-")
}

/// Unix seconds as RFC 3339 UTC (days-from-civil inverted, as in H. Hinnant's
/// `civil_from_days`; a dependency on a date crate for one line of output is not
/// worth it).
fn rfc3339(unix_s: i64) -> String {
    let days = unix_s.div_euclid(86_400);
    let secs = unix_s.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3_600, secs % 3_600 / 60, secs % 60)
}

fn time_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_i64).map_or_else(|| "-".into(), rfc3339)
}

fn one_line(a: &Value) -> String {
    let when = match str_of(a, "status") {
        "pending" => format!("expires {}", time_of(a, "expires_at")),
        _ => format!("{} by {}", time_of(a, "decided_at"), str_of(a, "decided_by")),
    };
    format!(
        "{}  {:<8}  {} on {}  agent {} session {}  \"{}\"  ({when})",
        str_of(a, "id"),
        str_of(a, "status"),
        str_of(a, "intent"),
        str_of(a, "resource"),
        str_of(a, "agent_id"),
        str_of(a, "session_id"),
        str_of(a, "summary"),
    )
}

fn details(a: &Value) -> String {
    let e = a.get("evidence").unwrap_or(&Value::Null);
    let action = e.get("action").unwrap_or(&Value::Null);
    let list = |key: &str| -> Vec<String> {
        e.get(key)
            .and_then(Value::as_array)
            .map(|items| items.iter().map(|i| i.as_str().unwrap_or("?").to_owned()).collect())
            .unwrap_or_default()
    };
    let mut lines = vec![
        format!("approval   {} ({})", str_of(a, "id"), str_of(a, "status")),
        format!(
            "requested  {} by agent {} in session {}",
            time_of(a, "created_at"),
            str_of(a, "agent_id"),
            str_of(a, "session_id")
        ),
        format!("expires    {}", time_of(a, "expires_at")),
        format!("decision   {}", str_of(a, "decision_id")),
        format!("intent     {} on {}", str_of(a, "intent"), str_of(a, "resource")),
        format!("action     {} {}", str_of(action, "method"), str_of(action, "target")),
        format!("summary    {}", str_of(action, "summary")),
        format!("arguments  {}", str_of(action, "argument_digest")),
        format!("affects    {}", list("affected_assets").join(", ")),
        format!("rollback   {}", e.get("rollback").and_then(Value::as_str).unwrap_or("(none given)")),
        format!("risk       {}", e.get("risk").map_or_else(|| "-".into(), Value::to_string)),
    ];
    for reason in list("reasons") {
        lines.push(format!("reason     {reason}"));
    }
    let recent = e.get("recent_actions").and_then(Value::as_array).cloned().unwrap_or_default();
    lines.push(format!("recent     {} actions of the session, oldest first", recent.len()));
    for r in &recent {
        lines.push(format!(
            "  {}  {:<7}  {} on {}  ({})",
            time_of(r, "at"),
            str_of(r, "decision"),
            str_of(r, "intent"),
            str_of(r, "resource"),
            str_of(r, "decision_id")
        ));
    }
    lines.push(format!("evidence   {}", str_of(a, "evidence_sha256")));
    if str_of(a, "status") != "pending" {
        let why = a.get("reason").and_then(Value::as_str).map(|r| format!(": {r}")).unwrap_or_default();
        lines.push(format!(
            "decided    {} by {} at {}{why}",
            str_of(a, "status"),
            str_of(a, "decided_by"),
            time_of(a, "decided_at")
        ));
    }
    lines.join("\n")
}

/// Runs `warden approvals …`.
pub fn run(args: &ApprovalsArgs) -> Result<(), Failure> {
    let (value, text) = match &args.command {
        ApprovalsCommand::List { status, limit } => {
            let mut query = Vec::new();
            if let Some(s) = status {
                query.push(format!("status={s}"));
            }
            if let Some(n) = limit {
                if !(1..=1_000).contains(n) {
                    return Err(Failure::BadInput(format!("--limit {n} must be from 1 to 1000")));
                }
                query.push(format!("limit={n}"));
            }
            let path = if query.is_empty() {
                "/v1/approvals".into()
            } else {
                format!("/v1/approvals?{}", query.join("&"))
            };
            let value = call(args, &path, None)?;
            let items = value.get("approvals").and_then(Value::as_array).cloned().unwrap_or_default();
            let text = if items.is_empty() {
                format!("no {}approvals", status.as_deref().map(|s| format!("{s} ")).unwrap_or_default())
            } else {
                items.iter().map(one_line).collect::<Vec<_>>().join("\n")
            };
            (value, text)
        }
        ApprovalsCommand::Show { id } => {
            check_id(id)?;
            let value = call(args, &format!("/v1/approvals/{id}"), None)?;
            let text = details(&value);
            (value, text)
        }
        ApprovalsCommand::Approve { id, reason } | ApprovalsCommand::Deny { id, reason } => {
            check_id(id)?;
            let verb =
                if matches!(args.command, ApprovalsCommand::Approve { .. }) { "approve" } else { "deny" };
            let body = reason.as_ref().map_or_else(|| json!({}), |r| json!({"reason": r}));
            let value = call(args, &format!("/v1/approvals/{id}/{verb}"), Some(body))?;
            let text = format!(
                "{} {id}: {} on {} by agent {}; the held request {}",
                str_of(&value, "status"),
                str_of(&value, "intent"),
                str_of(&value, "resource"),
                str_of(&value, "agent_id"),
                if verb == "approve" { "proceeds" } else { "fails" }
            );
            (value, text)
        }
    };
    if args.json {
        out(&serde_json::to_string_pretty(&value).map_err(|e| Failure::Failed(e.to_string()))?)
    } else {
        out(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_776_216_225), "2026-04-15T01:23:45Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
