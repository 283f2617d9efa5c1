//! The decision path: each policy's condition decided natively when it is in the
//! subset of [`crate::native`], and otherwise by Cedar's own evaluator on a request
//! built directly in Cedar's core types.
//!
//! Why not `cedar_policy::Authorizer` over per-slice `cedar_policy::PolicySet`s, the
//! obvious design? Measured on the benchmark machine (2 shared vCPUs), the public API
//! costs about 10 µs per request before any policy runs (entity attributes are
//! re-evaluated as expressions, the transitive closure recomputed, the context
//! evaluated), and the authorizer rebuilds every policy's condition expression — a
//! deep clone — on every evaluation. Both are fixed costs of the public API, not of
//! Cedar's semantics, so this module uses the layer beneath it, `cedar-policy-core`
//! (pinned to the same version): values are built as values, the hierarchy is given
//! already closed, and conditions are built once at compile time ([`crate::prepare`]
//! builds the request). Even so, building that request cost about as much as the
//! evaluation of a whole slice, so conditions in the native subset skip it: the
//! request is prepared for Cedar only when a slice holds a policy outside it.
//!
//! [`crate::PolicySet::decide_unsliced`] decides through the public API (schema-checked
//! entities and request, `Authorizer` over the whole set); tests hold the two paths to
//! the same decisions.

use cedar_policy_core::ast::{self, Literal, SlotEnv, ValueKind};
use cedar_policy_core::evaluator::Evaluator;

use crate::compile::{ParsedPolicy, PolicyMeta, render};
use crate::decision::{Evaluation, Failure};
use crate::native::{Compiler, Condition, Facts};

/// How a policy's condition is decided.
#[derive(Debug)]
pub(crate) enum Test {
    /// No condition: satisfied by every request that reaches the policy.
    Always,
    /// In the subset Warden evaluates itself ([`crate::native`]).
    Native(Condition),
    /// By Cedar's evaluator, on the request built by [`crate::prepare`].
    Cedar(ast::Expr),
}

/// A policy ready to evaluate.
#[derive(Debug)]
pub(crate) struct CompiledPolicy {
    pub(crate) meta: PolicyMeta,
    // INVARIANT: decides whether the policy is satisfied by a request that reaches
    // it through the slice index. Cedar's condition is
    // `principal && (action && (resource && body))`, where `body` joins the `when`
    // clauses and negated `unless` clauses; scope constraints never fail. When the
    // index implies the whole scope, it is `true` for every request that reaches the
    // policy and only `body` is kept (`Always`: no body). Otherwise the whole
    // condition is kept. Either is compiled natively when it is in the subset, and
    // otherwise left whole to Cedar.
    pub(crate) test: Test,
}

impl CompiledPolicy {
    pub(crate) fn new(parsed: ParsedPolicy, scope_implied: bool, compiler: &Compiler<'_>) -> Self {
        let unlocated = without_source_locations(&parsed.policy);
        let policy: &ast::Policy = unlocated.as_ref();
        let condition = match scope_implied {
            true => policy.non_scope_constraints().cloned(),
            false => Some(policy.condition()),
        };
        let test = match condition {
            None => Test::Always,
            Some(condition) => match compiler.condition(&condition) {
                Some(native) => Test::Native(native),
                None => Test::Cedar(condition),
            },
        };
        Self { test, meta: parsed.meta }
    }

    /// The expression Cedar evaluates for this policy, if Cedar evaluates one.
    pub(crate) fn cedar_condition(&self) -> Option<&ast::Expr> {
        match &self.test {
            Test::Cedar(condition) => Some(condition),
            Test::Always | Test::Native(_) => None,
        }
    }
}

/// The policy rebuilt from its JSON form, which carries no source locations.
///
/// Cedar's evaluator copies an expression's source location (a reference-counted
/// pointer into the policy text) onto every value it computes; without locations
/// the decision path runs about 15% faster on the benchmark. Runtime error messages
/// keep their content, only the pointer into the text is lost — the policy id says
/// where to look. Falls back to the located policy if the round trip fails.
fn without_source_locations(policy: &cedar_policy::Policy) -> cedar_policy::Policy {
    let rebuilt = policy
        .to_json()
        .ok()
        .and_then(|json| cedar_policy::Policy::from_json(Some(policy.id().clone()), json).ok());
    rebuilt.unwrap_or_else(|| policy.clone())
}

/// Decides the policies Warden evaluates itself; returns whether `policy` is left
/// for Cedar ([`evaluate_cedar`]).
pub(crate) fn evaluate_native<'a>(
    policy: &'a CompiledPolicy,
    facts: &Facts<'a>,
    evaluation: &mut Evaluation<'a>,
) -> bool {
    match &policy.test {
        Test::Always => evaluation.satisfied.push(&policy.meta),
        Test::Native(condition) => {
            if condition.holds(facts) {
                evaluation.satisfied.push(&policy.meta);
            }
        }
        Test::Cedar(_) => return true,
    }
    false
}

/// Evaluates each policy's Cedar condition; satisfied ones and failures go to
/// `evaluation`.
pub(crate) fn evaluate_cedar<'a>(
    evaluator: &Evaluator<'_>,
    policies: impl IntoIterator<Item = &'a CompiledPolicy>,
    evaluation: &mut Evaluation<'a>,
) {
    let slots = SlotEnv::new();
    for policy in policies {
        let failure =
            |message: String| Failure { id: policy.meta.id.clone(), shadow: policy.meta.shadow, message };
        let Some(condition) = policy.cedar_condition() else {
            continue;
        };
        match evaluator.interpret(condition, &slots) {
            Ok(value) => match value.value_kind() {
                ValueKind::Lit(Literal::Bool(true)) => evaluation.satisfied.push(&policy.meta),
                ValueKind::Lit(Literal::Bool(false)) => {}
                _ => evaluation.failures.push(failure("the condition is not a boolean".to_owned())),
            },
            Err(error) => evaluation.failures.push(failure(render(&error))),
        }
    }
}
