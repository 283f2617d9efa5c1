//! Latency of access-token verification, cached and uncached.
//!
//! ```text
//! cargo run --release -p warden-identity --example verify_bench [-- CALLS]
//! ```
//!
//! Verifies one realistic token `CALLS` times (default 100,000) against a
//! revocation list holding 10,000 revoked tokens, 1,000 ended sessions and 100
//! revoked agents, and prints p50 / p99 / max per call. "Cached" is the request
//! path for a token seen before (SHA-256 of the token, one set lookup, then issuer,
//! time, audience and the three revocation lookups); "uncached" parses and checks
//! the Ed25519 signature every time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Instant;

use warden_core::{AgentId, SessionId};
use warden_identity::{AccessClaims, RevocationList, TokenIssuer, VerifiedTokenCache};

const ISSUER: &str = "https://warden.example";
const AUD: &str = "https://tickets.internal";
const NOW: i64 = 1_776_216_225;

fn main() {
    let calls: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let issuer = TokenIssuer::from_seed(ISSUER, [1; 32]);
    let verifier = issuer.verifier();
    let claims = AccessClaims {
        iss: ISSUER.to_owned(),
        sub: AgentId::parse("agt_3f9a1c2b7d").unwrap(),
        aud: AUD.to_owned(),
        exp: NOW + 300,
        nbf: NOW,
        iat: NOW,
        jti: warden_identity::generate_token_id(),
        sid: Some(SessionId::parse("sess_8c21e0f4aa").unwrap()),
        client_id: "triage-bot".to_owned(),
        scope: "ticket.create ticket.read ticket.comment kb.read".to_owned(),
        purpose: Some("ticket.triage".to_owned()),
    };
    let token = issuer.mint(&claims).unwrap();
    let revocations = populated_revocations();
    let cache = VerifiedTokenCache::default();

    println!(
        "token: {} bytes; revocation list: {} entries; {calls} calls each",
        token.len(),
        revocations.len()
    );
    let cached = measure(calls, || {
        verifier.verify_cached(&cache, &token, AUD, NOW + 1, &revocations).unwrap();
    });
    report("verify_cached (token seen before)", &cached);
    let uncached = measure(calls, || {
        verifier.verify(&token, AUD, NOW + 1, &revocations).unwrap();
    });
    report("verify (uncached: parse + Ed25519)", &uncached);
}

fn populated_revocations() -> RevocationList {
    let mut revocations = RevocationList::new();
    for i in 0..10_000 {
        revocations.revoke_token(&format!("tok_revoked{i}"), NOW + 300).unwrap();
    }
    for i in 0..1_000 {
        revocations.end_session(&SessionId::parse(&format!("sess_ended{i}")).unwrap(), NOW).unwrap();
    }
    for i in 0..100 {
        revocations.revoke_agent(&AgentId::parse(&format!("agt_revoked{i}")).unwrap(), NOW).unwrap();
    }
    revocations
}

/// Nanoseconds per call, sorted, after a warm-up of one tenth of the calls.
fn measure(calls: usize, mut f: impl FnMut()) -> Vec<u64> {
    for _ in 0..calls / 10 {
        f();
    }
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        f();
        samples.push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    samples.sort_unstable();
    samples
}

fn report(name: &str, sorted_ns: &[u64]) {
    let at = |q: f64| sorted_ns[((sorted_ns.len() as f64 * q) as usize).min(sorted_ns.len() - 1)];
    println!(
        "{name:<38} p50 {:>8.2} µs   p99 {:>8.2} µs   max {:>9.2} µs",
        at(0.50) as f64 / 1e3,
        at(0.99) as f64 / 1e3,
        sorted_ns.last().copied().unwrap_or(0) as f64 / 1e3
    );
}
