//! Self-contained receipts: a leaf, its inclusion proof and the signed checkpoint
//! the proof leads to. Anyone with the log's verifier key can check one offline.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::hash::{Hash, leaf_hash};
use crate::note::{NoteError, NoteVerifier};
use crate::verify::{VerifyError, verify_inclusion};

/// A receipt for one log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Index of the entry in the log.
    pub index: u64,
    /// Standard base64 of the exact leaf bytes.
    pub leaf: String,
    /// Size of the tree the proof is for; equals the checkpoint's size.
    pub tree_size: u64,
    /// RFC 6962 audit path, standard base64.
    pub inclusion_proof: Vec<String>,
    /// The signed checkpoint (a C2SP signed note).
    pub checkpoint: String,
}

/// Why a receipt did not verify.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// The checkpoint's signature is missing or wrong.
    #[error("checkpoint signature: {0}")]
    Signature(#[from] NoteError),
    /// The checkpoint body is malformed.
    #[error("{0}")]
    Checkpoint(#[from] CheckpointError),
    /// The checkpoint is for another log.
    #[error("checkpoint origin `{found}` is not the key's log `{expected}`")]
    WrongOrigin {
        /// The verifier key's name.
        expected: String,
        /// The checkpoint's origin.
        found: String,
    },
    /// The receipt's tree size is not the checkpoint's.
    #[error("receipt is for tree size {receipt} but the checkpoint is for {checkpoint}")]
    SizeMismatch {
        /// Size claimed by the receipt.
        receipt: u64,
        /// Size in the checkpoint.
        checkpoint: u64,
    },
    /// A field is not valid base64.
    #[error("`{0}` is not valid base64")]
    BadEncoding(&'static str),
    /// The inclusion proof does not verify.
    #[error("inclusion proof: {0}")]
    Inclusion(#[from] VerifyError),
}

impl Receipt {
    /// Checks the signature, that the checkpoint is for this log and size, and that
    /// the leaf is included. Returns the verified checkpoint and the leaf bytes.
    pub fn verify(&self, verifier: &NoteVerifier) -> Result<(Checkpoint, Vec<u8>), ReceiptError> {
        let text = verifier.verify(&self.checkpoint)?;
        let checkpoint = Checkpoint::parse(text)?;
        if checkpoint.origin != verifier.name() {
            return Err(ReceiptError::WrongOrigin {
                expected: verifier.name().to_owned(),
                found: checkpoint.origin,
            });
        }
        if checkpoint.size != self.tree_size {
            return Err(ReceiptError::SizeMismatch { receipt: self.tree_size, checkpoint: checkpoint.size });
        }
        let leaf = STANDARD.decode(&self.leaf).map_err(|_| ReceiptError::BadEncoding("leaf"))?;
        let proof = self
            .inclusion_proof
            .iter()
            .map(|h| Hash::from_base64(h).ok_or(ReceiptError::BadEncoding("inclusion_proof")))
            .collect::<Result<Vec<_>, _>>()?;
        verify_inclusion(self.index, self.tree_size, leaf_hash(&leaf), &proof, checkpoint.root)?;
        Ok((checkpoint, leaf))
    }
}
