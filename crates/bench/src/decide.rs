//! The full decision path in one process, as `POST /v1/authorize` runs it minus
//! HTTP: cached token verification, budgets and self-governance, entity
//! construction and Cedar over 10,000 policies (sliced), and the decision event
//! canonicalized and handed to the log's writer queue.

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
    /// RNG seed for the fleet and its requests.
    #[arg(long, default_value_t = 0x5EED)]
    seed: u64,
}

const ISSUER: &str = "http://warden.bench";

struct Prepared {
    token: String,
    agent: AgentRecord,
    session: SessionRecord,
    usage: Usage,
    request: Request,
}

fn environment(name: &str) -> Environment {
    match name {
        "dev" => Environment::Dev,
        "staging" => Environment::Staging,
        _ => Environment::Prod,
    }
}

fn prepare(
    issuer: &TokenIssuer,
    request: Request,
    tokens: &mut HashMap<String, String>,
) -> anyhow::Result<Prepared> {
    let agent = AgentRecord {
        id: request.agent.id.clone(),
        owner: request.agent.owner.clone(),
        scopes: request.agent.scopes.clone(),
        environment: environment(&request.agent.environment),
        retention_class: "standard".into(),
        status: AgentStatus::Active,
        client_secret_hash: None,
        public_jwk: None,
        created_at: 1_776_000_000,
    };
    let session = SessionRecord {
        id: request.session.id.clone(),
        agent_id: agent.id.clone(),
        purpose: request.session.purpose.clone(),
        budgets: Budgets { tool_calls_max: Some(100_000), writes_max: Some(10_000), ..Budgets::default() },
        status: SessionStatus::Active,
        status_reason: None,
        created_at: 1_776_000_000,
        ended_at: None,
    };
    let token = match tokens.get(&session.id) {
        Some(t) => t.clone(),
        None => {
            let claims = AccessClaims {
                iss: ISSUER.into(),
                sub: AgentId::parse(&agent.id)?,
                aud: ISSUER.into(),
                exp: now() + 3_000,
                nbf: now() - 10,
                iat: now() - 10,
                jti: warden_identity::generate_token_id(),
                sid: Some(SessionId::parse(&session.id)?),
                client_id: agent.id.clone(),
                scope: "tickets".into(),
                purpose: Some(session.purpose.clone()),
            };
            let t = issuer.mint(&claims)?;
            tokens.insert(session.id.clone(), t.clone());
            t
        }
    };
    let c = &request.context;
    let usage = Usage { tool_calls: c.tool_calls, writes: c.writes, bytes: c.bytes };
    Ok(Prepared { token, agent, session, usage, request })
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (intents, sources, permitted, mut rng) = fleet::build(args.seed);
    let started = Instant::now();
    let set = PolicySet::compile(&intents, &sources).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("compiled {} policies in {:.1?}", set.len(), started.elapsed());
    let issuer = TokenIssuer::from_seed(ISSUER, [7u8; 32]);
    let verifier = issuer.verifier();
    let cache = VerifiedTokenCache::default();
    let mut revocations = RevocationList::new();
    for i in 0..10_000 {
        revocations
            .revoke_token(&format!("tok_revoked{i}"), now() + 3_600)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let mut tokens = HashMap::new();
    let prepared: Vec<Prepared> = (0..args.decisions)
        .map(|_| prepare(&issuer, fleet::request(&mut rng, &permitted), &mut tokens))
        .collect::<anyhow::Result<_>>()?;
    println!("{} sessions with tokens; revocation list of 10,000 entries", tokens.len());
    let dir = tempfile::tempdir()?;
    let log =
        Arc::new(Log::open(Arc::new(SqliteStore::open(&dir.path().join("bench.db")).context("store")?))?);
    // Warm the token cache as a running server would be.
    for p in prepared.iter().take(tokens.len().max(1)) {
        verifier.verify_cached(&cache, &p.token, ISSUER, now(), &revocations)?;
    }
    let mut samples = Vec::with_capacity(prepared.len());
    let mut pending = Vec::with_capacity(prepared.len());
    let mut overloaded = 0usize;
    let now_s = now();
    for p in &prepared {
        let t = Instant::now();
        let claims = verifier.verify_cached(&cache, &p.token, ISSUER, now_s, &revocations)?;
        let action = Action {
            agent: &p.agent,
            session: &p.session,
            usage: p.usage,
            intent: &p.request.intent,
            resource: &p.request.resource,
            arguments: &p.request.context.arguments,
            argument_destinations: &p.request.context.argument_destinations,
            bytes: 0,
            in_flight: 0,
            risk_permille: 0,
            now: now_s,
        };
        let evaluation = evaluate(&set, &action);
        let event = warden_server::authorize::decision_event(
            &evaluation.decision,
            evaluation.decision.tier,
            evaluation.refusal,
            Severity::Info,
            claims.sub.as_str(),
            &p.session.id,
            &p.request.intent,
            &p.request.resource.id,
            "dec_bench",
            now_s,
        );
        let leaf = event.to_leaf()?;
        match log.enqueue(vec![NewLeaf::new(leaf, None)]) {
            Ok(receipt) => pending.push(receipt),
            Err(_) => overloaded += 1,
        }
        samples.push(t.elapsed());
    }
    samples.sort_unstable();
    let pct = |q: usize| {
        samples
            .get((samples.len() * q / 1000).min(samples.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!("| decisions | p50 (µs) | p99 (µs) | p99.9 (µs) | log queue full |");
    println!("|---|---|---|---|---|");
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "| {} | {:.1} | {:.1} | {:.1} | {overloaded} |",
        samples.len(),
        us(pct(500)),
        us(pct(990)),
        us(pct(999))
    );
    log.shutdown();
    let durable = pending.into_iter().filter_map(|mut r| r.try_recv().ok()).filter(Result::is_ok).count();
    println!("{durable} decision events durable in the log after shutdown");
    Ok(())
}
