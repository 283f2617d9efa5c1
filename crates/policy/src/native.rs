//! Conditions Warden evaluates itself: the part of Cedar that policies over this
//! schema mostly use, read straight from the [`Request`].
//!
//! Why: Cedar's evaluator needs the request as Cedar values in an entity store, and
//! building that store (three entities, the context record, the action lineage) cost
//! more per decision than evaluating the policies of a slice. A condition written in
//! the subset below needs none of it.
//!
//! The subset: `true`/`false`, integer and string literals; `principal`, `action`,
//! `resource`; the schema's attributes of the principal, `principal.agent`, the
//! resource and `context` (read or tested with `has`); entity literals of the five
//! Warden types; `&&`, `||`, `!`, `if … then … else` over booleans; `==` between two
//! values of the same kind (booleans, integers, strings, entities); `<`, `<=` (so
//! also `>`, `>=`) on integers; `in` an entity or a list of entities; `is`; `like`;
//! `.contains`, `.containsAll`, `.containsAny`, `.isEmpty` on string sets.
//!
//! **Invariant:** a compiled condition gives exactly Cedar's answer on the request
//! entities and context that `crate::reference` builds. Evaluation in the subset
//! cannot fail — every attribute the schema declares is required and always
//! supplied, the entities it reads (session, agent, resource) always exist, and
//! nothing in it can overflow — so a compiled condition is a plain `bool`. Anything
//! outside the subset (arithmetic, extension functions, records, set equality,
//! attributes of entity literals, tags, an expression nested deeper than
//! [`DEPTH_MAX`]) is left to Cedar's evaluator whole: one policy is evaluated
//! entirely one way or the other, so errors, and the deny they cause, still come from
//! Cedar. The slicing property test compares both with Cedar's public API.

use cedar_policy_core::ast::{
    BinaryOp, EntityType, EntityUID, Expr, ExprKind, Literal, Pattern, UnaryOp, Var,
};
use smol_str::SmolStr;

use crate::intent::{ActionIndex, Catalogue};
use crate::request::{Request, hour_utc, long};

/// Deepest expression compiled here; deeper ones go to Cedar, which guards its own
/// stack. Bounds the recursion of [`Node::holds`].
pub(crate) const DEPTH_MAX: usize = 32;

/// The entity types of the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Owner,
    Agent,
    Session,
    Resource,
    Action,
}

/// The schema's entity type names, to recognise entity literals.
#[derive(Debug)]
pub(crate) struct Kinds {
    pub(crate) owner: EntityType,
    pub(crate) agent: EntityType,
    pub(crate) session: EntityType,
    pub(crate) resource: EntityType,
    pub(crate) action: EntityType,
}

impl Kinds {
    fn of(&self, kind: &EntityType) -> Option<Kind> {
        [
            (&self.owner, Kind::Owner),
            (&self.agent, Kind::Agent),
            (&self.session, Kind::Session),
            (&self.resource, Kind::Resource),
            (&self.action, Kind::Action),
        ]
        .into_iter()
        .find_map(|(name, known)| (name == kind).then_some(known))
    }
}

/// An expression whose value is an entity.
#[derive(Debug, Clone)]
enum Entity {
    Principal,
    /// `principal.agent`.
    Agent,
    Resource,
    Action,
    // INVARIANT: `action` is the catalogue index of `id` when `kind` is `Action` and
    // the catalogue knows it, `None` otherwise.
    Literal {
        kind: Kind,
        id: SmolStr,
        action: Option<ActionIndex>,
    },
}

/// An expression whose value is a `Long`.
#[derive(Debug, Clone)]
enum Long {
    Literal(i64),
    ToolCalls,
    Writes,
    Bytes,
    InFlight,
    BudgetToolCallsLeft,
    BudgetWritesLeft,
    BudgetBytesLeft,
    NowUnixS,
    HourUtc,
    RiskPermille,
}

/// An expression whose value is a `String`.
#[derive(Debug, Clone)]
enum Text {
    Literal(SmolStr),
    Purpose,
    AgentOwner,
    AgentEnvironment,
    AgentStatus,
    ResourcePlane,
    ResourceEnvironment,
    ResourceDataClass,
    Arguments,
}

/// An expression whose value is a `Set<String>`.
#[derive(Debug, Clone)]
enum Strings {
    Literal(Vec<Text>),
    AgentScopes,
    ArgumentDestinations,
}

/// A boolean expression in the subset.
#[derive(Debug, Clone)]
enum Node {
    Literal(bool),
    SelfGovernance,
    Not(Box<Node>),
    And(Box<(Node, Node)>),
    Or(Box<(Node, Node)>),
    If(Box<(Node, Node, Node)>),
    BoolEq(Box<(Node, Node)>),
    LongEq(Long, Long),
    Less(Long, Long),
    LessEq(Long, Long),
    TextEq(Text, Text),
    EntityEq(Entity, Entity),
    In(Entity, Vec<Entity>),
    Is(Entity, Kind),
    Like(Text, Pattern),
    Contains(Strings, Text),
    ContainsAll(Strings, Strings),
    ContainsAny(Strings, Strings),
    IsEmpty(Strings),
}

/// A compiled expression, by the kind of its value.
enum Typed {
    Bool(Node),
    Long(Long),
    Text(Text),
    Strings(Strings),
    Entity(Entity),
    /// A set literal of entities: only the right side of `in` takes one.
    Entities(Vec<Entity>),
}

/// Compiles Cedar expressions into [`Condition`]s.
pub(crate) struct Compiler<'a> {
    pub(crate) kinds: &'a Kinds,
    pub(crate) catalogue: &'a Catalogue,
}

fn context_attribute(name: &str) -> Option<Typed> {
    Some(match name {
        "tool_calls" => Typed::Long(Long::ToolCalls),
        "writes" => Typed::Long(Long::Writes),
        "bytes" => Typed::Long(Long::Bytes),
        "in_flight" => Typed::Long(Long::InFlight),
        "budget_tool_calls_left" => Typed::Long(Long::BudgetToolCallsLeft),
        "budget_writes_left" => Typed::Long(Long::BudgetWritesLeft),
        "budget_bytes_left" => Typed::Long(Long::BudgetBytesLeft),
        "now_unix_s" => Typed::Long(Long::NowUnixS),
        "hour_utc" => Typed::Long(Long::HourUtc),
        "risk_permille" => Typed::Long(Long::RiskPermille),
        "self_governance" => Typed::Bool(Node::SelfGovernance),
        "arguments" => Typed::Text(Text::Arguments),
        "argument_destinations" => Typed::Strings(Strings::ArgumentDestinations),
        _ => return None,
    })
}

/// An attribute of an entity the request supplies; `None` for the rest (entity
/// literals may name entities that do not exist, and Cedar says so with an error).
fn entity_attribute(entity: &Entity, name: &str) -> Option<Typed> {
    Some(match (entity, name) {
        (Entity::Principal, "purpose") => Typed::Text(Text::Purpose),
        (Entity::Principal, "agent") => Typed::Entity(Entity::Agent),
        (Entity::Agent, "owner") => Typed::Text(Text::AgentOwner),
        (Entity::Agent, "environment") => Typed::Text(Text::AgentEnvironment),
        (Entity::Agent, "status") => Typed::Text(Text::AgentStatus),
        (Entity::Agent, "scopes") => Typed::Strings(Strings::AgentScopes),
        (Entity::Resource, "plane") => Typed::Text(Text::ResourcePlane),
        (Entity::Resource, "environment") => Typed::Text(Text::ResourceEnvironment),
        (Entity::Resource, "data_class") => Typed::Text(Text::ResourceDataClass),
        _ => return None,
    })
}

/// Whether `entity has name`, for the entities the request supplies with every
/// attribute of their type.
fn entity_has(entity: &Entity, name: &str) -> Option<bool> {
    let known: &[&str] = match entity {
        Entity::Principal => &["purpose", "agent"],
        Entity::Agent => &["owner", "environment", "status", "scopes"],
        Entity::Resource => &["plane", "environment", "data_class"],
        Entity::Action | Entity::Literal { .. } => return None,
    };
    Some(known.contains(&name))
}

fn boxed<T>(value: T) -> Box<T> {
    Box::new(value)
}

impl Compiler<'_> {
    /// The condition, if `expr` is a boolean expression of the subset.
    pub(crate) fn condition(&self, expr: &Expr) -> Option<Condition> {
        self.condition_at(expr, 0).map(Condition)
    }

    fn condition_at(&self, expr: &Expr, depth: usize) -> Option<Node> {
        match self.typed(expr, depth)? {
            Typed::Bool(condition) => Some(condition),
            _ => None,
        }
    }

    fn entity_literal(&self, uid: &EntityUID) -> Option<Entity> {
        let kind = self.kinds.of(uid.entity_type())?;
        let id: &str = uid.eid().as_ref();
        let action = match kind {
            Kind::Action => self.catalogue.index(id),
            _ => None,
        };
        Some(Entity::Literal { kind, id: SmolStr::new(id), action })
    }

    fn typed(&self, expr: &Expr, depth: usize) -> Option<Typed> {
        if depth > DEPTH_MAX {
            return None;
        }
        let next = depth + 1;
        let condition = |expr: &Expr| self.condition_at(expr, next);
        Some(match expr.expr_kind() {
            ExprKind::Lit(Literal::Bool(value)) => Typed::Bool(Node::Literal(*value)),
            ExprKind::Lit(Literal::Long(value)) => Typed::Long(Long::Literal(*value)),
            ExprKind::Lit(Literal::String(value)) => Typed::Text(Text::Literal(value.clone())),
            ExprKind::Lit(Literal::EntityUID(uid)) => Typed::Entity(self.entity_literal(uid)?),
            ExprKind::Var(Var::Principal) => Typed::Entity(Entity::Principal),
            ExprKind::Var(Var::Action) => Typed::Entity(Entity::Action),
            ExprKind::Var(Var::Resource) => Typed::Entity(Entity::Resource),
            ExprKind::If { test_expr, then_expr, else_expr } => Typed::Bool(Node::If(boxed((
                condition(test_expr)?,
                condition(then_expr)?,
                condition(else_expr)?,
            )))),
            ExprKind::And { left, right } => {
                Typed::Bool(Node::And(boxed((condition(left)?, condition(right)?))))
            }
            ExprKind::Or { left, right } => {
                Typed::Bool(Node::Or(boxed((condition(left)?, condition(right)?))))
            }
            ExprKind::UnaryApp { op: UnaryOp::Not, arg } => Typed::Bool(Node::Not(boxed(condition(arg)?))),
            ExprKind::UnaryApp { op: UnaryOp::IsEmpty, arg } => match self.typed(arg, next)? {
                Typed::Strings(set) => Typed::Bool(Node::IsEmpty(set)),
                _ => return None,
            },
            ExprKind::BinaryApp { op, arg1, arg2 } => {
                Typed::Bool(self.binary(*op, self.typed(arg1, next)?, self.typed(arg2, next)?)?)
            }
            ExprKind::GetAttr { expr: object, attr } => match object.expr_kind() {
                ExprKind::Var(Var::Context) => context_attribute(attr)?,
                _ => match self.typed(object, next)? {
                    Typed::Entity(entity) => entity_attribute(&entity, attr)?,
                    _ => return None,
                },
            },
            ExprKind::HasAttr { expr: object, attr } => match object.expr_kind() {
                ExprKind::Var(Var::Context) => Typed::Bool(Node::Literal(context_attribute(attr).is_some())),
                _ => match self.typed(object, next)? {
                    Typed::Entity(entity) => Typed::Bool(Node::Literal(entity_has(&entity, attr)?)),
                    _ => return None,
                },
            },
            ExprKind::Like { expr: text, pattern } => match self.typed(text, next)? {
                Typed::Text(text) => Typed::Bool(Node::Like(text, pattern.clone())),
                _ => return None,
            },
            ExprKind::Is { expr: entity, entity_type } => match self.typed(entity, next)? {
                // An entity of a type outside the schema is never one of ours.
                Typed::Entity(entity) => Typed::Bool(match self.kinds.of(entity_type) {
                    Some(kind) => Node::Is(entity, kind),
                    None => Node::Literal(false),
                }),
                _ => return None,
            },
            ExprKind::Set(elements) => self.set(elements, next)?,
            _ => return None,
        })
    }

    /// A set literal: of strings, or of entities for the right side of `in`. Empty
    /// sets and mixed sets are left to Cedar.
    fn set(&self, elements: &[Expr], depth: usize) -> Option<Typed> {
        let mut texts = Vec::new();
        let mut entities = Vec::new();
        for element in elements {
            match self.typed(element, depth)? {
                Typed::Text(text) if entities.is_empty() => texts.push(text),
                Typed::Entity(entity) if texts.is_empty() => entities.push(entity),
                _ => return None,
            }
        }
        match (texts.is_empty(), entities.is_empty()) {
            (false, true) => Some(Typed::Strings(Strings::Literal(texts))),
            (true, false) => Some(Typed::Entities(entities)),
            _ => None,
        }
    }

    fn binary(&self, op: BinaryOp, left: Typed, right: Typed) -> Option<Node> {
        use Typed as T;
        Some(match (op, left, right) {
            (BinaryOp::Eq, T::Bool(a), T::Bool(b)) => Node::BoolEq(boxed((a, b))),
            (BinaryOp::Eq, T::Long(a), T::Long(b)) => Node::LongEq(a, b),
            (BinaryOp::Eq, T::Text(a), T::Text(b)) => Node::TextEq(a, b),
            (BinaryOp::Eq, T::Entity(a), T::Entity(b)) => Node::EntityEq(a, b),
            (BinaryOp::Less, T::Long(a), T::Long(b)) => Node::Less(a, b),
            (BinaryOp::LessEq, T::Long(a), T::Long(b)) => Node::LessEq(a, b),
            (BinaryOp::In, T::Entity(a), T::Entity(b)) => Node::In(a, vec![b]),
            (BinaryOp::In, T::Entity(a), T::Entities(b)) => Node::In(a, b),
            (BinaryOp::Contains, T::Strings(set), T::Text(text)) => Node::Contains(set, text),
            (BinaryOp::ContainsAll, T::Strings(a), T::Strings(b)) => Node::ContainsAll(a, b),
            (BinaryOp::ContainsAny, T::Strings(a), T::Strings(b)) => Node::ContainsAny(a, b),
            _ => return None,
        })
    }
}

/// An entity of the request or of a policy, resolved.
#[derive(Clone, Copy)]
struct Ref<'a> {
    kind: Kind,
    id: &'a str,
    action: Option<ActionIndex>,
}

impl PartialEq for Ref<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.id == other.id
    }
}

/// What a condition reads: the request, its action and the action hierarchy.
#[derive(Clone, Copy)]
pub(crate) struct Facts<'a> {
    pub(crate) request: &'a Request,
    pub(crate) action: ActionIndex,
    pub(crate) catalogue: &'a Catalogue,
}

impl<'a> Facts<'a> {
    fn entity(&self, entity: &'a Entity) -> Ref<'a> {
        let Request { agent, session, resource, intent, .. } = self.request;
        let (kind, id, action) = match entity {
            Entity::Principal => (Kind::Session, session.id.as_str(), None),
            Entity::Agent => (Kind::Agent, agent.id.as_str(), None),
            Entity::Resource => (Kind::Resource, resource.id.as_str(), None),
            Entity::Action => (Kind::Action, intent.as_str(), Some(self.action)),
            Entity::Literal { kind, id, action } => (*kind, id.as_str(), *action),
        };
        Ref { kind, id, action }
    }

    /// Whether `descendant` is `ancestor` or below it, in the hierarchy Cedar sees:
    /// the session in its agent and owner, the agent in its owner, each action in its
    /// ancestors; any other entity (the owner, a resource, an entity no request
    /// supplies) has no parents.
    fn is_in(&self, descendant: Ref<'_>, ancestor: Ref<'_>) -> bool {
        if descendant == ancestor {
            return true;
        }
        let Request { agent, session, .. } = self.request;
        let owner = Ref { kind: Kind::Owner, id: &agent.owner, action: None };
        match descendant.kind {
            Kind::Session if descendant.id == session.id => {
                ancestor == Ref { kind: Kind::Agent, id: &agent.id, action: None } || ancestor == owner
            }
            Kind::Agent if descendant.id == agent.id => ancestor == owner,
            Kind::Action => match (descendant.action, ancestor.action) {
                (Some(descendant), Some(ancestor)) => {
                    self.catalogue.ancestors(descendant).contains(&ancestor)
                }
                _ => false,
            },
            _ => false,
        }
    }

    fn long(&self, value: &Long) -> i64 {
        let context = &self.request.context;
        match value {
            Long::Literal(value) => *value,
            Long::ToolCalls => long(context.tool_calls),
            Long::Writes => long(context.writes),
            Long::Bytes => long(context.bytes),
            Long::InFlight => long(context.in_flight),
            Long::BudgetToolCallsLeft => long(context.budget_tool_calls_left),
            Long::BudgetWritesLeft => long(context.budget_writes_left),
            Long::BudgetBytesLeft => long(context.budget_bytes_left),
            Long::NowUnixS => context.now_unix_s,
            Long::HourUtc => hour_utc(context.now_unix_s),
            Long::RiskPermille => i64::from(context.risk_permille),
        }
    }

    fn text(&self, value: &'a Text) -> &'a str {
        let Request { agent, session, resource, context, .. } = self.request;
        match value {
            Text::Literal(value) => value,
            Text::Purpose => &session.purpose,
            Text::AgentOwner => &agent.owner,
            Text::AgentEnvironment => &agent.environment,
            Text::AgentStatus => &agent.status,
            Text::ResourcePlane => &resource.plane,
            Text::ResourceEnvironment => &resource.environment,
            Text::ResourceDataClass => &resource.data_class,
            Text::Arguments => &context.arguments,
        }
    }

    /// Whether the set holds `text`.
    fn contains(&self, set: &'a Strings, text: &str) -> bool {
        match set {
            Strings::Literal(elements) => elements.iter().any(|element| self.text(element) == text),
            Strings::AgentScopes => self.request.agent.scopes.iter().any(|element| element == text),
            Strings::ArgumentDestinations => {
                self.request.context.argument_destinations.iter().any(|element| element == text)
            }
        }
    }

    /// Calls `test` on each element of the set until it answers `true`.
    fn any(&self, set: &'a Strings, mut test: impl FnMut(&str) -> bool) -> bool {
        match set {
            Strings::Literal(elements) => elements.iter().any(|element| test(self.text(element))),
            Strings::AgentScopes => self.request.agent.scopes.iter().any(|element| test(element)),
            Strings::ArgumentDestinations => {
                self.request.context.argument_destinations.iter().any(|element| test(element))
            }
        }
    }
}

/// A condition compiled from a Cedar expression of the subset.
#[derive(Debug, Clone)]
pub(crate) struct Condition(Node);

impl Condition {
    /// Cedar's value of the condition for the request in `facts`.
    pub(crate) fn holds<'a>(&'a self, facts: &Facts<'a>) -> bool {
        self.0.holds(facts)
    }
}

impl Node {
    fn holds<'a>(&'a self, facts: &Facts<'a>) -> bool {
        match self {
            Self::Literal(value) => *value,
            Self::SelfGovernance => facts.request.context.self_governance,
            Self::Not(inner) => !inner.holds(facts),
            Self::And(pair) => pair.0.holds(facts) && pair.1.holds(facts),
            Self::Or(pair) => pair.0.holds(facts) || pair.1.holds(facts),
            Self::If(parts) => match parts.0.holds(facts) {
                true => parts.1.holds(facts),
                false => parts.2.holds(facts),
            },
            Self::BoolEq(pair) => pair.0.holds(facts) == pair.1.holds(facts),
            Self::LongEq(a, b) => facts.long(a) == facts.long(b),
            Self::Less(a, b) => facts.long(a) < facts.long(b),
            Self::LessEq(a, b) => facts.long(a) <= facts.long(b),
            Self::TextEq(a, b) => facts.text(a) == facts.text(b),
            Self::EntityEq(a, b) => facts.entity(a) == facts.entity(b),
            Self::In(entity, ancestors) => {
                let entity = facts.entity(entity);
                ancestors.iter().any(|ancestor| facts.is_in(entity, facts.entity(ancestor)))
            }
            Self::Is(entity, kind) => facts.entity(entity).kind == *kind,
            Self::Like(text, pattern) => pattern.wildcard_match(facts.text(text)),
            Self::Contains(set, text) => facts.contains(set, facts.text(text)),
            Self::ContainsAll(set, wanted) => !facts.any(wanted, |element| !facts.contains(set, element)),
            Self::ContainsAny(set, wanted) => facts.any(wanted, |element| facts.contains(set, element)),
            Self::IsEmpty(set) => !facts.any(set, |_| true),
        }
    }
}

/// The catalogue indexes of every action entity literal in `expr`: Cedar's evaluator
/// needs those entities (with their ancestors) to answer `in` about them.
pub(crate) fn action_literals(expr: &Expr, kinds: &Kinds, catalogue: &Catalogue) -> Vec<ActionIndex> {
    expr.subexpressions()
        .filter_map(|expr| match expr.expr_kind() {
            ExprKind::Lit(Literal::EntityUID(uid)) if kinds.of(uid.entity_type()) == Some(Kind::Action) => {
                catalogue.index(uid.eid().as_ref())
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{AgentFacts, RequestContext, ResourceFacts, SessionFacts};

    fn catalogue() -> Catalogue {
        Catalogue::new(&["db.read:raw".to_owned(), "db.write".to_owned(), "ticket.create".to_owned()])
            .unwrap()
    }

    fn compiled(condition: &str, catalogue: &Catalogue) -> Option<Condition> {
        let text = format!("permit (principal, action, resource) when {{ {condition} }};");
        let policy = cedar_policy::Policy::parse(None, &text).unwrap();
        let policy: &cedar_policy_core::ast::Policy = policy.as_ref();
        let kinds = Kinds::new().unwrap();
        Compiler { kinds: &kinds, catalogue }.condition(policy.non_scope_constraints().unwrap())
    }

    fn request() -> Request {
        Request {
            agent: AgentFacts {
                id: "agt_a".into(),
                owner: "team-a".into(),
                environment: "prod".into(),
                status: "active".into(),
                scopes: vec!["db".into()],
            },
            session: SessionFacts { id: "sess_1".into(), purpose: "triage".into() },
            intent: "db.read:raw".into(),
            resource: ResourceFacts {
                id: "orders".into(),
                plane: "data".into(),
                environment: "prod".into(),
                data_class: "internal".into(),
            },
            context: RequestContext {
                writes: 3,
                bytes: u64::MAX,
                now_unix_s: 1_776_247_200,
                arguments: r#"{"to":"a@example.com"}"#.into(),
                argument_destinations: vec!["example.com".into()],
                ..RequestContext::default()
            },
        }
    }

    /// What the native evaluator answers, or `None` if it leaves the condition to
    /// Cedar. (Agreement with Cedar is the slicing property test's job.)
    fn native(condition: &str) -> Option<bool> {
        let catalogue = catalogue();
        let request = request();
        let action = catalogue.index(&request.intent).unwrap();
        let compiled = compiled(condition, &catalogue)?;
        Some(compiled.holds(&Facts { request: &request, action, catalogue: &catalogue }))
    }

    #[test]
    fn the_subset_is_evaluated_natively() {
        for (condition, expected) in [
            (
                r#"principal.agent.owner == "team-a" && resource.environment == principal.agent.environment"#,
                true,
            ),
            ("context.writes < 3 || context.writes >= 4", false),
            ("context.bytes == 9223372036854775807", true),
            ("context.hour_utc == 10", true),
            (r#"principal in Warden::Owner::"team-a""#, true),
            (r#"principal.agent in Warden::Agent::"agt_b""#, false),
            (r#"Warden::Session::"sess_1" in Warden::Agent::"agt_a""#, true),
            (r#"Warden::Session::"sess_2" in Warden::Agent::"agt_a""#, false),
            (r#"action in [Warden::Action::"ticket", Warden::Action::"db.read"]"#, true),
            (r#"Warden::Action::"db.write" in Warden::Action::"db""#, true),
            (r#"Warden::Action::"db" in Warden::Action::"db.write""#, false),
            (r#"resource in Warden::Resource::"orders" && resource is Warden::Resource"#, true),
            (r#"principal.agent == Warden::Agent::"agt_a" && !(principal is Warden::Agent)"#, true),
            (r#"context.arguments like "*@example.com*""#, true),
            (
                r#"principal.agent.scopes.containsAny(["x", "db"]) && !context.argument_destinations.isEmpty()"#,
                true,
            ),
            (r#"context.argument_destinations.containsAll(["example.com", "evil.example"])"#, false),
            ("principal.agent has scopes && context has risk_permille && !(resource has purpose)", true),
            ("if context.self_governance then false else context.writes == 3", true),
            ("(context.writes > 2) == context.self_governance", false),
        ] {
            assert_eq!(native(condition), Some(expected), "{condition}");
        }
    }

    #[test]
    fn the_rest_is_left_to_cedar() {
        for condition in [
            "context.bytes + 1 > 0",
            "-context.writes < 0",
            r#"Warden::Agent::"agt_a".status == "active""#,
            r#"context.argument_destinations == ["example.com"]"#,
            r#"ip("10.0.0.1").isLoopback()"#,
            r#"context == {"writes": 3}"#,
            "context.writes in [1, 2]",
        ] {
            assert!(native(condition).is_none(), "{condition}");
        }
    }

    #[test]
    fn deep_expressions_are_left_to_cedar() {
        let deep =
            format!("{}context.self_governance{}", "!(".repeat(DEPTH_MAX + 1), ")".repeat(DEPTH_MAX + 1));
        assert!(native(&deep).is_none());
        let shallow = format!("{}context.self_governance{}", "!(".repeat(4), ")".repeat(4));
        assert_eq!(native(&shallow), Some(false));
    }
}
