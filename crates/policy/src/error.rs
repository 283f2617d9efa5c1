//! Why a policy set could not be compiled.

/// A policy set, or the intent catalogue it is compiled against, was refused.
///
/// A denied *request* is never an error: it is a [`crate::Decision`] with tier `deny`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// An intent name in the catalogue is malformed.
    #[error("intent `{intent}` is invalid: {reason}")]
    InvalidIntent {
        /// The intent as given.
        intent: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The catalogue holds more intents (ancestors included) than allowed.
    #[error("the intent catalogue has {count} intents with their ancestors; at most {max} are allowed")]
    TooManyIntents {
        /// Intents with their ancestors.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The schema generated from the catalogue was refused by Cedar.
    #[error("the schema generated from the intent catalogue is invalid: {0}")]
    Schema(String),
    /// One or more policies failed to parse, broke a rule of this crate, or failed
    /// strict validation against the schema. Each diagnostic names its policy.
    #[error("policy set is invalid: {}", diagnostics.join("; "))]
    Invalid {
        /// One message per problem, each starting with the policy id.
        diagnostics: Vec<String>,
    },
}
