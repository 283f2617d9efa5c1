//! The offline audit behind `warden log verify --data-dir`.
//!
//! Recomputes the whole tree from the stored leaves in one streaming pass (memory
//! is `O(log n)` plus one chunk), compares every stored subtree hash with the
//! recomputed one, checks each stored checkpoint's signature and root, and proves
//! each checkpoint consistent with the next. The first problem found is reported
//! with the log index it concerns.

use std::collections::BTreeMap;

use warden_ledger::checkpoint::Checkpoint;
use warden_ledger::note::NoteVerifier;
use warden_ledger::proof::consistency_proof;
use warden_ledger::verify::verify_consistency;
use warden_ledger::{CompactRange, Hash, leaf_hash};

use crate::{Store, StoreError, StoreNodes, StoredCheckpoint};

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
        let mut emitted: BTreeMap<u8, Vec<(u64, Hash)>> = BTreeMap::new();
        for leaf in &leaves {
            edge.append(leaf_hash(leaf), |id, h| emitted.entry(id.level).or_default().push((id.index, h)));
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
fn compare_nodes(
    store: &dyn Store,
    emitted: &BTreeMap<u8, Vec<(u64, Hash)>>,
    integrated: u64,
) -> Result<(), AuditError> {
    let mut mismatches: Vec<(u8, u64, bool)> = Vec::new();
    for (&level, nodes) in emitted {
        let Some(&(first_index, _)) = nodes.first() else { continue };
        // Only nodes wholly inside the integrated prefix are stored.
        let stored_count = (integrated >> level).saturating_sub(first_index).min(nodes.len() as u64);
        if stored_count == 0 {
            continue;
        }
        let stored = store.read_level(level, first_index, stored_count)?;
        for (i, (index, recomputed)) in nodes.iter().take(stored_count as usize).enumerate() {
            match stored.get(i) {
                Some(h) if h == recomputed => {}
                found => mismatches.push((level, *index, found.is_none())),
            }
            if mismatches.len() >= AUDIT_MISMATCHES_MAX {
                break;
            }
        }
    }
    let span = |level: u8, index: u64| (index << level, ((index + 1) << level) - 1);
    let root_cause = mismatches
        .iter()
        .filter(|(level, index, _)| {
            let (lo, hi) = span(*level, *index);
            !mismatches.iter().any(|(l2, i2, _)| {
                let (lo2, hi2) = span(*l2, *i2);
                l2 < level && lo <= lo2 && hi2 <= hi
            })
        })
        .min_by_key(|(level, index, _)| (span(*level, *index).0, *level));
    let Some(&(level, index, missing)) = root_cause else {
        return Ok(());
    };
    let (lo, hi) = span(level, index);
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
        let proof =
            consistency_proof(&StoreNodes(store), prev.size, cp.size).map_err(|e| bad(e.to_string()))?;
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
