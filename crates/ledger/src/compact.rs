//! The right edge of the tree: what integration needs to append leaves.
//!
//! For a tree of `size` leaves, the right edge is one perfect-subtree hash per set
//! bit of `size` (largest first): `O(log n)` memory however large the log grows.
//! Appending a leaf merges equal-sized subtrees and reports every node that became
//! complete, so the store can persist exactly the nodes that proofs will read.

use crate::hash::{Hash, empty_root, node_hash};
use crate::proof::NodeId;

/// The perfect subtrees covering leaves `[0, size)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    // INVARIANT: one entry per set bit of `size`, ordered from the highest bit to
    // the lowest; `levels[i]` is the height of the subtree whose hash is `hashes[i]`.
    levels: Vec<u8>,
    hashes: Vec<Hash>,
}

/// Errors restoring a compact range.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompactError {
    /// The number of hashes does not match the tree size.
    #[error("tree size {size} needs {expected} edge hashes, got {got}")]
    WrongHashCount {
        /// The tree size.
        size: u64,
        /// Hashes needed.
        expected: usize,
        /// Hashes given.
        got: usize,
    },
}

impl Default for CompactRange {
    fn default() -> Self {
        Self::new()
    }
}

impl CompactRange {
    /// The empty tree.
    pub fn new() -> Self {
        Self { size: 0, levels: Vec::new(), hashes: Vec::new() }
    }

    /// The nodes whose hashes make up the right edge of a tree of `size` leaves,
    /// highest first. Read them from storage and pass them to [`Self::restore`].
    pub fn edge_nodes(size: u64) -> Vec<NodeId> {
        let mut nodes = Vec::new();
        let mut start = 0u64;
        for level in (0..64u8).rev() {
            if size & (1u64 << level) != 0 {
                nodes.push(NodeId { level, index: start >> level });
                start += 1u64 << level;
            }
        }
        nodes
    }

    /// Rebuilds the right edge from the hashes of [`Self::edge_nodes`]`(size)`.
    pub fn restore(size: u64, hashes: Vec<Hash>) -> Result<Self, CompactError> {
        let nodes = Self::edge_nodes(size);
        if nodes.len() != hashes.len() {
            return Err(CompactError::WrongHashCount { size, expected: nodes.len(), got: hashes.len() });
        }
        Ok(Self { size, levels: nodes.iter().map(|n| n.level).collect(), hashes })
    }

    /// Number of leaves covered.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash; calls `on_node` for the leaf node and every interior
    /// node that became complete, bottom-up.
    pub fn append(&mut self, leaf: Hash, mut on_node: impl FnMut(NodeId, Hash)) {
        let mut level = 0u8;
        let mut index = self.size;
        let mut hash = leaf;
        on_node(NodeId { level, index }, hash);
        while let (Some(&top_level), Some(top_hash)) = (self.levels.last(), self.hashes.last()) {
            if top_level != level {
                break;
            }
            hash = node_hash(top_hash, &hash);
            self.levels.pop();
            self.hashes.pop();
            level += 1;
            index >>= 1;
            on_node(NodeId { level, index }, hash);
        }
        self.levels.push(level);
        self.hashes.push(hash);
        self.size += 1;
    }

    /// The RFC 6962 root hash of the leaves so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.hashes.iter().rev();
        let Some(last) = iter.next() else {
            return empty_root();
        };
        iter.fold(*last, |acc, left| node_hash(left, &acc))
    }
}
