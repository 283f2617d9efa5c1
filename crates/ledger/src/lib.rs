//! The verifiable log's mathematics, with no IO.
//!
//! Owns: RFC 6962 / RFC 9162 hashing ([`hash`]), node addressing and proof
//! construction over any [`NodeReader`] ([`proof`]), proof verification
//! ([`verify`]), the incremental right edge used to integrate new leaves
//! ([`compact`]), C2SP `signed-note` ([`note`]) and `tlog-checkpoint`
//! ([`checkpoint`]), C2SP `tlog-tiles` paths and entry bundles ([`tile`]) and
//! self-contained receipts ([`receipt`]).
//!
//! Must not depend on: tokio, hyper, a database, or any Warden crate but `core`.
//! Storage is reached only through [`NodeReader`], so the same proof code serves
//! SQLite, PostgreSQL and in-memory trees.

pub mod checkpoint;
pub mod compact;
pub mod hash;
pub mod note;
pub mod proof;
pub mod receipt;
pub mod tile;
pub mod verify;

pub use checkpoint::Checkpoint;
pub use compact::CompactRange;
pub use hash::{Hash, leaf_hash, node_hash};
pub use proof::{NodeId, NodeReader};
