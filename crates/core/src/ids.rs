//! Validated identifiers. An id that exists as a value has already been checked.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::limits::ID_SUFFIX_CHARS_MAX;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The prefix is missing.
    #[error("must start with `{prefix}`")]
    MissingPrefix {
        /// The required prefix.
        prefix: &'static str,
    },
    /// Nothing follows the prefix.
    #[error("must have 1 to {max} characters after `{prefix}`")]
    BadLength {
        /// The required prefix.
        prefix: &'static str,
        /// The longest suffix allowed.
        max: usize,
    },
    /// A character outside `[A-Za-z0-9_-]`.
    #[error("may contain only letters, digits, `_` and `-` after `{prefix}`")]
    BadCharacter {
        /// The required prefix.
        prefix: &'static str,
    },
}

fn check(prefix: &'static str, s: &str) -> Result<(), IdError> {
    let suffix = s.strip_prefix(prefix).ok_or(IdError::MissingPrefix { prefix })?;
    if suffix.is_empty() || suffix.len() > ID_SUFFIX_CHARS_MAX {
        return Err(IdError::BadLength { prefix, max: ID_SUFFIX_CHARS_MAX });
    }
    if !suffix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(IdError::BadCharacter { prefix });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// Validates `s` as an id of this kind.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check(Self::PREFIX, s)?;
                Ok(Self(s.to_owned()))
            }

            /// The id as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                check(Self::PREFIX, &s)?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// An agent id: `agt_` followed by 1 to 64 of `[A-Za-z0-9_-]`.
    AgentId,
    "agt_"
);
id_type!(
    /// A session id: `sess_` followed by 1 to 64 of `[A-Za-z0-9_-]`.
    SessionId,
    "sess_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        assert!(AgentId::parse("agt_abc123").is_ok());
        assert!(SessionId::parse("sess_xyz-789").is_ok());
        assert_eq!(AgentId::parse("abc"), Err(IdError::MissingPrefix { prefix: "agt_" }));
        assert!(matches!(AgentId::parse("agt_"), Err(IdError::BadLength { .. })));
        assert!(matches!(AgentId::parse(&format!("agt_{}", "a".repeat(65))), Err(IdError::BadLength { .. })));
        assert!(matches!(AgentId::parse("agt_a b"), Err(IdError::BadCharacter { .. })));
        assert!(matches!(SessionId::parse("agt_abc"), Err(IdError::MissingPrefix { .. })));
    }
}
