//! The reference decision path, through Cedar's public API only.
//!
//! Entities and the request are built with `cedar_policy` constructors and checked
//! against the schema (which also supplies the action entities), and the whole set is
//! evaluated by `cedar_policy::Authorizer`, permits and forbids apart so every
//! satisfied policy is reported. Slow — every policy runs — and independent of the
//! fast path in [`crate::evaluate`] and of slicing, which is what makes it a reference.

use std::collections::HashSet;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Effect, Entities, Entity, EntityId, EntityTypeName, EntityUid, Response,
    RestrictedExpression, Schema,
};

use crate::compile::{ParsedPolicy, render};
use crate::decision::{Evaluation, Failure};
use crate::error::PolicyError;
use crate::evaluate::CompiledPolicy;
use crate::request::{Request, hour_utc, long};
use crate::schema::{CONTEXT_LONGS, NAMESPACE};

/// The public-API names of Warden's entity types.
#[derive(Debug, Clone)]
pub(crate) struct TypeNames {
    pub(crate) owner: EntityTypeName,
    pub(crate) agent: EntityTypeName,
    pub(crate) session: EntityTypeName,
    pub(crate) resource: EntityTypeName,
    pub(crate) action: EntityTypeName,
}

fn type_name(name: &str) -> Result<EntityTypeName, PolicyError> {
    EntityTypeName::from_str(&format!("{NAMESPACE}::{name}"))
        .map_err(|error| PolicyError::Schema(error.to_string()))
}

impl TypeNames {
    pub(crate) fn new() -> Result<Self, PolicyError> {
        Ok(Self {
            owner: type_name("Owner")?,
            agent: type_name("Agent")?,
            session: type_name("Session")?,
            resource: type_name("Resource")?,
            action: type_name("Action")?,
        })
    }
}

/// The whole set, by effect, with what the public API needs.
#[derive(Debug)]
pub(crate) struct Reference {
    schema: Schema,
    types: TypeNames,
    permits: cedar_policy::PolicySet,
    forbids: cedar_policy::PolicySet,
    authorizer: Authorizer,
}

fn by_effect(policies: &[ParsedPolicy], effect: Effect) -> Result<cedar_policy::PolicySet, PolicyError> {
    let chosen = policies.iter().filter(|parsed| parsed.policy.effect() == effect);
    cedar_policy::PolicySet::from_policies(chosen.map(|parsed| parsed.policy.clone()))
        .map_err(|error| PolicyError::Invalid { diagnostics: vec![render(&error)] })
}

fn uid(kind: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(kind.clone(), EntityId::new(id))
}

fn string(value: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(value.to_owned())
}

fn strings(values: &[String]) -> RestrictedExpression {
    RestrictedExpression::new_set(values.iter().map(|value| string(value)))
}

fn attribute(name: &str, value: RestrictedExpression) -> (String, RestrictedExpression) {
    (name.to_owned(), value)
}

impl Reference {
    pub(crate) fn new(
        schema: Schema,
        types: TypeNames,
        policies: &[ParsedPolicy],
    ) -> Result<Self, PolicyError> {
        Ok(Self {
            permits: by_effect(policies, Effect::Permit)?,
            forbids: by_effect(policies, Effect::Forbid)?,
            schema,
            types,
            authorizer: Authorizer::new(),
        })
    }

    /// Evaluates every policy of the set; satisfied ones and failures go to
    /// `evaluation`. `find` maps a policy id to its compiled policy.
    pub(crate) fn evaluate<'a>(
        &self,
        request: &Request,
        find: impl Fn(&str) -> Option<&'a CompiledPolicy>,
        evaluation: &mut Evaluation<'a>,
    ) -> Result<(), String> {
        let (cedar_request, entities) = self.build(request)?;
        for set in [&self.permits, &self.forbids] {
            let response = self.authorizer.is_authorized(&cedar_request, set, &entities);
            collect(&response, &find, evaluation);
        }
        Ok(())
    }

    fn build(&self, request: &Request) -> Result<(cedar_policy::Request, Entities), String> {
        let Request { session, resource, intent, .. } = request;
        let session_uid = uid(&self.types.session, &session.id);
        let resource_uid = uid(&self.types.resource, &resource.id);
        let entities = self.entities(request, &session_uid, &resource_uid)?;
        let entities =
            Entities::from_entities(entities, Some(&self.schema)).map_err(|error| error.to_string())?;
        let context = context(request)?;
        let action_uid = uid(&self.types.action, intent);
        let cedar_request =
            cedar_policy::Request::new(session_uid, action_uid, resource_uid, context, Some(&self.schema))
                .map_err(|error| error.to_string())?;
        Ok((cedar_request, entities))
    }

    /// Owner, agent, session and resource; Cedar computes the hierarchy's closure and
    /// the schema supplies the action entities.
    fn entities(
        &self,
        request: &Request,
        session_uid: &EntityUid,
        resource_uid: &EntityUid,
    ) -> Result<Vec<Entity>, String> {
        let Request { agent, session, resource, .. } = request;
        let owner_uid = uid(&self.types.owner, &agent.owner);
        let agent_uid = uid(&self.types.agent, &agent.id);
        let entities = [
            Ok(Entity::new_no_attrs(owner_uid.clone(), HashSet::new())),
            Entity::new_with_tags(
                agent_uid.clone(),
                [
                    attribute("owner", string(&agent.owner)),
                    attribute("environment", string(&agent.environment)),
                    attribute("status", string(&agent.status)),
                    attribute("scopes", strings(&agent.scopes)),
                ],
                [owner_uid],
                [],
            ),
            Entity::new_with_tags(
                session_uid.clone(),
                [
                    attribute("purpose", string(&session.purpose)),
                    attribute("agent", RestrictedExpression::new_entity_uid(agent_uid.clone())),
                ],
                [agent_uid],
                [],
            ),
            Entity::new_with_tags(
                resource_uid.clone(),
                [
                    attribute("plane", string(&resource.plane)),
                    attribute("environment", string(&resource.environment)),
                    attribute("data_class", string(&resource.data_class)),
                ],
                [],
                [],
            ),
        ];
        entities.into_iter().collect::<Result<_, _>>().map_err(|error| error.to_string())
    }
}

fn context(request: &Request) -> Result<Context, String> {
    let context = &request.context;
    let longs = [
        long(context.tool_calls),
        long(context.writes),
        long(context.bytes),
        long(context.in_flight),
        long(context.budget_tool_calls_left),
        long(context.budget_writes_left),
        long(context.budget_bytes_left),
        context.now_unix_s,
        hour_utc(context.now_unix_s),
        i64::from(context.risk_permille),
    ];
    let pairs = CONTEXT_LONGS
        .iter()
        .zip(longs)
        .map(|(name, value)| attribute(name, RestrictedExpression::new_long(value)))
        .chain([
            attribute("self_governance", RestrictedExpression::new_bool(context.self_governance)),
            attribute("arguments", string(&context.arguments)),
            attribute("argument_destinations", strings(&context.argument_destinations)),
        ]);
    Context::from_pairs(pairs).map_err(|error| error.to_string())
}

/// Adds a Cedar response's satisfied and failed policies to `evaluation`.
fn collect<'a>(
    response: &Response,
    find: &impl Fn(&str) -> Option<&'a CompiledPolicy>,
    evaluation: &mut Evaluation<'a>,
) {
    let diagnostics = response.diagnostics();
    for id in diagnostics.reason() {
        let id: &str = id.as_ref();
        match find(id) {
            Some(policy) => evaluation.satisfied.push(&policy.meta),
            None => evaluation.failures.push(Failure {
                id: id.to_owned(),
                shadow: false,
                message: "policy is missing from the compiled set".to_owned(),
            }),
        }
    }
    for error in diagnostics.errors() {
        let cedar_policy::AuthorizationError::PolicyEvaluationError(error) = error;
        let id: &str = error.policy_id().as_ref();
        let shadow = find(id).is_some_and(|policy| policy.meta.shadow);
        evaluation.failures.push(Failure { id: id.to_owned(), shadow, message: render(error.inner()) });
    }
}
