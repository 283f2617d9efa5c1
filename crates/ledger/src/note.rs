//! C2SP `signed-note`: a text body followed by one signature line per signer.
//!
//! ```text
//! <text, ending in a newline>
//!
//! — <key name> <base64(key id ‖ signature)>
//! ```
//!
//! For Ed25519 the key id is the first four bytes of
//! `SHA-256(key name ‖ "\n" ‖ 0x01 ‖ public key)` and the verifier key is written
//! `<name>+<hex key id>+<base64(0x01 ‖ public key)>`. Written here rather than taken
//! from a crate because it is small, on the log's trust path, and must stay free of
//! IO; the test suite checks it against an independent implementation.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// The signature type byte for Ed25519 in signed-note.
const ALG_ED25519: u8 = 0x01;
/// The prefix of a signature line: an em dash and a space.
const SIG_PREFIX: &str = "\u{2014} ";
/// Most signatures a note may carry before we stop reading it.
const NOTE_SIGNATURES_MAX: usize = 100;

/// Why a note or key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The key name is empty or contains a space or `+`.
    #[error("key name `{0}` is invalid: it must be non-empty and contain no whitespace or `+`")]
    BadKeyName(String),
    /// The verifier key is not `name+hexid+base64`.
    #[error("verifier key is malformed: {0}")]
    BadVerifierKey(String),
    /// The note is not well formed.
    #[error("note is malformed: {0}")]
    Malformed(String),
    /// No signature by the expected key.
    #[error("note has no signature by key `{0}`")]
    NoSignature(String),
    /// A signature by the expected key did not verify.
    #[error("signature by key `{0}` does not verify")]
    BadSignature(String),
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(NoteError::BadKeyName(name.to_owned()));
    }
    Ok(())
}

/// The signed-note key id of an Ed25519 key.
pub fn key_id(name: &str, public_key: &VerifyingKey) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public_key.as_bytes());
    let digest: [u8; 32] = h.finalize().into();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Signs notes as one named key.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    id: u32,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner").field("name", &self.name).field("id", &self.id).finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A signer named `name` (the log's origin, for checkpoints).
    pub fn new(name: &str, key: SigningKey) -> Result<Self, NoteError> {
        check_name(name)?;
        let id = key_id(name, &key.verifying_key());
        Ok(Self { name: name.to_owned(), key, id })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key line, `name+hexid+base64(0x01 ‖ public key)`.
    pub fn verifier_key(&self) -> String {
        let mut bytes = Vec::with_capacity(33);
        bytes.push(ALG_ED25519);
        bytes.extend_from_slice(self.key.verifying_key().as_bytes());
        format!("{}+{:08x}+{}", self.name, self.id, STANDARD.encode(bytes))
    }

    /// Signs `text` (which must end in a newline) and returns the whole note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        check_text(text)?;
        let signature = self.key.sign(text.as_bytes());
        let mut blob = Vec::with_capacity(68);
        blob.extend_from_slice(&self.id.to_be_bytes());
        blob.extend_from_slice(&signature.to_bytes());
        Ok(format!("{text}\n{SIG_PREFIX}{} {}\n", self.name, STANDARD.encode(blob)))
    }
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("text must end with a newline".into()));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(NoteError::Malformed("text must not contain control characters".into()));
    }
    Ok(())
}

/// Verifies notes signed by one Ed25519 key.
#[derive(Debug, Clone)]
pub struct NoteVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses a verifier key `name+hexid+base64(0x01 ‖ public key)`.
    pub fn from_verifier_key(vkey: &str) -> Result<Self, NoteError> {
        let vkey = vkey.trim();
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(hex_id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::BadVerifierKey("expected `name+hexid+base64key`".into()));
        };
        check_name(name)?;
        let id = u32::from_str_radix(hex_id, 16)
            .ok()
            .filter(|_| hex_id.len() == 8)
            .ok_or_else(|| NoteError::BadVerifierKey("key id must be 8 hex digits".into()))?;
        let bytes =
            STANDARD.decode(b64).map_err(|_| NoteError::BadVerifierKey("key is not base64".into()))?;
        let (Some(&ALG_ED25519), Some(raw)) = (bytes.first(), bytes.get(1..)) else {
            return Err(NoteError::BadVerifierKey("only Ed25519 (type 0x01) keys are supported".into()));
        };
        let raw: [u8; 32] =
            raw.try_into().map_err(|_| NoteError::BadVerifierKey("Ed25519 key must be 32 bytes".into()))?;
        let key = VerifyingKey::from_bytes(&raw)
            .map_err(|_| NoteError::BadVerifierKey("not a valid Ed25519 public key".into()))?;
        if key_id(name, &key) != id {
            return Err(NoteError::BadVerifierKey("key id does not match the name and key".into()));
        }
        Ok(Self { name: name.to_owned(), id, key })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks `note` carries a valid signature by this key; returns the signed text.
    ///
    /// Signatures by other keys are ignored, as signed-note requires.
    pub fn verify<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| NoteError::Malformed("no blank line before signatures".into()))?;
        let (text, sigs) = note.split_at(split + 1);
        let sigs = sigs.strip_prefix('\n').unwrap_or(sigs);
        check_text(text)?;
        if !sigs.ends_with('\n') {
            return Err(NoteError::Malformed("signature block must end with a newline".into()));
        }
        let mut found = false;
        for (count, line) in sigs.lines().enumerate() {
            if count >= NOTE_SIGNATURES_MAX {
                return Err(NoteError::Malformed("too many signatures".into()));
            }
            let rest = line
                .strip_prefix(SIG_PREFIX)
                .ok_or_else(|| NoteError::Malformed("signature line must start with an em dash".into()))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or_else(|| NoteError::Malformed("signature line must be `— name signature`".into()))?;
            let blob =
                STANDARD.decode(b64).map_err(|_| NoteError::Malformed("signature is not base64".into()))?;
            let (Some(id_bytes), Some(sig_bytes)) = (blob.get(..4), blob.get(4..)) else {
                return Err(NoteError::Malformed("signature is too short".into()));
            };
            let id = u32::from_be_bytes(
                id_bytes.try_into().map_err(|_| NoteError::Malformed("signature is too short".into()))?,
            );
            if name != self.name || id != self.id {
                continue;
            }
            let signature =
                Signature::from_slice(sig_bytes).map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            self.key
                .verify(text.as_bytes(), &signature)
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            found = true;
        }
        if found { Ok(text) } else { Err(NoteError::NoSignature(self.name.clone())) }
    }
}
