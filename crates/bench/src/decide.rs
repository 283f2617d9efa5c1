//! The full decision path in one process, as `POST /v1/authorize` runs it minus
//! HTTP and the session lookup: cached token verification, budgets and
//! self-governance, entity construction and Cedar over 10,000 policies (sliced), and
//! the decision event canonicalized and handed to the log's writer queue.
//!
//! Agents, sessions and their tokens are built first and shared, as the server
//! holds them in memory; each request's own data (intent, resource, arguments, the
//! token string) is generated just before it is timed, as a server has just parsed
//! it. Every session's token is verified once before timing: a token pays the full
//! signature check on its first use only, and that cost is measured on its own
//! (`verify_bench` in warden-identity).
//!
//! Decisions are offered at a fixed rate (`--rate`, open loop: each starts at its
//! scheduled time, or at once when the loop is late) so the log writer, which commits
//! on the other core, runs in its steady state. Offered faster than the writer can
//! commit, the queue fills and hand-offs fail — which the server turns into a deny —
//! so every run reports how many found it full, and how many events were durable in
//! the end. `--rate 0` runs closed loop, as fast as the path goes.
//!
//! Each decision is timed whole and by stage (verify, evaluate, record) so a tail can
//! be traced to its stage. `--warmup` untimed decisions come first.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use warden_core::admin::Severity;
use warden_core::{AgentId, SessionId};
use warden_identity::{AccessClaims, RevocationList, TokenIssuer, VerifiedTokenCache};
use warden_policy::{PolicySet, Request};
use warden_server::authorize::{Action, evaluate};
use warden_store::NewLeaf;
use warden_store::directory::{
    AgentRecord, AgentStatus, Budgets, Environment, SessionRecord, SessionStatus, Usage,
};
use warden_store::log::Log;
use warden_store::sqlite::SqliteStore;

#[path = "../../policy/examples/support/fleet.rs"]
#[allow(dead_code, clippy::indexing_slicing, clippy::unwrap_used)]
mod fleet;

#[derive(clap::Args)]
pub struct Args {
    /// Decisions to time.
    #[arg(long, default_value_t = 200_000)]
    decisions: usize,
    /// Untimed decisions before the timed ones (same path, hand-off included).
    #[arg(long, default_value_t = 20_000)]
    warmup: usize,
    /// Decisions offered per second; 0 runs closed loop (as fast as possible).
    #[arg(long, default_value_t = 50_000)]
    rate: u64,
    /// RNG seed for the fleet and its requests.
    #[arg(long, default_value_t = 0x5EED)]
    seed: u64,
}

const ISSUER: &str = "http://warden.bench";

/// A session as the server holds it: its record, its agent's, and its token.
struct Session {
    token: String,
    agent: Arc<AgentRecord>,
    record: SessionRecord,
}

fn environment(name: &str) -> Environment {
    match name {
        "dev" => Environment::Dev,
        "staging" => Environment::Staging,
        _ => Environment::Prod,
    }
}

/// The agents and sessions the requests of a run come from, each session with its
/// own token.
#[derive(Default)]
struct Directory {
    agents: HashMap<String, Arc<AgentRecord>>,
    sessions: HashMap<String, Session>,
}

impl Directory {
    /// Adds the agent and session of `request` if they are new.
    fn register(&mut self, issuer: &TokenIssuer, request: &Request) -> anyhow::Result<()> {
        if self.sessions.contains_key(&request.session.id) {
            return Ok(());
        }
        let facts = &request.agent;
        let agent = self
            .agents
            .entry(facts.id.clone())
            .or_insert_with(|| {
                Arc::new(AgentRecord {
                    id: facts.id.clone(),
                    owner: facts.owner.clone(),
                    scopes: facts.scopes.clone(),
                    environment: environment(&facts.environment),
                    retention_class: "standard".into(),
                    status: AgentStatus::Active,
                    client_secret_hash: None,
                    public_jwk: None,
                    created_at: 1_776_000_000,
                })
            })
            .clone();
        let record = SessionRecord {
            id: request.session.id.clone(),
            agent_id: agent.id.clone(),
            purpose: request.session.purpose.clone(),
            budgets: Budgets {
                tool_calls_max: Some(100_000),
                writes_max: Some(10_000),
                ..Budgets::default()
            },
            status: SessionStatus::Active,
            status_reason: None,
            created_at: 1_776_000_000,
            ended_at: None,
        };
        let claims = AccessClaims {
            iss: ISSUER.into(),
            sub: AgentId::parse(&agent.id)?,
            aud: ISSUER.into(),
            exp: now() + 3_000,
            nbf: now() - 10,
            iat: now() - 10,
            jti: warden_identity::generate_token_id(),
            sid: Some(SessionId::parse(&record.id)?),
            client_id: agent.id.clone(),
            scope: "tickets".into(),
            purpose: Some(record.purpose.clone()),
        };
        let token = issuer.mint(&claims)?;
        self.sessions.insert(record.id.clone(), Session { token, agent, record });
        Ok(())
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Durations of one decision: whole, then by stage.
#[derive(Default)]
struct Timings {
    total: Vec<Duration>,
    verify: Vec<Duration>,
    evaluate: Vec<Duration>,
    record: Vec<Duration>,
}

/// The `per_mille`-th percentile of sorted samples.
fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    sorted
        .get((sorted.len() * per_mille / 1000).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// What one decision needs that a running server already holds.
struct Fixture {
    set: PolicySet,
    verifier: warden_identity::TokenVerifier,
    cache: VerifiedTokenCache,
    revocations: RevocationList,
    log: Arc<Log>,
    now_s: i64,
}

/// Result of one hand-off to the log.
type Receipt = tokio::sync::oneshot::Receiver<Result<u64, warden_store::StoreError>>;

impl Fixture {
    /// One decision, as the server makes it; returns the stage boundaries and the
    /// receipt of the decision event, or `None` if the writer queue was full.
    fn decide(
        &self,
        token: &str,
        session: &Session,
        request: &Request,
    ) -> anyhow::Result<([Instant; 3], Option<Receipt>)> {
        let started = Instant::now();
        let claims =
            self.verifier.verify_cached(&self.cache, token, ISSUER, self.now_s, &self.revocations)?;
        let verified = Instant::now();
        let context = &request.context;
        let action = Action {
            agent: &session.agent,
            session: &session.record,
            usage: Usage { tool_calls: context.tool_calls, writes: context.writes, bytes: context.bytes },
            intent: &request.intent,
            resource: &request.resource,
            arguments: &context.arguments,
            argument_destinations: &context.argument_destinations,
            bytes: 0,
            in_flight: 0,
            risk_permille: 0,
            now: self.now_s,
        };
        let evaluation = evaluate(&self.set, &action);
        let evaluated = Instant::now();
        let event = warden_server::authorize::decision_event(
            &evaluation.decision,
            evaluation.decision.tier,
            evaluation.refusal,
            Severity::Info,
            claims.sub.as_str(),
            &session.record.id,
            &request.intent,
            &request.resource.id,
            "dec_bench",
            self.now_s,
        );
        let leaf = event.to_leaf()?;
        let receipt = self.log.enqueue(vec![NewLeaf::new(leaf, None)]).ok();
        Ok(([started, verified, evaluated], receipt))
    }
}

/// The next request of the run, its session, and its token as it arrives with it.
fn next<'a>(
    rng: &mut fleet::Rng,
    permitted: &[Vec<&'static str>],
    directory: &'a Directory,
) -> anyhow::Result<(Request, &'a Session, String)> {
    let request = fleet::request(rng, permitted);
    let session = directory.sessions.get(&request.session.id).context("a session was not registered")?;
    Ok((request, session, session.token.clone()))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (intents, sources, permitted, rng) = fleet::build(args.seed);
    let started = Instant::now();
    let set = PolicySet::compile(&intents, &sources).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("compiled {} policies in {:.1?}", set.len(), started.elapsed());
    let issuer = TokenIssuer::from_seed(ISSUER, [7u8; 32]);
    let mut revocations = RevocationList::new();
    for i in 0..10_000 {
        revocations
            .revoke_token(&format!("tok_revoked{i}"), now() + 3_600)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    // A first pass over the run's requests registers their agents and sessions; the
    // run then replays the same requests from the same RNG state.
    let total = args.warmup + args.decisions;
    let mut directory = Directory::default();
    let mut registering = fleet::Rng(rng.0);
    for _ in 0..total {
        directory.register(&issuer, &fleet::request(&mut registering, &permitted))?;
    }
    println!(
        "{} agents, {} sessions with their own tokens; revocation list of 10,000 entries",
        directory.agents.len(),
        directory.sessions.len()
    );
    let dir = tempfile::tempdir()?;
    let log =
        Arc::new(Log::open(Arc::new(SqliteStore::open(&dir.path().join("bench.db")).context("store")?))?);
    let fixture = Fixture {
        set,
        verifier: issuer.verifier(),
        cache: VerifiedTokenCache::default(),
        revocations,
        log,
        now_s: now(),
    };
    for session in directory.sessions.values() {
        fixture.verifier.verify_cached(
            &fixture.cache,
            &session.token,
            ISSUER,
            fixture.now_s,
            &fixture.revocations,
        )?;
    }
    let mut rng = rng;
    let mut pending = Vec::with_capacity(total);
    let mut overloaded = 0_usize;
    for _ in 0..args.warmup {
        let (request, session, token) = next(&mut rng, &permitted, &directory)?;
        match fixture.decide(&token, session, &request)?.1 {
            Some(receipt) => pending.push(receipt),
            None => overloaded += 1,
        }
    }
    let interval = match args.rate {
        0 => Duration::ZERO,
        rate => Duration::from_secs_f64(1.0 / rate as f64),
    };
    let mut timings = Timings::default();
    for list in [&mut timings.total, &mut timings.verify, &mut timings.evaluate, &mut timings.record] {
        list.reserve(args.decisions);
    }
    let load_before = load_average();
    let (mut overloaded_timed, mut late) = (0_usize, 0_usize);
    let began = Instant::now();
    let mut due = began;
    for _ in 0..args.decisions {
        let (request, session, token) = next(&mut rng, &permitted, &directory)?;
        // Open loop: wait for this decision's slot by spinning, so the wait costs
        // no wake-up; a decision whose slot has passed starts at once.
        match Instant::now() < due {
            true => {
                while Instant::now() < due {
                    std::hint::spin_loop();
                }
            }
            false => late += usize::from(!interval.is_zero()),
        }
        due += interval;
        let ([started, verified, evaluated], receipt) = fixture.decide(&token, session, &request)?;
        let done = Instant::now();
        match receipt {
            Some(receipt) => pending.push(receipt),
            None => overloaded_timed += 1,
        }
        timings.total.push(done - started);
        timings.verify.push(verified - started);
        timings.evaluate.push(evaluated - verified);
        timings.record.push(done - evaluated);
    }
    let elapsed = began.elapsed();
    println!("load average (1 min) before the timed run: {load_before}, after: {}", load_average());
    report(&args, &mut timings, elapsed, late, overloaded_timed, overloaded + overloaded_timed);
    fixture.log.shutdown();
    let handed = pending.len();
    let durable = pending.into_iter().filter_map(|mut r| r.try_recv().ok()).filter(Result::is_ok).count();
    println!(
        "{durable} of {total} decision events durable in the log after shutdown ({handed} handed off, warm-up included)"
    );
    Ok(())
}

/// The 1-minute load average, to show other work on the machine during a run.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn report(
    args: &Args,
    timings: &mut Timings,
    elapsed: Duration,
    late: usize,
    overloaded_timed: usize,
    overloaded: usize,
) {
    let count = timings.total.len();
    let offered = match args.rate {
        0 => "closed loop".to_owned(),
        rate => format!("{rate}/s offered"),
    };
    println!(
        "{count} timed decisions ({offered}, {:.0}/s achieved, {late} started late) after {} warm-up",
        count as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE),
        args.warmup
    );
    println!("| stage | p50 (µs) | p99 (µs) | p99.9 (µs) | max (µs) |");
    println!("|---|---|---|---|---|");
    for (name, samples) in [
        ("whole decision", &mut timings.total),
        ("token verification (cached)", &mut timings.verify),
        ("evaluate (status, budgets, request, Cedar)", &mut timings.evaluate),
        ("decision event + hand-off to the log", &mut timings.record),
    ] {
        samples.sort_unstable();
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} |",
            micros(percentile(samples, 500)),
            micros(percentile(samples, 990)),
            micros(percentile(samples, 999)),
            micros(samples.last().copied().unwrap_or_default())
        );
    }
    println!("log queue full: {overloaded_timed} of {count} timed hand-offs ({overloaded} with the warm-up)");
    if overloaded > 0 {
        println!(
            "WARNING: the writer queue was full {overloaded} times: those decisions would have been denied"
        );
    }
}
