//! Slicing never changes a decision: over generated policy sets and random requests,
//! the sliced path and the unsliced reference (Cedar's public API over the whole set)
//! agree. A failing case is printed with its seed, which proptest also saves beside
//! this file (`slicing.regressions`) and replays first on every later run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{compile, intents, request, source};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use warden_policy::{PolicyError, PolicySet, PolicySource, Request, Tier};

const OWNERS: [&str; 2] = ["team-a", "team-b"];
/// `(agent, owner)`.
const AGENTS: [(&str, &str); 3] = [("agt_a", "team-a"), ("agt_b", "team-a"), ("agt_c", "team-b")];
const SESSIONS: [&str; 4] = ["sess_1", "sess_2", "sess_3", "sess_4"];
const RESOURCES: [&str; 3] = ["orders", "payments", "wiki"];
/// Catalogue intents, their groups, and one unknown intent.
const REQUEST_INTENTS: [&str; 13] = [
    "db",
    "db.read",
    "db.read:raw",
    "db.read:sanitized",
    "db.write",
    "ticket",
    "ticket.create",
    "ticket.delete",
    "policy.update",
    "http.post",
    "http",
    "policy",
    "db.drop",
];
const ACTIONS: [&str; 12] = [
    "db",
    "db.read",
    "db.read:raw",
    "db.read:sanitized",
    "db.write",
    "ticket",
    "ticket.create",
    "ticket.delete",
    "policy",
    "policy.update",
    "http",
    "http.post",
];
/// Conditions, including two that fail at runtime (overflow, a missing entity).
/// (Constant conditions are left out: `unless { true }` is refused as impossible.)
const CONDITIONS: [&str; 13] = [
    r#"principal.purpose == "triage""#,
    "context.risk_permille > 700",
    "context.writes >= 2",
    "context.hour_utc < 12",
    "context.self_governance",
    r#"resource.environment == "prod""#,
    r#"resource.data_class == "restricted" || resource.plane == "control""#,
    r#"principal.agent.owner == "team-a" && principal.agent.scopes.contains("db")"#,
    r#"context.argument_destinations.contains("evil.example")"#,
    r#"principal in Warden::Agent::"agt_b""#,
    r#"context.self_governance == (action in Warden::Action::"db.read")"#,
    "context.bytes + 9223372036854775807 < 0",
    r#"Warden::Agent::"agt_ghost".status == "active""#,
];

fn action(index: usize) -> String {
    format!(r#"Warden::Action::"{}""#, ACTIONS[index % ACTIONS.len()])
}

fn principal_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("principal".to_owned()),
        Just("principal is Warden::Session".to_owned()),
        (0..OWNERS.len()).prop_map(|i| format!(r#"principal in Warden::Owner::"{}""#, OWNERS[i])),
        (0..AGENTS.len()).prop_map(|i| format!(r#"principal in Warden::Agent::"{}""#, AGENTS[i].0)),
        (0..AGENTS.len())
            .prop_map(|i| format!(r#"principal is Warden::Session in Warden::Agent::"{}""#, AGENTS[i].0)),
        (0..SESSIONS.len()).prop_map(|i| format!(r#"principal == Warden::Session::"{}""#, SESSIONS[i])),
    ]
}

fn action_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("action".to_owned()),
        any::<usize>().prop_map(|i| format!("action == {}", action(i))),
        any::<usize>().prop_map(|i| format!("action in {}", action(i))),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| format!(
            "action in [{}, {}]",
            action(i),
            action(j)
        )),
    ]
}

fn resource_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("resource".to_owned()),
        Just("resource is Warden::Resource".to_owned()),
        (0..RESOURCES.len()).prop_map(|i| format!(r#"resource == Warden::Resource::"{}""#, RESOURCES[i])),
        (0..RESOURCES.len()).prop_map(|i| format!(r#"resource in Warden::Resource::"{}""#, RESOURCES[i])),
    ]
}

fn policy() -> impl Strategy<Value = String> {
    let annotations = prop_oneof![
        4 => Just(""),
        1 => Just(r#"@decision("confirm") "#),
        1 => Just(r#"@decision("approve") "#),
        1 => Just(r#"@shadow("true") "#),
        1 => Just(r#"@shadow("true") @decision("approve") "#),
    ];
    let clause = prop_oneof![
        2 => Just(String::new()),
        3 => (0..CONDITIONS.len()).prop_map(|i| format!(" when {{ {} }}", CONDITIONS[i])),
        1 => (0..CONDITIONS.len()).prop_map(|i| format!(" unless {{ {} }}", CONDITIONS[i])),
    ];
    (annotations, prop::bool::weighted(0.6), principal_scope(), action_scope(), resource_scope(), clause)
        .prop_map(|(annotations, permit, principal, action, resource, clause)| {
            let effect = if permit { "permit" } else { "forbid" };
            format!("{annotations}{effect} ({principal}, {action}, {resource}){clause};")
        })
}

fn policy_set() -> impl Strategy<Value = Vec<PolicySource>> {
    prop::collection::vec(policy(), 0..40).prop_map(|texts| {
        texts.iter().enumerate().map(|(i, text)| source(&format!("p{i:02}"), text)).collect()
    })
}

fn requests() -> impl Strategy<Value = Vec<Request>> {
    let one = (
        0..AGENTS.len(),
        0..SESSIONS.len(),
        0..RESOURCES.len(),
        0..REQUEST_INTENTS.len(),
        (0_u16..=1000, 0_u64..4, 0_u64..3, 0_i64..86_400, any::<bool>(), any::<bool>()),
        (0_usize..3, 0_usize..3, 0_usize..4),
        (any::<bool>(), 0_usize..3, 0_usize..3, 0_u64..3, 0_u64..3, any::<bool>()),
    )
        .prop_map(|(agent, session, resource, intent, numbers, classes, more)| {
            let (risk, writes, bytes, seconds, self_governance, evil) = numbers;
            let (environment, plane, data_class) = classes;
            let (other_purpose, scopes, agent_environment, tool_calls, in_flight, suspended) = more;
            let mut request = request(REQUEST_INTENTS[intent]);
            (request.agent.id, request.agent.owner) =
                (AGENTS[agent].0.to_owned(), AGENTS[agent].1.to_owned());
            request.agent.environment = ["dev", "staging", "prod"][agent_environment].to_owned();
            request.agent.scopes = [&[][..], &["db"][..], &["db", "tickets"][..]][scopes]
                .iter()
                .map(|scope| (*scope).to_owned())
                .collect();
            if suspended {
                request.agent.status = "suspended".to_owned();
            }
            request.session.id = SESSIONS[session].to_owned();
            if other_purpose {
                request.session.purpose = "billing".to_owned();
            }
            request.resource.id = RESOURCES[resource].to_owned();
            request.resource.environment = ["dev", "staging", "prod"][environment].to_owned();
            request.resource.plane = ["data", "control", "maintenance"][plane].to_owned();
            request.resource.data_class =
                ["public", "internal", "confidential", "restricted"][data_class].to_owned();
            let context = &mut request.context;
            context.risk_permille = risk;
            context.writes = writes;
            context.bytes = bytes;
            context.tool_calls = tool_calls;
            context.in_flight = in_flight;
            context.now_unix_s = 1_776_211_200 + seconds;
            context.self_governance = self_governance;
            if evil {
                context.argument_destinations.push("evil.example".to_owned());
            }
            if bytes == 0 {
                context.argument_destinations.clear();
            }
            request
        });
    prop::collection::vec(one, 1..30)
}

/// Conditions for generated expressions: Warden evaluates most of them itself
/// (`native.rs`); the last six are left to Cedar, and two of those fail at runtime.
const ATOMS: [&str; 42] = [
    "context.self_governance",
    "context.risk_permille > 700",
    "context.writes >= 2",
    "context.hour_utc < 12",
    "context.tool_calls == context.writes",
    "context.budget_writes_left <= context.writes",
    "context.in_flight > 0",
    "context.bytes > 1",
    r#"principal.purpose == "triage""#,
    r#"principal.agent.owner == "team-a""#,
    "resource.environment == principal.agent.environment",
    r#"resource.data_class == "restricted""#,
    r#"principal.agent.status == "active""#,
    r#"resource.plane != "control""#,
    r#"principal in Warden::Agent::"agt_b""#,
    r#"principal in Warden::Owner::"team-b""#,
    r#"principal.agent in Warden::Owner::"team-a""#,
    r#"principal == Warden::Session::"sess_2""#,
    r#"principal.agent == Warden::Agent::"agt_c""#,
    r#"Warden::Session::"sess_1" in Warden::Agent::"agt_a""#,
    r#"Warden::Agent::"agt_b" in Warden::Owner::"team-a""#,
    r#"resource in [Warden::Resource::"orders", Warden::Resource::"wiki"]"#,
    r#"action in Warden::Action::"db.read""#,
    r#"action == Warden::Action::"ticket.create""#,
    r#"action in [Warden::Action::"ticket", Warden::Action::"http"]"#,
    r#"Warden::Action::"db.read:raw" in Warden::Action::"db""#,
    r#"context.arguments like "*select*""#,
    r#"principal.purpose like "tri*""#,
    r#"principal.agent.scopes.contains("db")"#,
    r#"context.argument_destinations.containsAny(["evil.example", "db.internal"])"#,
    r#"principal.agent.scopes.containsAll(["db", "tickets"])"#,
    "context.argument_destinations.isEmpty()",
    "context has writes",
    "principal.agent has owner",
    "principal has agent && resource has data_class",
    "context has arguments && !(principal has scopes)",
    "context.bytes + 9223372036854775807 < 0",
    r#"Warden::Agent::"agt_ghost".status == "active""#,
    r#"Warden::Agent::"agt_a".status == "active""#,
    "context.writes * 2 < 3",
    r#"context.argument_destinations == ["db.internal"]"#,
    r#"ip("10.0.0.1").isLoopback() || context.writes < 1"#,
];

/// A boolean expression built from [`ATOMS`] with `!`, `&&`, `||`, `==` and
/// `if … then … else`.
fn expression() -> impl Strategy<Value = String> {
    let atom = (0..ATOMS.len()).prop_map(|i| ATOMS[i].to_owned());
    atom.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| format!("!({e})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} == {b})")),
            (inner.clone(), inner.clone(), inner).prop_map(|(a, b, c)| format!("(if {a} then {b} else {c})")),
        ]
    })
}

fn expression_policy() -> impl Strategy<Value = String> {
    let annotations = prop_oneof![
        4 => Just(""),
        1 => Just(r#"@decision("approve") "#),
        1 => Just(r#"@shadow("true") "#),
    ];
    let clause = prop_oneof![
        3 => expression().prop_map(|e| format!(" when {{ {e} }}")),
        1 => expression().prop_map(|e| format!(" unless {{ {e} }}")),
    ];
    (annotations, prop::bool::weighted(0.6), principal_scope(), action_scope(), resource_scope(), clause)
        .prop_map(|(annotations, permit, principal, action, resource, clause)| {
            let effect = if permit { "permit" } else { "forbid" };
            format!("{annotations}{effect} ({principal}, {action}, {resource}){clause};")
        })
}

/// Compiles `texts`, leaving out the policies strict validation refuses (a generated
/// expression can be ill-typed or make its policy impossible).
fn compile_valid(texts: &[String]) -> (PolicySet, usize) {
    let mut sources: Vec<PolicySource> =
        texts.iter().enumerate().map(|(i, text)| source(&format!("p{i:02}"), text)).collect();
    loop {
        match PolicySet::compile(&intents(), &sources) {
            Ok(set) => return (set, sources.len()),
            Err(PolicyError::Invalid { diagnostics }) => {
                let before = sources.len();
                sources.retain(|source| {
                    let named = format!("policy `{}`", source.id);
                    !diagnostics.iter().any(|diagnostic| diagnostic.contains(&named))
                });
                assert!(sources.len() < before, "diagnostics name no policy: {diagnostics:?}");
            }
            Err(other) => panic!("{other}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn slicing_gives_the_same_decisions_as_the_whole_set(sources in policy_set(), requests in requests()) {
        let set = PolicySet::compile(&intents(), &sources).unwrap_or_else(|error| panic!("{error}"));
        for request in &requests {
            let sliced = set.decide(request);
            let whole = set.decide_unsliced(request);
            prop_assert_eq!(&sliced, &whole, "request {:?}", request);
            prop_assert!(set.slice_len(request) <= set.len());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    /// Generated conditions, most in the subset Warden evaluates natively and some
    /// left to Cedar, decide exactly as Cedar's public API does.
    #[test]
    fn generated_conditions_decide_as_cedar_does(
        texts in prop::collection::vec(expression_policy(), 1..25),
        requests in requests(),
    ) {
        let (set, kept) = compile_valid(&texts);
        prop_assume!(kept * 2 >= texts.len(), "most generated policies must validate");
        for request in &requests {
            let sliced = set.decide(request);
            let whole = set.decide_unsliced(request);
            prop_assert_eq!(&sliced, &whole, "request {:?}", request);
        }
    }
}

#[test]
fn a_slice_holds_only_what_can_apply() {
    let set = compile(&[
        ("global", "permit (principal, action, resource);"),
        (
            "mine",
            r#"permit (principal in Warden::Agent::"agt_a", action == Warden::Action::"db.write", resource);"#,
        ),
        (
            "theirs",
            r#"permit (principal in Warden::Agent::"agt_z", action == Warden::Action::"db.write", resource);"#,
        ),
        ("team", r#"forbid (principal in Warden::Owner::"team-z", action, resource);"#),
        ("tickets", r#"permit (principal, action in Warden::Action::"ticket", resource);"#),
        ("wiki", r#"permit (principal, action, resource == Warden::Resource::"wiki");"#),
    ]);
    assert_eq!(set.len(), 6);
    assert_eq!(set.slice_len(&request("db.write")), 2, "global and mine");
    assert_eq!(set.slice_len(&request("ticket.create")), 2, "global and tickets");
    assert_eq!(set.slice_len(&request("db.drop")), 0, "unknown intent");
}

#[test]
fn a_policy_on_a_large_group_is_still_found() {
    let mut catalogue: Vec<String> = (0..100).map(|i| format!("bulk.op_{i:03}")).collect();
    catalogue.push("other.op".to_owned());
    let sources = [
        source("bulk", r#"permit (principal, action in Warden::Action::"bulk", resource);"#),
        source("no-50", r#"forbid (principal, action == Warden::Action::"bulk.op_050", resource);"#),
    ];
    let set = PolicySet::compile(&catalogue, &sources).unwrap();
    for (intent, tier) in [
        ("bulk.op_000", Tier::Allow),
        ("bulk.op_050", Tier::Deny),
        ("bulk.op_099", Tier::Allow),
        ("other.op", Tier::Deny),
    ] {
        let sliced = set.decide(&request(intent));
        assert_eq!(sliced, set.decide_unsliced(&request(intent)));
        assert_eq!(sliced.tier, tier, "{intent}");
    }
}

#[test]
fn action_literals_keep_their_hierarchy_whatever_the_request() {
    let set = compile(&[(
        "literal",
        r#"permit (principal, action, resource) when { Warden::Action::"db.read:raw" in Warden::Action::"db" };"#,
    )]);
    for intent in ["ticket.create", "db.write", "db.read:raw"] {
        let sliced = set.decide(&request(intent));
        assert_eq!(sliced, set.decide_unsliced(&request(intent)), "{intent}");
        assert_eq!(sliced.tier, Tier::Allow, "{intent}");
    }
}
