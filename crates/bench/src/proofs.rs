//! Proof generation latency on a large tree, straight through the store.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use warden_store::log::Log;
use warden_store::sqlite::SqliteStore;
use warden_store::{NewLeaf, Store};

#[derive(clap::Args)]
pub struct Args {
    /// Leaves in the tree.
    #[arg(long, default_value_t = 10_000_000)]
    leaves: u64,
    /// Proofs of each kind to time.
    #[arg(long, default_value_t = 200_000)]
    samples: u64,
    /// Store file; reused if it already has enough leaves.
    #[arg(long, default_value = "target/bench-proofs.db")]
    db: PathBuf,
    /// RNG seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

const BUILD_BATCH_LEAVES: u64 = 20_000;

pub fn run(args: Args) -> anyhow::Result<()> {
    let store = Arc::new(SqliteStore::open(&args.db).context("opening the bench store")?);
    let have = store.sequenced_size()?;
    let log = Log::open(store)?;
    if have < args.leaves {
        build(&log, have, args.leaves)?;
    }
    let size = log.head().size;
    println!("tree: {size} leaves in {}", args.db.display());
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    // Warm the page cache the way a long-running server would be.
    for _ in 0..args.samples / 10 {
        log.inclusion_proof(rng.gen_range(0..size), size)?;
    }
    let mut inclusion = Histogram::<u64>::new(3)?;
    for _ in 0..args.samples {
        let index = rng.gen_range(0..size);
        let t = Instant::now();
        let proof = log.inclusion_proof(index, size)?;
        inclusion.record(t.elapsed().as_nanos() as u64)?;
        std::hint::black_box(proof);
    }
    let mut consistency = Histogram::<u64>::new(3)?;
    for _ in 0..args.samples {
        let from = rng.gen_range(1..=size);
        let t = Instant::now();
        let proof = log.consistency_proof(from, size)?;
        consistency.record(t.elapsed().as_nanos() as u64)?;
        std::hint::black_box(proof);
    }
    println!("| proof | samples | p50 (µs) | p99 (µs) | p99.9 (µs) | max (µs) |");
    println!("|---|---|---|---|---|---|");
    for (name, h) in [("inclusion", &inclusion), ("consistency", &consistency)] {
        println!(
            "| {name} at {size} leaves | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            h.len(),
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            h.value_at_quantile(0.999) as f64 / 1000.0,
            h.max() as f64 / 1000.0
        );
    }
    log.shutdown();
    Ok(())
}

fn build(log: &Log, from: u64, to: u64) -> anyhow::Result<()> {
    println!("building the tree: {from} → {to} leaves");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let started = Instant::now();
    let mut next = from;
    while next < to {
        let end = to.min(next + BUILD_BATCH_LEAVES);
        // Small synthetic leaves: proof cost does not depend on leaf size.
        let leaves =
            (next..end).map(|i| NewLeaf::new(format!("{{\"bench\":{i}}}").into_bytes(), None)).collect();
        runtime.block_on(log.append(leaves))?;
        next = end;
    }
    while log.head().size < to {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    println!("built in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
