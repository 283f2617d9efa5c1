//! Shared fixtures: one issuer, one resource, one instant, and a way to hand-build
//! tokens that our issuer would never produce.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer;
use warden_core::{AgentId, SessionId};
use warden_identity::{AccessClaims, TokenIssuer};

pub const ISSUER: &str = "https://warden.example";
pub const AUD: &str = "https://tickets.internal";
/// 2026-04-15T01:23:45Z.
pub const NOW: i64 = 1_776_216_225;
pub const SEED: [u8; 32] = [1; 32];

pub fn issuer() -> TokenIssuer {
    TokenIssuer::from_seed(ISSUER, SEED)
}

pub fn agent(name: &str) -> AgentId {
    AgentId::parse(name).unwrap()
}

pub fn session(name: &str) -> SessionId {
    SessionId::parse(name).unwrap()
}

/// Session-bound claims valid for five minutes from `NOW`.
pub fn claims() -> AccessClaims {
    AccessClaims {
        iss: ISSUER.to_owned(),
        sub: agent("agt_triage"),
        aud: AUD.to_owned(),
        exp: NOW + 300,
        nbf: NOW,
        iat: NOW,
        jti: "tok_one".to_owned(),
        sid: Some(session("sess_a")),
        client_id: "triage-bot".to_owned(),
        scope: "ticket.create ticket.read".to_owned(),
        purpose: Some("ticket.triage".to_owned()),
    }
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.payload` from JSON values, unsigned.
pub fn signing_input(header: &serde_json::Value, payload: &serde_json::Value) -> String {
    format!("{}.{}", b64(header.to_string().as_bytes()), b64(payload.to_string().as_bytes()))
}

/// A token with any header and payload, signed by any Ed25519 seed.
pub fn hand_signed(header: &serde_json::Value, payload: &serde_json::Value, seed: [u8; 32]) -> String {
    let input = signing_input(header, payload);
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig.to_bytes()))
}

/// The header our issuer writes.
pub fn our_header() -> serde_json::Value {
    serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": issuer().kid()})
}

pub fn claims_json() -> serde_json::Value {
    serde_json::to_value(claims()).unwrap()
}
