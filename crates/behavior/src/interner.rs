//! Names as `u32` ids, shared by every agent.
//!
//! Each kind of name (intents, resources, classes, destinations, agents) has its own
//! interner: one string arena, one table of 4-byte slots keyed by the string's hash,
//! and two small side columns per id (the families the taxonomy gives the name, and an
//! atomic counter the engine uses per kind). An agent's baseline then holds ids, not
//! strings, which is what keeps it near a kilobyte.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{PoisonError, RwLock};

use hashbrown::HashTable;

use crate::limits::{NAME_BYTES_MAX, NAMES_PER_KIND_MAX};
use crate::taxonomy::Families;

/// Cuts a name to [`NAME_BYTES_MAX`] bytes at a character boundary.
pub(crate) fn clip(name: &str) -> &str {
    if name.len() <= NAME_BYTES_MAX {
        return name;
    }
    let mut end = NAME_BYTES_MAX;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.get(..end).unwrap_or_default()
}

/// One kind's names.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    arena: String,
    // INVARIANT: `spans[id]` is the byte range of name `id` in `arena`.
    spans: Vec<(u32, u32)>,
    // INVARIANT: holds every id once, hashed by `hasher` over its name.
    table: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    // INVARIANT: `families.len() == aux.len() == spans.len()`.
    families: Vec<Families>,
    /// Per id: how many agents hold a destination in their baseline; for a class,
    /// its fleet slot plus one (0: none yet).
    aux: Vec<AtomicU32>,
}

impl Interner {
    fn span_name<'a>(arena: &'a str, spans: &[(u32, u32)], id: u32) -> &'a str {
        spans
            .get(id as usize)
            .and_then(|(start, end)| arena.get(*start as usize..*end as usize))
            .unwrap_or_default()
    }

    /// The id of a name, if interned.
    pub(crate) fn get(&self, name: &str) -> Option<u32> {
        let name = clip(name);
        let hash = self.hasher.hash_one(name);
        let (arena, spans) = (&self.arena, &self.spans);
        self.table.find(hash, |id| Self::span_name(arena, spans, *id) == name).copied()
    }

    /// The id of a name, interning it with `families` if new; `None` when the kind is full.
    pub(crate) fn intern(&mut self, name: &str, families: impl FnOnce(&str) -> Families) -> Option<u32> {
        if let Some(id) = self.get(name) {
            return Some(id);
        }
        let name = clip(name);
        if self.spans.len() >= NAMES_PER_KIND_MAX {
            return None;
        }
        let id = u32::try_from(self.spans.len()).ok()?;
        let start = u32::try_from(self.arena.len()).ok()?;
        let end = u32::try_from(self.arena.len() + name.len()).ok()?;
        self.arena.push_str(name);
        self.spans.push((start, end));
        self.families.push(families(name));
        self.aux.push(AtomicU32::new(0));
        let hash = self.hasher.hash_one(name);
        let (arena, spans, hasher) = (&self.arena, &self.spans, &self.hasher);
        self.table.insert_unique(hash, id, |id| hasher.hash_one(Self::span_name(arena, spans, *id)));
        Some(id)
    }

    /// The name of an id (empty for an unknown id).
    pub(crate) fn name(&self, id: u32) -> &str {
        Self::span_name(&self.arena, &self.spans, id)
    }

    pub(crate) fn families(&self, id: u32) -> Families {
        self.families.get(id as usize).copied().unwrap_or_default()
    }

    pub(crate) fn aux(&self, id: u32) -> u32 {
        self.aux.get(id as usize).map_or(0, |a| a.load(Ordering::Relaxed))
    }

    pub(crate) fn set_aux(&self, id: u32, value: u32) {
        if let Some(a) = self.aux.get(id as usize) {
            a.store(value, Ordering::Relaxed);
        }
    }

    pub(crate) fn add_aux(&self, id: u32, delta: i32) {
        if let Some(a) = self.aux.get(id as usize) {
            let _ = a
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_add_signed(delta)));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.arena.capacity()
            + self.spans.capacity() * size_of::<(u32, u32)>()
            + self.table.capacity() * (size_of::<u32>() + 1)
            + self.families.capacity() * size_of::<Families>()
            + self.aux.capacity() * size_of::<AtomicU32>()
    }
}

/// An interner shared across threads: lookups take a read lock, new names a write lock.
#[derive(Debug, Default)]
pub(crate) struct Shared(RwLock<Interner>);

impl Shared {
    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, Interner> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> std::sync::RwLockWriteGuard<'_, Interner> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The id of `name`, interning it if new (`None` when the kind is full).
    pub(crate) fn id(&self, name: &str, families: impl FnOnce(&str) -> Families) -> Option<u32> {
        if let Some(id) = self.read().get(name) {
            return Some(id);
        }
        self.write().intern(name, families)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_keeps_names() {
        let mut i = Interner::default();
        let a = i.intern("email:example.com", |_| Families(3));
        let b = i.intern("host:api.stripe.com", |_| Families::NONE);
        assert_eq!(i.intern("email:example.com", |_| Families::NONE), a);
        assert_ne!(a, b);
        let a = a.unwrap_or(u32::MAX);
        assert_eq!(i.name(a), "email:example.com");
        assert_eq!(i.families(a), Families(3));
        assert_eq!(i.get("nope"), None);
        i.add_aux(a, 1);
        i.add_aux(a, -3);
        assert_eq!(i.aux(a), 0);
    }

    #[test]
    fn long_names_are_clipped_at_a_character_boundary() {
        let long = "é".repeat(200);
        let clipped = clip(&long);
        assert!(clipped.len() <= NAME_BYTES_MAX);
        assert!(long.starts_with(clipped));
    }
}
