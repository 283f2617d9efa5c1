//! The data directory: the SQLite store and the log signing key.
//!
//! The key file holds the signed-note private key line
//! `PRIVATE+KEY+<origin>+<hex key id>+<base64(0x01 ‖ seed)>` (the format Go's
//! `golang.org/x/mod/sumdb/note` reads), created with mode 0600 and refused if
//! anyone but the owner can read it. The origin lives in the key line, so it can
//! never drift from the key that signs for it.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use rand::RngCore;
use warden_ledger::note::{NoteSigner, key_id};

/// File name of the SQLite store.
pub const DATABASE_FILE: &str = "warden.db";
/// File name of the log signing key.
pub const LOG_KEY_FILE: &str = "log-signing.key";
/// File name of the access-token signing key (hex Ed25519 seed).
pub const TOKEN_KEY_FILE: &str = "token-signing.key";

/// Data-directory problems.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// A filesystem operation failed.
    #[error("{what} `{path}`: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The key file is readable by others.
    #[error(
        "log signing key `{path}` is accessible by group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The key file is not a valid key.
    #[error("log signing key `{path}` is malformed: {why}")]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The configured origin differs from the key's.
    #[error(
        "`log.origin` is `{configured}` but this log was created as `{existing}`; the origin of a log cannot change"
    )]
    OriginChanged {
        /// From configuration.
        configured: String,
        /// From the key file.
        existing: String,
    },
}

/// An opened data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> DataDirError + 'a {
    move |source| DataDirError::Io { what, path: path.to_owned(), source }
}

impl DataDir {
    /// Creates the directory (mode 0700) if needed.
    pub fn open_or_create(root: &Path) -> Result<Self, DataDirError> {
        if !root.exists() {
            fs::create_dir_all(root).map_err(io("cannot create data directory", root))?;
            fs::set_permissions(root, fs::Permissions::from_mode(0o700))
                .map_err(io("cannot restrict data directory", root))?;
        }
        Ok(Self { root: root.to_owned() })
    }

    /// Opens an existing directory without creating anything.
    pub fn open_existing(root: &Path) -> Result<Self, DataDirError> {
        if !root.join(DATABASE_FILE).is_file() {
            return Err(DataDirError::Io {
                what: "no Warden data directory at",
                path: root.to_owned(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        Ok(Self { root: root.to_owned() })
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of the SQLite store.
    pub fn database_path(&self) -> PathBuf {
        self.root.join(DATABASE_FILE)
    }

    /// The event index's database (derived from the log; see `warden_store::event_index`).
    pub fn event_index_path(&self) -> PathBuf {
        self.root.join(warden_store::event_index::EVENT_INDEX_FILE)
    }

    /// The forensics database (sessions in forensics mode, kept bodies), beside the log's.
    pub fn forensics_path(&self) -> PathBuf {
        self.root.join(warden_store::forensics::FORENSICS_FILE)
    }

    /// Loads the log signing key, creating it (and fixing the origin) on first use.
    pub fn log_signer(&self, configured_origin: Option<&str>) -> Result<NoteSigner, DataDirError> {
        let path = self.root.join(LOG_KEY_FILE);
        if !path.exists() {
            let origin = configured_origin.map_or_else(default_origin, str::to_owned);
            create_key(&path, &origin)?;
        }
        let signer = read_key(&path)?;
        if let Some(configured) = configured_origin
            && configured != signer.name()
        {
            return Err(DataDirError::OriginChanged {
                configured: configured.to_owned(),
                existing: signer.name().to_owned(),
            });
        }
        Ok(signer)
    }

    /// The Ed25519 seed that signs access tokens, created (mode 0600) on first use.
    pub fn token_seed(&self) -> Result<[u8; 32], DataDirError> {
        let path = self.root.join(TOKEN_KEY_FILE);
        if !path.exists() {
            let mut seed = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
            write_private_file(&path, format!("{hex}\n").as_bytes())?;
        }
        let mode =
            fs::metadata(&path).map_err(io("cannot read token signing key", &path))?.permissions().mode()
                & 0o777;
        if mode & 0o077 != 0 {
            return Err(DataDirError::KeyPermissions { path, mode });
        }
        let text = fs::read_to_string(&path).map_err(io("cannot read token signing key", &path))?;
        let bad = || DataDirError::BadKey { path: path.clone(), why: "expected 64 hex digits".into() };
        let hex = text.trim();
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut seed = [0u8; 32];
        for (i, byte) in seed.iter_mut().enumerate() {
            *byte = hex.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or_else(bad)?;
        }
        Ok(seed)
    }

    /// Loads the existing log signing key.
    pub fn existing_log_signer(&self) -> Result<NoteSigner, DataDirError> {
        read_key(&self.root.join(LOG_KEY_FILE))
    }
}

fn default_origin() -> String {
    let mut suffix = [0u8; 4];
    rand::rngs::OsRng.fill_bytes(&mut suffix);
    format!("localhost/warden/{}", suffix.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Writes `contents` to a new file readable only by its owner, and syncs it.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), DataDirError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io("cannot create", path))?;
    file.write_all(contents).map_err(io("cannot write", path))?;
    file.sync_all().map_err(io("cannot sync", path))
}

fn create_key(path: &Path, origin: &str) -> Result<(), DataDirError> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let bad = |why: String| DataDirError::BadKey { path: path.to_owned(), why };
    NoteSigner::new(origin, key.clone()).map_err(|e| bad(e.to_string()))?;
    let mut material = vec![0x01u8];
    material.extend_from_slice(&key.to_bytes());
    let line = format!(
        "PRIVATE+KEY+{origin}+{:08x}+{}\n",
        key_id(origin, &key.verifying_key()),
        STANDARD.encode(&material)
    );
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io("cannot create log signing key", path))?;
    file.write_all(line.as_bytes()).map_err(io("cannot write log signing key", path))?;
    file.sync_all().map_err(io("cannot sync log signing key", path))?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io("cannot sync data directory", parent))?;
    }
    Ok(())
}

fn read_key(path: &Path) -> Result<NoteSigner, DataDirError> {
    let meta = fs::metadata(path).map_err(io("cannot read log signing key", path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(DataDirError::KeyPermissions { path: path.to_owned(), mode });
    }
    let text = fs::read_to_string(path).map_err(io("cannot read log signing key", path))?;
    let bad = |why: &str| DataDirError::BadKey { path: path.to_owned(), why: why.to_owned() };
    // The base64 key may itself contain `+`, so split off only the first four fields.
    let fields: Vec<&str> = text.trim().splitn(5, '+').collect();
    let [private, key_word, name, hex_id, material] = fields.as_slice() else {
        return Err(bad("expected `PRIVATE+KEY+name+id+key`"));
    };
    if *private != "PRIVATE" || *key_word != "KEY" {
        return Err(bad("expected `PRIVATE+KEY+name+id+key`"));
    }
    let material = STANDARD.decode(material).map_err(|_| bad("key is not base64"))?;
    let seed: [u8; 32] = match material.split_first() {
        Some((0x01, seed)) => seed.try_into().map_err(|_| bad("Ed25519 seed must be 32 bytes"))?,
        _ => return Err(bad("only Ed25519 keys (type 0x01) are supported")),
    };
    let key = SigningKey::from_bytes(&seed);
    if format!("{:08x}", key_id(name, &key.verifying_key())) != *hex_id {
        return Err(bad("key id does not match the key"));
    }
    NoteSigner::new(name, key).map_err(|e| bad(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_private_reused_and_guarded() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open_or_create(&dir.path().join("d")).unwrap();
        let a = data.log_signer(None).unwrap();
        let key_path = dir.path().join("d").join(LOG_KEY_FILE);
        assert_eq!(fs::metadata(&key_path).unwrap().permissions().mode() & 0o777, 0o600);
        let b = data.log_signer(None).unwrap();
        assert_eq!(a.verifier_key(), b.verifier_key());
        assert!(a.name().starts_with("localhost/warden/"));
        assert!(matches!(data.log_signer(Some("other/log")), Err(DataDirError::OriginChanged { .. })));
        fs::set_permissions(&key_path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(data.log_signer(None), Err(DataDirError::KeyPermissions { .. })));
    }

    #[test]
    fn keys_whose_base64_contains_plus_round_trip() {
        // About half of random keys have a `+` in their base64; forty make a miss unlikely.
        for i in 0..40 {
            let dir = tempfile::tempdir().unwrap();
            let data = DataDir::open_or_create(dir.path()).unwrap();
            let created = data.log_signer(Some("example.com/log")).unwrap();
            let again = data.existing_log_signer().unwrap_or_else(|e| panic!("key {i}: {e}"));
            assert_eq!(created.verifier_key(), again.verifier_key());
        }
    }
}
