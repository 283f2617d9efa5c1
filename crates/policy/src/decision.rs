//! Tiers, decisions, and how satisfied policies combine into one.
//!
//! Combination, for the enforced policies of the slice that applies:
//!
//! 1. any policy failed to evaluate → `deny` (fail closed: an erroring forbid must
//!    never let a request through);
//! 2. any satisfied forbid without `@decision` → `deny`;
//! 3. no satisfied permit (with or without `@decision`) → `deny` (default deny);
//! 4. otherwise the strictest tier asked for by a satisfied policy: a plain permit
//!    asks for `allow`, an annotated permit or forbid for its `@decision`.
//!
//! The determining policies are the ones that asked for the resulting tier (or, for
//! rule 1, the ones that failed).

use cedar_policy::Effect;
use serde::{Deserialize, Serialize};

use crate::compile::PolicyMeta;

/// What happens to a request, least strict first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Go ahead.
    Allow,
    /// The agent must send the request again with an explicit confirmation.
    Confirm,
    /// Held until a human approves it.
    Approve,
    /// Refused.
    Deny,
}

impl Tier {
    /// The tier's name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Confirm => "confirm",
            Self::Approve => "approve",
            Self::Deny => "deny",
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The policy's answer to one request. The caller adds the decision id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// What to do.
    pub tier: Tier,
    /// `sha256:<hex>` of the policy set that decided.
    pub policy_hash: String,
    /// Ids of the policies that determined the tier, sorted; empty for a default deny
    /// or a request refused before evaluation.
    pub determining: Vec<String>,
    /// Human-readable reasons, one per determining policy (its `@reason` if it has
    /// one), or why the request was refused.
    pub reasons: Vec<String>,
    /// What each shadow policy that matched (or failed) would have decided, sorted by
    /// policy id. Never affects `tier`.
    pub shadow: Vec<ShadowOutcome>,
}

/// The would-be effect of one shadow policy on one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowOutcome {
    /// The shadow policy.
    pub policy_id: String,
    /// The tier the request would have received had this policy been enforced.
    pub tier: Tier,
    /// The policy's reason, or its evaluation error.
    pub reason: String,
}

/// A policy that failed to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) id: String,
    pub(crate) shadow: bool,
    pub(crate) message: String,
}

/// Satisfied and failed policies of one request, before combination.
#[derive(Debug, Default)]
pub(crate) struct Evaluation<'a> {
    pub(crate) satisfied: Vec<&'a PolicyMeta>,
    pub(crate) failures: Vec<Failure>,
}

/// A tier with what determined it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) tier: Tier,
    pub(crate) determining: Vec<String>,
    pub(crate) reasons: Vec<String>,
}

impl Verdict {
    /// A deny decided before any policy ran (bad request, unknown intent).
    pub(crate) fn refused(reason: String) -> Self {
        Self { tier: Tier::Deny, determining: Vec::new(), reasons: vec![reason] }
    }
}

fn asks_for(meta: &PolicyMeta) -> Tier {
    match (meta.effect, meta.decision) {
        (_, Some(tier)) => tier,
        (Effect::Permit, None) => Tier::Allow,
        (Effect::Forbid, None) => Tier::Deny,
    }
}

/// The reason a policy gives: its `@reason`, or one built from its tier. Built
/// with `push_str`, not `format!`: it is on every decision's path.
fn reason(meta: &PolicyMeta, intent: &str) -> String {
    if let Some(reason) = &meta.reason {
        return reason.clone();
    }
    let verb = match asks_for(meta) {
        Tier::Allow => "` permits `",
        Tier::Confirm => "` requires confirmation of `",
        Tier::Approve => "` requires approval of `",
        Tier::Deny => "` forbids `",
    };
    let mut reason = String::with_capacity(8 + meta.id.len() + verb.len() + intent.len() + 1);
    for part in ["policy `", &meta.id, verb, intent, "`"] {
        reason.push_str(part);
    }
    reason
}

fn failure_reason(failure: &Failure) -> String {
    format!("policy `{}` could not be evaluated, so the request is denied: {}", failure.id, failure.message)
}

/// Combines satisfied and failed policies (all enforced) into a verdict.
fn combine(satisfied: &[&PolicyMeta], failures: &[&Failure], intent: &str) -> Verdict {
    if !failures.is_empty() {
        let mut failures = failures.to_vec();
        failures.sort_by(|a, b| a.id.cmp(&b.id));
        return Verdict {
            tier: Tier::Deny,
            determining: failures.iter().map(|failure| failure.id.clone()).collect(),
            reasons: failures.iter().map(|failure| failure_reason(failure)).collect(),
        };
    }
    let permitted = satisfied.iter().any(|meta| meta.effect == Effect::Permit);
    let strictest = satisfied.iter().map(|meta| asks_for(meta)).max();
    let tier = match strictest {
        Some(Tier::Deny) => Tier::Deny,
        Some(tier) if permitted => tier,
        _ => return Verdict::refused(format!("no policy permits `{intent}`")),
    };
    let mut determining: Vec<&PolicyMeta> =
        satisfied.iter().copied().filter(|meta| asks_for(meta) == tier).collect();
    determining.sort_by(|a, b| a.id.cmp(&b.id));
    Verdict {
        tier,
        determining: determining.iter().map(|meta| meta.id.clone()).collect(),
        reasons: determining.iter().map(|meta| reason(meta, intent)).collect(),
    }
}

impl Evaluation<'_> {
    /// The enforced verdict and the would-be verdict of every shadow policy that
    /// matched or failed.
    pub(crate) fn decide(&self, intent: &str) -> (Verdict, Vec<ShadowOutcome>) {
        let failures: Vec<&Failure> = self.failures.iter().filter(|failure| !failure.shadow).collect();
        if !self.satisfied.iter().any(|meta| meta.shadow) && failures.len() == self.failures.len() {
            // No shadow policy matched or failed (the usual case): nothing to filter.
            return (combine(&self.satisfied, &failures, intent), Vec::new());
        }
        let satisfied: Vec<&PolicyMeta> =
            self.satisfied.iter().copied().filter(|meta| !meta.shadow).collect();
        let verdict = combine(&satisfied, &failures, intent);
        let mut shadow = Vec::new();
        for meta in self.satisfied.iter().copied().filter(|meta| meta.shadow) {
            let mut with = satisfied.clone();
            with.push(meta);
            let tier = combine(&with, &failures, intent).tier;
            shadow.push(ShadowOutcome { policy_id: meta.id.clone(), tier, reason: reason(meta, intent) });
        }
        for failure in self.failures.iter().filter(|failure| failure.shadow) {
            let mut with = failures.clone();
            with.push(failure);
            let tier = combine(&satisfied, &with, intent).tier;
            shadow.push(ShadowOutcome {
                policy_id: failure.id.clone(),
                tier,
                reason: failure_reason(failure),
            });
        }
        shadow.sort_by(|a, b| a.policy_id.cmp(&b.policy_id));
        (verdict, shadow)
    }
}
