//! What changed between two versions of a policy set, by source id.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::compile::PolicySource;

/// One source added, removed or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "lowercase")]
pub enum PolicyChange {
    /// In the new set only.
    Added {
        /// Source id.
        id: String,
        /// Its text.
        text: String,
    },
    /// In the old set only.
    Removed {
        /// Source id.
        id: String,
        /// Its text.
        text: String,
    },
    /// In both, with different text.
    Changed {
        /// Source id.
        id: String,
        /// Text before.
        old_text: String,
        /// Text after.
        new_text: String,
    },
}

impl PolicyChange {
    /// The source id the change is about.
    pub fn id(&self) -> &str {
        match self {
            Self::Added { id, .. } | Self::Removed { id, .. } | Self::Changed { id, .. } => id,
        }
    }
}

/// The changes from `old` to `new`, sorted by source id. Sources whose text is
/// byte-for-byte equal are unchanged. If an id appears twice in one list, the last
/// one counts (a set with duplicate ids does not compile).
pub fn diff(old: &[PolicySource], new: &[PolicySource]) -> Vec<PolicyChange> {
    let old: BTreeMap<&str, &str> =
        old.iter().map(|source| (source.id.as_str(), source.text.as_str())).collect();
    let new: BTreeMap<&str, &str> =
        new.iter().map(|source| (source.id.as_str(), source.text.as_str())).collect();
    let mut changes = Vec::new();
    for (&id, &old_text) in &old {
        match new.get(id) {
            None => changes.push(PolicyChange::Removed { id: id.to_owned(), text: old_text.to_owned() }),
            Some(&new_text) if new_text != old_text => changes.push(PolicyChange::Changed {
                id: id.to_owned(),
                old_text: old_text.to_owned(),
                new_text: new_text.to_owned(),
            }),
            Some(_) => {}
        }
    }
    for (&id, &text) in &new {
        if !old.contains_key(id) {
            changes.push(PolicyChange::Added { id: id.to_owned(), text: text.to_owned() });
        }
    }
    changes.sort_by(|a, b| a.id().cmp(b.id()));
    changes
}
