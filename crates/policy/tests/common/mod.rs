//! Helpers shared by the integration tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use warden_policy::{
    AgentFacts, Decision, PolicyError, PolicySet, PolicySource, Request, RequestContext, ResourceFacts,
    SessionFacts,
};

/// The intent catalogue most tests compile against.
pub fn intents() -> Vec<String> {
    [
        "db.read:raw",
        "db.read:sanitized",
        "db.write",
        "ticket.create",
        "ticket.delete",
        "policy.update",
        "http.post",
    ]
    .iter()
    .map(|intent| (*intent).to_owned())
    .collect()
}

/// A source with the given id and text.
pub fn source(id: &str, text: &str) -> PolicySource {
    PolicySource { id: id.to_owned(), text: text.to_owned() }
}

/// Compiles `(id, text)` pairs against [`intents`], panicking with the diagnostics.
pub fn compile(policies: &[(&str, &str)]) -> PolicySet {
    try_compile(policies).unwrap_or_else(|error| panic!("{error}"))
}

/// Compiles `(id, text)` pairs against [`intents`].
pub fn try_compile(policies: &[(&str, &str)]) -> Result<PolicySet, PolicyError> {
    let sources: Vec<PolicySource> = policies.iter().map(|(id, text)| source(id, text)).collect();
    PolicySet::compile(&intents(), &sources)
}

/// The diagnostics of a set that must not compile.
pub fn diagnostics(policies: &[(&str, &str)]) -> Vec<String> {
    match try_compile(policies) {
        Err(PolicyError::Invalid { diagnostics }) => diagnostics,
        Err(other) => panic!("expected invalid policies, got {other}"),
        Ok(_) => panic!("expected invalid policies, but the set compiled"),
    }
}

/// Agent `agt_a` of `team-a` in prod, session `sess_1`, reading `orders` (internal
/// data in prod), at 2026-04-15T10:00:00Z with nothing used and ample budgets.
pub fn request(intent: &str) -> Request {
    Request {
        agent: AgentFacts {
            id: "agt_a".to_owned(),
            owner: "team-a".to_owned(),
            environment: "prod".to_owned(),
            status: "active".to_owned(),
            scopes: vec!["db".to_owned()],
        },
        session: SessionFacts { id: "sess_1".to_owned(), purpose: "triage".to_owned() },
        intent: intent.to_owned(),
        resource: ResourceFacts {
            id: "orders".to_owned(),
            plane: "data".to_owned(),
            environment: "prod".to_owned(),
            data_class: "internal".to_owned(),
        },
        context: RequestContext {
            budget_tool_calls_left: 100,
            budget_writes_left: 10,
            budget_bytes_left: 1_000_000,
            now_unix_s: 1_776_247_200,
            arguments: r#"{"query":"select 1"}"#.to_owned(),
            argument_destinations: vec!["db.internal".to_owned()],
            ..RequestContext::default()
        },
    }
}

/// Decides through the sliced path, checks the unsliced reference agrees, and
/// returns the decision.
pub fn decide(set: &PolicySet, request: &Request) -> Decision {
    let sliced = set.decide(request);
    let reference = set.decide_unsliced(request);
    assert_eq!(sliced, reference, "sliced and unsliced decisions differ for {request:?}");
    sliced
}
