//! `warden log key`, `warden log verify --data-dir` and `warden log verify-receipt`.

use std::path::Path;

use warden_ledger::note::NoteVerifier;
use warden_ledger::receipt::Receipt;
use warden_server::datadir::DataDir;
use warden_store::audit::{AuditError, audit};
use warden_store::sqlite::SqliteStore;

use crate::Failure;

/// Reads a verifier key given inline or as a file path.
pub fn load_verifier(key: &str) -> Result<NoteVerifier, Failure> {
    let text = if key.contains('+') {
        key.to_owned()
    } else {
        std::fs::read_to_string(key)
            .map_err(|e| Failure::BadInput(format!("cannot read verifier key file `{key}`: {e}")))?
    };
    NoteVerifier::from_verifier_key(text.trim()).map_err(|e| Failure::BadInput(e.to_string()))
}

fn open_data_dir(dir: &Path) -> Result<(DataDir, NoteVerifier), Failure> {
    let data = DataDir::open_existing(dir).map_err(|e| Failure::BadInput(e.to_string()))?;
    let signer = data.existing_log_signer().map_err(|e| Failure::BadInput(e.to_string()))?;
    let verifier = NoteVerifier::from_verifier_key(&signer.verifier_key())
        .map_err(|e| Failure::Failed(e.to_string()))?;
    Ok((data, verifier))
}

/// Prints the verifier key of the log in `dir`.
pub fn key(dir: &Path) -> Result<(), Failure> {
    let data = DataDir::open_existing(dir).map_err(|e| Failure::BadInput(e.to_string()))?;
    let signer = data.existing_log_signer().map_err(|e| Failure::BadInput(e.to_string()))?;
    println!("{}", signer.verifier_key());
    Ok(())
}

/// Recomputes the tree from the stored leaves and checks every checkpoint.
pub fn verify_data_dir(dir: &Path) -> Result<(), Failure> {
    let (data, verifier) = open_data_dir(dir)?;
    let store =
        SqliteStore::open_read_only(&data.database_path()).map_err(|e| Failure::BadInput(e.to_string()))?;
    match audit(&store, &verifier) {
        Ok(report) => {
            println!(
                "ok: {} entries, {} checkpoints verified; root {}",
                report.entries,
                report.checkpoints,
                report.root.to_base64()
            );
            Ok(())
        }
        Err(AuditError::Tampered { index, why }) => {
            Err(Failure::Failed(format!("tampering at index {index}: {why}")))
        }
        Err(e @ AuditError::BadCheckpoint { .. }) => Err(Failure::Failed(format!("bad checkpoint: {e}"))),
        Err(AuditError::Store(e)) => Err(Failure::Failed(format!("cannot read the store: {e}"))),
    }
}

/// Checks a receipt offline.
pub fn verify_receipt(file: &Path, key: &str) -> Result<(), Failure> {
    let verifier = load_verifier(key)?;
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::BadInput(format!("cannot read receipt `{}`: {e}", file.display())))?;
    let receipt: Receipt = serde_json::from_str(&text)
        .map_err(|e| Failure::BadInput(format!("receipt `{}` is not a receipt: {e}", file.display())))?;
    let (checkpoint, _) =
        receipt.verify(&verifier).map_err(|e| Failure::Failed(format!("receipt is invalid: {e}")))?;
    println!(
        "ok: entry {} is in log `{}` at tree size {} (root {})",
        receipt.index,
        checkpoint.origin,
        checkpoint.size,
        checkpoint.root.to_base64()
    );
    Ok(())
}
