//! The behavioral telemetry event: its wire schema, validation and logged form.
//!
//! Submissions arrive as JSON (one event, or `{"events": [...]}`). Validation names
//! every bad field with a path such as `events[3].agent_id`, and a batch is accepted
//! whole or not at all. The accepted form ([`TelemetryEvent`]) becomes a
//! [`LoggedEvent`], whose RFC 8785 canonical JSON is the log leaf.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::canonical::{CanonicalError, to_canonical_vec};
use crate::commitment::SHA256_PREFIX;
use crate::ids::{AgentId, SessionId};
use crate::limits::{
    CONTEXT_BYTES_MAX, CONTEXT_REF_CHARS_MAX, TELEMETRY_BATCH_EVENTS_MAX, TIMESTAMP_CHARS_MAX,
    TIMESTAMP_FUTURE_SKEW_S_MAX,
};

/// What kind of action an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionType {
    /// Reading data.
    Read,
    /// Creating or changing data.
    Write,
    /// Removing data.
    Delete,
    /// Running code or a command.
    Execute,
    /// Sending data out (mail, webhook, upload).
    Send,
    /// Authenticating or obtaining credentials.
    Auth,
    /// Changing configuration, policy or permissions.
    Admin,
}

impl ActionType {
    /// Every accepted value, for error messages.
    pub const VOCABULARY: &'static str = "read, write, delete, execute, send, auth, admin";

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Delete => "delete",
            Self::Execute => "execute",
            Self::Send => "send",
            Self::Auth => "auth",
            Self::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "read" => Self::Read,
            "write" => Self::Write,
            "delete" => Self::Delete,
            "execute" => Self::Execute,
            "send" => Self::Send,
            "auth" => Self::Auth,
            "admin" => Self::Admin,
            _ => return None,
        })
    }
}

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It did what was asked.
    Success,
    /// It ran but did not succeed (a 4xx, a failed check).
    Failure,
    /// It broke (a 5xx, an exception).
    Error,
    /// A policy refused it.
    Denied,
    /// It has not finished yet.
    Pending,
}

impl Outcome {
    /// Every accepted value, for error messages.
    pub const VOCABULARY: &'static str = "success, failure, error, denied, pending";

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "success" => Self::Success,
            "failure" => Self::Failure,
            "error" => Self::Error,
            "denied" => Self::Denied,
            "pending" => Self::Pending,
            _ => return None,
        })
    }
}

/// One problem with one field of a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Path of the field, e.g. `events[3].agent_id`.
    pub field: String,
    /// What is wrong, in words.
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// A validated, self-reported telemetry event.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryEvent {
    /// The agent that acted.
    pub agent_id: AgentId,
    /// The session it acted in.
    pub session_id: SessionId,
    /// When it acted, as submitted (validated RFC 3339).
    pub timestamp: String,
    /// What kind of action.
    pub action_type: ActionType,
    /// How it ended.
    pub outcome: Outcome,
    /// The submitter's own commitment to the action context, if it sent one.
    pub axiom_hash: Option<String>,
    /// A reference to the work item (a PR, a ticket).
    pub context_ref: Option<String>,
    /// The full context, if the submitter wants Warden to commit to it.
    pub context: Option<Value>,
}

/// Where an event's facts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Somebody told us, naming an agent, without a credential: not observed by
    /// Warden, and nothing vouches that the named agent sent it.
    SelfReported,
    /// The agent told us under its own session token: not observed by Warden, but
    /// sent by the agent and session it names.
    SelfReportedAuthenticated,
    /// Warden observed it at the gateway; authoritative.
    Gateway,
}

/// The event as written to the log. Its canonical JSON is the leaf.
///
/// INVARIANT: fields are declared in RFC 8785 key order (ascending by UTF-16 code
/// units, which for these ASCII names is byte order) and every value is a string,
/// so plain `serde_json` output *is* the canonical form. This keeps the JCS
/// canonicalizer, which buffers and sorts every object, off the ingestion hot path;
/// `leaf_is_rfc8785_canonical` checks the equivalence against the canonicalizer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggedEvent {
    /// What kind of action.
    pub action_type: ActionType,
    /// The agent that acted.
    pub agent_id: AgentId,
    /// The submitter's commitment to the context (or Warden's, if it sent none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub axiom_hash: Option<String>,
    /// Warden's commitment to the context it was sent (see [`crate::commitment`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_commitment: Option<String>,
    /// A reference to the work item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_ref: Option<String>,
    /// Event family, `telemetry` for submitted events.
    pub kind: String,
    /// How it ended.
    pub outcome: Outcome,
    /// When Warden received it (RFC 3339, UTC).
    pub received_at: String,
    /// The session it acted in.
    pub session_id: SessionId,
    /// Who reported it.
    pub source: Source,
    /// When the action happened, per the reporter.
    pub timestamp: String,
}

/// Typical leaf size, to allocate once.
const LEAF_BYTES_TYPICAL: usize = 512;

impl LoggedEvent {
    /// The log leaf: RFC 8785 canonical JSON.
    pub fn to_leaf(&self) -> Result<Vec<u8>, CanonicalError> {
        let mut out = Vec::with_capacity(LEAF_BYTES_TYPICAL);
        serde_json::to_writer(&mut out, self).map_err(|e| CanonicalError::Unrepresentable(e.to_string()))?;
        Ok(out)
    }
}

/// Formats a time as RFC 3339 UTC, the form Warden writes.
pub fn format_rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}

// ---- wire parsing -----------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEvent<'a> {
    #[serde(borrow)]
    agent_id: Cow<'a, str>,
    #[serde(borrow)]
    session_id: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow)]
    action_type: Cow<'a, str>,
    #[serde(borrow)]
    outcome: Cow<'a, str>,
    #[serde(default, borrow)]
    axiom_hash: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    context_ref: Option<Cow<'a, str>>,
    #[serde(default)]
    context: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireBatch<'a> {
    #[serde(borrow)]
    events: Vec<WireEvent<'a>>,
}

const EVENT_FIELDS: [&str; 8] =
    ["agent_id", "session_id", "timestamp", "action_type", "outcome", "axiom_hash", "context_ref", "context"];

/// Parses and validates a submission body: one event or `{"events": [...]}`.
///
/// Returns every event, or every problem found; never a partial batch.
pub fn parse_submission(body: &[u8], now: OffsetDateTime) -> Result<Vec<TelemetryEvent>, Vec<FieldError>> {
    // Fast path: typed deserialization of well-formed input. Only when it fails do
    // we walk the input as untyped JSON to name every bad field.
    let wires: Vec<(At, WireEvent<'_>)> = if let Ok(batch) = serde_json::from_slice::<WireBatch<'_>>(body) {
        check_batch_len(batch.events.len())?;
        batch.events.into_iter().enumerate().map(|(i, w)| (At::Batch(i), w)).collect()
    } else if let Ok(single) = serde_json::from_slice::<WireEvent<'_>>(body) {
        vec![(At::Single, single)]
    } else {
        return Err(describe_malformed(body));
    };
    let mut errors = Vec::new();
    let mut events = Vec::with_capacity(wires.len());
    for (at, wire) in wires {
        if let Some(event) = validate(wire, at, now, &mut errors) {
            events.push(event);
        }
    }
    if errors.is_empty() { Ok(events) } else { Err(errors) }
}

fn check_batch_len(n: usize) -> Result<(), Vec<FieldError>> {
    if n == 0 {
        return Err(vec![FieldError::new("events", "must contain at least one event")]);
    }
    if n > TELEMETRY_BATCH_EVENTS_MAX {
        return Err(vec![FieldError::new(
            "events",
            format!("has {n} events; at most {TELEMETRY_BATCH_EVENTS_MAX} are accepted per request"),
        )]);
    }
    Ok(())
}

/// Where an event sits in a submission; field paths are built only for errors.
#[derive(Clone, Copy)]
enum At {
    Single,
    Batch(usize),
}

impl At {
    fn event(self) -> String {
        match self {
            Self::Single => "body".to_owned(),
            Self::Batch(i) => format!("events[{i}]"),
        }
    }

    fn field(self, name: &str) -> String {
        match self {
            Self::Single => name.to_owned(),
            Self::Batch(i) => format!("events[{i}].{name}"),
        }
    }
}

/// Slow path: explains why `body` did not deserialize, field by field.
fn describe_malformed(body: &[u8]) -> Vec<FieldError> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return vec![FieldError::new("body", format!("is not valid JSON: {e}"))],
    };
    let Value::Object(map) = value else {
        return vec![FieldError::new("body", "must be a JSON object: one event, or {\"events\": [...]}")];
    };
    let mut errors = Vec::new();
    if let Some(events) = map.get("events") {
        for key in map.keys().filter(|k| k.as_str() != "events") {
            errors.push(FieldError::new(key.as_str(), "is not allowed beside `events`"));
        }
        let Value::Array(items) = events else {
            errors.push(FieldError::new("events", "must be an array of events"));
            return errors;
        };
        if let Err(mut e) = check_batch_len(items.len()) {
            errors.append(&mut e);
            return errors;
        }
        for (i, item) in items.iter().enumerate() {
            describe_event(item, At::Batch(i), &mut errors);
        }
    } else {
        describe_event(&Value::Object(map), At::Single, &mut errors);
    }
    if errors.is_empty() {
        errors.push(FieldError::new("body", "does not match the telemetry event schema"));
    }
    errors
}

fn describe_event(item: &Value, at: At, errors: &mut Vec<FieldError>) {
    let Value::Object(map) = item else {
        errors.push(FieldError::new(at.event(), "must be a JSON object"));
        return;
    };
    for key in map.keys() {
        if !EVENT_FIELDS.contains(&key.as_str()) {
            errors.push(FieldError::new(at.field(key), "is not a known field"));
        }
    }
    let string_field = |name: &str, required: bool, errors: &mut Vec<FieldError>| match map.get(name) {
        None | Some(Value::Null) if required => errors.push(FieldError::new(at.field(name), "is required")),
        None | Some(Value::Null) | Some(Value::String(_)) => {}
        Some(_) => errors.push(FieldError::new(at.field(name), "must be a string")),
    };
    for name in ["agent_id", "session_id", "timestamp", "action_type", "outcome"] {
        string_field(name, true, errors);
    }
    for name in ["axiom_hash", "context_ref"] {
        string_field(name, false, errors);
    }
    // The typed fields that are present and well-typed get their semantic checks too,
    // so one response names every problem.
    if let Ok(wire) = wire_from_map(map) {
        validate(wire, at, OffsetDateTime::now_utc(), errors);
    }
}

/// Builds a wire event from a map whose types may be wrong, skipping wrong types.
fn wire_from_map(map: &Map<String, Value>) -> Result<WireEvent<'_>, ()> {
    let s = |name: &str| map.get(name).and_then(Value::as_str).map(Cow::Borrowed);
    Ok(WireEvent {
        agent_id: s("agent_id").ok_or(())?,
        session_id: s("session_id").ok_or(())?,
        timestamp: s("timestamp").ok_or(())?,
        action_type: s("action_type").ok_or(())?,
        outcome: s("outcome").ok_or(())?,
        axiom_hash: s("axiom_hash"),
        context_ref: s("context_ref"),
        context: map.get("context").cloned(),
    })
}

/// Semantic validation of one event; pushes an error per bad field.
fn validate(
    wire: WireEvent<'_>,
    at: At,
    now: OffsetDateTime,
    errors: &mut Vec<FieldError>,
) -> Option<TelemetryEvent> {
    let before = errors.len();
    let agent_id = AgentId::parse(&wire.agent_id)
        .map_err(|e| errors.push(FieldError::new(at.field("agent_id"), e.to_string())))
        .ok();
    let session_id = SessionId::parse(&wire.session_id)
        .map_err(|e| errors.push(FieldError::new(at.field("session_id"), e.to_string())))
        .ok();
    if let Err(message) = check_timestamp(&wire.timestamp, now) {
        errors.push(FieldError::new(at.field("timestamp"), message));
    }
    let action_type = ActionType::parse(&wire.action_type);
    if action_type.is_none() {
        errors.push(FieldError::new(
            at.field("action_type"),
            format!("`{}` is not one of: {}", truncate(&wire.action_type), ActionType::VOCABULARY),
        ));
    }
    let outcome = Outcome::parse(&wire.outcome);
    if outcome.is_none() {
        errors.push(FieldError::new(
            at.field("outcome"),
            format!("`{}` is not one of: {}", truncate(&wire.outcome), Outcome::VOCABULARY),
        ));
    }
    if let Some(hash) = &wire.axiom_hash
        && !is_sha256_commitment(hash)
    {
        errors.push(FieldError::new(
            at.field("axiom_hash"),
            "must be `sha256:` followed by 64 lowercase hex digits",
        ));
    }
    if let Some(r) = &wire.context_ref {
        check_context_ref(r).unwrap_or_else(|m| errors.push(FieldError::new(at.field("context_ref"), m)));
    }
    match &wire.context {
        Some(Value::Object(_)) => match to_canonical_vec(&wire.context) {
            Ok(bytes) if bytes.len() > CONTEXT_BYTES_MAX => errors.push(FieldError::new(
                at.field("context"),
                format!(
                    "is {} bytes as canonical JSON; at most {CONTEXT_BYTES_MAX} are accepted",
                    bytes.len()
                ),
            )),
            Ok(_) => {}
            Err(e) => errors.push(FieldError::new(at.field("context"), e.to_string())),
        },
        Some(Value::Null) | None => {
            if wire.axiom_hash.is_none() {
                errors.push(FieldError::new(
                    at.field("axiom_hash"),
                    "is required unless a `context` object is sent for Warden to commit to",
                ));
            }
        }
        Some(_) => errors.push(FieldError::new(at.field("context"), "must be a JSON object")),
    }
    if errors.len() != before {
        return None;
    }
    Some(TelemetryEvent {
        agent_id: agent_id?,
        session_id: session_id?,
        timestamp: wire.timestamp.into_owned(),
        action_type: action_type?,
        outcome: outcome?,
        axiom_hash: wire.axiom_hash.map(Cow::into_owned),
        context_ref: wire.context_ref.map(Cow::into_owned),
        context: wire.context.filter(|c| !c.is_null()),
    })
}

fn truncate(s: &str) -> Cow<'_, str> {
    const SHOWN_CHARS_MAX: usize = 40;
    if s.chars().count() <= SHOWN_CHARS_MAX {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!("{}…", s.chars().take(SHOWN_CHARS_MAX).collect::<String>()))
    }
}

fn check_timestamp(s: &str, now: OffsetDateTime) -> Result<(), String> {
    if s.len() > TIMESTAMP_CHARS_MAX {
        return Err(format!("is longer than {TIMESTAMP_CHARS_MAX} characters"));
    }
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|_| format!("`{}` is not an RFC 3339 timestamp like 2026-04-15T01:23:45Z", truncate(s)))?;
    if t - now > time::Duration::seconds(TIMESTAMP_FUTURE_SKEW_S_MAX) {
        return Err(format!(
            "`{s}` is more than {TIMESTAMP_FUTURE_SKEW_S_MAX} seconds in the future of the server's clock"
        ));
    }
    Ok(())
}

fn check_context_ref(r: &str) -> Result<(), String> {
    if r.is_empty() || r.chars().count() > CONTEXT_REF_CHARS_MAX {
        return Err(format!("must have 1 to {CONTEXT_REF_CHARS_MAX} characters"));
    }
    if r.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(())
}

/// True for `sha256:` followed by exactly 64 lowercase hex digits.
pub fn is_sha256_commitment(s: &str) -> bool {
    s.strip_prefix(SHA256_PREFIX).is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests;
