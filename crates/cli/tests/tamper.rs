//! Offline verification catches tampering with the stored log: a changed leaf, a
//! changed tree node, a changed or forged checkpoint, a missing entry.
//!
//! Each test builds a small log with the real server, stops it, copies the data dir,
//! changes one thing in the copy with SQLite and runs `warden log verify --data-dir`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};

use common::{CliOutput, Server, TestDir, copy_dir, events, mentions_number, path_str, warden};
use rusqlite::{Connection, params};

const LOG_SIZE: u64 = 300;
/// The exit code of `warden log verify` when the log does not verify.
const EXIT_TAMPERED: i32 = 1;

/// A stopped server's data dir holding the first start's entries, then `LOG_SIZE`
/// events, and a checkpoint covering them all.
fn stopped_log() -> TestDir {
    let dir = TestDir::new();
    let server = Server::start(&dir.data());
    let vkey = server.verifier_key();
    server.check_first_start_entries();
    let size = server.start_size() + LOG_SIZE;
    let acks = server.submit_batch(&events(0..LOG_SIZE));
    assert_eq!(acks.last().unwrap().index, size - 1);
    let checkpoint = server.wait_for_checkpoint(size, &vkey);
    assert_eq!(checkpoint.size, size, "nothing else was written");
    server.stop_gracefully();
    dir
}

/// Copies the data dir to `name` and lets `tamper` change the copy's database.
fn tampered_copy(dir: &TestDir, name: &str, tamper: impl FnOnce(&Connection)) -> PathBuf {
    let copy = dir.path(name);
    copy_dir(&dir.data(), &copy);
    let db = Connection::open(copy.join("warden.db")).unwrap();
    tamper(&db);
    db.close().map_err(|(_, e)| e).unwrap();
    copy
}

fn verify_offline(data_dir: &Path) -> CliOutput {
    warden(&["log", "verify", "--data-dir", path_str(data_dir)])
}

fn assert_tampering_found(out: &CliOutput, what: &str) {
    assert_eq!(out.code(), Some(EXIT_TAMPERED), "{what} must fail verification\n{}", out.describe());
    assert!(!out.all().trim().is_empty(), "{what}: verify must say what is wrong");
}

/// Flips the low bit of byte `offset` of a BLOB column in the row `key_column = key`.
fn flip_blob_byte(db: &Connection, table: &str, column: &str, key_column: &str, key: i64, offset: usize) {
    let select = format!("SELECT {column} FROM {table} WHERE {key_column} = ?1");
    let mut blob: Vec<u8> = db.query_row(&select, [key], |r| r.get(0)).unwrap();
    blob[offset] ^= 0x01;
    let update = format!("UPDATE {table} SET {column} = ?1 WHERE {key_column} = ?2");
    assert_eq!(db.execute(&update, params![blob, key]).unwrap(), 1);
}

/// The latest stored checkpoint: its size and note.
fn latest_checkpoint(db: &Connection) -> (i64, String) {
    db.query_row("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1", [], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .unwrap()
}

fn set_note(db: &Connection, size: i64, note: &str) {
    assert_eq!(
        db.execute("UPDATE checkpoints SET note = ?1 WHERE size = ?2", params![note, size]).unwrap(),
        1
    );
}

/// Replaces the character at `at` of `s` (an ASCII base64 string) with another base64 character.
fn change_base64_char(s: &str, at: usize) -> String {
    let mut bytes = s.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[test]
fn the_untouched_log_verifies_and_uses_wal() {
    let dir = stopped_log();
    let out = verify_offline(&dir.data());
    assert_eq!(out.code(), Some(0), "the untouched log must verify\n{}", out.describe());
    let db = Connection::open(dir.data().join("warden.db")).unwrap();
    let mode: String = db.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_changed_leaf_is_reported_by_its_index() {
    let dir = stopped_log();
    let copy = tampered_copy(&dir, "leaf-17", |db| flip_blob_byte(db, "entries", "leaf", "idx", 17, 10));
    let out = verify_offline(&copy);
    assert_tampering_found(&out, "a changed leaf at index 17");
    assert!(mentions_number(&out.all(), 17), "verify must name index 17\n{}", out.describe());
}

#[test]
fn a_missing_entry_is_reported_by_its_index() {
    let dir = stopped_log();
    let copy = tampered_copy(&dir, "gap-42", |db| {
        assert_eq!(db.execute("DELETE FROM entries WHERE idx = 42", []).unwrap(), 1);
    });
    let out = verify_offline(&copy);
    assert_tampering_found(&out, "a missing entry at index 42");
    assert!(mentions_number(&out.all(), 42), "verify must name index 42\n{}", out.describe());
}

#[test]
fn a_changed_level_1_node_is_found() {
    let dir = stopped_log();
    let copy = tampered_copy(&dir, "node", |db| {
        // Tiles hold tree levels 0..=7 of each 256-leaf subtree, level by level:
        // the level-1 node with index 8 is slot 256 + 8 of tile (0, 0).
        let tile_0_0 = 0i64;
        let width: i64 =
            db.query_row("SELECT width FROM tiles WHERE id = ?1", [tile_0_0], |r| r.get(0)).unwrap();
        assert!(width >= 18, "tile (0, 0) covers the level-1 node with index 8");
        flip_blob_byte(db, "tiles", "hashes", "id", tile_0_0, (256 + 8) * 32);
    });
    assert_tampering_found(&verify_offline(&copy), "a changed level-1 node");
}

#[test]
fn a_changed_checkpoint_signature_is_found() {
    let dir = stopped_log();
    let copy = tampered_copy(&dir, "signature", |db| {
        let (size, note) = latest_checkpoint(db);
        let signature_at = note.rfind(' ').unwrap() + 1;
        let middle = signature_at + (note.trim_end().len() - signature_at) / 2;
        set_note(db, size, &change_base64_char(&note, middle));
    });
    assert_tampering_found(&verify_offline(&copy), "a changed checkpoint signature");
}

#[test]
fn a_changed_root_in_a_signed_checkpoint_is_found() {
    let dir = stopped_log();
    let copy = tampered_copy(&dir, "note-root", |db| {
        let (size, note) = latest_checkpoint(db);
        // The third line of the note is the base64 root hash.
        let root_at = note.match_indices('\n').nth(1).unwrap().0 + 1;
        set_note(db, size, &change_base64_char(&note, root_at + 5));
    });
    assert_tampering_found(&verify_offline(&copy), "a changed root in a checkpoint note");
}

#[test]
fn a_changed_stored_root_is_found() {
    let dir = stopped_log();
    let copy = tampered_copy(&dir, "root-column", |db| {
        let (size, _) = latest_checkpoint(db);
        flip_blob_byte(db, "checkpoints", "root", "size", size, 0);
    });
    assert_tampering_found(&verify_offline(&copy), "a changed stored checkpoint root");
}
