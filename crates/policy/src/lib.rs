//! Cedar policy decisions for agent actions.
//!
//! Owns: the Cedar schema generated from the intent catalogue ([`schema_text`]), the
//! per-request entities and context ([`Request`]), strict validation of policy
//! changes ([`PolicySet::compile`]), tiered decisions with shadow policies
//! ([`Decision`], [`Tier`]), slicing the set so a decision evaluates only the policies
//! that can apply, the policy-set hash, and [`diff`].
//!
//! Must not depend on: tokio, hyper, a database, a clock, or any Warden crate.
//! Everything here is pure: time, counters and risk arrive in the [`Request`].
//!
//! # Model
//!
//! - **Principal**: the session, `Warden::Session::"sess_…"`, which is `in` its agent
//!   `Warden::Agent::"agt_…"`, which is `in` its owner `Warden::Owner::"team-…"`. So a
//!   policy can name a session, every session of an agent, or every agent of a team.
//!   `principal.agent` reaches the agent's attributes.
//! - **Action**: the intent. `db.read:raw` is `Warden::Action::"db.read:raw"`, member
//!   of `"db.read"`, member of `"db"`. The schema is generated from the catalogue.
//! - **Resource**: `Warden::Resource::"<id>"` with plane, environment and data class.
//! - **Context**: counters, budgets left, time, risk, arguments ([`RequestContext`]).
//!
//! # Decisions
//!
//! A permit allows; `@decision("confirm")` or `@decision("approve")` on a permit or a
//! forbid asks for that tier; a plain forbid denies; nothing permitted denies; any
//! evaluation error denies. The strictest wins (see [`Tier`] and the `decision`
//! module). `@shadow("true")` policies are evaluated and reported in
//! [`Decision::shadow`], never enforced.
//!
//! # Speed
//!
//! Parsing and strict validation happen once, in [`PolicySet::compile`]. A decision
//! evaluates only the policies whose scope can match (the `index` module). A condition
//! written in the common part of Cedar — attributes of the principal, its agent, the
//! resource and the context; `==`, `<`, `in`, `is`, `has`, `like`, set membership,
//! `&&`, `||`, `!`, `if` — is compiled at set compile time and evaluated straight
//! from the [`Request`] (the `native` module); any other condition (arithmetic,
//! extension functions, records, …) runs whole in Cedar's evaluator on a request built
//! directly in Cedar's core types (the `evaluate` and `prepare` modules), which is
//! slower but decides the same; [`PolicySet::cedar_evaluated_len`] counts those.
//! [`PolicySet::decide_unsliced`] is the plain-Cedar reference the tests compare both
//! with. Figures: `cargo run --release -p warden-policy --example decide_bench`.
//!
//! ```
//! use warden_policy::{PolicySet, PolicySource, Tier};
//!
//! let intents = vec!["db.read:raw".to_owned(), "db.write".to_owned()];
//! let sources = vec![
//!     PolicySource {
//!         id: "reads".into(),
//!         text: r#"permit (principal, action in Warden::Action::"db.read", resource);"#.into(),
//!     },
//!     PolicySource {
//!         id: "risky".into(),
//!         text: r#"@decision("approve") @reason("risk above 0.7")
//!                  forbid (principal, action, resource) when { context.risk_permille > 700 };"#.into(),
//!     },
//! ];
//! let set = PolicySet::compile(&intents, &sources)?;
//! # let request = |risk_permille| warden_policy::Request {
//! #     agent: warden_policy::AgentFacts { id: "agt_1".into(), owner: "team-a".into(),
//! #         environment: "prod".into(), status: "active".into(), scopes: vec![] },
//! #     session: warden_policy::SessionFacts { id: "sess_1".into(), purpose: "triage".into() },
//! #     intent: "db.read:raw".into(),
//! #     resource: warden_policy::ResourceFacts { id: "orders".into(), plane: "data".into(),
//! #         environment: "prod".into(), data_class: "internal".into() },
//! #     context: warden_policy::RequestContext { risk_permille, ..Default::default() },
//! # };
//! assert_eq!(set.decide(&request(0)).tier, Tier::Allow);
//! let held = set.decide(&request(800));
//! assert_eq!(held.tier, Tier::Approve);
//! assert_eq!(held.determining, ["risky"]);
//! assert_eq!(held.reasons, ["risk above 0.7"]);
//! # Ok::<(), warden_policy::PolicyError>(())
//! ```

mod compile;
mod decision;
mod diff;
mod error;
mod evaluate;
mod index;
mod intent;
pub mod limits;
mod native;
mod prepare;
mod quick;
mod reference;
mod request;
mod schema;
mod set;

pub use compile::{ANNOTATIONS, PolicySource};
pub use decision::{Decision, ShadowOutcome, Tier};
pub use diff::{PolicyChange, diff};
pub use error::PolicyError;
pub use request::{
    AGENT_STATUSES, AgentFacts, DATA_CLASSES, ENVIRONMENTS, PLANES, Request, RequestContext, ResourceFacts,
    SessionFacts,
};
pub use schema::{NAMESPACE, schema_text};
pub use set::PolicySet;
