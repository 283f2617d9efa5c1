//! The Cedar request for one decision, built directly in Cedar's core types.
//!
//! Type names and action entities are made once per policy set. A decision builds
//! three entities (agent, session, resource) and the context — and only the
//! attributes some policy of the set can read: a value no policy looks at cannot
//! change a decision, and skipping it saves copying, for instance, tool-call
//! arguments that no policy inspects.

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy_core::ast::{
    self, Context, Eid, Entity, EntityType, EntityUID, EntityUIDEntry, Expr, ExprKind, PartialValue, Value,
    Var,
};
use cedar_policy_core::entities::{Entities, NoEntitiesSchema, TCComputation};
use cedar_policy_core::extensions::Extensions;
use smol_str::SmolStr;

use crate::error::PolicyError;
use crate::intent::{ActionIndex, Catalogue};
use crate::native::Kinds;
use crate::request::{Request, hour_utc, long};
use crate::schema::NAMESPACE;

/// Every attribute of the schema, by name, with its bit in [`Reads`]. Agent and
/// resource share `environment`: reads are tracked by name, which is conservative.
const ATTRIBUTES: [&str; 21] = [
    // Entities.
    "owner",
    "environment",
    "status",
    "scopes",
    "purpose",
    "agent",
    "plane",
    "data_class",
    // Context.
    "tool_calls",
    "writes",
    "bytes",
    "in_flight",
    "budget_tool_calls_left",
    "budget_writes_left",
    "budget_bytes_left",
    "now_unix_s",
    "hour_utc",
    "risk_permille",
    "self_governance",
    "arguments",
    "argument_destinations",
];

/// Position of the first context attribute in [`ATTRIBUTES`].
const CONTEXT_FIRST: usize = 8;

/// The attributes any compiled policy can read, and whether one reads the action.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Reads {
    // INVARIANT: bit `i` is set if some condition may read `ATTRIBUTES[i]`.
    attributes: u32,
    action: bool,
}

fn bit(name: &str) -> u32 {
    ATTRIBUTES.iter().position(|known| *known == name).map_or(0, |position| 1 << position)
}

fn is_context(expr: &Expr) -> bool {
    matches!(expr.expr_kind(), ExprKind::Var(Var::Context))
}

impl Reads {
    /// Scans every condition. Attribute names are collected wherever an attribute is
    /// read or tested (`.`, `[]`, `has`); if `context` is used other than to read or
    /// test one of its attributes (as a whole record), every context attribute counts.
    ///
    /// Sound for the Cedar version this crate pins: these are the only expressions
    /// that reach an attribute by name. The slicing property test compares against
    /// fully built requests.
    pub(crate) fn of<'a>(conditions: impl IntoIterator<Item = &'a Expr>) -> Self {
        let mut reads = Self::default();
        for condition in conditions {
            let (mut contexts, mut context_accesses) = (0_usize, 0_usize);
            for expr in condition.subexpressions() {
                match expr.expr_kind() {
                    ExprKind::Var(Var::Context) => contexts += 1,
                    ExprKind::Var(Var::Action) => reads.action = true,
                    ExprKind::GetAttr { expr: object, attr } | ExprKind::HasAttr { expr: object, attr } => {
                        reads.attributes |= bit(attr);
                        context_accesses += usize::from(is_context(object));
                    }
                    ExprKind::ExtHasAttr { expr: object, attrs } => {
                        attrs.iter().for_each(|attr| reads.attributes |= bit(attr));
                        context_accesses += usize::from(is_context(object));
                    }
                    _ => {}
                }
            }
            if contexts > context_accesses {
                reads.attributes |=
                    ATTRIBUTES.iter().skip(CONTEXT_FIRST).fold(0, |all, name| all | bit(name));
            }
        }
        reads
    }

    fn has(self, name: &str) -> bool {
        self.attributes & bit(name) != 0
    }
}

/// Entity types, the action hierarchy and the read attributes, built once per set.
#[derive(Debug)]
pub(crate) struct Vocabulary {
    kinds: Kinds,
    reads: Reads,
    // INVARIANT: indexed by `ActionIndex`; `lineage[i]` holds action `i` and each of its
    // ancestors, every one with all of its own ancestors as parents (closed). Empty
    // when no Cedar-evaluated condition reads the action, which then never needs them.
    action_uids: Vec<EntityUID>,
    lineage: Vec<Vec<Entity>>,
    // INVARIANT: sorted by index, unique: every action named by an entity literal in
    // a Cedar-evaluated condition, with all of its ancestors as parents. Cedar answers
    // `Warden::Action::"a" in Warden::Action::"b"` from the entity of `a`, so it must
    // be in the request's entities whatever the request's own action.
    named: Vec<(ActionIndex, Entity)>,
}

fn entity_type(name: &str) -> Result<EntityType, PolicyError> {
    EntityType::from_str(&format!("{NAMESPACE}::{name}"))
        .map_err(|error| PolicyError::Schema(error.to_string()))
}

impl Kinds {
    pub(crate) fn new() -> Result<Self, PolicyError> {
        Ok(Self {
            owner: entity_type("Owner")?,
            agent: entity_type("Agent")?,
            session: entity_type("Session")?,
            resource: entity_type("Resource")?,
            action: entity_type("Action")?,
        })
    }
}

fn uid(kind: &EntityType, id: &str) -> EntityUID {
    EntityUID::from_components(kind.clone(), Eid::new(id), None)
}

fn strings(values: &[String]) -> Value {
    Value::set(values.iter().map(|value| Value::from(value.as_str())), None)
}

/// An attribute name with a deferred value, built only if some policy reads it.
type Lazy<'a> = (&'static str, &'a dyn Fn() -> Value);

/// The attributes of `candidates` that some policy reads.
fn read<'a>(reads: Reads, candidates: &'a [Lazy<'a>]) -> impl Iterator<Item = (SmolStr, Value)> + 'a {
    candidates
        .iter()
        .filter(move |(name, _)| reads.has(name))
        .map(|(name, value)| (SmolStr::new_static(name), value()))
}

fn entity<'a>(
    uid: EntityUID,
    reads: Reads,
    attributes: &'a [Lazy<'a>],
    parents: HashSet<EntityUID>,
) -> Entity {
    let attributes = read(reads, attributes).map(|(name, value)| (name, PartialValue::from(value)));
    Entity::new_with_attr_partial_value(uid, attributes, HashSet::new(), parents, [])
}

/// A request in Cedar's core types, with its entities.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) request: ast::Request,
    pub(crate) entities: Entities,
}

impl Vocabulary {
    /// `named` lists the actions named by entity literals in Cedar-evaluated
    /// conditions (see `crate::native::action_literals`).
    pub(crate) fn new(
        catalogue: &Catalogue,
        kinds: Kinds,
        reads: Reads,
        mut named: Vec<ActionIndex>,
    ) -> Result<Self, PolicyError> {
        let action_uids: Vec<EntityUID> =
            catalogue.names().iter().map(|name| uid(&kinds.action, name)).collect();
        let entity_of = |index: ActionIndex| {
            let parents =
                catalogue.ancestors(index).iter().filter_map(|&parent| action_uids.get(parent as usize));
            let own = action_uids.get(index as usize)?.clone();
            Some(Entity::new_with_attr_partial_value(own, [], HashSet::new(), parents.cloned().collect(), []))
        };
        let lineage = (0..)
            .take(if reads.action { catalogue.names().len() } else { 0 })
            .map(|index| {
                let chain = std::iter::once(index).chain(catalogue.ancestors(index).iter().copied());
                chain.filter_map(entity_of).collect()
            })
            .collect();
        named.sort_unstable();
        named.dedup();
        let named = named.into_iter().filter_map(|index| Some((index, entity_of(index)?))).collect();
        Ok(Self { kinds, reads, action_uids, lineage, named })
    }

    /// The action entities Cedar needs for a request whose action is `action`: its
    /// lineage (if any condition reads the action) and every named action, once each.
    fn action_entities<'a>(
        &'a self,
        action: ActionIndex,
        catalogue: &'a Catalogue,
    ) -> impl Iterator<Item = Entity> + 'a {
        let lineage = self.lineage.get(action as usize).map_or(&[][..], Vec::as_slice);
        let in_lineage = move |index: ActionIndex| {
            !lineage.is_empty() && (index == action || catalogue.ancestors(action).contains(&index))
        };
        let named = self.named.iter().filter(move |(index, _)| !in_lineage(*index)).map(|(_, entity)| entity);
        lineage.iter().chain(named).cloned()
    }

    /// Builds the Cedar request for `request`, whose intent is `action`.
    pub(crate) fn prepare(
        &self,
        request: &Request,
        action: ActionIndex,
        catalogue: &Catalogue,
    ) -> Result<Prepared, String> {
        let action_uid = self.action_uids.get(action as usize).ok_or("intent is not in the catalogue")?;
        let session_uid = uid(&self.kinds.session, &request.session.id);
        let resource_uid = uid(&self.kinds.resource, &request.resource.id);
        let built = self.entities(request, &session_uid, &resource_uid);
        // The hierarchy is closed by construction (see `entities`, and action lineages
        // are closed when the vocabulary is built), so Cedar need not compute it.
        let entities = Entities::from_entities(
            built.into_iter().chain(self.action_entities(action, catalogue)),
            None::<&NoEntitiesSchema>,
            TCComputation::AssumeAlreadyComputed,
            Extensions::all_available(),
        )
        .map_err(|error| format!("request entities are invalid: {error}"))?;
        let request = ast::Request::new_unchecked(
            EntityUIDEntry::known(session_uid, None),
            EntityUIDEntry::known(action_uid.clone(), None),
            EntityUIDEntry::known(resource_uid, None),
            Some(self.context(request)),
        );
        Ok(Prepared { request, entities })
    }

    /// The agent, session and resource entities. A session's ancestors are its agent
    /// and the agent's owner, both given as parents so the hierarchy is already
    /// closed. The owner entity itself is left out: it has no attributes and no
    /// parents, and Cedar treats a missing entity exactly like such an entity.
    fn entities(&self, request: &Request, session_uid: &EntityUID, resource_uid: &EntityUID) -> [Entity; 3] {
        let Request { agent, session, resource, .. } = request;
        let owner_uid = uid(&self.kinds.owner, &agent.owner);
        let agent_uid = uid(&self.kinds.agent, &agent.id);
        let agent_attributes: [Lazy<'_>; 4] = [
            ("owner", &|| Value::from(agent.owner.as_str())),
            ("environment", &|| Value::from(agent.environment.as_str())),
            ("status", &|| Value::from(agent.status.as_str())),
            ("scopes", &|| strings(&agent.scopes)),
        ];
        let session_attributes: [Lazy<'_>; 2] = [
            ("purpose", &|| Value::from(session.purpose.as_str())),
            ("agent", &|| Value::from(agent_uid.clone())),
        ];
        let resource_attributes: [Lazy<'_>; 3] = [
            ("plane", &|| Value::from(resource.plane.as_str())),
            ("environment", &|| Value::from(resource.environment.as_str())),
            ("data_class", &|| Value::from(resource.data_class.as_str())),
        ];
        let reads = self.reads;
        [
            entity(agent_uid.clone(), reads, &agent_attributes, HashSet::from([owner_uid.clone()])),
            entity(
                session_uid.clone(),
                reads,
                &session_attributes,
                HashSet::from([agent_uid.clone(), owner_uid]),
            ),
            entity(resource_uid.clone(), reads, &resource_attributes, HashSet::new()),
        ]
    }

    /// The context record, with the attributes some policy reads.
    fn context(&self, request: &Request) -> Context {
        let context = &request.context;
        let attributes: [Lazy<'_>; 13] = [
            ("tool_calls", &|| Value::from(long(context.tool_calls))),
            ("writes", &|| Value::from(long(context.writes))),
            ("bytes", &|| Value::from(long(context.bytes))),
            ("in_flight", &|| Value::from(long(context.in_flight))),
            ("budget_tool_calls_left", &|| Value::from(long(context.budget_tool_calls_left))),
            ("budget_writes_left", &|| Value::from(long(context.budget_writes_left))),
            ("budget_bytes_left", &|| Value::from(long(context.budget_bytes_left))),
            ("now_unix_s", &|| Value::from(context.now_unix_s)),
            ("hour_utc", &|| Value::from(hour_utc(context.now_unix_s))),
            ("risk_permille", &|| Value::from(i64::from(context.risk_permille))),
            ("self_governance", &|| Value::from(context.self_governance)),
            ("arguments", &|| Value::from(context.arguments.as_str())),
            ("argument_destinations", &|| strings(&context.argument_destinations)),
        ];
        let record: BTreeMap<SmolStr, Value> = read(self.reads, &attributes).collect();
        Context::Value(Arc::new(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads_of(text: &str) -> Reads {
        let policy = cedar_policy::Policy::parse(None, text).unwrap();
        let policy: &ast::Policy = policy.as_ref();
        Reads::of([&policy.condition()])
    }

    fn when(condition: &str) -> String {
        format!("permit (principal, action, resource) when {{ {condition} }};")
    }

    #[test]
    fn reads_follow_attribute_names() {
        let reads = reads_of(&when(
            r#"principal.agent.owner == "a" && context.risk_permille > 7 && context has bytes"#,
        ));
        for name in ["agent", "owner", "risk_permille", "bytes"] {
            assert!(reads.has(name), "{name}");
        }
        for name in ["status", "scopes", "arguments", "writes"] {
            assert!(!reads.has(name), "{name}");
        }
        assert!(!reads.action);
    }

    #[test]
    fn a_whole_context_reads_every_context_attribute() {
        let reads = reads_of(&when(r#"context == {"writes": 1}"#));
        assert!(ATTRIBUTES.iter().skip(CONTEXT_FIRST).all(|name| reads.has(name)));
        assert!(!reads.has("owner"));
    }

    #[test]
    fn the_action_is_read_by_the_scope_or_a_condition() {
        assert!(reads_of(&when(r#"action in Warden::Action::"db""#)).action);
        assert!(reads_of(r#"permit (principal, action in Warden::Action::"db", resource);"#).action);
        assert!(!reads_of("permit (principal, action, resource);").action);
    }
}
