//! A bounded cache of verified token claims, for the request path.
//!
//! It stores claims, never a verdict: a hit skips only the work that depends on the
//! token alone (parsing and the signature) and [`crate::TokenVerifier::verify_cached`]
//! still checks issuer, time, audience, revocation and that the signing key is
//! still trusted on every call. Only tokens that verified completely are inserted,
//! so an attacker cannot fill it with forgeries.
//!
//! Layout: a fixed array of 4-way sets chosen by the token's SHA-256, each behind its
//! own mutex, allocated once. Insertion takes an empty or expired way, otherwise the
//! next way round-robin; memory never grows past the capacity given at creation.

use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest, Sha256};

use crate::claims::AccessClaims;
use crate::limits::{VERIFIED_CACHE_ENTRIES_DEFAULT, VERIFIED_CACHE_ENTRIES_MAX, VERIFIER_LEEWAY_S_MAX};

/// Entries per set.
const WAYS: usize = 4;

/// A SHA-256 of a token string.
pub(crate) type TokenDigest = [u8; 32];

#[derive(Clone)]
struct Entry {
    digest: TokenDigest,
    /// The key that signed the token, re-checked on every hit.
    kid: Arc<str>,
    claims: Arc<AccessClaims>,
}

impl Entry {
    /// No verifier accepts the token any more, whatever its leeway.
    fn is_dead(&self, now_unix_s: i64) -> bool {
        now_unix_s >= self.claims.exp.saturating_add(VERIFIER_LEEWAY_S_MAX)
    }
}

#[derive(Default)]
struct Set {
    ways: [Option<Entry>; WAYS],
    /// The way to evict next when none is free. INVARIANT: `< WAYS`.
    victim: usize,
}

/// A hit: the claims and the kid that signed them.
pub(crate) struct Hit {
    pub kid: Arc<str>,
    pub claims: Arc<AccessClaims>,
}

/// Fixed-capacity cache of verified claims keyed by the SHA-256 of the token.
pub struct VerifiedTokenCache {
    /// INVARIANT: the length is a power of two, at least 1.
    sets: Box<[Mutex<Set>]>,
    /// `sets.len() - 1`.
    mask: usize,
}

impl std::fmt::Debug for VerifiedTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print claims.
        f.debug_struct("VerifiedTokenCache").field("capacity", &self.capacity()).finish_non_exhaustive()
    }
}

impl Default for VerifiedTokenCache {
    fn default() -> Self {
        Self::new(VERIFIED_CACHE_ENTRIES_DEFAULT)
    }
}

impl VerifiedTokenCache {
    /// A cache holding at least `capacity_entries` (rounded up to a power of two, at
    /// least 4, at most [`VERIFIED_CACHE_ENTRIES_MAX`]); all memory is taken now.
    pub fn new(capacity_entries: usize) -> Self {
        let entries = capacity_entries.clamp(WAYS, VERIFIED_CACHE_ENTRIES_MAX).next_power_of_two();
        let set_count = (entries / WAYS).max(1);
        let sets: Box<[Mutex<Set>]> = (0..set_count).map(|_| Mutex::new(Set::default())).collect();
        Self { mask: set_count - 1, sets }
    }

    /// Most entries held at once.
    pub fn capacity(&self) -> usize {
        self.sets.len() * WAYS
    }

    /// Entries held now (walks every set; for tests and metrics, not the hot path).
    pub fn len(&self) -> usize {
        self.sets.iter().map(|set| lock(set).ways.iter().filter(|way| way.is_some()).count()).sum()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything (for example after a key is removed, to free memory early).
    pub fn clear(&self) {
        for set in self.sets.iter() {
            *lock(set) = Set::default();
        }
    }

    pub(crate) fn digest(token: &str) -> TokenDigest {
        Sha256::digest(token.as_bytes()).into()
    }

    fn set(&self, digest: &TokenDigest) -> Option<&Mutex<Set>> {
        let [b0, b1, b2, b3, b4, b5, b6, b7, ..] = *digest;
        let index = u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]) as usize & self.mask;
        self.sets.get(index)
    }

    /// The cached claims for `digest`, unless absent or dead.
    pub(crate) fn get(&self, digest: &TokenDigest, now_unix_s: i64) -> Option<Hit> {
        let mut set = lock(self.set(digest)?);
        let way = set.ways.iter_mut().find(|way| way.as_ref().is_some_and(|e| e.digest == *digest))?;
        match way {
            Some(entry) if !entry.is_dead(now_unix_s) => {
                Some(Hit { kid: Arc::clone(&entry.kid), claims: Arc::clone(&entry.claims) })
            }
            _ => {
                *way = None;
                None
            }
        }
    }

    /// Remembers verified claims.
    pub(crate) fn insert(
        &self,
        digest: TokenDigest,
        kid: Arc<str>,
        claims: Arc<AccessClaims>,
        now_unix_s: i64,
    ) {
        let Some(set) = self.set(&digest) else { return };
        let mut set = lock(set);
        let entry = Entry { digest, kid, claims };
        let free = set.ways.iter().position(|way| match way {
            None => true,
            Some(old) => old.digest == digest || old.is_dead(now_unix_s),
        });
        let index = match free {
            Some(index) => index,
            None => {
                let victim = set.victim;
                set.victim = (victim + 1) % WAYS;
                victim
            }
        };
        if let Some(way) = set.ways.get_mut(index) {
            *way = Some(entry);
        }
    }
}

/// Locks a set; a poisoned lock still holds a consistent set (no code path panics
/// while holding it), so its contents are used as they are.
fn lock(set: &Mutex<Set>) -> std::sync::MutexGuard<'_, Set> {
    set.lock().unwrap_or_else(PoisonError::into_inner)
}
