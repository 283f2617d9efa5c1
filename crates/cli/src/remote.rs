//! `warden log verify --url`: audits a running log from outside, as a third party.
//!
//! Checks the checkpoint's signature, that it is consistent with the last
//! checkpoint this auditor saw (kept in a state file), and a random sample of
//! inclusion proofs of entries read back from the log.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;
use serde::{Deserialize, Serialize};
use warden_ledger::checkpoint::Checkpoint;
use warden_ledger::note::NoteVerifier;
use warden_ledger::verify::{verify_consistency, verify_inclusion};
use warden_ledger::{Hash, leaf_hash};

use crate::Failure;
use crate::log_cmd::load_verifier;

/// Most inclusion proofs one run may sample.
const SAMPLES_MAX: u32 = 10_000;

#[derive(Debug, Serialize, Deserialize)]
struct SeenCheckpoint {
    origin: String,
    size: u64,
    root: String,
}

#[derive(Deserialize)]
struct ProofBody {
    hashes: Vec<String>,
}

#[derive(Deserialize)]
struct EntryBody {
    leaf: String,
}

fn get_text(url: &str) -> Result<String, Failure> {
    ureq::get(url)
        .call()
        .and_then(|mut r| r.body_mut().read_to_string())
        .map_err(|e| Failure::Failed(format!("GET {url}: {e}")))
}

fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> Result<T, Failure> {
    ureq::get(url)
        .call()
        .and_then(|mut r| r.body_mut().read_json::<T>())
        .map_err(|e| Failure::Failed(format!("GET {url}: {e}")))
}

fn hashes(body: ProofBody) -> Result<Vec<Hash>, Failure> {
    body.hashes
        .iter()
        .map(|h| {
            Hash::from_base64(h).ok_or_else(|| Failure::Failed(format!("proof hash `{h}` is not base64")))
        })
        .collect()
}

fn default_state_path(verifier: &NoteVerifier) -> PathBuf {
    let safe: String =
        verifier.name().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("warden").join(format!("verify-{safe}.json"))
}

/// Audits the log at `url`.
pub fn verify(url: &str, key: &str, state: Option<PathBuf>, samples: u32) -> Result<(), Failure> {
    if samples > SAMPLES_MAX {
        return Err(Failure::BadInput(format!("--samples {samples} is above the limit of {SAMPLES_MAX}")));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Failure::BadInput(format!("--url `{url}` must start with http:// or https://")));
    }
    let verifier = load_verifier(key)?;
    let base = url.trim_end_matches('/');
    let note = get_text(&format!("{base}/v1/log/checkpoint"))?;
    let text = verifier.verify(&note).map_err(|e| Failure::Failed(format!("checkpoint: {e}")))?;
    let cp = Checkpoint::parse(text).map_err(|e| Failure::Failed(e.to_string()))?;
    if cp.origin != verifier.name() {
        return Err(Failure::Failed(format!(
            "checkpoint origin `{}` is not `{}`",
            cp.origin,
            verifier.name()
        )));
    }
    let state_path = state.unwrap_or_else(|| default_state_path(&verifier));
    let previous = read_state(&state_path)?;
    let consistency = check_consistency(base, &cp, previous.as_ref())?;
    let sampled = sample_inclusion(base, &cp, samples)?;
    write_state(
        &state_path,
        &SeenCheckpoint { origin: cp.origin.clone(), size: cp.size, root: cp.root.to_base64() },
    )?;
    println!(
        "ok: log `{}` at size {} (root {}); {consistency}; {sampled} inclusion proofs verified",
        cp.origin,
        cp.size,
        cp.root.to_base64()
    );
    Ok(())
}

fn check_consistency(
    base: &str,
    cp: &Checkpoint,
    previous: Option<&SeenCheckpoint>,
) -> Result<String, Failure> {
    let Some(prev) = previous else {
        return Ok("first audit of this log".into());
    };
    if prev.origin != cp.origin {
        return Err(Failure::BadInput(format!(
            "the state file is for log `{}`, not `{}`; use another --state",
            prev.origin, cp.origin
        )));
    }
    let prev_root =
        Hash::from_base64(&prev.root).ok_or_else(|| Failure::BadInput("state file is corrupt".into()))?;
    if cp.size < prev.size {
        return Err(Failure::Failed(format!(
            "the log shrank: it served size {} before and {} now",
            prev.size, cp.size
        )));
    }
    let proof = if cp.size == prev.size {
        Vec::new()
    } else {
        hashes(get_json(&format!("{base}/v1/log/proof/consistency?from={}&to={}", prev.size, cp.size))?)?
    };
    verify_consistency(prev.size, cp.size, prev_root, cp.root, &proof).map_err(|e| {
        Failure::Failed(format!(
            "checkpoint at size {} is not consistent with size {}: {e}",
            cp.size, prev.size
        ))
    })?;
    Ok(format!("consistent with size {}", prev.size))
}

fn sample_inclusion(base: &str, cp: &Checkpoint, samples: u32) -> Result<u32, Failure> {
    if cp.size == 0 {
        return Ok(0);
    }
    let mut rng = rand::thread_rng();
    let mut indexes: Vec<u64> = (0..samples).map(|_| rng.gen_range(0..cp.size)).collect();
    indexes.push(cp.size - 1);
    for index in &indexes {
        let entry: EntryBody = get_json(&format!("{base}/v1/log/entries/{index}"))?;
        let leaf = STANDARD
            .decode(&entry.leaf)
            .map_err(|_| Failure::Failed(format!("entry {index} is not base64")))?;
        let proof =
            hashes(get_json(&format!("{base}/v1/log/proof/inclusion?index={index}&tree_size={}", cp.size))?)?;
        verify_inclusion(*index, cp.size, leaf_hash(&leaf), &proof, cp.root)
            .map_err(|e| Failure::Failed(format!("entry {index} is not in the checkpointed tree: {e}")))?;
    }
    Ok(indexes.len() as u32)
}

fn read_state(path: &Path) -> Result<Option<SeenCheckpoint>, Failure> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Failure::BadInput(format!("state file `{}` is corrupt: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::BadInput(format!("cannot read state file `{}`: {e}", path.display()))),
    }
}

fn write_state(path: &Path, seen: &SeenCheckpoint) -> Result<(), Failure> {
    let fail =
        |e: std::io::Error| Failure::Failed(format!("cannot write state file `{}`: {e}", path.display()));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let tmp = path.with_extension("tmp");
    let json = serde_json::to_vec_pretty(seen).map_err(|e| Failure::Failed(e.to_string()))?;
    std::fs::write(&tmp, json).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}
