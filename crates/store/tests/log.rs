//! The log pipeline over a real SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use warden_ledger::note::{NoteSigner, NoteVerifier};
use warden_ledger::tile::TileId;
use warden_ledger::verify::{verify_consistency, verify_inclusion};
use warden_ledger::{Hash, leaf_hash};
use warden_store::audit::{AuditError, audit};
use warden_store::log::Log;
use warden_store::sqlite::SqliteStore;
use warden_store::{NewLeaf, Store, StoreError, StoredCheckpoint};

fn signer() -> NoteSigner {
    NoteSigner::new("test.example/log", SigningKey::from_bytes(&[3u8; 32])).unwrap()
}

fn leaves(from: u64, n: u64) -> Vec<NewLeaf> {
    (from..from + n).map(|i| NewLeaf::new(format!("{{\"n\":{i}}}").into_bytes(), None)).collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn append_publish_prove_reopen_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    let rt = rt();
    let signer = signer();
    let verifier = NoteVerifier::from_verifier_key(&signer.verifier_key()).unwrap();
    {
        let log = Log::open(Arc::new(SqliteStore::open(&path).unwrap())).unwrap();
        assert_eq!(rt.block_on(log.append(leaves(0, 300))).unwrap(), 0);
        assert_eq!(rt.block_on(log.append(leaves(300, 1))).unwrap(), 300);
        // Wait for integration, then publish.
        for _ in 0..200 {
            if log.head().size == 301 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let first = log.publish(&signer).unwrap().unwrap();
        assert_eq!(first.size, 301);
        assert!(log.publish(&signer).unwrap().is_none(), "no new checkpoint while the tree has not grown");
        let proof = log.inclusion_proof(17, 301).unwrap();
        verify_inclusion(17, 301, leaf_hash(br#"{"n":17}"#), &proof, first.root).unwrap();
        assert_eq!(log.tile(&TileId::parse("0/000").unwrap()).unwrap().len(), 256 * 32);
        assert!(log.tile(&TileId::parse("0/001").unwrap()).is_err());
        assert_eq!(log.tile(&TileId::parse("0/001.p/45").unwrap()).unwrap().len(), 45 * 32);
        assert!(log.tile(&TileId::parse("0/001.p/46").unwrap()).is_err());
        assert!(log.inclusion_proof(301, 301).is_err());
        assert!(log.inclusion_proof(0, 302).is_err());
        log.shutdown();
    }
    let log = Log::open(Arc::new(SqliteStore::open(&path).unwrap())).unwrap();
    assert_eq!(log.head().size, 301);
    let old = log.checkpoint().unwrap();
    assert_eq!(rt.block_on(log.append(leaves(301, 10))).unwrap(), 301);
    log.shutdown();
    let log = Log::open(Arc::new(SqliteStore::open(&path).unwrap())).unwrap();
    let new = log.publish(&signer).unwrap().unwrap();
    assert_eq!(new.size, 311);
    let proof = log.consistency_proof(old.size, new.size).unwrap();
    verify_consistency(old.size, new.size, old.root, new.root, &proof).unwrap();
    let report = audit(log.store().as_ref(), &verifier).unwrap();
    assert_eq!((report.entries, report.checkpoints, report.root), (311, 2, new.root));
}

#[test]
fn refuses_to_sign_a_second_root_for_a_size() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("w.db")).unwrap();
    let cp = StoredCheckpoint { size: 5, root: Hash([1; 32]), note: "n".into() };
    store.put_checkpoint(&cp).unwrap();
    store.put_checkpoint(&cp).unwrap();
    let other = StoredCheckpoint { root: Hash([2; 32]), ..cp };
    assert!(matches!(store.put_checkpoint(&other), Err(StoreError::Equivocation { size: 5 })));
}

#[test]
fn integration_resumes_after_a_crash_between_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    // Sequence leaves directly, as if the process died before integrating them.
    let store = SqliteStore::open(&path).unwrap();
    store.append_leaves(0, &leaves(0, 1000)).unwrap();
    assert!(matches!(store.append_leaves(5, &leaves(5, 1)), Err(StoreError::Corrupt(_))));
    drop(store);
    let log = Log::open(Arc::new(SqliteStore::open(&path).unwrap())).unwrap();
    assert_eq!(log.head().size, 1000);
    let proof = log.inclusion_proof(999, 1000).unwrap();
    verify_inclusion(999, 1000, leaf_hash(br#"{"n":999}"#), &proof, log.head().root).unwrap();
}

#[test]
fn audit_names_the_first_tampered_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let signer = signer();
    let verifier = NoteVerifier::from_verifier_key(&signer.verifier_key()).unwrap();
    {
        let rt = rt();
        let log = Log::open(Arc::new(SqliteStore::open(&path).unwrap())).unwrap();
        rt.block_on(log.append(leaves(0, 100))).unwrap();
        log.shutdown();
        let log = Log::open(Arc::new(SqliteStore::open(&path).unwrap())).unwrap();
        log.publish(&signer).unwrap();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE entries SET leaf = CAST('{\"n\":18}' AS BLOB) WHERE idx = 17", []).unwrap();
    drop(conn);
    let store = SqliteStore::open_read_only(&path).unwrap();
    match audit(&store, &verifier) {
        Err(AuditError::Tampered { index: 17, .. }) => {}
        other => panic!("expected tampering at 17, got {other:?}"),
    }
}

/// The tile cache keeps copies of partial tiles; proofs must stay right as those
/// tiles fill in. Roots are checked against an independent in-memory tree.
#[test]
fn proofs_stay_right_while_the_tree_grows() {
    use warden_ledger::CompactRange;
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let log = Log::open(Arc::new(SqliteStore::open(&dir.path().join("g.db")).unwrap())).unwrap();
    let mut reference = CompactRange::new();
    let mut roots = vec![reference.root()];
    let mut size = 0u64;
    for step in 0..60u64 {
        let n = 1 + (step * 37 % 300);
        let batch = leaves(size, n);
        for leaf in &batch {
            reference.append(leaf.leaf_hash(), |_, _| {});
            roots.push(reference.root());
        }
        rt.block_on(log.append(batch)).unwrap();
        size += n;
        while log.head().size < size {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(log.head().root, reference.root());
        for m in [1, size / 3, size / 2 + 1, size - 1, size].into_iter().filter(|m| *m >= 1 && *m <= size) {
            let proof = log.consistency_proof(m, size).unwrap();
            verify_consistency(m, size, roots[m as usize], reference.root(), &proof).unwrap();
            let index = m - 1;
            let proof = log.inclusion_proof(index, size).unwrap();
            let leaf = format!("{{\"n\":{index}}}");
            verify_inclusion(index, size, leaf_hash(leaf.as_bytes()), &proof, reference.root()).unwrap();
        }
    }
}

#[test]
fn contexts_are_kept_apart_and_deleted_when_they_expire() {
    use warden_store::ContextRecord;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("c.db")).unwrap();
    let context = |expires| ContextRecord {
        salt: vec![1; 32],
        canonical_context: b"{}".to_vec(),
        expires_at_unix_s: expires,
    };
    let batch = vec![
        NewLeaf::new(b"a".to_vec(), Some(context(100))),
        NewLeaf::new(b"b".to_vec(), None),
        NewLeaf::new(b"c".to_vec(), Some(context(200))),
    ];
    store.append_leaves(0, &batch).unwrap();
    assert_eq!(store.context(0).unwrap(), Some(context(100)));
    assert_eq!(store.context(1).unwrap(), None);
    assert_eq!(store.delete_expired_contexts(150).unwrap(), 1);
    assert_eq!(store.context(0).unwrap(), None);
    assert_eq!(store.context(2).unwrap(), Some(context(200)));
    // The log itself is untouched by expiry.
    assert_eq!(store.read_leaves(0, 3).unwrap(), vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
}

#[test]
fn directory_round_trips_and_counts_usage_atomically() {
    use warden_store::directory::*;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("d.db")).unwrap();
    let agent = AgentRecord {
        id: "agt_a".into(),
        owner: "team-x".into(),
        scopes: vec!["tickets".into()],
        environment: Environment::Prod,
        retention_class: "standard".into(),
        status: AgentStatus::Active,
        client_secret_hash: None,
        public_jwk: None,
        created_at: 1,
    };
    store.put_agent(&agent).unwrap();
    assert_eq!(store.agent("agt_a").unwrap(), Some(agent.clone()));
    assert_eq!(store.agents(None, 10).unwrap().len(), 1);
    let session = SessionRecord {
        id: "sess_1".into(),
        agent_id: "agt_a".into(),
        purpose: "triage".into(),
        budgets: Budgets { tool_calls_max: Some(3), ..Budgets::default() },
        status: SessionStatus::Active,
        status_reason: None,
        created_at: 2,
        ended_at: None,
    };
    store.put_session(&session).unwrap();
    let delta = Usage { tool_calls: 1, writes: 1, bytes: 10 };
    store.add_usage("sess_1", delta).unwrap();
    assert_eq!(store.add_usage("sess_1", delta).unwrap(), Usage { tool_calls: 2, writes: 2, bytes: 20 });
    assert!(store.add_usage("sess_nope", delta).is_err());
    assert_eq!(store.session("sess_1").unwrap().unwrap().1.tool_calls, 2);
    let v1 = PolicyVersion {
        version: 1,
        hash: "sha256:1".into(),
        policies: vec![],
        author: "opr_x".into(),
        message: "m".into(),
        created_at: 3,
    };
    store.push_policy(&v1).unwrap();
    assert!(store.push_policy(&v1).is_err(), "a version is never overwritten");
    store.add_revocation(&Revocation { kind: RevocationKind::Agent, id: "agt_a".into(), at: 5 }).unwrap();
    store.add_revocation(&Revocation { kind: RevocationKind::Agent, id: "agt_a".into(), at: 4 }).unwrap();
    assert_eq!(store.revocations().unwrap()[0].at, 5, "a revocation never moves back in time");
}

#[test]
fn charges_of_one_group_commit_are_summed_per_session() {
    use warden_store::Store;
    use warden_store::directory::{Budgets, Directory, SessionRecord, SessionStatus, Usage};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("warden.db")).unwrap();
    for id in ["sess_a", "sess_b"] {
        store
            .put_session(&SessionRecord {
                id: id.into(),
                agent_id: "agt_x".into(),
                purpose: "test".into(),
                budgets: Budgets::default(),
                status: SessionStatus::Active,
                status_reason: None,
                created_at: 0,
                ended_at: None,
            })
            .unwrap();
    }
    let charge = |_session: &str, writes: u64, bytes: u64| Usage { tool_calls: 1, writes, bytes };
    let batch: Vec<NewLeaf> = [
        ("sess_a", charge("sess_a", 1, 10)),
        ("sess_b", charge("sess_b", 0, 5)),
        ("sess_a", charge("sess_a", 0, 7)),
        ("sess_a", charge("sess_a", 1, 1)),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (s, u))| NewLeaf::new(format!("{{\"n\":{i}}}").into_bytes(), None).with_charge(s, u))
    .collect();
    // Plus a leaf that charges nothing, and a session that does not exist.
    let mut batch = batch;
    batch.push(NewLeaf::new(b"{\"n\":4}".to_vec(), None));
    batch.push(NewLeaf::new(b"{\"n\":5}".to_vec(), None).with_charge("sess_gone", charge("", 1, 1)));
    store.append_leaves(0, &batch).unwrap();
    assert_eq!(store.sequenced_size().unwrap(), 6);
    assert_eq!(store.session("sess_a").unwrap().unwrap().1, Usage { tool_calls: 3, writes: 2, bytes: 18 });
    assert_eq!(store.session("sess_b").unwrap().unwrap().1, Usage { tool_calls: 1, writes: 0, bytes: 5 });
    assert!(store.session("sess_gone").unwrap().is_none());
}

#[test]
fn background_leaves_are_committed_alone_or_with_the_next_append_and_survive_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    let rt = rt();
    {
        let log = Log::open(Arc::new(SqliteStore::open(&path).unwrap())).unwrap();
        // Alone: committed once the hold-back delay is over.
        let started = std::time::Instant::now();
        let alone = log.try_enqueue_background(leaves(0, 1)).map_err(|(e, _)| e).unwrap();
        assert_eq!(rt.block_on(alone).unwrap().unwrap(), 0);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        // With company: a waited-for append takes the held-back leaves with it.
        let held = log.try_enqueue_background(leaves(1, 2)).map_err(|(e, _)| e).unwrap();
        let waited = rt.block_on(log.append(leaves(3, 1))).unwrap();
        assert_eq!(waited, 3);
        assert_eq!(rt.block_on(held).unwrap().unwrap(), 1);
        // Handed over just before shutdown: still committed.
        let last = log.try_enqueue_background(leaves(4, 1)).map_err(|(e, _)| e).unwrap();
        log.shutdown();
        assert_eq!(rt.block_on(last).unwrap().unwrap(), 4);
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.sequenced_size().unwrap(), 5);
    let got = store.read_leaves(0, 5).unwrap();
    assert_eq!(got, leaves(0, 5).iter().map(|l| l.leaf().to_vec()).collect::<Vec<_>>());
}

/// A sequencing commit that fails leaves nothing behind and the writer outside
/// any transaction: the next commit at the right place succeeds.
#[test]
fn a_failed_sequencing_commit_is_rolled_back_and_the_next_one_lands() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("warden.db")).unwrap();
    store.append_leaves(0, &leaves(0, 2)).unwrap();
    for wrong in [0, 1, 5] {
        let e = store.append_leaves(wrong, &leaves(wrong, 1)).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt(_)), "at {wrong}: {e}");
    }
    store.append_leaves(2, &leaves(2, 3)).unwrap();
    assert_eq!(store.sequenced_size().unwrap(), 5);
    assert_eq!(
        store.read_leaves(0, 5).unwrap(),
        leaves(0, 5).iter().map(|l| l.leaf().to_vec()).collect::<Vec<_>>()
    );
}

/// After a second with nothing committed, the maintenance thread and the syncer
/// sleep until woken (while busy they look by themselves and appends do not wake
/// them): what arrives then is still committed, synced and integrated. Without
/// the wake-ups this test waits forever for each of the three.
#[test]
fn a_log_that_went_idle_still_commits_syncs_and_integrates_what_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(Arc::new(SqliteStore::open(&dir.path().join("warden.db")).unwrap())).unwrap();
    let rt = rt();
    let within = |what: &str, done: &dyn Fn() -> bool| {
        let started = std::time::Instant::now();
        while !done() {
            assert!(started.elapsed() < std::time::Duration::from_secs(10), "{what} never happened");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    };
    let mut next = 0;
    for round in 0..2 {
        // Longer than the busy period (a second) after the last commit.
        std::thread::sleep(std::time::Duration::from_millis(1_300));
        let held = log.try_enqueue_background(leaves(next, 1)).map_err(|(e, _)| e).unwrap();
        let at = rt
            .block_on(async { tokio::time::timeout(std::time::Duration::from_secs(10), held).await })
            .unwrap_or_else(|_| panic!("round {round}: a held-back append was never committed"))
            .unwrap()
            .unwrap();
        assert_eq!(at, next);
        within("the sync of a held-back append", &|| log.synced_size() > next);
        within("the integration of a held-back append", &|| log.head().size > next);
        next += 1;

        std::thread::sleep(std::time::Duration::from_millis(1_300));
        assert_eq!(rt.block_on(log.append_written(leaves(next, 2))).unwrap(), next);
        within("the sync of a written append", &|| log.synced_size() >= next + 2);
        within("the integration of a written append", &|| log.head().size >= next + 2);
        next += 2;
    }
    log.shutdown();
}

/// Appenders of every kind, on several threads at once: each gets the indexes
/// its leaves were stored at, together they fill the log without a gap, and none
/// is left waiting (the test would time out) — whoever commits takes the others'
/// appends along, and whoever stops committing looks at the queue again.
#[test]
fn concurrent_appenders_of_every_kind_fill_the_log_without_a_gap_and_none_is_stranded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let log = Arc::new(Log::open(Arc::new(SqliteStore::open(&path).unwrap())).unwrap());
    let tasks_n = 8u64;
    let per_task = 150u64;
    let acked = rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..tasks_n {
            let log = Arc::clone(&log);
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..per_task {
                    let n = 1 + (i % 3);
                    let batch: Vec<NewLeaf> = (0..n)
                        .map(|j| {
                            NewLeaf::new(format!("{{\"t\":{t},\"i\":{i},\"j\":{j}}}").into_bytes(), None)
                        })
                        .collect();
                    let bytes: Vec<Vec<u8>> = batch.iter().map(|l| l.leaf().to_vec()).collect();
                    let index = match (t + i) % 3 {
                        0 => log.append(batch).await.unwrap(),
                        1 => log.append_written(batch).await.unwrap(),
                        _ => log
                            .try_enqueue_background(batch)
                            .map_err(|(e, _)| e)
                            .unwrap()
                            .await
                            .unwrap()
                            .unwrap(),
                    };
                    acked.push((index, bytes));
                }
                acked
            }));
        }
        // Plain threads append through the synchronous hand-over too.
        let threads: Vec<_> = (0..2u64)
            .map(|t| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    (0..per_task)
                        .map(|i| {
                            let leaf =
                                NewLeaf::new(format!("{{\"thread\":{t},\"i\":{i}}}").into_bytes(), None);
                            let bytes = vec![leaf.leaf().to_vec()];
                            (log.enqueue(vec![leaf]).unwrap(), bytes)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut acked = Vec::new();
        let all = async {
            for t in tasks {
                acked.extend(t.await.unwrap());
            }
            for t in threads {
                for (durable, bytes) in t.join().unwrap() {
                    acked.push((durable.await.unwrap().unwrap(), bytes));
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(120), all).await.expect("an append was stranded");
        acked
    });
    let total: u64 = acked.iter().map(|(_, b)| b.len() as u64).sum();
    assert_eq!(log.sequenced_size(), total);
    let mut ranges: Vec<(u64, u64)> = acked.iter().map(|(i, b)| (*i, *i + b.len() as u64)).collect();
    ranges.sort_unstable();
    let mut end = 0;
    for (start, stop) in &ranges {
        assert_eq!(*start, end, "indexes are contiguous and never given twice");
        end = *stop;
    }
    assert_eq!(end, total);
    log.shutdown();
    assert_eq!(log.synced_size(), total, "shutdown syncs everything written");
    drop(log);
    let store = SqliteStore::open(&path).unwrap();
    let stored = store.read_leaves(0, total).unwrap();
    for (index, bytes) in &acked {
        for (k, b) in bytes.iter().enumerate() {
            assert_eq!(
                &stored[*index as usize + k],
                b,
                "entry {} holds what was acknowledged for it",
                index + k as u64
            );
        }
    }
}

/// A store whose sync can be made to fail, over a real SQLite store.
struct FailingSync {
    inner: SqliteStore,
    fail: Arc<std::sync::atomic::AtomicBool>,
}

impl Store for FailingSync {
    fn append_leaves(&self, first: u64, leaves: &[NewLeaf]) -> Result<(), StoreError> {
        self.inner.append_leaves(first, leaves)
    }
    fn sync(&self) -> Result<(), StoreError> {
        if self.fail.load(std::sync::atomic::Ordering::Acquire) {
            return Err(StoreError::Database("injected: EIO".into()));
        }
        self.inner.sync()
    }
    fn sequenced_size(&self) -> Result<u64, StoreError> {
        self.inner.sequenced_size()
    }
    fn read_leaves(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.read_leaves(start, end)
    }
    fn integrate(&self, tiles: &[warden_store::StoredTile], new_size: u64) -> Result<(), StoreError> {
        self.inner.integrate(tiles, new_size)
    }
    fn integrated_size(&self) -> Result<u64, StoreError> {
        self.inner.integrated_size()
    }
    fn read_tiles(
        &self,
        keys: &[warden_ledger::tile::TileKey],
    ) -> Result<Vec<Option<warden_store::StoredTile>>, StoreError> {
        self.inner.read_tiles(keys)
    }
    fn put_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        self.inner.put_checkpoint(checkpoint)
    }
    fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.inner.latest_checkpoint()
    }
    fn checkpoints_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        self.inner.checkpoints_after(after, limit)
    }
    fn context(&self, index: u64) -> Result<Option<warden_store::ContextRecord>, StoreError> {
        self.inner.context(index)
    }
    fn delete_expired_contexts(&self, now_unix_s: i64) -> Result<u64, StoreError> {
        self.inner.delete_expired_contexts(now_unix_s)
    }
    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.inner.meta(key)
    }
    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.inner.set_meta(key, value)
    }
}

/// After a failed sync nobody knows whether written pages reached the disk, so the
/// log acknowledges nothing more, whatever an append waits for (fail closed).
#[test]
fn a_failed_sync_poisons_the_log_and_nothing_more_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let store =
        FailingSync { inner: SqliteStore::open(&dir.path().join("warden.db")).unwrap(), fail: fail.clone() };
    let log = Log::open(Arc::new(store)).unwrap();
    let rt = rt();
    assert_eq!(rt.block_on(log.append(leaves(0, 2))).unwrap(), 0);
    assert_eq!(log.synced_size(), 2);
    assert!(log.is_writer_running());
    fail.store(true, std::sync::atomic::Ordering::Release);
    let err = rt.block_on(log.append(leaves(2, 1))).unwrap_err();
    assert!(err.to_string().contains("could not sync"), "{err}");
    assert!(!log.is_writer_running(), "a poisoned log is not ready");
    assert!(rt.block_on(log.append_written(leaves(3, 1))).is_err(), "written appends are refused too");
    assert!(rt.block_on(log.append(leaves(3, 1))).is_err());
    assert_eq!(log.synced_size(), 2, "nothing past the failure counts as synced");
}
