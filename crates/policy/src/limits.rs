//! Every limit this crate enforces, named with its unit last.
//!
//! Inputs beyond a limit are refused: at compile time with a diagnostic, at decision
//! time with a deny (fail closed).

/// Most intents in a catalogue, ancestors included.
pub const INTENTS_MAX: usize = 4_096;

/// Longest intent name, such as `db.read:raw`.
pub const INTENT_CHARS_MAX: usize = 128;

/// Most policies in one set.
pub const POLICIES_MAX: usize = 100_000;

/// Longest policy id (a source id or an `@id` annotation).
pub const POLICY_ID_CHARS_MAX: usize = 128;

/// Largest policy source text.
pub const POLICY_TEXT_BYTES_MAX: usize = 64 * 1024;

/// Most actions one policy's action scope may expand to before the policy is kept in
/// the slice every action consults instead of being copied into one slice per action.
/// Bounds the memory a broad `action in …` policy can cost.
pub const POLICY_ACTION_EXPANSION_MAX: usize = 64;

/// Longest id or attribute string in a request (agent, session and resource ids,
/// owner, purpose, scopes, destinations).
pub const FACT_CHARS_MAX: usize = 256;

/// Most elements in a request set (agent scopes, argument destinations).
pub const FACT_SET_ELEMENTS_MAX: usize = 256;

/// Largest tool-call arguments text in a request.
pub const ARGUMENTS_BYTES_MAX: usize = 64 * 1024;

/// Highest risk score, in thousandths (1000 = certain compromise).
pub const RISK_PERMILLE_MAX: u16 = 1_000;
