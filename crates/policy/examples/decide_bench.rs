//! Decision-path benchmark: 10,000 generated policies, 200,000 random requests.
//!
//! ```text
//! cargo run --release -p warden-policy --example decide_bench [-- <seed>]
//! ```
//!
//! The policy mix models a large fleet of 2,000 agents in 50 teams: per-agent permits
//! (8,000), resource-scoped rules on 300 resources (1,500), team-level forbids
//! (`principal in Warden::Owner::"team-…"`, 450) and global tier policies with context
//! conditions — risk, budgets, hours, self-governance — that every request of their
//! actions evaluates (50, one in shadow mode). Requests come from random agents,
//! sessions and resources; four in five ask for an intent the agent is permitted by
//! name, and one in ten carries a non-zero risk score. Each `decide` is timed alone
//! with `Instant`; the samples are sorted for the percentiles. The seed is printed
//! and can be passed back to replay a run. The last line checks a sample of
//! decisions against the unsliced reference and shows what plain Cedar costs here.

// A benchmark, not a server: a broken setup should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use warden_policy::{PolicySet, Request};

#[path = "support/fleet.rs"]
#[allow(dead_code)]
mod fleet;

use fleet::{REQUESTS, WARMUP_REQUESTS, request};

fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    sorted[(sorted.len() * per_mille / 1000).min(sorted.len() - 1)]
}

fn main() {
    let seed = std::env::args().nth(1).and_then(|arg| arg.parse().ok()).unwrap_or(0x5EED_u64);
    println!("seed {seed}");
    let (intents, sources, permitted, mut rng) = fleet::build(seed);

    let started = Instant::now();
    let set = PolicySet::compile(&intents, &sources).unwrap_or_else(|error| panic!("{error}"));
    println!(
        "compiled {} policies in {:.2?} (parse, strict validation, slicing); {} left to Cedar's evaluator",
        set.len(),
        started.elapsed(),
        set.cedar_evaluated_len()
    );

    let requests: Vec<Request> = (0..REQUESTS).map(|_| request(&mut rng, &permitted)).collect();
    for request in requests.iter().take(WARMUP_REQUESTS) {
        std::hint::black_box(set.decide(request));
    }
    let mut samples = Vec::with_capacity(REQUESTS);
    let mut tiers = [0_usize; 4];
    for request in &requests {
        let started = Instant::now();
        let decision = set.decide(std::hint::black_box(request));
        samples.push(started.elapsed());
        tiers[decision.tier as usize] += 1;
    }
    samples.sort_unstable();
    let [allow, confirm, approve, deny] = tiers;
    println!("{REQUESTS} decisions: allow {allow}, confirm {confirm}, approve {approve}, deny {deny}");
    println!(
        "decide: p50 {:.2?}  p99 {:.2?}  p99.9 {:.2?}  max {:.2?}",
        percentile(&samples, 500),
        percentile(&samples, 990),
        percentile(&samples, 999),
        samples[samples.len() - 1],
    );

    let evaluated: usize = requests.iter().map(|request| set.slice_len(request)).sum();
    let evaluated_max = requests.iter().map(|request| set.slice_len(request)).max().unwrap_or(0);
    println!(
        "policies evaluated per decision: mean {:.1}, max {evaluated_max}",
        evaluated as f64 / REQUESTS as f64
    );

    let unsliced = 200;
    let started = Instant::now();
    for request in requests.iter().take(unsliced) {
        let sliced = set.decide(request);
        let plain = set.decide_unsliced(request);
        assert_eq!(sliced, plain, "slicing changed a decision for {request:?}");
    }
    println!(
        "unsliced reference (every policy evaluated): {:.2?} per decision, same decisions on {unsliced} requests",
        started.elapsed() / unsliced as u32
    );
}
