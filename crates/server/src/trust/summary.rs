//! The trust summary document and its offline verification. Pure: no IO.
//!
//! A summary is what one Warden says about one agent's behavior, in a form
//! another organization can check without trusting the messenger:
//!
//! - `summary`: the claims (first seen, counts by intent and outcome, anomalies,
//!   current status and risk), the signed checkpoint they are anchored to, and the
//!   entries they cite (`cited`: log index, role and the leaf fields claimed);
//! - `signature`: a C2SP signed note by the log's key over
//!   `warden trust summary v1\n<agent>\n<tree size>\nsha256:<hex>\n`, where the
//!   digest is of the RFC 8785 canonical JSON of `summary` exactly as sent;
//! - `evidence`: for each cited entry, its exact leaf and an inclusion proof
//!   against the checkpoint's root. Evidence is outside the signature on purpose:
//!   it proves itself against the signed root, so a doctored leaf or proof is
//!   caught by the mathematics, not only by a signature.
//!
//! Why the log's key and not a key of its own: the partner needs one key, the
//! one the log already publishes (`warden log key`, `GET /v1/log/key`) and that
//! witnesses and auditors may already pin, and the summary is worthless unless
//! that same key signed the checkpoint anyway. The two kinds of note cannot be
//! taken for each other: a summary's first line contains spaces, so it can never
//! be a checkpoint origin (key names have no whitespace, and checkpoint readers
//! require origin = key name), and a summary must start with that exact line.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use warden_ledger::checkpoint::Checkpoint;
use warden_ledger::hash::{Hash, leaf_hash};
use warden_ledger::note::{NoteError, NoteSigner, NoteVerifier};
use warden_ledger::verify::verify_inclusion;

/// The document format this module writes and reads.
pub const SUMMARY_FORMAT: &str = "warden-trust-summary/v1";
/// The first line of the signed text; see the module documentation.
pub const SIGNED_TEXT_HEADER: &str = "warden trust summary v1";
/// Most recent decisions a summary cites.
pub const CITED_DECISIONS_MAX: usize = 20;
/// Most anomalies a summary cites (the latest; `counts.anomalies` has them all).
pub const CITED_ANOMALIES_MAX: usize = 100;

/// The whole document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustDocument {
    /// Always [`SUMMARY_FORMAT`].
    pub format: String,
    /// The signed claims.
    pub summary: Value,
    /// The signed note over the summary's digest.
    pub signature: String,
    /// A leaf and an inclusion proof for each cited entry.
    pub evidence: Vec<Evidence>,
}

/// What the summary claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// The agent.
    pub agent_id: String,
    /// The log's origin (its key name).
    pub log_origin: String,
    /// When Warden issued the summary (RFC 3339).
    pub issued_at: String,
    /// The signed checkpoint every count and citation is anchored to.
    pub checkpoint: String,
    /// Its tree size: the counts cover log entries `0..tree_size`.
    pub tree_size: u64,
    /// The agent's status when the summary was issued.
    pub status: String,
    /// The agent's environment tier.
    pub environment: String,
    /// The agent's behavioral risk in `[0, 1]` when the summary was issued, or
    /// null when the behavior engine has not seen it.
    pub risk: Option<f64>,
    /// The agent's first entry in the log, if any.
    pub first_seen: Option<FirstSeen>,
    /// Its entries, counted.
    pub counts: Counts,
    /// The entries the summary cites, each proven by `evidence`.
    pub cited: Vec<Cited>,
}

/// The first entry about the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirstSeen {
    /// Its log index.
    pub index: u64,
    /// When Warden received it (RFC 3339).
    pub received_at: String,
}

/// Entries of one kind, by outcome and by intent then outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Breakdown {
    /// How many.
    pub total: u64,
    /// By decision tier (decisions) or outcome (actions, self-reported events).
    pub by_outcome: BTreeMap<String, u64>,
    /// By intent (or self-reported action type), then by tier or outcome.
    pub by_intent: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Counts of the agent's entries below `tree_size`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    /// Every entry about the agent.
    pub events: u64,
    /// Decisions on its actions, by tier.
    pub decisions: Breakdown,
    /// Actions the gateway forwarded, by outcome.
    pub actions: Breakdown,
    /// Events the agent reported itself (not observed by Warden).
    pub self_reported: Breakdown,
    /// Anomalies the behavior engine logged.
    pub anomalies: u64,
    /// Administrative events about it (registration, status, credentials, quarantines…).
    pub administrative: u64,
}

/// Why an entry is cited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The agent's first entry.
    FirstSeen,
    /// An anomaly.
    Anomaly,
    /// One of the most recent decisions.
    RecentDecision,
}

/// One cited entry and the leaf fields the summary claims for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cited {
    /// Its log index.
    pub index: u64,
    /// Why it is cited.
    pub role: Role,
    /// Top-level string fields of the leaf, exactly.
    pub claims: BTreeMap<String, String>,
}

/// The proof of one cited entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// Its log index.
    pub index: u64,
    /// Standard base64 of the exact leaf bytes.
    pub leaf: String,
    /// RFC 6962 audit path to the checkpoint's root, standard base64.
    pub inclusion_proof: Vec<String>,
}

/// Why a summary did not verify. Each message names exactly what failed.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// Not a document of this format.
    #[error("not a {SUMMARY_FORMAT} document: {0}")]
    Format(String),
    /// The summary's signature is missing or wrong.
    #[error("summary signature: {0}")]
    Signature(NoteError),
    /// The signature is valid but over something else.
    #[error("the signature is not over this summary: {0}")]
    SignedText(String),
    /// The checkpoint's signature is missing or wrong.
    #[error("checkpoint signature: {0}")]
    CheckpointSignature(NoteError),
    /// The checkpoint is malformed, for another log, or for another size.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A cited entry's proof or leaf does not check.
    #[error("cited entry {index}: {why}")]
    Entry {
        /// Its log index.
        index: u64,
        /// What failed.
        why: String,
    },
    /// The claims contradict each other.
    #[error("the summary is inconsistent: {0}")]
    Inconsistent(String),
}

/// What a verified summary says.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The claims.
    pub summary: Summary,
    /// The checkpoint they are anchored to.
    pub checkpoint: Checkpoint,
}

fn digest_hex(summary: &Value) -> Result<String, String> {
    let canonical = warden_core::canonical::to_canonical_vec(summary).map_err(|e| e.to_string())?;
    Ok(Sha256::digest(&canonical).iter().map(|b| format!("{b:02x}")).collect())
}

fn signed_text(agent_id: &str, tree_size: u64, digest_hex: &str) -> String {
    format!("{SIGNED_TEXT_HEADER}\n{agent_id}\n{tree_size}\nsha256:{digest_hex}\n")
}

/// Signs `summary` with the log's key and assembles the document.
pub fn sign(
    summary: &Summary,
    evidence: Vec<Evidence>,
    signer: &NoteSigner,
) -> Result<TrustDocument, String> {
    let value = serde_json::to_value(summary).map_err(|e| e.to_string())?;
    let text = signed_text(&summary.agent_id, summary.tree_size, &digest_hex(&value)?);
    let signature = signer.sign(&text).map_err(|e| e.to_string())?;
    Ok(TrustDocument { format: SUMMARY_FORMAT.into(), summary: value, signature, evidence })
}

/// The string fields of a leaf that a summary may claim: every top-level string.
pub fn claims_of(leaf: &[u8]) -> BTreeMap<String, String> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(leaf) else { return BTreeMap::new() };
    fields.into_iter().filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned()))).collect()
}

/// True if the leaf names `agent` as the one acting, the one acted on, or (for an
/// administrative event) in its details.
fn names_agent(leaf: &[u8], agent: &str) -> bool {
    let Ok(event) = serde_json::from_slice::<Value>(leaf) else { return false };
    let is = |v: Option<&Value>| v.and_then(Value::as_str) == Some(agent);
    ["agent_id", "actor", "subject"].iter().any(|f| is(event.get(*f)))
        || is(event.get("details").and_then(|d| d.get("agent_id")))
}

/// Checks everything: the summary's signature, the checkpoint's signature and
/// origin, every cited entry's inclusion proof and claimed fields, and that the
/// citations agree with the claims.
pub fn verify(doc: &TrustDocument, verifier: &NoteVerifier) -> Result<Verified, TrustError> {
    if doc.format != SUMMARY_FORMAT {
        return Err(TrustError::Format(format!("format is `{}`", doc.format)));
    }
    let text = verifier.verify(&doc.signature).map_err(TrustError::Signature)?;
    let summary: Summary = serde_json::from_value(doc.summary.clone())
        .map_err(|e| TrustError::Format(format!("summary: {e}")))?;
    let digest = digest_hex(&doc.summary).map_err(TrustError::Format)?;
    let expected = signed_text(&summary.agent_id, summary.tree_size, &digest);
    if text != expected {
        let signed_digest = text.lines().last().unwrap_or_default();
        return Err(TrustError::SignedText(format!(
            "it signs `{}` but the summary's digest is `sha256:{digest}` (the summary was altered)",
            signed_digest.trim()
        )));
    }
    let checkpoint = check_checkpoint(&summary, verifier)?;
    check_citations(&summary, &doc.evidence, checkpoint.root)?;
    Ok(Verified { summary, checkpoint })
}

fn check_checkpoint(summary: &Summary, verifier: &NoteVerifier) -> Result<Checkpoint, TrustError> {
    let text = verifier.verify(&summary.checkpoint).map_err(TrustError::CheckpointSignature)?;
    let checkpoint = Checkpoint::parse(text).map_err(|e| TrustError::Checkpoint(e.to_string()))?;
    if checkpoint.origin != verifier.name() || summary.log_origin != checkpoint.origin {
        return Err(TrustError::Checkpoint(format!(
            "origin `{}` is not the key's log `{}` (summary says `{}`)",
            checkpoint.origin,
            verifier.name(),
            summary.log_origin
        )));
    }
    if checkpoint.size != summary.tree_size {
        return Err(TrustError::Checkpoint(format!(
            "it is for tree size {} but the summary claims {}",
            checkpoint.size, summary.tree_size
        )));
    }
    Ok(checkpoint)
}

fn check_citations(summary: &Summary, evidence: &[Evidence], root: Hash) -> Result<(), TrustError> {
    let first = summary.cited.iter().filter(|c| c.role == Role::FirstSeen).collect::<Vec<_>>();
    match (&summary.first_seen, first.as_slice()) {
        (None, []) => {}
        (Some(seen), [cited]) if cited.index == seen.index => {
            if cited.claims.get("received_at") != Some(&seen.received_at) {
                return Err(TrustError::Inconsistent("first_seen's time is not its cited entry's".into()));
            }
        }
        _ => {
            return Err(TrustError::Inconsistent(
                "first_seen must be cited exactly once, by its index".into(),
            ));
        }
    }
    let count = |role| summary.cited.iter().filter(|c| c.role == role).count() as u64;
    if count(Role::Anomaly) > summary.counts.anomalies {
        return Err(TrustError::Inconsistent(format!(
            "{} anomalies are cited but the count is {}",
            count(Role::Anomaly),
            summary.counts.anomalies
        )));
    }
    if count(Role::RecentDecision) > summary.counts.decisions.total {
        return Err(TrustError::Inconsistent(format!(
            "{} decisions are cited but the count is {}",
            count(Role::RecentDecision),
            summary.counts.decisions.total
        )));
    }
    for cited in &summary.cited {
        let proof = evidence
            .iter()
            .find(|e| e.index == cited.index)
            .ok_or_else(|| TrustError::Entry { index: cited.index, why: "no evidence for it".into() })?;
        check_entry(summary, cited, proof, root)
            .map_err(|why| TrustError::Entry { index: cited.index, why })?;
    }
    Ok(())
}

fn check_entry(summary: &Summary, cited: &Cited, evidence: &Evidence, root: Hash) -> Result<(), String> {
    let leaf = STANDARD.decode(&evidence.leaf).map_err(|_| "the leaf is not base64".to_owned())?;
    let proof = evidence
        .inclusion_proof
        .iter()
        .map(|h| Hash::from_base64(h).ok_or_else(|| format!("proof hash `{h}` is not base64 of 32 bytes")))
        .collect::<Result<Vec<_>, _>>()?;
    verify_inclusion(cited.index, summary.tree_size, leaf_hash(&leaf), &proof, root)
        .map_err(|e| format!("inclusion proof against the checkpoint root: {e}"))?;
    let fields = claims_of(&leaf);
    for (field, claimed) in &cited.claims {
        match fields.get(field) {
            Some(found) if found == claimed => {}
            Some(found) => {
                return Err(format!("the summary claims `{field}` = `{claimed}` but the leaf has `{found}`"));
            }
            None => {
                return Err(format!(
                    "the summary claims `{field}` = `{claimed}` but the leaf has no such field"
                ));
            }
        }
    }
    if !names_agent(&leaf, &summary.agent_id) {
        return Err(format!("it is not about agent `{}`", summary.agent_id));
    }
    let kind = cited.claims.get("kind").map(String::as_str);
    match (cited.role, kind) {
        (Role::Anomaly, Some("anomaly"))
        | (Role::RecentDecision, Some("decision"))
        | (Role::FirstSeen, Some(_)) => Ok(()),
        (role, kind) => Err(format!("cited as {role:?} but its kind is {kind:?}").to_lowercase()),
    }
}
