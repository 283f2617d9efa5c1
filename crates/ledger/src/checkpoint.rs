//! C2SP `tlog-checkpoint`: the signed statement of a log's size and root.
//!
//! ```text
//! <origin>
//! <tree size, decimal>
//! <root hash, standard base64>
//! [extension lines]
//! ```

use crate::hash::Hash;

/// Why a checkpoint body could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The body does not have the three required lines.
    #[error("checkpoint is malformed: {0}")]
    Malformed(&'static str),
}

/// A checkpoint body (without signatures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's unique origin line, also the signing key's name.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 6962 root of those leaves.
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint body text, ending in a newline.
    pub fn to_text(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, self.root.to_base64())
    }

    /// Parses a checkpoint body (the signed text of a note). Extension lines are
    /// allowed and ignored.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let body = text.strip_suffix('\n').ok_or(CheckpointError::Malformed("must end with a newline"))?;
        let mut lines = body.split('\n');
        let origin =
            lines.next().filter(|l| !l.is_empty()).ok_or(CheckpointError::Malformed("missing origin"))?;
        let size_line = lines.next().ok_or(CheckpointError::Malformed("missing tree size"))?;
        // Decimal without leading zeros or signs, as the spec requires.
        if size_line.is_empty()
            || !size_line.bytes().all(|b| b.is_ascii_digit())
            || (size_line.len() > 1 && size_line.starts_with('0'))
        {
            return Err(CheckpointError::Malformed("tree size is not a decimal number"));
        }
        let size = size_line.parse().map_err(|_| CheckpointError::Malformed("tree size is out of range"))?;
        let root = lines
            .next()
            .and_then(Hash::from_base64)
            .ok_or(CheckpointError::Malformed("root hash is not base64 of 32 bytes"))?;
        if lines.any(str::is_empty) {
            return Err(CheckpointError::Malformed("empty extension line"));
        }
        Ok(Self { origin: origin.to_owned(), size, root })
    }
}
