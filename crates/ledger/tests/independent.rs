//! Our proofs, checkpoints and notes, checked by implementations written outside
//! this project: `ct-merkle` (RFC 6962 trees), Cloudflare's `tlog_tiles` (a port of
//! Go's `golang.org/x/mod/sumdb/tlog`) and `signed_note` (C2SP signed-note).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::convert::Infallible;

use ct_merkle::{ConsistencyProof, InclusionProof, RootHash, mem_backed_tree::MemoryBackedTree};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use sha2_011::Sha256;
use warden_ledger::checkpoint::Checkpoint;
use warden_ledger::note::{NoteSigner, NoteVerifier};
use warden_ledger::proof::{consistency_proof, inclusion_proof, root_at};
use warden_ledger::verify::{verify_consistency, verify_inclusion};
use warden_ledger::{CompactRange, Hash, NodeId, NodeReader, leaf_hash};

#[derive(Default)]
struct MemTree {
    nodes: HashMap<NodeId, Hash>,
    edge: CompactRange,
    leaves: Vec<Vec<u8>>,
}

impl MemTree {
    fn with_leaves(n: u64) -> Self {
        let mut t = Self::default();
        for i in 0..n {
            let leaf = format!("leaf {i}").into_bytes();
            let nodes = &mut t.nodes;
            t.edge.append(leaf_hash(&leaf), |id, h| {
                nodes.insert(id, h);
            });
            t.leaves.push(leaf);
        }
        t
    }
}

impl NodeReader for MemTree {
    type Error = Infallible;
    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Infallible> {
        Ok(ids
            .iter()
            .map(|id| *self.nodes.get(id).expect("proof asked for a node that is not stored"))
            .collect())
    }
}

fn reference(n: u64) -> MemoryBackedTree<Sha256, Vec<u8>> {
    let mut t = MemoryBackedTree::new();
    for i in 0..n {
        t.push(format!("leaf {i}").into_bytes());
    }
    t
}

fn flat(proof: &[Hash]) -> Vec<u8> {
    proof.iter().flat_map(|h| h.0).collect()
}

fn tlog(h: Hash) -> tlog_tiles::Hash {
    tlog_tiles::Hash(h.0)
}

/// Tree sizes that exercise the edges: 0, 1, powers of two and their neighbours,
/// and arbitrary sizes.
fn tree_size() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1u64),
        (0u32..11).prop_map(|k| 1u64 << k),
        (1u32..11).prop_map(|k| (1u64 << k) + 1),
        (1u32..11).prop_map(|k| (1u64 << k) - 1),
        0u64..1500,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn roots_match_independent_implementations(n in tree_size()) {
        let ours = MemTree::with_leaves(n);
        let root = ours.edge.root();
        prop_assert_eq!(root_at(&ours, n).unwrap(), root);
        let reference_root = reference(n).root();
        prop_assert_eq!(reference_root.as_bytes().as_slice(), root.0.as_slice());
    }

    #[test]
    fn inclusion_proofs_verify_independently(n in tree_size(), seed in any::<u64>()) {
        prop_assume!(n > 0);
        let ours = MemTree::with_leaves(n);
        let root = ours.edge.root();
        let reference_root = reference(n).root();
        for m in [seed % n, 0, n - 1] {
            let proof = inclusion_proof(&ours, m, n).unwrap();
            let leaf = leaf_hash(&ours.leaves[m as usize]);
            verify_inclusion(m, n, leaf, &proof, root).unwrap();
            let ct = InclusionProof::<Sha256>::try_from_bytes(flat(&proof)).unwrap();
            reference_root.verify_inclusion(&ours.leaves[m as usize], m, &ct).unwrap();
            let go: Vec<_> = proof.iter().copied().map(tlog).collect();
            tlog_tiles::check_record(&go, n, tlog(root), m, tlog(leaf)).unwrap();
            // A single flipped bit must be caught by all three.
            if let Some(first) = proof.first() {
                let mut bad = proof.clone();
                bad[0] = Hash({ let mut b = first.0; b[0] ^= 1; b });
                prop_assert!(verify_inclusion(m, n, leaf, &bad, root).is_err());
                let ct_bad = InclusionProof::<Sha256>::try_from_bytes(flat(&bad)).unwrap();
                prop_assert!(reference_root.verify_inclusion(&ours.leaves[m as usize], m, &ct_bad).is_err());
                let go_bad: Vec<_> = bad.iter().copied().map(tlog).collect();
                prop_assert!(tlog_tiles::check_record(&go_bad, n, tlog(root), m, tlog(leaf)).is_err());
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_independently(n in tree_size(), seed in any::<u64>()) {
        let ours = MemTree::with_leaves(n);
        let new_root = ours.edge.root();
        for m in [seed % (n + 1), 0, n, 1.min(n)] {
            let old_root = root_at(&ours, m).unwrap();
            let proof = consistency_proof(&ours, m, n).unwrap();
            verify_consistency(m, n, old_root, new_root, &proof).unwrap();
            if m > 0 {
                let go: Vec<_> = proof.iter().copied().map(tlog).collect();
                tlog_tiles::check_tree(&go, n, tlog(new_root), m, tlog(old_root)).unwrap();
            }
            if m > 0 && m < n {
                let ct = ConsistencyProof::<Sha256>::try_from_bytes(flat(&proof)).unwrap();
                let ct_new = RootHash::<Sha256>::new(new_root.0.into(), n);
                let ct_old = RootHash::<Sha256>::new(old_root.0.into(), m);
                ct_new.verify_consistency(&ct_old, &ct).unwrap();
                let wrong_old = Hash([9u8; 32]);
                prop_assert!(verify_consistency(m, n, wrong_old, new_root, &proof).is_err());
            }
        }
    }
}

#[test]
fn out_of_range_requests_are_errors_not_panics() {
    let t = MemTree::with_leaves(5);
    assert!(inclusion_proof(&t, 5, 5).is_err());
    assert!(inclusion_proof(&t, 0, 0).is_err());
    assert!(consistency_proof(&t, 6, 5).is_err());
    assert!(consistency_proof(&t, 0, 5).unwrap().is_empty());
    assert!(consistency_proof(&t, 5, 5).unwrap().is_empty());
}

#[test]
fn compact_range_restores_from_edge_nodes() {
    let full = MemTree::with_leaves(1000);
    for size in [0u64, 1, 2, 3, 255, 256, 257, 999] {
        let edge_ids = CompactRange::edge_nodes(size);
        let hashes = full.read_nodes(&edge_ids).unwrap();
        let mut restored = CompactRange::restore(size, hashes).unwrap();
        assert_eq!(restored.root(), root_at(&full, size).unwrap());
        for i in size..1000 {
            restored.append(leaf_hash(&full.leaves[i as usize]), |_, _| {});
        }
        assert_eq!(restored.root(), full.edge.root());
    }
}

fn signer() -> NoteSigner {
    NoteSigner::new("example.com/warden/log", SigningKey::from_bytes(&[42u8; 32])).unwrap()
}

#[test]
fn our_signed_checkpoint_verifies_with_signed_note_and_tlog_tiles() {
    let s = signer();
    let tree = MemTree::with_leaves(77);
    let cp = Checkpoint { origin: s.name().to_owned(), size: 77, root: tree.edge.root() };
    let note_text = s.sign(&cp.to_text()).unwrap();

    let verifier = signed_note::StandardVerifier::new(&s.verifier_key()).unwrap();
    let list = signed_note::VerifierList::new(vec![Box::new(verifier)]);
    let note = signed_note::Note::from_bytes(note_text.as_bytes()).unwrap();
    let (verified, unverified) = note.verify(&list).unwrap();
    assert_eq!((verified.len(), unverified.len()), (1, 0));

    let parsed = tlog_tiles::Checkpoint::from_bytes(note.text()).unwrap();
    assert_eq!(parsed.origin(), s.name());
    assert_eq!(parsed.size(), 77);
    assert_eq!(parsed.hash().0, cp.root.0);

    // And one byte changed anywhere in the body breaks the signature, for both.
    let tampered = note_text.replacen("77\n", "78\n", 1);
    assert!(signed_note::Note::from_bytes(tampered.as_bytes()).unwrap().verify(&list).is_err());
    assert!(NoteVerifier::from_verifier_key(&s.verifier_key()).unwrap().verify(&tampered).is_err());
}

#[test]
fn notes_signed_by_signed_note_verify_with_ours() {
    let mut rng = rand::rngs::OsRng;
    let (skey, vkey) = signed_note::generate_key(&mut rng, "other.example/log");
    let other = signed_note::StandardSigner::new(&skey).unwrap();
    let mut note =
        signed_note::Note::new(b"other.example/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", &[])
            .unwrap();
    note.add_sigs(&[&other]).unwrap();
    let text = String::from_utf8(note.to_bytes()).unwrap();
    let ours = NoteVerifier::from_verifier_key(&vkey).unwrap();
    let body = ours.verify(&text).unwrap();
    assert_eq!(Checkpoint::parse(body).unwrap().size, 3);
    // Our verifier for a different key finds no signature and says so.
    assert!(NoteVerifier::from_verifier_key(&signer().verifier_key()).unwrap().verify(&text).is_err());
    // Our verifier key string matches the reference encoding.
    let s = signer();
    let reference_vkey =
        signed_note::new_ed25519_verifier_key(s.name(), &SigningKey::from_bytes(&[42u8; 32]).verifying_key());
    assert_eq!(s.verifier_key(), reference_vkey);
}

proptest! {
    #[test]
    fn untrusted_text_never_panics(text in "\\PC{0,200}", raw in proptest::collection::vec(any::<u8>(), 0..200)) {
        let lossy = String::from_utf8_lossy(&raw).into_owned();
        for input in [&text, &lossy] {
            let _ = warden_ledger::tile::TileId::parse(input);
            let _ = Checkpoint::parse(input);
            let _ = NoteVerifier::from_verifier_key(input);
            let _ = NoteVerifier::from_verifier_key(&signer().verifier_key()).unwrap().verify(input);
        }
    }
}
