//! Compiling policy sets: strict validation with Cedar's diagnostics, the rules this
//! crate adds, the intent catalogue, the policy-set hash and diffs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{compile, diagnostics, intents, source};
use warden_policy::{PolicyChange, PolicyError, PolicySet, PolicySource, diff, schema_text};

fn assert_mentions(diagnostics: &[String], needles: &[&str]) {
    let all = diagnostics.join("\n");
    for needle in needles {
        assert!(all.contains(needle), "`{needle}` not in diagnostics:\n{all}");
    }
}

#[test]
fn an_unknown_attribute_is_rejected_with_cedars_diagnostic() {
    let found = diagnostics(&[(
        "team-rule",
        r#"permit (principal, action, resource) when { principal.agent.team == "payments" };"#,
    )]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("policy `team-rule`: "), "{found:?}");
    assert_mentions(&found, &["team", "Warden::Agent"]);
}

#[test]
fn an_unknown_entity_type_is_rejected() {
    let found = diagnostics(&[("t", r#"permit (principal in Warden::Team::"payments", action, resource);"#)]);
    assert_mentions(&found, &["policy `t`", "Warden::Team"]);
}

#[test]
fn an_unknown_action_is_rejected() {
    let found =
        diagnostics(&[("a", r#"permit (principal, action == Warden::Action::"db.drop", resource);"#)]);
    assert_mentions(&found, &["policy `a`", "db.drop"]);
}

#[test]
fn a_type_error_is_rejected() {
    let found = diagnostics(&[(
        "risk",
        r#"forbid (principal, action, resource) when { context.risk_permille > "high" };"#,
    )]);
    assert_mentions(&found, &["policy `risk`"]);
}

#[test]
fn an_impossible_policy_is_rejected() {
    let found =
        diagnostics(&[("never", r#"permit (principal == Warden::Agent::"agt_a", action, resource);"#)]);
    assert_mentions(&found, &["policy `never`"]);
}

#[test]
fn a_parse_error_names_the_policy() {
    let found =
        diagnostics(&[("broken", "permit (principal, action, resource)\n  when { context.writes > };")]);
    assert_mentions(&found, &["policy `broken`: line 2, column 27: unexpected token `}`"]);
}

#[test]
fn every_problem_is_reported_at_once() {
    let found = diagnostics(&[
        ("one", r#"permit (principal, action, resource) when { principal.agent.team == "x" };"#),
        ("two", r#"permit (principal, action, resource) when { resource.owner == "x" };"#),
    ]);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_mentions(&found, &["policy `one`", "policy `two`"]);
}

#[test]
fn warden_rules_are_enforced() {
    let cases: [(&[(&str, &str)], &str); 7] = [
        (
            &[("p", r#"@decison("approve") permit (principal, action, resource);"#)],
            "annotation `@decison` is unknown",
        ),
        (
            &[("p", r#"@decision("hold") permit (principal, action, resource);"#)],
            "must be `confirm` or `approve`",
        ),
        (&[("p", r#"@shadow("yes") permit (principal, action, resource);"#)], "must be `true` or `false`"),
        (&[("p", "permit (principal == ?principal, action, resource);")], "templates"),
        (
            &[("p", "permit (principal, action, resource); forbid (principal, action, resource);")],
            "each needs an `@id",
        ),
        (&[("p", "")], "holds no policy"),
        (&[("bad id", "permit (principal, action, resource);")], "id may contain only"),
    ];
    for (policies, expected) in cases {
        assert_mentions(&diagnostics(policies), &[expected]);
    }
}

#[test]
fn ids_are_unique() {
    let found = diagnostics(&[
        ("a", r#"@id("x") permit (principal, action, resource);"#),
        ("b", r#"@id("x") permit (principal, action, resource);"#),
    ]);
    assert_mentions(&found, &["policy `x`: the id is used by another policy"]);
    let found = diagnostics(&[
        ("a", "permit (principal, action, resource);"),
        ("a", "permit (principal, action, resource);"),
    ]);
    assert_mentions(&found, &["policy `a`: the id is used by another source"]);
}

#[test]
fn a_source_may_hold_several_policies_with_ids() {
    let set = compile(&[(
        "bundle",
        r#"@id("reads") permit (principal, action in Warden::Action::"db.read", resource);
           @id("no-writes") forbid (principal, action == Warden::Action::"db.write", resource);"#,
    )]);
    assert_eq!(set.len(), 2);
    assert_eq!(set.policy_ids().collect::<Vec<_>>(), ["no-writes", "reads"]);
}

#[test]
fn intent_names_are_checked() {
    for bad in ["DB.read", "db..read", "db.read:", "db:raw.x", "db read", ""] {
        let error = PolicySet::compile(&[bad.to_owned()], &[]).unwrap_err();
        assert!(
            matches!(&error, PolicyError::InvalidIntent { intent, .. } if intent == bad),
            "{bad}: {error}"
        );
        assert!(error.to_string().starts_with(&format!("intent `{bad}` is invalid: ")), "{error}");
    }
}

#[test]
fn ancestors_join_the_catalogue() {
    let set = PolicySet::compile(&["db.read:raw".to_owned(), "ticket.create".to_owned()], &[]).unwrap();
    assert_eq!(set.intents(), ["db", "db.read", "db.read:raw", "ticket", "ticket.create"]);
}

#[test]
fn the_schema_is_printable_for_policy_authors() {
    let text = schema_text(&intents()).unwrap();
    for needle in [
        "namespace Warden",
        "entity Session in [Agent]",
        "entity Agent in [Owner]",
        "risk_permille",
        r#""db.read:raw""#,
    ] {
        assert!(text.contains(needle), "`{needle}` not in schema:\n{text}");
    }
}

fn sources(pairs: &[(&str, &str)]) -> Vec<PolicySource> {
    pairs.iter().map(|(id, text)| source(id, text)).collect()
}

#[test]
fn the_hash_covers_ids_texts_and_intents_but_not_order() {
    let a = ("a", "permit (principal, action, resource);");
    let b = ("b", r#"forbid (principal, action == Warden::Action::"db.write", resource);"#);
    let hash = |intents: &[String], pairs: &[(&str, &str)]| {
        PolicySet::compile(intents, &sources(pairs)).unwrap().hash().to_owned()
    };
    let base = hash(&intents(), &[a, b]);
    assert!(base.starts_with("sha256:") && base.len() == 7 + 64, "{base}");
    assert!(base[7..].bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));

    let mut reversed_intents = intents();
    reversed_intents.reverse();
    assert_eq!(hash(&reversed_intents, &[b, a]), base, "order does not matter");

    let changed =
        ("b", r#"forbid (principal, action == Warden::Action::"db.write", resource) when { true };"#);
    assert_ne!(hash(&intents(), &[a, changed]), base, "text");
    assert_ne!(hash(&intents(), &[a, ("c", b.1)]), base, "id");
    assert_ne!(hash(&intents(), &[a]), base, "removal");
    let mut more = intents();
    more.push("git.push".to_owned());
    assert_ne!(hash(&more, &[a, b]), base, "intents");
    let shadowed =
        ("b", r#"@shadow("true") forbid (principal, action == Warden::Action::"db.write", resource);"#);
    assert_ne!(hash(&intents(), &[a, shadowed]), base, "shadow mode");
}

#[test]
fn diff_lists_added_removed_and_changed_sources() {
    let old = sources(&[("a", "A"), ("b", "B"), ("c", "C")]);
    let new = sources(&[("d", "D"), ("c", "C2"), ("a", "A")]);
    assert_eq!(
        diff(&old, &new),
        [
            PolicyChange::Removed { id: "b".into(), text: "B".into() },
            PolicyChange::Changed { id: "c".into(), old_text: "C".into(), new_text: "C2".into() },
            PolicyChange::Added { id: "d".into(), text: "D".into() },
        ]
    );
    assert!(diff(&old, &old).is_empty());
    let json = serde_json::to_value(diff(&[], &sources(&[("a", "A")]))).unwrap();
    assert_eq!(json, serde_json::json!([{ "change": "added", "id": "a", "text": "A" }]));
}

#[test]
fn a_policy_set_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PolicySet>();
}

mod untrusted_text {
    use super::*;
    use proptest::prelude::*;

    /// Fragments of Cedar, so random texts get past the lexer now and then.
    const FRAGMENTS: [&str; 16] = [
        "permit",
        "forbid",
        "(",
        ")",
        "principal",
        "action",
        "resource",
        ",",
        ";",
        "when",
        "{",
        "}",
        "context.risk_permille > 700",
        r#"Warden::Action::"db.write""#,
        r#"@decision("approve")"#,
        " in ",
    ];

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            prop::collection::vec(prop::sample::select(&FRAGMENTS[..]), 0..24)
                .prop_map(|parts| parts.join(" ")),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn any_text_compiles_or_is_refused_without_panicking(id in "[a-z/_-]{1,12}", text in text()) {
            match PolicySet::compile(&intents(), &[PolicySource { id, text }]) {
                Ok(set) => prop_assert_eq!(set.len(), 1),
                Err(PolicyError::Invalid { diagnostics }) => prop_assert!(!diagnostics.is_empty()),
                Err(other) => prop_assert!(false, "unexpected error {}", other),
            }
        }

        #[test]
        fn any_intent_list_compiles_or_is_refused(intents in prop::collection::vec("[a-z.:_-]{0,12}", 0..8)) {
            let _ = PolicySet::compile(&intents, &[]);
        }
    }
}
