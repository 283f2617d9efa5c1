//! Decisions through the public API: hierarchy, tiers, combination, fail-closed
//! evaluation, shadow mode and the request context. Every decision is also checked
//! against the unsliced reference path.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{compile, decide, request};
use warden_policy::{ShadowOutcome, Tier};

const PERMIT_ALL: &str = "permit (principal, action, resource);";
const PERMIT_DB_READ: &str = r#"permit (principal, action in Warden::Action::"db.read", resource);"#;

#[test]
fn a_permit_on_a_group_allows_its_members() {
    let set = compile(&[("reads", PERMIT_DB_READ)]);
    for intent in ["db.read:raw", "db.read:sanitized", "db.read"] {
        let decision = decide(&set, &request(intent));
        assert_eq!(decision.tier, Tier::Allow, "{intent}");
        assert_eq!(decision.determining, ["reads"]);
    }
    assert_eq!(decide(&set, &request("db.write")).tier, Tier::Deny);
    assert_eq!(decide(&set, &request("db")).tier, Tier::Deny, "a parent is not a member of its child");
}

#[test]
fn the_whole_hierarchy_is_reachable_from_the_root() {
    let set = compile(&[("db", r#"permit (principal, action in Warden::Action::"db", resource);"#)]);
    for intent in ["db.read:raw", "db.read:sanitized", "db.write"] {
        assert_eq!(decide(&set, &request(intent)).tier, Tier::Allow, "{intent}");
    }
    assert_eq!(decide(&set, &request("ticket.create")).tier, Tier::Deny);
}

#[test]
fn an_exact_action_does_not_cover_its_siblings() {
    let set =
        compile(&[("raw", r#"permit (principal, action == Warden::Action::"db.read:raw", resource);"#)]);
    assert_eq!(decide(&set, &request("db.read:raw")).tier, Tier::Allow);
    assert_eq!(decide(&set, &request("db.read:sanitized")).tier, Tier::Deny);
}

#[test]
fn with_no_policy_everything_is_denied() {
    let set = compile(&[]);
    let decision = decide(&set, &request("db.write"));
    assert_eq!(decision.tier, Tier::Deny);
    assert!(decision.determining.is_empty());
    assert_eq!(decision.reasons, ["no policy permits `db.write`"]);
    assert_eq!(decision.policy_hash, set.hash());
}

#[test]
fn default_deny_when_no_permit_matches() {
    let set = compile(&[("tickets", r#"permit (principal, action in Warden::Action::"ticket", resource);"#)]);
    let decision = decide(&set, &request("db.write"));
    assert_eq!(decision.tier, Tier::Deny);
    assert!(decision.determining.is_empty());
}

#[test]
fn each_tier_from_annotations() {
    let cases = [
        ("permit (principal, action, resource);", Tier::Allow),
        ("@decision(\"confirm\") permit (principal, action, resource);", Tier::Confirm),
        ("@decision(\"approve\") permit (principal, action, resource);", Tier::Approve),
    ];
    for (text, tier) in cases {
        let set = compile(&[("p", text)]);
        let decision = decide(&set, &request("ticket.create"));
        assert_eq!(decision.tier, tier, "{text}");
        assert_eq!(decision.determining, ["p"]);
    }
    let set = compile(&[("all", PERMIT_ALL), ("no", "forbid (principal, action, resource);")]);
    assert_eq!(decide(&set, &request("ticket.create")).tier, Tier::Deny);
}

#[test]
fn an_annotated_forbid_raises_the_tier_of_a_permitted_request() {
    let set = compile(&[
        ("all", PERMIT_ALL),
        (
            "deletes",
            r#"@decision("confirm") forbid (principal, action == Warden::Action::"ticket.delete", resource);"#,
        ),
    ]);
    let decision = decide(&set, &request("ticket.delete"));
    assert_eq!(decision.tier, Tier::Confirm);
    assert_eq!(decision.determining, ["deletes"]);
    assert_eq!(decision.reasons, ["policy `deletes` requires confirmation of `ticket.delete`"]);
    assert_eq!(decide(&set, &request("ticket.create")).tier, Tier::Allow);
}

#[test]
fn an_annotated_forbid_alone_does_not_permit() {
    let set = compile(&[("hold", r#"@decision("approve") forbid (principal, action, resource);"#)]);
    let decision = decide(&set, &request("ticket.create"));
    assert_eq!(decision.tier, Tier::Deny);
    assert!(decision.determining.is_empty());
}

#[test]
fn the_strictest_tier_wins_and_only_its_policies_determine() {
    let set = compile(&[
        ("all", PERMIT_ALL),
        ("confirm-1", r#"@decision("confirm") forbid (principal, action, resource);"#),
        ("approve-1", r#"@decision("approve") forbid (principal, action, resource);"#),
        ("approve-2", r#"@decision("approve") permit (principal, action, resource);"#),
    ]);
    let decision = decide(&set, &request("db.write"));
    assert_eq!(decision.tier, Tier::Approve);
    assert_eq!(decision.determining, ["approve-1", "approve-2"]);
    assert_eq!(decision.reasons.len(), 2);
}

#[test]
fn forbid_beats_permit_and_tiers() {
    let set = compile(&[
        ("all", PERMIT_ALL),
        ("approve", r#"@decision("approve") forbid (principal, action, resource);"#),
        (
            "prod-writes",
            r#"@reason("no writes to prod") forbid (principal, action == Warden::Action::"db.write", resource) when { resource.environment == "prod" };"#,
        ),
    ]);
    let decision = decide(&set, &request("db.write"));
    assert_eq!(decision.tier, Tier::Deny);
    assert_eq!(decision.determining, ["prod-writes"]);
    assert_eq!(decision.reasons, ["no writes to prod"]);
    assert_eq!(decide(&set, &request("db.read:raw")).tier, Tier::Approve);
}

/// `context.bytes + i64::MAX` overflows for any positive byte count: a runtime
/// error strict validation cannot see.
const OVERFLOWING_FORBID: &str =
    "forbid (principal, action, resource) when { context.bytes + 9223372036854775807 < 0 };";

#[test]
fn an_erroring_forbid_denies() {
    let set = compile(&[("all", PERMIT_ALL), ("overflow", OVERFLOWING_FORBID)]);
    let mut failing = request("db.write");
    failing.context.bytes = 1;
    let decision = decide(&set, &failing);
    assert_eq!(decision.tier, Tier::Deny);
    assert_eq!(decision.determining, ["overflow"]);
    assert!(
        decision.reasons[0].contains("policy `overflow` could not be evaluated"),
        "{:?}",
        decision.reasons
    );
    assert!(decision.reasons[0].contains("overflow"), "{:?}", decision.reasons);

    let mut fine = request("db.write");
    fine.context.bytes = 0;
    assert_eq!(decide(&set, &fine).tier, Tier::Allow);
}

#[test]
fn an_erroring_permit_also_denies() {
    let set = compile(&[
        ("all", PERMIT_ALL),
        (
            "overflow",
            "permit (principal, action, resource) when { context.bytes * 9223372036854775807 > 0 };",
        ),
    ]);
    let mut failing = request("db.write");
    failing.context.bytes = 2;
    let decision = decide(&set, &failing);
    assert_eq!(decision.tier, Tier::Deny);
    assert_eq!(decision.determining, ["overflow"]);
}

#[test]
fn a_forbid_reading_a_missing_entity_denies() {
    let set = compile(&[
        ("all", PERMIT_ALL),
        (
            "ghost",
            r#"forbid (principal, action, resource) when { Warden::Agent::"agt_ghost".status == "revoked" };"#,
        ),
    ]);
    let decision = decide(&set, &request("http.post"));
    assert_eq!(decision.tier, Tier::Deny);
    assert_eq!(decision.determining, ["ghost"]);
    assert!(decision.reasons[0].contains("agt_ghost"), "{:?}", decision.reasons);
}

#[test]
fn a_shadow_forbid_is_reported_but_not_enforced() {
    let set = compile(&[
        ("all", PERMIT_ALL),
        (
            "candidate",
            r#"@shadow("true") @reason("posts leak") forbid (principal, action == Warden::Action::"http.post", resource);"#,
        ),
    ]);
    let decision = decide(&set, &request("http.post"));
    assert_eq!(decision.tier, Tier::Allow);
    assert_eq!(decision.determining, ["all"]);
    assert_eq!(
        decision.shadow,
        [ShadowOutcome { policy_id: "candidate".into(), tier: Tier::Deny, reason: "posts leak".into() }]
    );
    assert!(
        decide(&set, &request("ticket.create")).shadow.is_empty(),
        "a shadow policy that does not match is not reported"
    );
}

#[test]
fn a_shadow_permit_does_not_permit() {
    let set = compile(&[("candidate", r#"@shadow("true") permit (principal, action, resource);"#)]);
    let decision = decide(&set, &request("ticket.create"));
    assert_eq!(decision.tier, Tier::Deny);
    assert_eq!(decision.shadow.len(), 1);
    assert_eq!(decision.shadow[0].tier, Tier::Allow);
}

#[test]
fn a_shadow_tier_policy_reports_the_tier_it_would_impose() {
    let set = compile(&[
        ("all", PERMIT_ALL),
        (
            "candidate",
            r#"@shadow("true") @decision("approve") forbid (principal, action, resource) when { context.writes > 5 };"#,
        ),
    ]);
    let mut busy = request("db.write");
    busy.context.writes = 6;
    let decision = decide(&set, &busy);
    assert_eq!(decision.tier, Tier::Allow);
    assert_eq!(decision.shadow[0].tier, Tier::Approve);
}

#[test]
fn an_erroring_shadow_policy_does_not_deny() {
    let shadow_overflow = format!("@shadow(\"true\") {OVERFLOWING_FORBID}");
    let set = compile(&[("all", PERMIT_ALL), ("candidate", &shadow_overflow)]);
    let mut failing = request("db.write");
    failing.context.bytes = 1;
    let decision = decide(&set, &failing);
    assert_eq!(decision.tier, Tier::Allow);
    assert_eq!(decision.shadow[0].policy_id, "candidate");
    assert_eq!(decision.shadow[0].tier, Tier::Deny);
    assert!(decision.shadow[0].reason.contains("could not be evaluated"));
}

#[test]
fn risk_above_seven_tenths_requires_approval() {
    let set = compile(&[
        ("all", PERMIT_ALL),
        (
            "risk",
            r#"@decision("approve") @reason("risk above 0.7") forbid (principal, action, resource) when { context.risk_permille > 700 };"#,
        ),
    ]);
    let mut calm = request("db.write");
    calm.context.risk_permille = 700;
    assert_eq!(decide(&set, &calm).tier, Tier::Allow);
    let mut risky = request("db.write");
    risky.context.risk_permille = 701;
    let decision = decide(&set, &risky);
    assert_eq!(decision.tier, Tier::Approve);
    assert_eq!(decision.determining, ["risk"]);
    assert_eq!(decision.reasons, ["risk above 0.7"]);
}

#[test]
fn every_context_field_reaches_policy() {
    let conditions = [
        ("context.tool_calls == 3", "tool_calls"),
        ("context.writes == 4", "writes"),
        ("context.bytes == 5", "bytes"),
        ("context.in_flight == 6", "in_flight"),
        ("context.budget_tool_calls_left == 0", "budget_tool_calls_left"),
        ("context.budget_writes_left == 0", "budget_writes_left"),
        ("context.budget_bytes_left == 0", "budget_bytes_left"),
        ("context.now_unix_s == 1776301200", "now_unix_s"),
        ("context.hour_utc == 1", "hour_utc"),
        ("context.risk_permille == 1000", "risk_permille"),
        ("context.self_governance", "self_governance"),
        (r#"context.arguments like "*DROP TABLE*""#, "arguments"),
        (r#"context.argument_destinations.contains("evil.example")"#, "argument_destinations"),
    ];
    let mut policies = vec![("all".to_owned(), PERMIT_ALL.to_owned())];
    for (condition, field) in conditions {
        policies.push((
            field.to_owned(),
            format!("forbid (principal, action, resource) when {{ {condition} }};"),
        ));
    }
    let policies: Vec<(&str, &str)> =
        policies.iter().map(|(id, text)| (id.as_str(), text.as_str())).collect();
    let set = compile(&policies);
    assert_eq!(decide(&set, &request("db.write")).tier, Tier::Allow, "the base request trips no condition");

    let mut tripped = request("db.write");
    let context = &mut tripped.context;
    context.tool_calls = 3;
    context.writes = 4;
    context.bytes = 5;
    context.in_flight = 6;
    context.budget_tool_calls_left = 0;
    context.budget_writes_left = 0;
    context.budget_bytes_left = 0;
    context.now_unix_s = 1_776_301_200; // 2026-04-16T01:00:00Z
    context.risk_permille = 1000;
    context.self_governance = true;
    context.arguments = "DROP TABLE orders".to_owned();
    context.argument_destinations.push("evil.example".to_owned());
    let decision = decide(&set, &tripped);
    assert_eq!(decision.tier, Tier::Deny);
    let mut expected: Vec<&str> = conditions.iter().map(|(_, field)| *field).collect();
    expected.sort_unstable();
    assert_eq!(decision.determining, expected);
}

#[test]
fn counters_beyond_cedar_long_saturate() {
    let set = compile(&[(
        "all",
        r#"permit (principal, action, resource) when { context.budget_bytes_left == 9223372036854775807 };"#,
    )]);
    let mut unlimited = request("db.write");
    unlimited.context.budget_bytes_left = u64::MAX;
    assert_eq!(decide(&set, &unlimited).tier, Tier::Allow);
}

#[test]
fn principals_by_owner_agent_and_session() {
    let set = compile(&[
        (
            "team",
            r#"permit (principal in Warden::Owner::"team-a", action == Warden::Action::"ticket.create", resource);"#,
        ),
        (
            "agent",
            r#"permit (principal in Warden::Agent::"agt_a", action == Warden::Action::"db.write", resource);"#,
        ),
        (
            "session",
            r#"permit (principal == Warden::Session::"sess_1", action == Warden::Action::"ticket.delete", resource);"#,
        ),
        (
            "attributes",
            r#"permit (principal is Warden::Session, action == Warden::Action::"http.post", resource) when { principal.agent.owner == "team-a" && principal.purpose == "triage" && principal.agent.scopes.contains("db") };"#,
        ),
    ]);
    for intent in ["ticket.create", "db.write", "ticket.delete", "http.post"] {
        assert_eq!(decide(&set, &request(intent)).tier, Tier::Allow, "{intent}");
    }
    let mut stranger = request("ticket.create");
    stranger.agent.id = "agt_b".to_owned();
    stranger.agent.owner = "team-b".to_owned();
    stranger.session.id = "sess_2".to_owned();
    for intent in ["ticket.create", "db.write", "ticket.delete", "http.post"] {
        stranger.intent = intent.to_owned();
        assert_eq!(decide(&set, &stranger).tier, Tier::Deny, "{intent}");
    }
}

#[test]
fn resources_by_id_and_classification() {
    let set = compile(&[
        ("orders", r#"permit (principal, action, resource == Warden::Resource::"orders");"#),
        (
            "restricted",
            r#"forbid (principal, action, resource) when { resource.data_class == "restricted" || resource.plane == "control" };"#,
        ),
        (
            "env",
            r#"forbid (principal, action, resource) unless { resource.environment == principal.agent.environment };"#,
        ),
    ]);
    assert_eq!(decide(&set, &request("db.write")).tier, Tier::Allow);
    let mut other = request("db.write");
    other.resource.id = "payments".to_owned();
    assert_eq!(decide(&set, &other).tier, Tier::Deny);
    let mut restricted = request("db.write");
    restricted.resource.data_class = "restricted".to_owned();
    assert_eq!(decide(&set, &restricted).determining, ["restricted"]);
    let mut staging = request("db.write");
    staging.resource.environment = "staging".to_owned();
    assert_eq!(decide(&set, &staging).determining, ["env"]);
}

#[test]
fn an_unknown_intent_is_denied_with_a_reason() {
    let set = compile(&[("all", PERMIT_ALL)]);
    let decision = decide(&set, &request("db.drop"));
    assert_eq!(decision.tier, Tier::Deny);
    assert_eq!(decision.reasons, ["intent `db.drop` is not in the intent catalogue"]);
}

#[test]
fn malformed_requests_are_denied_with_a_reason() {
    let set = compile(&[("all", PERMIT_ALL)]);
    let mut cases = Vec::new();
    let mut bad = request("db.write");
    bad.resource.environment = "production".to_owned();
    cases.push((bad, "resource environment `production` is not one of dev, staging, prod"));
    let mut bad = request("db.write");
    bad.context.risk_permille = 1001;
    cases.push((bad, "risk 1001 is above 1000 permille"));
    let mut bad = request("db.write");
    bad.agent.id = String::new();
    cases.push((bad, "agent id is empty"));
    let mut bad = request("db.write");
    bad.agent.status = "retired".to_owned();
    cases.push((bad, "agent status `retired` is not one of active, suspended, revoked"));
    let mut bad = request("db.write");
    bad.context.arguments = "x".repeat(warden_policy::limits::ARGUMENTS_BYTES_MAX + 1);
    cases.push((bad, "arguments exceed 65536 bytes"));
    for (bad, reason) in cases {
        let decision = decide(&set, &bad);
        assert_eq!(decision.tier, Tier::Deny);
        assert_eq!(decision.reasons, [reason]);
    }
}

#[test]
fn decisions_serialize_with_lowercase_tiers() {
    let set = compile(&[("all", PERMIT_ALL)]);
    let decision = decide(&set, &request("db.write"));
    let json = serde_json::to_value(&decision).unwrap();
    assert_eq!(json["tier"], "allow");
    assert_eq!(json["policy_hash"], set.hash());
    assert_eq!(json["determining"], serde_json::json!(["all"]));
}

mod untrusted_facts {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Whatever the caller puts in a request, the decision is a value (never a
        /// panic), and an allow needs facts that pass validation.
        #[test]
        fn any_facts_give_a_decision(
            id in ".{0,40}",
            owner in ".{0,40}",
            environment in prop::sample::select(vec!["dev", "prod", "Prod", "", "production"]),
            intent in prop::sample::select(vec!["db.write", "db", "", "DB.WRITE", "db.write:x"]),
            arguments in ".{0,64}",
            risk in 0_u16..1200,
        ) {
            let set = compile(&[("all", PERMIT_ALL)]);
            let mut request = request(intent);
            request.agent.id = id;
            request.agent.owner = owner;
            request.resource.environment = environment.to_owned();
            request.context.arguments = arguments;
            request.context.risk_permille = risk;
            let decision = decide(&set, &request);
            if decision.tier == Tier::Allow {
                let valid = !request.agent.id.is_empty()
                    && !request.agent.owner.is_empty()
                    && risk <= 1000
                    && ["dev", "prod"].contains(&environment)
                    && ["db.write", "db"].contains(&intent);
                prop_assert!(valid, "allowed {:?}", request);
            } else {
                prop_assert_eq!(decision.reasons.len(), 1);
            }
        }
    }
}
