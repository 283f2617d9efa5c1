//! `warden forensics show` and `warden forensics list`: the bodies kept for a
//! session in forensics mode.
//!
//! `show` prints a capture only after checking it against the log with nothing
//! but the log's verifier key: the checkpoint's signature, the action event's
//! inclusion proof against it, that the event is the capture's action, and that
//! the bodies and salt open the event's commitment. A body changed in storage,
//! or a leaf that is not the one the log signed, exits 1.
//!
//! Exit codes: 0 verified (or listed); 2 the input was wrong (a bad id or flag,
//! no capture with that id, an unusable credential or key); 1 a check failed or
//! the server refused or failed.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};
use serde_json::Value;
use warden_core::action::ActionForensics;

use crate::Failure;
use crate::incident::{Server, out, verified_checkpoint, verified_entry};

/// `warden forensics …`.
#[derive(Args, Debug)]
pub struct ForensicsArgs {
    #[command(flatten)]
    server: Server,
    #[command(subcommand)]
    command: ForensicsCommand,
}

#[derive(Subcommand, Debug)]
pub enum ForensicsCommand {
    /// Verify one capture against the log and print it.
    Show {
        /// The decision id (`dec_…`) of the action, or the log index of its action event.
        id: String,
        /// Print the server's document (bodies in base64) instead of text.
        #[arg(long, conflicts_with = "out")]
        json: bool,
        /// Write the bodies and the document to this directory instead of printing the bodies.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The log's verifier key (or a file holding it); default: the key the server publishes.
        #[arg(long)]
        key: Option<String>,
    },
    /// List a session's captures (without bodies), oldest first.
    List {
        /// The session (`sess_…`).
        #[arg(long)]
        session: String,
    },
}

/// Runs a forensics command.
pub fn run(args: &ForensicsArgs) -> Result<(), Failure> {
    match &args.command {
        ForensicsCommand::Show { id, json, out, key } => {
            show(&args.server, id, *json, out.as_deref(), key.as_deref())
        }
        ForensicsCommand::List { session } => list(&args.server, session),
    }
}

fn valid_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 64
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

fn list(server: &Server, session: &str) -> Result<(), Failure> {
    if !valid_id(session, "sess_") {
        return Err(Failure::BadInput(format!("--session `{session}` is not a session id (`sess_…`)")));
    }
    let mut after: Option<u64> = None;
    let mut listed = 0u64;
    loop {
        let cursor = after.map(|a| format!("&after={a}")).unwrap_or_default();
        let page =
            server.call("GET", &format!("/v1/forensics?session={session}&limit=1000{cursor}"), None)?;
        for c in page.get("captures").and_then(Value::as_array).into_iter().flatten() {
            let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("-").to_owned();
            let part = |k: &str| {
                let p = c.get(k);
                let n = |f: &str| p.and_then(|p| p.get(f)).and_then(Value::as_u64).unwrap_or(0);
                let cut = if n("kept_bytes") < n("bytes") {
                    format!(" ({} kept)", n("kept_bytes"))
                } else {
                    String::new()
                };
                format!("{}{cut}", n("bytes"))
            };
            out(&format!(
                "#{:<8} {}  {}  request {} bytes, response {} bytes  until {}",
                c.get("index").and_then(Value::as_u64).unwrap_or(0),
                s("captured_at"),
                s("decision_id"),
                part("request"),
                part("response"),
                s("expires_at"),
            ))?;
            listed += 1;
        }
        after = page.get("next_after").and_then(Value::as_u64);
        if after.is_none() {
            break;
        }
    }
    eprintln!("{listed} captures of session `{session}`");
    Ok(())
}

/// A body of the document, decoded.
fn body(doc: &Value, part: &str) -> Result<Vec<u8>, Failure> {
    doc.get(part)
        .and_then(|p| p.get("body"))
        .and_then(Value::as_str)
        .and_then(|b| STANDARD.decode(b).ok())
        .ok_or_else(|| Failure::Failed(format!("the {part} body is not base64")))
}

/// Checks the document against the log; returns the action event and a line
/// saying what was proven.
fn verify(doc: &Value, key: &str) -> Result<(Value, String), Failure> {
    let verifier = crate::log_cmd::load_verifier(key)?;
    let cp = verified_checkpoint(doc, &verifier)?;
    let (index, event) = verified_entry(doc, &cp)?;
    let fail = |why: String| Failure::Failed(format!("entry {index}: {why}"));
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    if field(&event, "kind").as_deref() != Some("action") {
        return Err(fail("is not an action event".into()));
    }
    for k in ["decision_id", "session_id"] {
        if field(&event, k) != field(doc, k) {
            return Err(fail(format!("its `{k}` is not the capture's")));
        }
    }
    let commitment: ActionForensics = event
        .get("forensics")
        .cloned()
        .ok_or_else(|| fail("the action event commits to no bodies".into()))
        .and_then(|f| {
            serde_json::from_value(f).map_err(|e| fail(format!("its `forensics` is unreadable: {e}")))
        })?;
    let salt = doc
        .get("salt")
        .and_then(Value::as_str)
        .and_then(|s| STANDARD.decode(s).ok())
        .ok_or_else(|| Failure::Failed("the salt is not base64".into()))?;
    let (request, response) = (body(doc, "request")?, body(doc, "response")?);
    commitment.check(&salt, &request, &response).map_err(|e| fail(e.to_string()))?;
    for (part, committed) in [("request", commitment.request_bytes), ("response", commitment.response_bytes)]
    {
        if doc.get(part).and_then(|p| p.get("bytes")).and_then(Value::as_u64) != Some(committed) {
            return Err(fail(format!("the server's {part} length is not the one the log committed to")));
        }
    }
    let proven = format!(
        "verified: the bodies open the commitment of entry {index}, included in log `{}` at tree size {} (root {})",
        cp.origin,
        cp.size,
        cp.root.to_base64()
    );
    Ok((event, proven))
}

fn describe_body(doc: &Value, part: &str) -> String {
    let n = |f: &str| doc.get(part).and_then(|p| p.get(f)).and_then(Value::as_u64).unwrap_or(0);
    if n("kept_bytes") < n("bytes") {
        format!("{part}: {} bytes, the first {} kept (truncated)", n("bytes"), n("kept_bytes"))
    } else {
        format!("{part}: {} bytes", n("bytes"))
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    std::fs::write(path, bytes)
        .map_err(|e| Failure::Failed(format!("cannot write `{}`: {e}", path.display())))
}

fn show(
    server: &Server,
    id: &str,
    json: bool,
    out_dir: Option<&Path>,
    key: Option<&str>,
) -> Result<(), Failure> {
    if !(valid_id(id, "dec_") || id.parse::<u64>().is_ok()) {
        return Err(Failure::BadInput(format!("`{id}` is neither a decision id (`dec_…`) nor a log index")));
    }
    let key = match key {
        Some(k) => k.to_owned(),
        None => {
            eprintln!("note: verifying with the key the server publishes; pass --key to pin the log's key");
            server.published_key()?
        }
    };
    let doc = server.call("GET", &format!("/v1/forensics/{id}"), None)?;
    let (event, proven) = verify(&doc, &key)?;
    let text = |k: &str| doc.get(k).and_then(Value::as_str).unwrap_or("-").to_owned();
    if json {
        let pretty = serde_json::to_string_pretty(&doc).map_err(|e| Failure::Failed(e.to_string()))?;
        out(&pretty)?;
        eprintln!("{proven}");
        return Ok(());
    }
    let e = |k: &str| {
        event.get(k).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).unwrap_or_default()
    };
    out(&format!(
        "decision {} of session {} (agent {}), action event #{} at {}: {} {} on {} -> {} {}",
        text("decision_id"),
        text("session_id"),
        text("agent_id"),
        doc.get("index").and_then(Value::as_u64).unwrap_or(0),
        e("received_at"),
        e("method"),
        e("target"),
        e("upstream"),
        e("outcome"),
        e("status"),
    ))?;
    out(&format!("kept until {}", text("expires_at")))?;
    let (request, response) = (body(&doc, "request")?, body(&doc, "response")?);
    match out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::BadInput(format!("cannot create `{}`: {e}", dir.display())))?;
            let name = text("decision_id");
            let pretty = serde_json::to_vec_pretty(&doc).map_err(|e| Failure::Failed(e.to_string()))?;
            for (suffix, bytes, what) in [
                ("request", &request, describe_body(&doc, "request")),
                ("response", &response, describe_body(&doc, "response")),
                ("json", &pretty, "the server's document".to_owned()),
            ] {
                let path = dir.join(format!("{name}.{suffix}"));
                write_file(&path, bytes)?;
                out(&format!("{what} -> {}", path.display()))?;
            }
        }
        None => {
            for (part, bytes) in [("request", &request), ("response", &response)] {
                out(&describe_body(&doc, part))?;
                match std::str::from_utf8(bytes) {
                    Ok(text) => out(text)?,
                    Err(_) => out(&format!("({} bytes that are not text; use --out DIR)", bytes.len()))?,
                }
            }
        }
    }
    eprintln!("{proven}");
    Ok(())
}
