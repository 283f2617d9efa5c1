//! Every limit this crate enforces, in one place, named with its unit last.

/// Longest access token or client assertion accepted, checked before any decoding.
pub const TOKEN_BYTES_MAX: usize = 8 * 1024;

/// Longest lifetime (`exp - iat`) of any access token we mint or accept. Minutes,
/// not days: a token claiming more is refused even with a valid signature, which
/// also bounds how long a session or agent revocation must be remembered.
pub const TOKEN_LIFETIME_S_MAX: i64 = 3_600;

/// Access-token lifetime for every tier unless configured otherwise.
pub const TOKEN_LIFETIME_S_DEFAULT: i64 = 300;

/// Longest lifetime of a token for a production control-plane audience.
pub const PROD_CONTROL_PLANE_LIFETIME_S_MAX: i64 = 60;

/// Largest clock-skew allowance a [`crate::TokenVerifier`] may be configured with.
pub const VERIFIER_LEEWAY_S_MAX: i64 = 30;

/// Most public keys one verifier trusts at a time (current, next and retired keys).
pub const VERIFIER_KEYS_MAX: usize = 16;

/// Longest `kid` accepted in a header or a JWK.
pub const KID_CHARS_MAX: usize = 128;

/// Longest string claim (`iss`, `aud`, `jti`, `client_id`, `purpose`).
pub const CLAIM_CHARS_MAX: usize = 512;

/// Longest `scope` claim or parameter.
pub const SCOPE_CHARS_MAX: usize = 2_048;

/// Most scope tokens in one scope.
pub const SCOPE_TOKENS_MAX: usize = 64;

/// Longest `purpose` (a task class such as `ticket.triage`).
pub const PURPOSE_CHARS_MAX: usize = 64;

/// Random bytes in a generated token id (`jti`): 128 bits.
pub const TOKEN_ID_BYTES: usize = 16;

/// Random bytes in a generated client secret: 256 bits.
pub const CLIENT_SECRET_BYTES: usize = 32;

/// Shortest client secret accepted for hashing.
pub const CLIENT_SECRET_CHARS_MIN: usize = 32;

/// Longest client secret accepted for hashing or verification.
pub const CLIENT_SECRET_CHARS_MAX: usize = 256;

/// Furthest in the future a client assertion's `exp` may be.
pub const ASSERTION_LIFETIME_S_MAX: i64 = 300;

/// How far in the future a client assertion's `iat` or `nbf` may be (client clock skew).
pub const ASSERTION_CLOCK_SKEW_S_MAX: i64 = 30;

/// Longest client-assertion `jti`.
pub const ASSERTION_JTI_CHARS_MAX: usize = 256;

/// Default capacity of the client-assertion replay cache.
pub const REPLAY_CACHE_ENTRIES_DEFAULT: usize = 100_000;

/// Largest capacity of the client-assertion replay cache.
pub const REPLAY_CACHE_ENTRIES_MAX: usize = 10_000_000;

/// Default capacity of the verified-token cache.
pub const VERIFIED_CACHE_ENTRIES_DEFAULT: usize = 65_536;

/// Largest capacity of the verified-token cache.
pub const VERIFIED_CACHE_ENTRIES_MAX: usize = 1 << 22;

/// Most revoked token ids remembered at once (each until its token's `exp`).
pub const REVOKED_TOKENS_MAX: usize = 1_000_000;

/// Most revoked sessions and agents remembered at once, each.
pub const REVOKED_PRINCIPALS_MAX: usize = 1_000_000;

/// Longest resource indicator (RFC 8707) accepted as an audience.
pub const RESOURCE_CHARS_MAX: usize = 512;
