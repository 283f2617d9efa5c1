//! Client secrets: generated with 256 bits from the OS, stored only as argon2id PHC
//! strings, compared in constant time by the argon2 crate.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params};
use rand::RngCore;
use rand::rngs::OsRng;

use crate::jose::b64url;
use crate::limits::{CLIENT_SECRET_BYTES, CLIENT_SECRET_CHARS_MAX, CLIENT_SECRET_CHARS_MIN};

/// The prefix of every generated secret, so scanners can find leaked ones.
pub const CLIENT_SECRET_PREFIX: &str = "wsec_";

/// Largest argon2 memory cost a stored hash may ask for, so a tampered row cannot
/// make verification allocate without bound.
const HASH_MEMORY_KIB_MAX: u32 = 256 * 1024;

/// Largest argon2 time cost a stored hash may ask for.
const HASH_ITERATIONS_MAX: u32 = 16;

/// Largest argon2 parallelism a stored hash may ask for.
const HASH_LANES_MAX: u32 = 8;

/// Why a client secret could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Shorter than [`CLIENT_SECRET_CHARS_MIN`].
    #[error("client secret must be at least {CLIENT_SECRET_CHARS_MIN} characters: generate one instead")]
    TooShort,
    /// Longer than [`CLIENT_SECRET_CHARS_MAX`].
    #[error("client secret must be at most {CLIENT_SECRET_CHARS_MAX} characters")]
    TooLong,
    /// argon2 refused (never expected with the default parameters).
    #[error("client secret could not be hashed")]
    Hash,
}

/// A new client secret: `wsec_` and 256 random bits, base64url.
pub fn generate_client_secret() -> String {
    let mut bytes = [0u8; CLIENT_SECRET_BYTES];
    OsRng.fill_bytes(&mut bytes);
    format!("{CLIENT_SECRET_PREFIX}{}", b64url(&bytes))
}

/// Hashes a client secret with argon2id (19 MiB, 2 passes, 1 lane: the OWASP
/// recommendation the argon2 crate defaults to) and a random salt; returns the PHC
/// string to store.
pub fn hash_client_secret(secret: &str) -> Result<String, SecretError> {
    if secret.chars().count() < CLIENT_SECRET_CHARS_MIN {
        return Err(SecretError::TooShort);
    }
    if secret.len() > CLIENT_SECRET_CHARS_MAX {
        return Err(SecretError::TooLong);
    }
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::default().hash_password(secret.as_bytes(), &salt).map_err(|_| SecretError::Hash)?;
    Ok(hash.to_string())
}

/// True when `secret` matches the stored argon2id PHC string. Anything else (a
/// malformed or non-argon2id hash, costs over our caps, an oversized secret) is
/// `false`.
pub fn verify_client_secret(secret: &str, phc_hash: &str) -> bool {
    if secret.len() > CLIENT_SECRET_CHARS_MAX {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc_hash) else { return false };
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return false;
    }
    let Ok(params) = Params::try_from(&parsed) else { return false };
    if params.m_cost() > HASH_MEMORY_KIB_MAX
        || params.t_cost() > HASH_ITERATIONS_MAX
        || params.p_cost() > HASH_LANES_MAX
    {
        return false;
    }
    Argon2::default().verify_password(secret.as_bytes(), &parsed).is_ok()
}

/// Always `false`, after the same work as [`verify_client_secret`]: call it when the
/// `client_id` is unknown so response times do not reveal which clients exist.
pub fn verify_unknown_client_secret(secret: &str) -> bool {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| {
        let salt = SaltString::from_b64("d2FyZGVuLXVua25vd24tY2xpZW50").ok()?;
        let hash = Argon2::default().hash_password(b"warden: no such client", &salt).ok()?;
        Some(hash.to_string())
    });
    if let Some(dummy) = dummy {
        let _ = verify_client_secret(secret, dummy);
    }
    false
}
