//! A fast hash for the maps on the decision path.

use std::hash::{BuildHasher, Hasher, RandomState};

/// A seeded multiply-and-fold hash for the maps a decision reads: the slice index
/// (ids of a few dozen bytes) and the intent catalogue. A decision makes up to ten
/// lookups; with std's SipHash, hashing took a tenth of its time. Keys are inserted
/// only from the catalogue and the policies, and the seed is random per map, so a
/// request cannot choose keys that collide with the stored ones.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quick {
    seed: u64,
}

impl Default for Quick {
    fn default() -> Self {
        Self { seed: RandomState::new().hash_one(0x5EED_u64) }
    }
}

impl BuildHasher for Quick {
    type Hasher = QuickHasher;

    fn build_hasher(&self) -> QuickHasher {
        QuickHasher { hash: self.seed }
    }
}

pub(crate) struct QuickHasher {
    hash: u64,
}

/// Odd constants with well-spread bits (from rustc-hash and foldhash).
const MULTIPLY: u64 = 0xf135_7aea_2e62_a9c5;
const FOLD: u64 = 0x243f_6a88_85a3_08d3;

impl QuickHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash ^ word).wrapping_mul(MULTIPLY);
    }
}

impl Hasher for QuickHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0_u8; 8];
            word.iter_mut().zip(chunk).for_each(|(to, from)| *to = *from);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        let mut word = [0_u8; 8];
        word.iter_mut().zip(rest).for_each(|(to, from)| *to = *from);
        // The length keeps `"ab\0"` and `"ab"` apart.
        self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
    }

    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        // Fold the full 128-bit product so high and low bits both depend on every
        // input bit (hashbrown uses the top 7 bits as tags, the low ones as slots).
        let product = u128::from(self.hash) * u128::from(FOLD);
        (product as u64) ^ ((product >> 64) as u64)
    }
}
