//! Intent names and their hierarchy.
//!
//! An intent such as `db.read:raw` is a Cedar action, member of `db.read`, member of
//! `db`: the parent of an intent drops its last `:` qualifier if it has one, and
//! otherwise its last `.` segment. Names are `segment ('.' segment)* (':' segment)*`
//! with segments of `[a-z0-9_-]`.

use std::collections::{BTreeSet, HashMap};

use crate::error::PolicyError;
use crate::limits::{INTENT_CHARS_MAX, INTENTS_MAX};
use crate::quick::Quick;

/// Position of an action in the catalogue.
pub(crate) type ActionIndex = u32;

/// Checks the grammar of an intent name.
pub(crate) fn check_intent(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > INTENT_CHARS_MAX {
        return Err(format!("it must have 1 to {INTENT_CHARS_MAX} characters"));
    }
    let mut seen_colon = false;
    for segment in name.split_inclusive(['.', ':']) {
        let (body, separator) = match segment.strip_suffix(['.', ':']) {
            Some(body) => (body, segment.chars().last()),
            None => (segment, None),
        };
        if body.is_empty() {
            return Err("it has an empty segment".to_owned());
        }
        if !body.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-') {
            return Err("segments may contain only `a-z`, `0-9`, `_` and `-`".to_owned());
        }
        if separator == Some('.') && seen_colon {
            return Err("a `.` may not follow a `:` qualifier".to_owned());
        }
        seen_colon |= separator == Some(':');
    }
    if name.ends_with(['.', ':']) {
        return Err("it has an empty segment".to_owned());
    }
    Ok(())
}

/// The parent of a well-formed intent, if it has one.
pub(crate) fn parent_of(name: &str) -> Option<&str> {
    let cut = name.rfind(':').or_else(|| name.rfind('.'))?;
    name.get(..cut)
}

/// The intents a policy set is compiled against: the given catalogue and every
/// ancestor, sorted, with the hierarchy precomputed.
#[derive(Debug, Clone)]
pub(crate) struct Catalogue {
    // INVARIANT: sorted and unique; every parent of a name is also a name.
    names: Vec<String>,
    by_name: HashMap<String, ActionIndex, Quick>,
    // INVARIANT: `ancestors[i]` lists every proper ancestor of `names[i]`, nearest first.
    ancestors: Vec<Vec<ActionIndex>>,
    // INVARIANT: `descendants[i]` lists `i` and every action below it.
    descendants: Vec<Vec<ActionIndex>>,
}

impl Catalogue {
    /// Validates the catalogue and adds the ancestors of every intent.
    pub(crate) fn new(intents: &[String]) -> Result<Self, PolicyError> {
        let mut names = BTreeSet::new();
        for intent in intents {
            check_intent(intent)
                .map_err(|reason| PolicyError::InvalidIntent { intent: intent.clone(), reason })?;
            let mut current = Some(intent.as_str());
            while let Some(name) = current {
                if !names.insert(name.to_owned()) {
                    break;
                }
                current = parent_of(name);
            }
            if names.len() > INTENTS_MAX {
                return Err(PolicyError::TooManyIntents { count: names.len(), max: INTENTS_MAX });
            }
        }
        let names: Vec<String> = names.into_iter().collect();
        let by_name: HashMap<String, ActionIndex, Quick> =
            names.iter().zip(0..).map(|(name, index)| (name.clone(), index)).collect();
        let mut ancestors = Vec::with_capacity(names.len());
        let mut descendants = vec![Vec::new(); names.len()];
        for (name, index) in names.iter().zip(0..) {
            let mut chain = Vec::new();
            let mut current = parent_of(name);
            while let Some(parent) = current {
                chain.extend(by_name.get(parent).copied());
                current = parent_of(parent);
            }
            for &ancestor in std::iter::once(&index).chain(&chain) {
                if let Some(list) = descendants.get_mut(ancestor as usize) {
                    list.push(index);
                }
            }
            ancestors.push(chain);
        }
        Ok(Self { names, by_name, ancestors, descendants })
    }

    /// Every action name, sorted.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// The index of a known action.
    pub(crate) fn index(&self, name: &str) -> Option<ActionIndex> {
        self.by_name.get(name).copied()
    }

    /// The name of an action.
    pub(crate) fn name(&self, index: ActionIndex) -> Option<&str> {
        self.names.get(index as usize).map(String::as_str)
    }

    /// The proper ancestors of an action, nearest first.
    pub(crate) fn ancestors(&self, index: ActionIndex) -> &[ActionIndex] {
        self.ancestors.get(index as usize).map_or(&[], Vec::as_slice)
    }

    /// The action and every action below it.
    pub(crate) fn descendants(&self, index: ActionIndex) -> &[ActionIndex] {
        self.descendants.get(index as usize).map_or(&[], Vec::as_slice)
    }

    /// The parent of an action, if any.
    pub(crate) fn parent(&self, index: ActionIndex) -> Option<ActionIndex> {
        self.ancestors(index).first().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        for good in ["db", "db.read", "db.read:raw", "db.read:raw:v2", "ticket_x.create-now", "a1.b2"] {
            assert_eq!(check_intent(good), Ok(()), "{good}");
        }
        for bad in ["", "Db", "db..read", ".db", "db.", "db:", "db:raw.x", "db read", "db/read", "ä"] {
            assert!(check_intent(bad).is_err(), "{bad}");
        }
        assert!(check_intent(&"a".repeat(INTENT_CHARS_MAX + 1)).is_err());
    }

    #[test]
    fn hierarchy() {
        let catalogue = Catalogue::new(&["db.read:raw".to_owned(), "db.write".to_owned()]).unwrap();
        assert_eq!(catalogue.names(), ["db", "db.read", "db.read:raw", "db.write"]);
        let raw = catalogue.index("db.read:raw").unwrap();
        let names: Vec<_> = catalogue.ancestors(raw).iter().map(|&i| catalogue.name(i).unwrap()).collect();
        assert_eq!(names, ["db.read", "db"]);
        let db = catalogue.index("db").unwrap();
        assert_eq!(catalogue.descendants(db).len(), 4);
        assert_eq!(catalogue.parent(db), None);
    }
}
