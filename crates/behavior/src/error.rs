//! Errors of the behavior engine.

/// A configuration the engine refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A number outside its range.
    #[error("`{name}` must be {range}")]
    OutOfRange {
        /// The setting.
        name: &'static str,
        /// The accepted range, in words.
        range: &'static str,
    },
    /// The chain table is too long.
    #[error("the chain table may hold at most {max} chains")]
    TooManyChains {
        /// The limit.
        max: usize,
    },
    /// A chain with no steps or too many.
    #[error("chain `{chain}` must have 1 to {max} steps")]
    ChainSteps {
        /// The chain's id.
        chain: String,
        /// The limit.
        max: usize,
    },
}

/// Bytes that are not a snapshot this engine can restore.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The magic bytes are wrong: not a behavior snapshot.
    #[error("not a behavior snapshot (expected it to start with `{expected}`)")]
    Magic {
        /// The magic expected.
        expected: &'static str,
    },
    /// A format version this build does not read.
    #[error(
        "snapshot format version {found} is not supported (this build reads versions {oldest} to {supported})"
    )]
    Version {
        /// The version in the bytes.
        found: u8,
        /// The oldest version this build reads.
        oldest: u8,
        /// The version this build writes, the newest it reads.
        supported: u8,
    },
    /// The bytes end early or hold an impossible value.
    #[error("snapshot is corrupt: {0}")]
    Corrupt(&'static str),
    /// The snapshot was taken with a chain table that the engine's does not begin with.
    #[error(
        "snapshot was taken with a table of {found} chains that the engine's {expected} chains do not begin with (chains may only be appended)"
    )]
    Chains {
        /// Chains in the snapshot.
        found: usize,
        /// Chains configured.
        expected: usize,
    },
}
