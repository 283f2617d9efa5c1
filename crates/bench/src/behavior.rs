//! The behavior engine at fleet scale: 100,000 agents taken through their learning
//! period with synthetic traffic, then per-event `observe` latency and memory per
//! agent (process RSS growth, and the engine's own heap accounting).
//!
//! The fleet: 40 roles (support, billing, CI, data pipeline…), each a set of about
//! eight intents from the product's catalogue, a dozen team resources and a handful
//! of destinations drawn from a pool of 5,000 domains (skewed, so some are shared by
//! thousands of agents and most by few). Each agent adds its own resources and
//! destinations, works a shift of its own, and calls its intents in a role-specific
//! order with noise. Agents are interleaved round-robin, as a gateway sees them.

use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;
use warden_behavior::{Config, Engine, Observation};
use warden_core::SystemClock;

/// The session risk at which `eval` counts a case as flagged.
const FLAG_SESSION_RISK: f32 = 0.6;

#[derive(clap::Args)]
pub struct Args {
    /// Agents in the fleet.
    #[arg(long, default_value_t = 100_000)]
    agents: usize,
    /// Events per agent in its learning period (the engine's `learning_events_min`).
    #[arg(long, default_value_t = 200)]
    learning_events: u32,
    /// Events to time after learning.
    #[arg(long, default_value_t = 300_000)]
    events: usize,
    /// RNG seed for the fleet and its traffic.
    #[arg(long, default_value_t = 0x5EED)]
    seed: u64,
    /// Threads for the throughput phase (default: the machine's cores); each agent's
    /// events stay on one thread, in order, as one agent's calls arrive in order.
    #[arg(long)]
    threads: Option<usize>,
    /// Events in each throughput run (one thread, then `--threads`).
    #[arg(long, default_value_t = 500_000)]
    throughput_events: usize,
}

const ROLES: usize = 40;
const DOMAINS: usize = 5_000;
const INTENTS: [&str; 40] = [
    "ticket.create",
    "ticket.read",
    "ticket.update",
    "ticket.delete",
    "ticket.comment",
    "db.read:sanitized",
    "db.read:raw",
    "db.write",
    "db.schema:migrate",
    "db.admin:grant",
    "payment.create",
    "payment.refund",
    "payment.read",
    "git.read",
    "git.push",
    "git.merge",
    "git.branch:delete",
    "deploy.staging",
    "deploy.prod",
    "deploy.rollback",
    "policy.read",
    "crm.read",
    "crm.update",
    "secrets.read",
    "email.send",
    "slack.post",
    "http.get",
    "http.post",
    "file.read",
    "file.write",
    "file.delete",
    "search.web",
    "k8s.scale",
    "k8s.exec",
    "k8s.logs:read",
    "calendar.read",
    "calendar.write",
    "budget.read",
    "docs.read",
    "docs.write",
];
const CLASSES: [&str; 6] = [
    "dev/data/internal",
    "staging/data/internal",
    "prod/data/internal",
    "prod/data/confidential",
    "prod/control/internal",
    "prod/data/restricted",
];

/// SplitMix64: small, fast and replayable from the printed seed.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 >= 1.0 - p
    }

    /// Skewed towards 0: a few items are common, most are rare.
    pub(crate) fn skewed(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((u * u * u) * n as f64) as usize % n.max(1)
    }
}

/// What an agent does, compactly: its role's vocabulary plus a few of its own.
struct Role {
    intents: Vec<usize>,
    resources: Vec<String>,
    destinations: Vec<usize>,
    class: usize,
}

struct Agent {
    role: usize,
    own_resources: [u32; 2],
    own_destinations: [u32; 2],
    shift_start_h: u8,
    position: u8,
    at_ms: i64,
}

fn roles(rng: &mut Rng) -> Vec<Role> {
    (0..ROLES)
        .map(|r| {
            let mut intents: Vec<usize> = (0..8).map(|_| rng.below(INTENTS.len())).collect();
            intents.sort_unstable();
            intents.dedup();
            Role {
                intents,
                resources: (0..12).map(|i| format!("team{r}:res{i}")).collect(),
                destinations: (0..5).map(|_| rng.skewed(DOMAINS)).collect(),
                class: rng.below(CLASSES.len()),
            }
        })
        .collect()
}

/// The owned strings of one event, built before timing.
struct Event {
    agent: String,
    session: String,
    at_ms: i64,
    intent: &'static str,
    resource: String,
    class: &'static str,
    destinations: Vec<String>,
}

impl Event {
    fn observation(&self) -> Observation<'_> {
        Observation {
            agent: &self.agent,
            session: &self.session,
            at_unix_ms: self.at_ms,
            intent: self.intent,
            resource: &self.resource,
            resource_class: self.class,
            destinations: &self.destinations,
            self_governance: false,
        }
    }
}

/// The next event of agent `index`: its role's intents in a rotating order with
/// some noise, mostly its team's resources, sometimes its own; rarely (0.5 %)
/// something new, as real agents do.
fn next_event(rng: &mut Rng, roles: &[Role], agents: &mut [Agent], index: usize) -> Option<Event> {
    let agent = agents.get_mut(index)?;
    let role = roles.get(agent.role)?;
    let step = if rng.chance(0.2) { 2 } else { 1 };
    agent.position = ((agent.position as usize + step) % role.intents.len().max(1)) as u8;
    let intent_index = *role.intents.get(agent.position as usize)?;
    let mut intent = *INTENTS.get(intent_index)?;
    let mut resource = if rng.chance(0.2) {
        format!("agent{index}:res{}", agent.own_resources.get(rng.below(2))?)
    } else {
        role.resources.get(rng.skewed(role.resources.len()))?.clone()
    };
    let mut destinations = Vec::new();
    if intent_index % 3 == 0 {
        let domain = if rng.chance(0.3) {
            *agent.own_destinations.get(rng.below(2))? as usize
        } else {
            *role.destinations.get(rng.below(role.destinations.len()))?
        };
        destinations.push(format!("host:d{domain}.example"));
    }
    if rng.chance(0.005) {
        intent = INTENTS.get(rng.below(INTENTS.len()))?;
        resource = format!("novel:{}", rng.below(1_000));
        destinations = vec![format!("host:d{}.example", rng.below(DOMAINS * 4))];
    }
    // Calls 5–60 s apart within the agent's 10-hour shift, then the next day.
    agent.at_ms += 5_000 + rng.below(55_000) as i64;
    let day_ms = agent.at_ms.rem_euclid(86_400_000);
    let shift_end = (i64::from(agent.shift_start_h) + 10) * 3_600_000;
    if day_ms > shift_end {
        agent.at_ms += 86_400_000 - (shift_end - i64::from(agent.shift_start_h) * 3_600_000);
    }
    let day = agent.at_ms / 86_400_000;
    Some(Event {
        agent: format!("agt_{index:08x}"),
        session: format!("sess_{index:08x}_{day}"),
        at_ms: agent.at_ms,
        intent,
        resource,
        class: CLASSES.get(role.class)?,
        destinations,
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut rng = Rng(args.seed);
    let roles = roles(&mut rng);
    let start_ms = 1_776_038_400_000i64;
    let mut agents: Vec<Agent> = (0..args.agents)
        .map(|_| {
            let shift_start_h = rng.below(14) as u8;
            Agent {
                role: rng.below(ROLES),
                own_resources: [rng.below(1_000) as u32, rng.below(1_000) as u32],
                own_destinations: [rng.skewed(DOMAINS) as u32, rng.below(DOMAINS) as u32],
                shift_start_h,
                position: rng.below(8) as u8,
                at_ms: start_ms + i64::from(shift_start_h) * 3_600_000,
            }
        })
        .collect();
    // Each agent keeps its own synthetic clock, so fleet-wide time is not monotonic
    // here and minute windows would see every agent at once: the surge breaker is
    // kept out of the way (its cost, a per-session class check, is still paid).
    // Fleet surge is measured by `warden-bench eval` and the crate's tests.
    let config = Config {
        learning_events_min: args.learning_events,
        learning_ms_min: 0,
        surge_arrivals_min: u32::MAX,
        ..Config::default()
    };
    let rss_before = crate::rss_kib(std::process::id()).unwrap_or(0);
    let engine = Engine::new(config, Arc::new(SystemClock)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    let mut learned = 0u64;
    for _round in 0..args.learning_events {
        for index in 0..args.agents {
            if let Some(event) = next_event(&mut rng, &roles, &mut agents, index) {
                engine.observe(&event.observation());
                learned += 1;
            }
        }
    }
    let load = started.elapsed();
    let enforced = (0..args.agents)
        .filter(|i| engine.baseline(&format!("agt_{i:08x}")).is_some_and(|b| b.enforced))
        .count();
    println!(
        "learning: {learned} events for {} agents in {:.1?} ({:.0} events/s single-threaded); {enforced} agents enforced",
        args.agents,
        load,
        learned as f64 / load.as_secs_f64()
    );
    let rss_after = crate::rss_kib(std::process::id()).unwrap_or(0);
    let heap = engine.heap_bytes();

    let events: Vec<Event> = (0..args.events)
        .filter_map(|_| {
            let index = rng.below(args.agents);
            next_event(&mut rng, &roles, &mut agents, index)
        })
        .collect();
    let mut observe = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut risk = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut findings = 0usize;
    let mut kinds: std::collections::BTreeMap<&'static str, usize> = std::collections::BTreeMap::new();
    // Per finding kind, how many scored at least 0.3 (enough to matter in a session's
    // risk); and how many events left their session at the eval's flag threshold.
    let mut strong: std::collections::BTreeMap<&'static str, usize> = std::collections::BTreeMap::new();
    let mut flagged = 0usize;
    for event in &events {
        let observation = event.observation();
        let t = Instant::now();
        let outcome = engine.observe(&observation);
        observe.record(t.elapsed().as_nanos().max(1) as u64)?;
        findings += outcome.findings.len();
        for f in &outcome.findings {
            *kinds.entry(f.kind.name()).or_default() += 1;
            if f.score >= 0.3 {
                *strong.entry(f.kind.name()).or_default() += 1;
            }
        }
        flagged += usize::from(outcome.session_risk >= FLAG_SESSION_RISK);
        let t = Instant::now();
        let (s, a) = engine.risk(&event.agent, &event.session);
        risk.record(t.elapsed().as_nanos().max(1) as u64)?;
        std::hint::black_box((s, a));
    }
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1_000.0;
    let fleet = args.agents.max(1) as f64;
    println!();
    println!(
        "| agents | learning events/agent | events timed | observe p50 (µs) | observe p99 (µs) | observe p99.9 (µs) | risk() p50 (µs) | findings/event | RSS growth/agent (B) | engine heap/agent (B) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.4} | {:.0} | {:.0} |",
        args.agents,
        args.learning_events,
        observe.len(),
        us(&observe, 0.5),
        us(&observe, 0.99),
        us(&observe, 0.999),
        us(&risk, 0.5),
        findings as f64 / observe.len().max(1) as f64,
        rss_after.saturating_sub(rss_before) as f64 * 1024.0 / fleet,
        heap as f64 / fleet,
    );
    println!("\nfindings while timing, by kind: {kinds:?}");
    println!("of them scoring at least 0.3: {strong:?}");
    println!(
        "events that left their session's risk at {FLAG_SESSION_RISK} or more: {flagged} of {} ({:.2} %)",
        observe.len(),
        flagged as f64 * 100.0 / observe.len().max(1) as f64
    );

    // Throughput: fresh steady-state events, once on one thread and once spread over
    // `threads` (each agent on one of them), timed wall-clock.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = args.threads.unwrap_or(cores).max(1);
    let mut rates = Vec::new();
    for lanes_count in [1, threads] {
        let mut lanes: Vec<Vec<Event>> = (0..lanes_count).map(|_| Vec::new()).collect();
        for _ in 0..args.throughput_events {
            let index = rng.below(args.agents);
            if let (Some(event), Some(lane)) =
                (next_event(&mut rng, &roles, &mut agents, index), lanes.get_mut(index % lanes_count))
            {
                lane.push(event);
            }
        }
        let total: usize = lanes.iter().map(Vec::len).sum();
        let t = Instant::now();
        std::thread::scope(|scope| {
            for lane in &lanes {
                let engine = &engine;
                scope.spawn(move || {
                    for event in lane {
                        std::hint::black_box(engine.observe(&event.observation()));
                    }
                });
            }
        });
        rates.push((lanes_count, total as f64 / t.elapsed().as_secs_f64()));
    }
    let one = rates.first().map_or(1.0, |r| r.1);
    print!("\nthroughput (observe, {} events per run, {cores} cores):", args.throughput_events);
    for (n, rate) in &rates {
        print!(" {n} thread{}: {rate:.0} events/s ({:.2}x);", if *n == 1 { "" } else { "s" }, rate / one);
    }
    println!();
    Ok(())
}
