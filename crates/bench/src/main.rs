//! `warden-bench`: the benchmarks behind every figure in `docs/benchmarks.md`.
//!
//! - `ingest`: starts the real `warden serve` on a fresh data directory and drives
//!   `POST /v1/telemetry/submit` with batches of events from concurrent keep-alive
//!   connections; reports acknowledged (fsynced) events per second per interval,
//!   request latency, and the server's resident memory as the log grows.
//! - `gateway`: a trivial upstream called directly and through the real `warden
//!   serve` HTTP proxy: closed-loop throughput and open-loop latency, same run.
//! - `proofs`: builds (or reuses) a store with N leaves and measures inclusion and
//!   consistency proof generation latency at random positions.
//! - `behavior`: the behavior engine with 100,000 agents: `observe` latency,
//!   memory per agent, and throughput on one thread and on several.
//! - `eval`: labelled benign and attack trajectories replayed through the behavior
//!   engine: detection and false-positive rates per detector.
#![allow(clippy::print_stdout)]

/// The allocator the `warden` binary uses (see `crates/cli/src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod behavior;
mod decide;
mod eval;
mod gateway;
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
    /// The gateway's overhead: throughput and latency direct vs through Warden.
    Gateway(gateway::Args),
    /// The bare proxy `gateway` measures as its ceiling (started by it).
    #[command(hide = true)]
    BareProxy(gateway::BareProxyArgs),
    /// The full decision path with 10,000 policies.
    Decide(decide::Args),
    /// The behavior engine with 100,000 agents: observe latency, memory per agent, throughput.
    Behavior(behavior::Args),
    /// Labelled evaluation of the behavior engine: detection and false-positive rates.
    Eval(eval::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ingest(args) => ingest::run(args),
        Command::Proofs(args) => proofs::run(args),
        Command::Gateway(args) => gateway::run(args),
        Command::BareProxy(args) => gateway::bare_proxy(args),
        Command::Decide(args) => decide::run(args),
        Command::Behavior(args) => behavior::run(args),
        Command::Eval(args) => eval::run(args),
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
