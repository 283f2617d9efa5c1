//! Every limit Warden enforces, in one place, named with its unit last.
//!
//! A limit that is not written down here is a limit nobody thought about.

/// Most events accepted in one `POST /v1/telemetry/submit` batch.
pub const TELEMETRY_BATCH_EVENTS_MAX: usize = 1_000;

/// Largest request body accepted by the telemetry endpoint.
pub const TELEMETRY_BODY_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Longest id suffix after the `agt_` / `sess_` prefix.
pub const ID_SUFFIX_CHARS_MAX: usize = 64;

/// Longest `context_ref`.
pub const CONTEXT_REF_CHARS_MAX: usize = 256;

/// Largest `context` object, measured as its canonical JSON.
pub const CONTEXT_BYTES_MAX: usize = 64 * 1024;

/// Longest RFC 3339 timestamp string accepted.
pub const TIMESTAMP_CHARS_MAX: usize = 64;

/// How far in the future an event timestamp may be (clock skew allowance).
pub const TIMESTAMP_FUTURE_SKEW_S_MAX: i64 = 300;

/// Largest leaf (canonical event JSON). Tile entry bundles length-prefix entries
/// with a big-endian u16, so a leaf can never exceed this.
pub const LEAF_BYTES_MAX: usize = u16::MAX as usize;

/// Length in bytes of the random salt mixed into a context commitment.
pub const COMMITMENT_SALT_BYTES: usize = 32;
