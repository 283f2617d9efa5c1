//! The offline audit behind `warden log verify --data-dir`.
//!
//! Recomputes the whole tree from the stored leaves in one streaming pass (memory
//! is `O(log n)` plus one chunk), compares every stored subtree hash with the
//! recomputed one, checks each stored checkpoint's signature and root, and proves
//! each checkpoint consistent with the next. The first problem found is reported
//! with the log index it concerns.

use warden_ledger::checkpoint::Checkpoint;
use warden_ledger::note::NoteVerifier;
use warden_ledger::proof::consistency_proof;
use warden_ledger::verify::verify_consistency;
use warden_ledger::{CompactRange, Hash, NodeId, leaf_hash};

use crate::tiles::TileNodes;
use crate::{Store, StoreError, StoredCheckpoint};

/// Leaves read per step.
const AUDIT_CHUNK_LEAVES: u64 = 16_384;
/// Checkpoints read per step.
const AUDIT_CHUNK_CHECKPOINTS: usize = 1_024;

/// What a successful audit covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Leaves recomputed.
    pub entries: u64,
    /// Leaves whose subtree hashes were stored and compared.
    pub integrated: u64,
    /// Checkpoints whose signature, root and consistency were checked.
    pub checkpoints: u64,
    /// Root of all the leaves.
    pub root: Hash,
}

/// The first problem an audit found.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A stored leaf or hash is not what the leaves produce.
    #[error("index {index}: {why}")]
    Tampered {
        /// The first log index concerned.
        index: u64,
        /// What does not match.
        why: String,
    },
    /// A stored checkpoint fails a check.
    #[error("checkpoint for tree size {size}: {why}")]
    BadCheckpoint {
        /// The checkpoint's tree size.
        size: u64,
        /// What is wrong with it.
        why: String,
    },
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Audits every leaf, stored hash and checkpoint in `store`.
pub fn audit(store: &dyn Store, verifier: &NoteVerifier) -> Result<AuditReport, AuditError> {
    let sequenced = store.sequenced_size()?;
    let integrated = store.integrated_size()?.min(sequenced);
    let mut edge = CompactRange::new();
    let mut checkpoints = Checkpoints::new(store);
    let mut previous: Option<StoredCheckpoint> = None;
    let mut checked = 0u64;
    loop {
        // Checkpoints at the current size are checked before any further leaf.
        while let Some(cp) = checkpoints.next_at_or_below(edge.size())? {
            check_checkpoint(store, verifier, &cp, &edge, previous.as_ref())?;
            checked += 1;
            previous = Some(cp);
        }
        if edge.size() >= sequenced {
            break;
        }
        let start = edge.size();
        let end = sequenced.min(start + AUDIT_CHUNK_LEAVES);
        let end = match checkpoints.peek_size() {
            Some(size) if size > start && size < end => size,
            _ => end,
        };
        let leaves = store.read_leaves(start, end)?;
        let mut emitted: Vec<(NodeId, Hash)> = Vec::with_capacity(leaves.len() * 2);
        for leaf in &leaves {
            edge.append(leaf_hash(leaf), |id, h| emitted.push((id, h)));
        }
        compare_nodes(store, &emitted, integrated)?;
    }
    if let Some(size) = checkpoints.peek_size() {
        return Err(AuditError::BadCheckpoint { size, why: format!("the log has only {sequenced} entries") });
    }
    Ok(AuditReport { entries: sequenced, integrated, checkpoints: checked, root: edge.root() })
}

/// Mismatches collected per chunk before picking the root cause.
const AUDIT_MISMATCHES_MAX: usize = 4_096;

/// Compares recomputed nodes with the stored ones, for nodes within the integrated
/// tree, and reports the root cause: a changed leaf makes all its ancestors differ
/// too, so a mismatch explained by one below it is not the culprit.
fn compare_nodes(store: &dyn Store, emitted: &[(NodeId, Hash)], integrated: u64) -> Result<(), AuditError> {
    let span = |id: &NodeId| (id.index << id.level, ((id.index + 1) << id.level) - 1);
    // Only nodes wholly inside the integrated prefix are stored.
    let wanted: Vec<&(NodeId, Hash)> = emitted.iter().filter(|(id, _)| span(id).1 < integrated).collect();
    let ids: Vec<NodeId> = wanted.iter().map(|(id, _)| *id).collect();
    let stored = TileNodes { store, cache: None }.read_nodes_opt(&ids)?;
    let mut mismatches: Vec<(NodeId, bool)> = Vec::new();
    for ((id, recomputed), found) in wanted.iter().zip(stored) {
        match found {
            Some(h) if h == *recomputed => {}
            found => mismatches.push((*id, found.is_none())),
        }
        if mismatches.len() >= AUDIT_MISMATCHES_MAX {
            break;
        }
    }
    let root_cause = mismatches
        .iter()
        .filter(|(id, _)| {
            let (lo, hi) = span(id);
            !mismatches.iter().any(|(other, _)| {
                let (lo2, hi2) = span(other);
                other.level < id.level && lo <= lo2 && hi2 <= hi
            })
        })
        .min_by_key(|(id, _)| (span(id).0, id.level));
    let Some(&(id, missing)) = root_cause else {
        return Ok(());
    };
    let (lo, hi) = span(&id);
    let level = id.level;
    let why = if missing {
        format!("stored tree node at level {level} (entries {lo}..{hi}) is missing")
    } else if level == 0 {
        "the entry does not match its stored leaf hash".to_owned()
    } else {
        format!("stored tree node at level {level} (entries {lo}..{hi}) does not match the entries")
    };
    Err(AuditError::Tampered { index: lo, why })
}

fn check_checkpoint(
    store: &dyn Store,
    verifier: &NoteVerifier,
    cp: &StoredCheckpoint,
    edge: &CompactRange,
    previous: Option<&StoredCheckpoint>,
) -> Result<(), AuditError> {
    let bad = |why: String| AuditError::BadCheckpoint { size: cp.size, why };
    let text = verifier.verify(&cp.note).map_err(|e| bad(e.to_string()))?;
    let body = Checkpoint::parse(text).map_err(|e| bad(e.to_string()))?;
    if body.origin != verifier.name() {
        return Err(bad(format!("origin `{}` is not the log's `{}`", body.origin, verifier.name())));
    }
    if body.size != cp.size || body.root != cp.root {
        return Err(bad("the signed note does not match the stored size and root".into()));
    }
    if edge.size() != cp.size || edge.root() != cp.root {
        return Err(bad("the signed root does not match the root recomputed from the entries".into()));
    }
    if let Some(prev) = previous {
        let proof = consistency_proof(&TileNodes { store, cache: None }, prev.size, cp.size)
            .map_err(|e| bad(e.to_string()))?;
        verify_consistency(prev.size, cp.size, prev.root, cp.root, &proof)
            .map_err(|e| bad(format!("not consistent with the checkpoint for size {}: {e}", prev.size)))?;
    }
    Ok(())
}

/// Streams stored checkpoints in size order.
struct Checkpoints<'a> {
    store: &'a dyn Store,
    buffer: std::collections::VecDeque<StoredCheckpoint>,
    last_size: Option<u64>,
    done: bool,
}

impl<'a> Checkpoints<'a> {
    fn new(store: &'a dyn Store) -> Self {
        Self { store, buffer: Default::default(), last_size: None, done: false }
    }

    fn fill(&mut self) -> Result<(), StoreError> {
        if self.buffer.is_empty() && !self.done {
            let page = self.store.checkpoints_after(self.last_size, AUDIT_CHUNK_CHECKPOINTS)?;
            self.done = page.len() < AUDIT_CHUNK_CHECKPOINTS;
            self.last_size = page.last().map(|c| c.size).or(self.last_size);
            self.buffer.extend(page);
        }
        Ok(())
    }

    fn peek_size(&mut self) -> Option<u64> {
        self.fill().ok()?;
        self.buffer.front().map(|c| c.size)
    }

    fn next_at_or_below(&mut self, size: u64) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.fill()?;
        match self.buffer.front() {
            Some(c) if c.size <= size => Ok(self.buffer.pop_front()),
            _ => Ok(None),
        }
    }
}
