//! `warden trust history` fetches an agent's signed behavioral summary;
//! `warden trust verify` checks one offline, with only the log's verifier key:
//! the summary's signature, the checkpoint's, every inclusion proof against the
//! checkpoint's root, and that every cited leaf says what the summary claims.
//!
//! Exit codes: 0 verified (or written); 1 the summary does not verify (the
//! message names exactly what failed) or the server failed; 2 the input was
//! wrong (unreadable file, not a summary, bad key or flag).

use std::path::PathBuf;

use clap::Subcommand;
use warden_server::trust::summary::{self, TrustDocument, Verified};

use crate::Failure;
use crate::incident::{Server, out};

#[derive(Subcommand, Debug)]
pub enum TrustCommand {
    /// Fetch an agent's signed behavioral summary (needs an operator credential).
    History {
        /// The agent (`agt_…`).
        agent: String,
        /// Write it here instead of to stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        server: Server,
    },
    /// Verify a summary offline against the log's verifier key.
    Verify {
        /// The summary file (from `warden trust history`).
        file: PathBuf,
        /// The log's verifier key (`warden log key`), or a file holding it.
        #[arg(long)]
        key: String,
    },
}

/// Runs a trust command.
pub fn run(command: TrustCommand) -> Result<(), Failure> {
    match command {
        TrustCommand::History { agent, output, server } => history(&server, &agent, output),
        TrustCommand::Verify { file, key } => verify(&file, &key),
    }
}

fn history(server: &Server, agent: &str, output: Option<PathBuf>) -> Result<(), Failure> {
    if !agent.starts_with("agt_") {
        return Err(Failure::BadInput(format!("`{agent}` is not an agent id (`agt_…`)")));
    }
    let document = server.call("GET", &format!("/v1/agents/{agent}/history"), None)?;
    let text = serde_json::to_string_pretty(&document).map_err(|e| Failure::Failed(e.to_string()))?;
    match output {
        Some(path) => {
            std::fs::write(&path, format!("{text}\n"))
                .map_err(|e| Failure::BadInput(format!("cannot write `{}`: {e}", path.display())))?;
            eprintln!(
                "wrote {}; check it with `warden trust verify {} --key <log key>`",
                path.display(),
                path.display()
            );
            Ok(())
        }
        None => out(&text),
    }
}

fn verify(file: &std::path::Path, key: &str) -> Result<(), Failure> {
    let verifier = crate::log_cmd::load_verifier(key)?;
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::BadInput(format!("cannot read `{}`: {e}", file.display())))?;
    let document: TrustDocument = serde_json::from_str(&text)
        .map_err(|e| Failure::BadInput(format!("`{}` is not a trust summary: {e}", file.display())))?;
    let Verified { summary, checkpoint } = summary::verify(&document, &verifier)
        .map_err(|e| Failure::Failed(format!("trust summary is invalid: {e}")))?;
    let c = &summary.counts;
    let tiers = c.decisions.by_outcome.iter().map(|(t, n)| format!("{t} {n}")).collect::<Vec<_>>().join(", ");
    let risk = summary.risk.map_or_else(|| "unknown".to_owned(), |r| format!("{r}"));
    let first = summary
        .first_seen
        .as_ref()
        .map_or_else(|| "never".to_owned(), |f| format!("{} (entry {})", f.received_at, f.index));
    out(&format!(
        "OK: agent {} ({}, {}, risk {risk}) in log `{}` up to tree size {} (root {})",
        summary.agent_id,
        summary.status,
        summary.environment,
        checkpoint.origin,
        checkpoint.size,
        checkpoint.root.to_base64()
    ))?;
    out(&format!(
        "first seen {first}; {} entries: {} decisions ({tiers}), {} actions, {} self-reported, {} anomalies, {} administrative",
        c.events, c.decisions.total, c.actions.total, c.self_reported.total, c.anomalies, c.administrative
    ))?;
    out(&format!(
        "{} cited entries proven against the checkpoint; issued {}",
        summary.cited.len(),
        summary.issued_at
    ))
}
