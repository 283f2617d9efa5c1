//! The `warden` binary.
//!
//! Exit codes: 0 success; 1 a check failed or the operation could not be done;
//! 2 the input was wrong (bad flags, unreadable or malformed files and keys).

/// Allocations on the decision path are small, short-lived and often freed by
/// another thread (the log writer frees what a request allocated); glibc malloc
/// serves that with arena locks and trims that show up as tens of microseconds at
/// p99. mimalloc keeps per-thread free lists (`warden-bench decide`, docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod approvals;
mod config_cmd;
mod control;
mod forensics;
mod incident;
mod log_cmd;
mod remote;
mod trust;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use warden_server::Config;
use warden_server::config::Overrides;

#[derive(Parser)]
#[command(name = "warden", version, about = "The behavioral trust layer for AI agents")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Warden server.
    Serve {
        /// Configuration file (TOML).
        #[arg(long, env = "WARDEN_CONFIG")]
        config: Option<PathBuf>,
        /// Data directory (store and keys); default `./warden-data`.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address to listen on; default `127.0.0.1:8080`.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Inspect and verify the log.
    #[command(subcommand)]
    Log(LogCommand),
    /// Check a configuration file without starting.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Register and manage agents (needs an operator credential).
    Agent {
        #[command(flatten)]
        connection: control::Connection,
        #[command(subcommand)]
        command: control::AgentCommand,
    },
    /// Push, inspect and roll back policy (needs an operator credential).
    Policy {
        #[command(flatten)]
        connection: control::Connection,
        #[command(subcommand)]
        command: control::PolicyCommand,
    },
    /// List, show, approve and deny actions held for a human (needs an operator credential).
    Approvals(approvals::ApprovalsArgs),
    /// Start and manage sessions (needs an operator credential).
    Session {
        #[command(flatten)]
        connection: control::Connection,
        #[command(subcommand)]
        command: control::SessionCommand,
    },
    /// Deny an agent or a resource prefix for a while, list and lift quarantines
    /// (needs an operator credential).
    Quarantine {
        #[command(flatten)]
        server: incident::Server,
        #[command(subcommand)]
        command: incident::QuarantineCommand,
    },
    /// Print an agent's or session's entries from the log, each verified against a
    /// signed checkpoint (needs an operator credential).
    Replay(incident::ReplayArgs),
    /// Show the bodies kept in forensics mode, each verified against the log's
    /// commitment and a signed checkpoint (needs an admin or auditor credential).
    Forensics(forensics::ForensicsArgs),
    /// Fetch and verify signed behavioral summaries of agents.
    #[command(subcommand)]
    Trust(trust::TrustCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate FILE as `warden serve --config FILE` would: exit 0 with a summary,
    /// or 2 naming every problem.
    Check {
        /// The configuration file (TOML).
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum LogCommand {
    /// Print the log's verifier key (signed-note format).
    Key {
        /// Data directory of the log.
        #[arg(long, default_value = "./warden-data")]
        data_dir: PathBuf,
    },
    /// Verify a log: offline from a data directory, or a running server from outside.
    Verify {
        /// Recompute and check everything stored in this data directory.
        #[arg(long, conflicts_with_all = ["url", "key"])]
        data_dir: Option<PathBuf>,
        /// Base URL of a running Warden, e.g. http://127.0.0.1:8080.
        #[arg(long, requires = "key")]
        url: Option<String>,
        /// The log's verifier key, or a file containing it.
        #[arg(long)]
        key: Option<String>,
        /// Where to remember the last verified checkpoint.
        #[arg(long)]
        state: Option<PathBuf>,
        /// How many inclusion proofs to sample.
        #[arg(long, default_value_t = 16)]
        samples: u32,
    },
    /// Verify a receipt offline.
    VerifyReceipt {
        /// The receipt file (JSON from /v1/log/receipt/{index}).
        file: PathBuf,
        /// The log's verifier key, or a file containing it.
        #[arg(long)]
        key: String,
    },
}

/// A command's failure: exit code 1 (check failed) or 2 (bad input).
#[derive(Debug)]
pub enum Failure {
    /// A check failed or the work could not be done.
    Failed(String),
    /// The input was wrong.
    BadInput(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config, data_dir, listen } => serve(config, Overrides { data_dir, listen }),
        Command::Config(ConfigCommand::Check { file }) => config_cmd::check(&file),
        Command::Log(LogCommand::Key { data_dir }) => log_cmd::key(&data_dir),
        Command::Log(LogCommand::Verify { data_dir: Some(dir), .. }) => log_cmd::verify_data_dir(&dir),
        Command::Log(LogCommand::Verify { url: Some(url), key: Some(key), state, samples, .. }) => {
            remote::verify(&url, &key, state, samples)
        }
        Command::Log(LogCommand::Verify { .. }) => {
            Err(Failure::BadInput("log verify needs --data-dir DIR, or --url URL with --key VKEY".into()))
        }
        Command::Log(LogCommand::VerifyReceipt { file, key }) => log_cmd::verify_receipt(&file, &key),
        Command::Agent { connection, command } => control::agent(&connection, command),
        Command::Session { connection, command } => control::session(&connection, command),
        Command::Policy { connection, command } => control::policy(&connection, command),
        Command::Approvals(args) => approvals::run(&args),
        Command::Quarantine { server, command } => incident::quarantine(&server, command),
        Command::Replay(args) => incident::replay(&args),
        Command::Forensics(args) => forensics::run(&args),
        Command::Trust(command) => trust::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Failed(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(1)
        }
        Err(Failure::BadInput(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
    }
}

fn serve(config_file: Option<PathBuf>, overrides: Overrides) -> Result<(), Failure> {
    let config = Config::load(config_file.as_deref(), &overrides)
        .map_err(|e| Failure::BadInput(e.problems.join("; ")))?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(warden_server::run(config)).map_err(|e| match e {
        warden_server::ServeError::Setup(m) => Failure::BadInput(m),
        other => Failure::Failed(other.to_string()),
    })
}
