//! Slicing: which policies can apply to a request, found without evaluating them.
//!
//! Plain Cedar evaluates every policy of a set on every request. Here each policy is
//! filed at compile time under the scope it constrains — principal (any, `in` an
//! owner, `in` an agent, a session), resource (any, one resource) and action (any, or
//! each action its `==` / `in` constraint can match, expanded through the hierarchy)
//! — and a decision evaluates only the slices its request can reach: at most
//! 4 principal × 2 resource × 2 action buckets, most of them empty.
//!
//! Conditions in `when` clauses are not indexed: a team rule written
//! `principal in Warden::Owner::"team-a"` is found by scope, one written
//! `when { principal.agent.owner == "team-a" }` runs on every request for its actions.
//!
//! **Invariant:** a policy whose scope matches a request is in one of the slices that
//! request consults. Filing is conservative — a scope it cannot read (or an action
//! scope that expands to too many actions) files the policy under "any", where Cedar
//! checks the scope itself. A scope that does not match makes Cedar's condition false
//! before any `when` clause runs (the scope constraints are its first conjuncts and
//! cannot fail), so leaving such policies out changes neither the satisfied policies
//! nor the errors: slicing cannot change a decision.
//!
//! When the bucket a policy is filed in already implies its whole scope (it is filed
//! under exactly the owner, agent, session, resource and actions its scope names),
//! only its `when` / `unless` conditions are evaluated; see
//! [`crate::evaluate::CompiledPolicy`].
//!
//! **Invariant:** a policy is reached at most once per request: it has one principal
//! key and one resource key, and its action keys are distinct actions, of which a
//! request names one.

use std::collections::HashMap;

use cedar_policy::{ActionConstraint, EntityUid, Policy, PrincipalConstraint, ResourceConstraint};

use smol_str::SmolStr;

use crate::intent::{ActionIndex, Catalogue};
use crate::limits::POLICY_ACTION_EXPANSION_MAX;
use crate::quick::Quick;
use crate::reference::TypeNames;
use crate::request::Request;

/// Position of a policy in the compiled set.
pub(crate) type PolicyIndex = u32;

/// A map of the index. Keys are ids of a few dozen bytes, held inline when short
/// (`SmolStr`) so comparing one reads no other memory.
type Map<V> = HashMap<SmolStr, V, Quick>;

/// Policies filed by action.
#[derive(Debug, Default)]
struct ActionLevel {
    any: Vec<PolicyIndex>,
    // INVARIANT: sorted by action, each action once: a binary search over a few
    // entries reads less memory than a hash table.
    actions: Vec<(ActionIndex, Vec<PolicyIndex>)>,
}

impl ActionLevel {
    fn file(&mut self, action: ActionIndex, position: PolicyIndex) {
        match self.actions.binary_search_by_key(&action, |(filed, _)| *filed) {
            Ok(at) => self.actions.get_mut(at).into_iter().for_each(|(_, slice)| slice.push(position)),
            Err(at) => self.actions.insert(at, (action, vec![position])),
        }
    }

    fn slice(&self, action: ActionIndex) -> Option<&[PolicyIndex]> {
        let at = self.actions.binary_search_by_key(&action, |(filed, _)| *filed).ok()?;
        self.actions.get(at).map(|(_, slice)| slice.as_slice())
    }
}

/// Policies filed by resource, then action.
#[derive(Debug, Default)]
struct ResourceLevel {
    any: ActionLevel,
    resources: Map<ActionLevel>,
}

/// The slices of a policy set: policies filed by principal, then resource, then action.
#[derive(Debug, Default)]
pub(crate) struct SliceIndex {
    any: ResourceLevel,
    owners: Map<ResourceLevel>,
    agents: Map<ResourceLevel>,
    sessions: Map<ResourceLevel>,
}

/// Which principals a policy's scope can match.
enum PrincipalKey {
    Any,
    Owner(String),
    Agent(String),
    Session(String),
}

/// Where a policy is filed, and whether being found there implies its whole scope.
pub(crate) struct Filing {
    principal: PrincipalKey,
    resource: Option<String>,
    /// `None`: the slice every action consults.
    actions: Option<Vec<ActionIndex>>,
    pub(crate) scope_implied: bool,
}

/// The principal key, and whether a request that consults it always satisfies the
/// constraint. Principals are sessions, `in` their agent and its owner.
fn principal_key(constraint: PrincipalConstraint, types: &TypeNames) -> (PrincipalKey, bool) {
    let (entity, is_in) = match constraint {
        PrincipalConstraint::Any => return (PrincipalKey::Any, true),
        PrincipalConstraint::Is(kind) => return (PrincipalKey::Any, kind == types.session),
        PrincipalConstraint::IsIn(kind, _) if kind != types.session => return (PrincipalKey::Any, false),
        PrincipalConstraint::Eq(entity) => (entity, false),
        PrincipalConstraint::In(entity) | PrincipalConstraint::IsIn(_, entity) => (entity, true),
    };
    let id = entity.id().unescaped().to_owned();
    let kind = entity.type_name();
    if kind == &types.owner {
        (PrincipalKey::Owner(id), is_in)
    } else if kind == &types.agent {
        (PrincipalKey::Agent(id), is_in)
    } else if kind == &types.session {
        (PrincipalKey::Session(id), true)
    } else {
        (PrincipalKey::Any, false)
    }
}

/// The one resource a policy's scope can match, if it names one, and whether a
/// request that consults it always satisfies the constraint.
fn resource_key(constraint: ResourceConstraint, types: &TypeNames) -> (Option<String>, bool) {
    let entity = match constraint {
        ResourceConstraint::Any => return (None, true),
        ResourceConstraint::Is(kind) => return (None, kind == types.resource),
        ResourceConstraint::IsIn(kind, _) if kind != types.resource => return (None, false),
        ResourceConstraint::Eq(entity)
        | ResourceConstraint::In(entity)
        | ResourceConstraint::IsIn(_, entity) => entity,
    };
    // Resources have no parents, so `in` a resource is `==` that resource.
    match entity.type_name() == &types.resource {
        true => (Some(entity.id().unescaped().to_owned()), true),
        false => (None, false),
    }
}

/// The actions a policy's scope can match (`None` for the slice every action
/// consults), and whether a request that consults them always satisfies the
/// constraint.
fn action_keys(
    constraint: ActionConstraint,
    catalogue: &Catalogue,
    types: &TypeNames,
) -> (Option<Vec<ActionIndex>>, bool) {
    let (named, expand): (Vec<EntityUid>, bool) = match constraint {
        ActionConstraint::Any => return (None, true),
        ActionConstraint::Eq(action) => (vec![action], false),
        ActionConstraint::In(actions) => (actions, true),
    };
    let mut indexes = Vec::new();
    for action in named {
        let known = (action.type_name() == &types.action).then(|| catalogue.index(action.id().unescaped()));
        let Some(index) = known.flatten() else { return (None, false) };
        if expand {
            indexes.extend_from_slice(catalogue.descendants(index));
        } else {
            indexes.push(index);
        }
    }
    indexes.sort_unstable();
    indexes.dedup();
    match indexes.len() <= POLICY_ACTION_EXPANSION_MAX {
        true => (Some(indexes), true),
        false => (None, false),
    }
}

impl Filing {
    /// Where `policy` goes; see the module comment.
    pub(crate) fn new(policy: &Policy, catalogue: &Catalogue, types: &TypeNames) -> Self {
        let (principal, principal_implied) = principal_key(policy.principal_constraint(), types);
        let (resource, resource_implied) = resource_key(policy.resource_constraint(), types);
        let (actions, actions_implied) = action_keys(policy.action_constraint(), catalogue, types);
        Self {
            principal,
            resource,
            actions,
            scope_implied: principal_implied && resource_implied && actions_implied,
        }
    }
}

impl SliceIndex {
    /// Files every policy (enforced and shadow), in compiled order.
    pub(crate) fn new<'a>(filings: impl IntoIterator<Item = &'a Filing>) -> Self {
        let mut index = Self::default();
        for (filing, position) in filings.into_iter().zip(0..) {
            let by_resource = match &filing.principal {
                PrincipalKey::Any => &mut index.any,
                PrincipalKey::Owner(id) => index.owners.entry(SmolStr::new(id)).or_default(),
                PrincipalKey::Agent(id) => index.agents.entry(SmolStr::new(id)).or_default(),
                PrincipalKey::Session(id) => index.sessions.entry(SmolStr::new(id)).or_default(),
            };
            let by_action = match &filing.resource {
                None => &mut by_resource.any,
                Some(id) => by_resource.resources.entry(SmolStr::new(id)).or_default(),
            };
            match &filing.actions {
                None => by_action.any.push(position),
                Some(actions) => {
                    for &action in actions {
                        by_action.file(action, position);
                    }
                }
            }
        }
        index
    }

    /// Calls `visit` on every non-empty slice a request can reach.
    pub(crate) fn for_each_slice(
        &self,
        request: &Request,
        action: ActionIndex,
        mut visit: impl FnMut(&[PolicyIndex]),
    ) {
        let Request { agent, session, resource, .. } = request;
        let principals = [
            Some(&self.any),
            self.owners.get(agent.owner.as_str()),
            self.agents.get(agent.id.as_str()),
            self.sessions.get(session.id.as_str()),
        ];
        for by_resource in principals.into_iter().flatten() {
            for by_action in [Some(&by_resource.any), by_resource.resources.get(resource.id.as_str())]
                .into_iter()
                .flatten()
            {
                if !by_action.any.is_empty() {
                    visit(&by_action.any);
                }
                if let Some(slice) = by_action.slice(action) {
                    visit(slice);
                }
            }
        }
    }
}
