//! Proof construction (RFC 9162 §2.1.3 and §2.1.4) over stored complete subtrees.
//!
//! A store keeps the hash of every *complete* subtree: node `(level, index)` covers
//! leaves `[index·2^level, (index+1)·2^level)` and exists once the tree has that many
//! leaves. Any RFC 6962 subtree hash, including the ragged right edge of a tree
//! whose size is not a power of two, is a fold over a few such nodes. Proofs first
//! plan which nodes they need, read them in one batch, then fold, so a store
//! answers a proof with a single round trip.

use crate::hash::{Hash, empty_root, node_hash};

/// A complete subtree: `2^level` leaves starting at leaf `index·2^level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves (0 = a leaf hash).
    pub level: u8,
    /// Position among the nodes of this level.
    pub index: u64,
}

/// Reads stored node hashes, one per requested id, in order.
pub trait NodeReader {
    /// The store's error type.
    type Error: std::error::Error + Send + Sync + 'static;
    /// Returns the hash of each node in `ids`, in the same order.
    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error>;
}

/// Errors building a proof.
#[derive(Debug, thiserror::Error)]
pub enum ProofError<E: std::error::Error + 'static> {
    /// The request does not make sense for these sizes.
    #[error("{0}")]
    InvalidRequest(String),
    /// The store failed or returned the wrong number of hashes.
    #[error("reading tree nodes: {0}")]
    Store(#[source] E),
    /// The store returned a different number of hashes than asked for.
    #[error("store returned {got} hashes for {asked} nodes")]
    ShortRead {
        /// Nodes requested.
        asked: usize,
        /// Hashes returned.
        got: usize,
    },
}

/// The complete subtrees that make up RFC 6962's `MTH(D[lo:hi])`, left to right.
///
/// INVARIANT (relied on here): every range RFC 6962's recursion produces starts at a
/// multiple of the largest power of two not exceeding its length, so greedy
/// largest-first decomposition yields stored nodes.
fn decompose(lo: u64, hi: u64, out: &mut Vec<NodeId>) {
    let mut start = lo;
    while start < hi {
        let remaining = hi - start;
        let mut level = 63 - remaining.leading_zeros() as u8;
        // Clamp to the alignment of `start`.
        if start != 0 {
            level = level.min(start.trailing_zeros() as u8);
        }
        out.push(NodeId { level, index: start >> level });
        start += 1u64 << level;
    }
}

/// Largest power of two strictly less than `n` (n ≥ 2).
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The subtree ranges whose hashes form the audit path of leaf `m` in `[lo, hi)`,
/// in RFC 6962 order (deepest first).
fn inclusion_ranges(m: u64, lo: u64, hi: u64, out: &mut Vec<(u64, u64)>) {
    let mut stack = Vec::new();
    let (mut lo, mut hi) = (lo, hi);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if m < lo + k {
            stack.push((lo + k, hi));
            hi = lo + k;
        } else {
            stack.push((lo, lo + k));
            lo += k;
        }
    }
    out.extend(stack.into_iter().rev());
}

/// The subtree ranges of the RFC 6962 consistency proof from `m` to `n` leaves.
fn consistency_ranges(m: u64, n: u64, out: &mut Vec<(u64, u64)>) {
    // SUBPROOF(m, D[lo:hi], b), unrolled: walk down, remembering the siblings, then
    // emit them in reverse (RFC order is deepest first).
    let mut stack = Vec::new();
    let (mut lo, mut hi, mut m, mut complete) = (0u64, n, m, true);
    loop {
        if m == hi - lo {
            if !complete {
                stack.push((lo, hi));
            }
            break;
        }
        let k = split_point(hi - lo);
        if m <= k {
            stack.push((lo + k, hi));
            hi = lo + k;
        } else {
            stack.push((lo, lo + k));
            m -= k;
            lo += k;
            complete = false;
        }
    }
    out.extend(stack.into_iter().rev());
}

/// Reads the nodes for `ranges` in one batch and folds each range into its hash.
fn hash_ranges<R: NodeReader>(reader: &R, ranges: &[(u64, u64)]) -> Result<Vec<Hash>, ProofError<R::Error>> {
    let mut nodes = Vec::with_capacity(ranges.len() + 4);
    let mut counts = Vec::with_capacity(ranges.len());
    for &(lo, hi) in ranges {
        let before = nodes.len();
        decompose(lo, hi, &mut nodes);
        counts.push(nodes.len() - before);
    }
    let hashes = reader.read_nodes(&nodes).map_err(ProofError::Store)?;
    if hashes.len() != nodes.len() {
        return Err(ProofError::ShortRead { asked: nodes.len(), got: hashes.len() });
    }
    let mut out = Vec::with_capacity(ranges.len());
    let mut rest = hashes.as_slice();
    for count in counts {
        let (these, tail) = rest.split_at(count);
        rest = tail;
        let mut iter = these.iter().rev();
        let Some(last) = iter.next() else {
            return Err(ProofError::InvalidRequest("empty subtree range".into()));
        };
        out.push(iter.fold(*last, |acc, left| node_hash(left, &acc)));
    }
    Ok(out)
}

/// The audit path for leaf `index` in the tree of `tree_size` leaves.
pub fn inclusion_proof<R: NodeReader>(
    reader: &R,
    index: u64,
    tree_size: u64,
) -> Result<Vec<Hash>, ProofError<R::Error>> {
    if index >= tree_size {
        return Err(ProofError::InvalidRequest(format!("index {index} is not below tree size {tree_size}")));
    }
    let mut ranges = Vec::new();
    inclusion_ranges(index, 0, tree_size, &mut ranges);
    hash_ranges(reader, &ranges)
}

/// The consistency proof between tree sizes `from` and `to` (`from ≤ to`). Empty
/// when `from` is 0 or equal to `to`, as RFC 9162 specifies.
pub fn consistency_proof<R: NodeReader>(
    reader: &R,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>, ProofError<R::Error>> {
    if from > to {
        return Err(ProofError::InvalidRequest(format!("`from` {from} is larger than `to` {to}")));
    }
    if from == 0 || from == to {
        return Ok(Vec::new());
    }
    let mut ranges = Vec::new();
    consistency_ranges(from, to, &mut ranges);
    hash_ranges(reader, &ranges)
}

/// The root hash of the tree's first `tree_size` leaves.
pub fn root_at<R: NodeReader>(reader: &R, tree_size: u64) -> Result<Hash, ProofError<R::Error>> {
    if tree_size == 0 {
        return Ok(empty_root());
    }
    let hashes = hash_ranges(reader, &[(0, tree_size)])?;
    hashes.into_iter().next().ok_or(ProofError::ShortRead { asked: 1, got: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decomposes_ragged_ranges() {
        let mut out = Vec::new();
        decompose(0, 7, &mut out);
        assert_eq!(
            out,
            vec![NodeId { level: 2, index: 0 }, NodeId { level: 1, index: 2 }, NodeId { level: 0, index: 6 }]
        );
        out.clear();
        decompose(8, 11, &mut out);
        assert_eq!(out, vec![NodeId { level: 1, index: 4 }, NodeId { level: 0, index: 10 }]);
    }

    #[test]
    fn split_point_is_largest_power_below() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(1 << 40), 1 << 39);
    }
}
