//! From policy sources to validated Cedar policies with their Warden metadata.
//!
//! Annotations a policy may carry:
//!
//! - `@id("…")` — the policy's id; required when a source holds several policies,
//!   otherwise the source id is used.
//! - `@decision("confirm")` / `@decision("approve")` — the tier the policy asks for
//!   when it is satisfied (on a permit or a forbid).
//! - `@shadow("true")` — evaluate and report, never enforce.
//! - `@reason("…")` — the reason given to the agent when the policy determines a
//!   decision.
//! - `@description("…")` — free text for humans.
//!
//! Any other annotation is refused, so a misspelt `@decison("approve")` cannot
//! silently turn into a plain permit.

use std::collections::HashSet;
use std::str::FromStr;

use cedar_policy::{Effect, Policy, PolicyId, Schema, ValidationMode, Validator};
use miette::Diagnostic;
use serde::{Deserialize, Serialize};

use crate::decision::Tier;
use crate::limits::{POLICIES_MAX, POLICY_ID_CHARS_MAX, POLICY_TEXT_BYTES_MAX};

/// One policy source: an id and Cedar text holding one policy (or several, each with
/// an `@id` annotation).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PolicySource {
    /// The source's id, unique within a set.
    pub id: String,
    /// Cedar policy text.
    pub text: String,
}

/// Annotations this crate understands.
pub const ANNOTATIONS: [&str; 5] = ["id", "decision", "shadow", "reason", "description"];

/// What Warden needs to know about a policy besides its Cedar condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PolicyMeta {
    pub(crate) id: String,
    pub(crate) effect: Effect,
    /// `Confirm` or `Approve` when annotated with `@decision`.
    pub(crate) decision: Option<Tier>,
    pub(crate) shadow: bool,
    pub(crate) reason: Option<String>,
}

/// A parsed policy, renamed to its Warden id, with its metadata.
#[derive(Debug, Clone)]
pub(crate) struct ParsedPolicy {
    pub(crate) policy: Policy,
    pub(crate) meta: PolicyMeta,
}

/// A Cedar diagnostic with its help text, if any.
pub(crate) fn render(error: &dyn Diagnostic) -> String {
    match error.help() {
        Some(help) => format!("{error} ({help})"),
        None => error.to_string(),
    }
}

/// The 1-based line and column where a parse error's first label starts.
fn position(error: &dyn Diagnostic, text: &str) -> Option<(usize, usize)> {
    let offset = error.labels()?.next()?.offset();
    let before = text.get(..offset)?;
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |last| last.chars().count()) + 1;
    Some((line, column))
}

fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > POLICY_ID_CHARS_MAX {
        return Err(format!("id must have 1 to {POLICY_ID_CHARS_MAX} characters"));
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.:/".contains(&b)) {
        return Err("id may contain only letters, digits, `_`, `-`, `.`, `:` and `/`".to_owned());
    }
    Ok(())
}

fn meta(id: String, policy: &Policy) -> Result<PolicyMeta, String> {
    for (key, _) in policy.annotations() {
        if !ANNOTATIONS.contains(&key) {
            return Err(format!(
                "annotation `@{key}` is unknown; known annotations are {}",
                ANNOTATIONS.join(", ")
            ));
        }
    }
    let decision = match policy.annotation("decision") {
        None => None,
        Some("confirm") => Some(Tier::Confirm),
        Some("approve") => Some(Tier::Approve),
        Some(other) => return Err(format!("`@decision(\"{other}\")` must be `confirm` or `approve`")),
    };
    let shadow = match policy.annotation("shadow") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(format!("`@shadow(\"{other}\")` must be `true` or `false`")),
    };
    let reason = policy.annotation("reason").map(str::to_owned);
    Ok(PolicyMeta { id, effect: policy.effect(), decision, shadow, reason })
}

/// Parses one source into policies named by their Warden ids.
fn parse_source(source: &PolicySource, diagnostics: &mut Vec<String>) -> Vec<ParsedPolicy> {
    let PolicySource { id: source_id, text } = source;
    let at = |message: String| format!("policy `{source_id}`: {message}");
    if let Err(message) = check_id(source_id) {
        diagnostics.push(at(message));
        return Vec::new();
    }
    if text.len() > POLICY_TEXT_BYTES_MAX {
        diagnostics.push(at(format!("text exceeds {POLICY_TEXT_BYTES_MAX} bytes")));
        return Vec::new();
    }
    let set = match cedar_policy::PolicySet::from_str(text) {
        Ok(set) => set,
        Err(errors) => {
            for error in errors.iter() {
                let message = match position(error, text) {
                    Some((line, column)) => format!("line {line}, column {column}: {}", render(error)),
                    None => render(error),
                };
                diagnostics.push(at(message));
            }
            return Vec::new();
        }
    };
    if set.templates().next().is_some() {
        diagnostics.push(at("templates (`?principal`, `?resource`) are not supported".to_owned()));
        return Vec::new();
    }
    let count = set.policies().count();
    if count == 0 {
        diagnostics.push(at("holds no policy".to_owned()));
    }
    let mut parsed = Vec::with_capacity(count);
    for policy in set.policies() {
        let id = match (policy.annotation("id"), count) {
            (Some(id), _) => id.to_owned(),
            (None, 1) => source_id.clone(),
            (None, _) => {
                diagnostics
                    .push(at(format!("holds {count} policies, so each needs an `@id(\"…\")` annotation")));
                continue;
            }
        };
        let checked = check_id(&id).and_then(|()| meta(id.clone(), policy));
        match checked {
            Ok(meta) => parsed.push(ParsedPolicy { policy: policy.new_id(PolicyId::new(&id)), meta }),
            Err(message) => diagnostics.push(format!("policy `{id}`: {message}")),
        }
    }
    parsed.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
    parsed
}

/// Parses every source and checks ids are unique; returns every problem found.
pub(crate) fn parse(sources: &[PolicySource]) -> Result<Vec<ParsedPolicy>, Vec<String>> {
    let mut diagnostics = Vec::new();
    if sources.len() > POLICIES_MAX {
        return Err(vec![format!(
            "the set has {} policies; at most {POLICIES_MAX} are allowed",
            sources.len()
        )]);
    }
    let mut source_ids = HashSet::new();
    let mut policy_ids = HashSet::new();
    let mut parsed = Vec::with_capacity(sources.len());
    for source in sources {
        if !source_ids.insert(source.id.as_str()) {
            diagnostics.push(format!("policy `{}`: the id is used by another source", source.id));
            continue;
        }
        for policy in parse_source(source, &mut diagnostics) {
            if policy_ids.insert(policy.meta.id.clone()) {
                parsed.push(policy);
            } else {
                diagnostics.push(format!("policy `{}`: the id is used by another policy", policy.meta.id));
            }
        }
    }
    if parsed.len() > POLICIES_MAX {
        diagnostics
            .push(format!("the set has {} policies; at most {POLICIES_MAX} are allowed", parsed.len()));
    }
    if diagnostics.is_empty() { Ok(parsed) } else { Err(diagnostics) }
}

/// `policy `<id>`: <message>`, without the `for policy `<id>`, ` Cedar starts its
/// validation messages with.
fn diagnostic(id: &PolicyId, error: &dyn Diagnostic) -> String {
    let message = render(error);
    let redundant = format!("for policy `{id}`, ");
    format!("policy `{id}`: {}", message.strip_prefix(&redundant).unwrap_or(&message))
}

/// Strict validation against the schema: every error and every warning is refused,
/// each reported with Cedar's message (which names the policy) and help.
pub(crate) fn validate(
    schema: &Schema,
    policies: &[ParsedPolicy],
) -> Result<cedar_policy::PolicySet, Vec<String>> {
    let set = cedar_policy::PolicySet::from_policies(policies.iter().map(|parsed| parsed.policy.clone()))
        .map_err(|error| vec![render(&error)])?;
    let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
    let mut diagnostics: Vec<String> = result
        .validation_errors()
        .map(|error| diagnostic(error.policy_id(), error))
        .chain(result.validation_warnings().map(|warning| diagnostic(warning.policy_id(), warning)))
        .collect();
    diagnostics.sort();
    if diagnostics.is_empty() { Ok(set) } else { Err(diagnostics) }
}
