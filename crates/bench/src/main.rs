//! `warden-bench`: the benchmarks behind every figure in `docs/benchmarks.md`.
//!
//! - `ingest`: starts the real `warden serve` on a fresh data directory and drives
//!   `POST /v1/telemetry/submit` with batches of events from concurrent keep-alive
//!   connections; reports acknowledged (fsynced) events per second per interval,
//!   request latency, and the server's resident memory as the log grows.
//! - `proofs`: builds (or reuses) a store with N leaves and measures inclusion and
//!   consistency proof generation latency at random positions.
#![allow(clippy::print_stdout)]

mod decide;
mod ingest;
mod proofs;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "warden-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Durable ingestion throughput through the HTTP API.
    Ingest(ingest::Args),
    /// Proof generation latency on a large tree.
    Proofs(proofs::Args),
    /// The full decision path with 10,000 policies.
    Decide(decide::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ingest(args) => ingest::run(args),
        Command::Proofs(args) => proofs::run(args),
        Command::Decide(args) => decide::run(args),
    }
}

/// Resident set size of a process, in KiB, from `/proc/<pid>/status`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
