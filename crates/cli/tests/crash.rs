//! Kill -9 while writing: every acknowledged entry survives, with the same hash and
//! no gaps, and every checkpoint ever published stays consistent with the final log.
//!
//! Random choices (batch sizes, when to kill) come from one seed, printed at the start;
//! set `WARDEN_CRASH_SEED` to replay a run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::ops::{Range, RangeInclusive};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{
    Ack, Checkpoint, Client, Server, TestDir, check_first_admin_event, check_telemetry_event, event, events,
    leaf_hash_b64, path_str, verify_checkpoint, warden,
};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

/// How many times the server is killed.
const ROUNDS: u64 = 5;
/// Events per batch.
const BATCH_EVENTS: Range<u64> = 1..200;
/// How long the server runs before it is killed, in milliseconds.
const RUN_MS: RangeInclusive<u64> = 200..=1500;
/// Safety net: no writer or watcher thread runs longer than this.
const THREAD_DEADLINE: Duration = Duration::from_secs(60);
/// Pause between checkpoint polls.
const WATCH_INTERVAL: Duration = Duration::from_millis(20);
/// Threads reading the entries back at the end.
const READERS: u64 = 4;
/// Event numbers of different rounds never collide.
const EVENTS_PER_ROUND_MAX: u64 = 100_000_000;

fn crash_seed() -> u64 {
    match std::env::var("WARDEN_CRASH_SEED") {
        Ok(s) => s.trim().parse().expect("WARDEN_CRASH_SEED must be an unsigned integer"),
        Err(_) => rand::random(),
    }
}

#[test]
fn acknowledged_entries_and_checkpoints_survive_kill_9() {
    let seed = crash_seed();
    eprintln!("crash test seed: {seed} (replay with WARDEN_CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = TestDir::new();
    let mut acked = BTreeMap::new();
    let mut notes = Vec::new();
    let mut vkey: Option<String> = None;
    // Entries logged by the first start (the first admin credential), before any event.
    let mut first_start_size: Option<u64> = None;
    for round in 0..ROUNDS {
        let server = Server::start(&dir.data());
        let key = server.verifier_key();
        assert_eq!(vkey.get_or_insert_with(|| key.clone()), &key, "round {round}: the log key changed");
        if first_start_size.is_none() {
            server.check_first_start_entries();
            first_start_size = Some(server.start_size());
        }
        if let Some(&last_acked) = acked.keys().next_back() {
            assert!(server.start_size() > last_acked, "round {round}: acknowledged entries are missing");
        }
        let outcome = run_round(server, round, &mut rng);
        eprintln!(
            "round {round}: ran {} ms, {} entries acknowledged, {} checkpoints seen",
            outcome.ran_ms,
            outcome.acks.len(),
            outcome.notes.len()
        );
        record_acks(&mut acked, outcome.acks);
        notes.extend(outcome.notes);
    }
    let vkey = vkey.unwrap();
    let server = Server::start(&dir.data());
    let last = check_final_log(&server, first_start_size.unwrap(), &acked, &vkey);
    check_observed_checkpoints(&server, &notes, &last, &vkey);
    server.stop_gracefully();
    let verified = warden(&["log", "verify", "--data-dir", path_str(&dir.data())]);
    assert_eq!(verified.code(), Some(0), "the log must verify after the crashes\n{}", verified.describe());
}

struct RoundOutcome {
    ran_ms: u64,
    acks: Vec<Ack>,
    notes: Vec<String>,
}

/// Writes and watches checkpoints until a random moment, then kills the server.
fn run_round(server: Server, round: u64, rng: &mut StdRng) -> RoundOutcome {
    let stop = Arc::new(AtomicBool::new(false));
    let first_event = round * EVENTS_PER_ROUND_MAX;
    let writer =
        spawn_writer(server.client.clone(), first_event, StdRng::seed_from_u64(rng.next_u64()), &stop);
    let watcher = spawn_checkpoint_watcher(server.client.clone(), &stop);
    let ran_ms = rng.gen_range(RUN_MS);
    thread::sleep(Duration::from_millis(ran_ms));
    server.kill9();
    stop.store(true, Ordering::SeqCst);
    RoundOutcome { ran_ms, acks: writer.join().unwrap(), notes: watcher.join().unwrap() }
}

/// Sends batches of random size until the server goes away; returns what was acknowledged.
fn spawn_writer(
    client: Client,
    first_event: u64,
    mut rng: StdRng,
    stop: &Arc<AtomicBool>,
) -> JoinHandle<Vec<Ack>> {
    let stop = Arc::clone(stop);
    thread::spawn(move || {
        let deadline = Instant::now() + THREAD_DEADLINE;
        let mut acks = Vec::new();
        let mut next = first_event;
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            let n = rng.gen_range(BATCH_EVENTS);
            let batch = events(next..next + n);
            next += n;
            match client.try_submit_batch(&batch) {
                Ok(mut batch_acks) => acks.append(&mut batch_acks),
                // The server was killed mid-request: this batch was never acknowledged.
                Err(_) => break,
            }
        }
        acks
    })
}

/// Polls the checkpoint and keeps every distinct one it sees.
fn spawn_checkpoint_watcher(client: Client, stop: &Arc<AtomicBool>) -> JoinHandle<Vec<String>> {
    let stop = Arc::clone(stop);
    thread::spawn(move || {
        let deadline = Instant::now() + THREAD_DEADLINE;
        let mut notes: Vec<String> = Vec::new();
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            if let Ok(reply) = client.try_get("/v1/log/checkpoint")
                && reply.status == 200
            {
                let note = reply.text();
                if notes.last() != Some(&note) {
                    notes.push(note);
                }
            }
            thread::sleep(WATCH_INTERVAL);
        }
        notes
    })
}

fn record_acks(acked: &mut BTreeMap<u64, String>, acks: Vec<Ack>) {
    for ack in acks {
        if let Some(earlier) = acked.insert(ack.index, ack.leaf_hash.clone()) {
            panic!("index {} was acknowledged twice: {earlier} and then {}", ack.index, ack.leaf_hash);
        }
    }
}

/// Every index up to a fresh sentinel entry exists (no gaps), and every acknowledged
/// entry still has the leaf hash it was acknowledged with. The entries before
/// `first_start_size` are the first start's administrative events; every other one is
/// a telemetry event. Returns a checkpoint covering the whole log.
fn check_final_log(
    server: &Server,
    first_start_size: u64,
    acked: &BTreeMap<u64, String>,
    vkey: &str,
) -> Checkpoint {
    assert_eq!(first_start_size, 1, "the first start logs one administrative event");
    if let Some(&first_acked) = acked.keys().next() {
        assert!(
            first_acked >= first_start_size,
            "entry {first_acked} was acknowledged before the log started"
        );
    }
    let sentinel = server.submit_one(&event(ROUNDS * EVENTS_PER_ROUND_MAX));
    assert_eq!(sentinel.index, server.start_size(), "the sentinel follows the log as the server found it");
    if let Some(&last_acked) = acked.keys().next_back() {
        assert!(sentinel.index > last_acked, "new entry {} reuses an acknowledged index", sentinel.index);
    }
    let checkpoint = server.wait_for_checkpoint(sentinel.index + 1, vkey);
    assert_eq!(checkpoint.size, sentinel.index + 1, "nothing else was written");
    check_first_admin_event(&server.entry(0));
    thread::scope(|scope| {
        for worker in 0..READERS {
            let client = server.client.clone();
            scope.spawn(move || {
                let indexes = (worker..checkpoint.size).step_by(READERS as usize);
                check_entries(&client, indexes, first_start_size, acked)
            });
        }
    });
    eprintln!("final log: {} entries, {} of them acknowledged before a kill", checkpoint.size, acked.len());
    checkpoint
}

/// Each entry exists and hashes to its served leaf hash, and to its acknowledged one if
/// it has one. Those before `first_start_size` are administrative events (checked by the
/// caller); all others are telemetry events: the restarts logged nothing of their own.
fn check_entries(
    client: &Client,
    indexes: impl Iterator<Item = u64>,
    first_start_size: u64,
    acked: &BTreeMap<u64, String>,
) {
    for index in indexes {
        let entry = client.entry(index);
        let hash = leaf_hash_b64(&entry.leaf);
        assert_eq!(hash, entry.leaf_hash, "entry {index}: served leaf_hash is not the leaf's hash");
        if index >= first_start_size {
            check_telemetry_event(&entry);
        }
        if let Some(expected) = acked.get(&index) {
            assert_eq!(&hash, expected, "acknowledged entry {index} changed across crashes");
        }
    }
}

/// No two observed checkpoints of one size differ, and each is consistent with the
/// next larger one and with the final log (consistency proofs from the final server).
fn check_observed_checkpoints(client: &Client, notes: &[String], last: &Checkpoint, vkey: &str) {
    let mut by_size: BTreeMap<u64, Checkpoint> = BTreeMap::new();
    for note in notes {
        let checkpoint = verify_checkpoint(note, vkey)
            .unwrap_or_else(|e| panic!("observed checkpoint does not verify: {e}"));
        if let Some(same_size) = by_size.get(&checkpoint.size) {
            assert_eq!(same_size.root, checkpoint.root, "two checkpoints of size {} differ", checkpoint.size);
        } else {
            by_size.insert(checkpoint.size, checkpoint);
        }
    }
    assert!(!by_size.is_empty(), "no checkpoint was observed during the rounds");
    let distinct: Vec<&Checkpoint> = by_size.values().collect();
    for pair in distinct.windows(2) {
        client.check_consistent(pair[0], pair[1]);
    }
    for checkpoint in &distinct {
        client.check_consistent(checkpoint, last);
    }
    eprintln!("{} checkpoints observed, {} distinct sizes, all consistent", notes.len(), distinct.len());
}
