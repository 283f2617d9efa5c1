//! Proof verification (RFC 9162 §2.1.3.2 and §2.1.4.2).
//!
//! Used by `warden log verify`, receipts and trust summaries; the test suite also
//! checks our proofs with independent implementations.

use crate::hash::{Hash, node_hash};

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The index is not in the tree.
    #[error("index {index} is not below tree size {tree_size}")]
    IndexOutOfRange {
        /// Leaf index.
        index: u64,
        /// Tree size.
        tree_size: u64,
    },
    /// The proof has the wrong number of hashes for these sizes.
    #[error("proof has the wrong length")]
    WrongLength,
    /// The proof leads to a different root.
    #[error("proof does not lead to the expected root")]
    RootMismatch,
    /// Sizes are not ordered or a non-empty proof was expected.
    #[error("{0}")]
    BadSizes(String),
}

/// Computes the root implied by an audit path (RFC 9162 §2.1.3.2).
pub fn root_from_inclusion(
    index: u64,
    tree_size: u64,
    leaf: Hash,
    proof: &[Hash],
) -> Result<Hash, VerifyError> {
    if index >= tree_size {
        return Err(VerifyError::IndexOutOfRange { index, tree_size });
    }
    let (mut fn_, mut sn) = (index, tree_size - 1);
    let mut r = leaf;
    for p in proof {
        if sn == 0 {
            return Err(VerifyError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(VerifyError::WrongLength);
    }
    Ok(r)
}

/// Verifies that `leaf` is at `index` in the tree of `tree_size` leaves with `root`.
pub fn verify_inclusion(
    index: u64,
    tree_size: u64,
    leaf: Hash,
    proof: &[Hash],
    root: Hash,
) -> Result<(), VerifyError> {
    if root_from_inclusion(index, tree_size, leaf, proof)? == root {
        Ok(())
    } else {
        Err(VerifyError::RootMismatch)
    }
}

/// Verifies that the tree of `from` leaves with `from_root` is a prefix of the tree
/// of `to` leaves with `to_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    from: u64,
    to: u64,
    from_root: Hash,
    to_root: Hash,
    proof: &[Hash],
) -> Result<(), VerifyError> {
    if from > to {
        return Err(VerifyError::BadSizes(format!("`from` {from} is larger than `to` {to}")));
    }
    if from == to {
        return if proof.is_empty() && from_root == to_root {
            Ok(())
        } else if !proof.is_empty() {
            Err(VerifyError::WrongLength)
        } else {
            Err(VerifyError::RootMismatch)
        };
    }
    if from == 0 {
        // Every tree extends the empty tree; RFC 9162 defines no proof for it.
        return if proof.is_empty() { Ok(()) } else { Err(VerifyError::WrongLength) };
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if from.is_power_of_two() {
        path.push(from_root);
    }
    path.extend_from_slice(proof);
    let mut iter = path.iter();
    let Some(first) = iter.next() else {
        return Err(VerifyError::WrongLength);
    };
    let (mut fn_, mut sn) = (from - 1, to - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in iter {
        if sn == 0 {
            return Err(VerifyError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(VerifyError::WrongLength);
    }
    if fr == from_root && sr == to_root { Ok(()) } else { Err(VerifyError::RootMismatch) }
}
