//! The Cedar schema, generated from the intent catalogue.
//!
//! A session is `in` its agent, and an agent `in` its owner (team or human), so
//! `principal in Warden::Owner::"team-payments"` reaches every session of every agent
//! the team owns. The owner is also the agent's `owner` attribute.
//!
//! Every action, groups included, applies to sessions acting on resources, so a policy
//! may name a group with `==` as well as with `in`.
//!
//! The schema is generated as Cedar schema text, which is both what Cedar parses and
//! what [`schema_text`] shows policy authors.

use std::fmt::Write;

use crate::error::PolicyError;
use crate::intent::Catalogue;

/// The namespace every Warden type lives in.
pub const NAMESPACE: &str = "Warden";

/// Context attributes of type `Long`, in schema order.
pub(crate) const CONTEXT_LONGS: [&str; 10] = [
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
];

const ENTITIES: &str = r#"  entity Owner;

  entity Agent in [Owner] = {
    owner: String,
    environment: String,
    status: String,
    scopes: Set<String>,
  };

  entity Session in [Agent] = {
    purpose: String,
    agent: Agent,
  };

  entity Resource = {
    plane: String,
    environment: String,
    data_class: String,
  };
"#;

const APPLIES_TO: &str = "appliesTo { principal: [Session], resource: [Resource], context: Context }";

/// The schema in Cedar schema syntax. Intent names are checked by the catalogue
/// (`[a-z0-9_.:-]` only), so they can be quoted as they are.
fn schema_source(catalogue: &Catalogue) -> String {
    let mut text = format!("namespace {NAMESPACE} {{\n  type Context = {{\n");
    for name in CONTEXT_LONGS {
        let _ = writeln!(text, "    {name}: Long,");
    }
    text.push_str("    self_governance: Bool,\n    arguments: String,\n    argument_destinations: Set<String>,\n  };\n\n");
    text.push_str(ENTITIES);
    text.push('\n');
    for (name, index) in catalogue.names().iter().zip(0..) {
        let _ = match catalogue.parent(index).and_then(|parent| catalogue.name(parent)) {
            Some(parent) => writeln!(text, "  action \"{name}\" in [\"{parent}\"] {APPLIES_TO};"),
            None => writeln!(text, "  action \"{name}\" {APPLIES_TO};"),
        };
    }
    text.push_str("}\n");
    text
}

/// The schema, parsed by Cedar.
pub(crate) fn schema(catalogue: &Catalogue) -> Result<cedar_policy::Schema, PolicyError> {
    let (schema, _warnings) = cedar_policy::Schema::from_cedarschema_str(&schema_source(catalogue))
        .map_err(|error| PolicyError::Schema(error.to_string()))?;
    Ok(schema)
}

/// The schema generated from `intents`, in Cedar's schema syntax: what policy authors
/// write against.
pub fn schema_text(intents: &[String]) -> Result<String, PolicyError> {
    Ok(schema_source(&Catalogue::new(intents)?))
}
