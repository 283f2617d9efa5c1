//! The tree as stored: subtree tiles, how integration fills them, and how proofs
//! read them through a bounded cache.
//!
//! A tile holds every hash of eight tree levels under one 256-wide subtree, so the
//! eight lowest hashes of an audit path are one read. Hashes of complete subtrees
//! never change, so a cached copy of a tile stays right for every slot that was
//! complete when it was read; a slot that was not is read again.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use warden_ledger::tile::{STORED_TILE_BYTES, TILE_HEIGHT, TILE_WIDTH, TileKey};
use warden_ledger::{CompactRange, Hash, NodeId, NodeReader, leaf_hash};

use crate::{Store, StoreError, StoredTile};

/// Tiles kept in the proof cache (each up to 16 KiB: 8 MiB in all, however large
/// the log grows).
pub const TILE_CACHE_SLOTS: usize = 512;
/// Leaves read per step when integration catches up after a restart.
const CATCH_UP_LEAVES_MAX: u64 = 50_000;

/// A bounded, direct-mapped cache of tiles. Only tiles that proofs revisit are
/// kept: upper-level tiles and partial (right-edge) tiles; bottom-level full
/// tiles are too many for reuse.
#[derive(Debug)]
pub struct TileCache {
    slots: Mutex<Vec<Option<Arc<StoredTile>>>>,
}

impl Default for TileCache {
    fn default() -> Self {
        Self { slots: Mutex::new(vec![None; TILE_CACHE_SLOTS]) }
    }
}

impl TileCache {
    fn slot(key: TileKey) -> usize {
        let mixed = (key.index ^ (u64::from(key.level) << 58)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> (64 - TILE_CACHE_SLOTS.trailing_zeros())) as usize
    }

    fn get(&self, key: TileKey) -> Option<Arc<StoredTile>> {
        let slots = self.slots.lock().ok()?;
        slots.get(Self::slot(key)).cloned().flatten().filter(|t| t.key == key)
    }

    fn offer(&self, tile: &Arc<StoredTile>) {
        if tile.key.level == 0 && tile.width == TILE_WIDTH {
            return;
        }
        if let Ok(mut slots) = self.slots.lock()
            && let Some(s) = slots.get_mut(Self::slot(tile.key))
        {
            *s = Some(Arc::clone(tile));
        }
    }
}

fn hash_at(tile: &StoredTile, slot: usize) -> Option<Hash> {
    if !TileKey::slot_complete(slot, tile.width) {
        return None;
    }
    tile.hashes.get(slot * Hash::LEN..(slot + 1) * Hash::LEN).and_then(Hash::from_slice)
}

/// Reads tree nodes from stored tiles, through an optional cache.
#[derive(Debug)]
pub struct TileNodes<'a, S: ?Sized> {
    /// The store.
    pub store: &'a S,
    /// The cache, if any.
    pub cache: Option<&'a TileCache>,
}

impl<S: Store + ?Sized> TileNodes<'_, S> {
    /// Each node's hash, or `None` where the store does not have it.
    pub fn read_nodes_opt(&self, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, StoreError> {
        let located: Vec<(TileKey, usize)> = ids.iter().map(|id| TileKey::locate(*id)).collect();
        let mut tiles: HashMap<TileKey, Arc<StoredTile>> = HashMap::with_capacity(8);
        let mut missing: Vec<TileKey> = Vec::new();
        for (key, _) in &located {
            if tiles.contains_key(key) || missing.contains(key) {
                continue;
            }
            // A cached copy serves only if every slot this read needs from it was
            // already complete when it was cached.
            let usable = self.cache.and_then(|c| c.get(*key)).filter(|t| {
                located.iter().filter(|(k, _)| k == key).all(|(_, slot)| hash_at(t, *slot).is_some())
            });
            match usable {
                Some(t) => {
                    tiles.insert(*key, t);
                }
                None => missing.push(*key),
            }
        }
        if !missing.is_empty() {
            for tile in self.store.read_tiles(&missing)?.into_iter().flatten() {
                let tile = Arc::new(tile);
                if let Some(cache) = self.cache {
                    cache.offer(&tile);
                }
                tiles.insert(tile.key, tile);
            }
        }
        Ok(located.iter().map(|(key, slot)| tiles.get(key).and_then(|t| hash_at(t, *slot))).collect())
    }
}

impl<S: Store + ?Sized> NodeReader for TileNodes<'_, S> {
    type Error = StoreError;

    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        let found = self.read_nodes_opt(ids)?;
        ids.iter()
            .zip(found)
            .map(|(id, h)| {
                h.ok_or_else(|| {
                    StoreError::Corrupt(format!("tree node ({}, {}) is missing", id.level, id.index))
                })
            })
            .collect()
    }
}

/// Integration: extends the right edge and fills the tiles it touches.
#[derive(Debug)]
pub struct Integrator {
    edge: CompactRange,
    // INVARIANT: holds the current contents of every tile touched since it was
    // last full, so a partial tile is never read back from the store per batch.
    open: HashMap<TileKey, StoredTile>,
}

impl Integrator {
    /// An integrator that knows nothing; it is never in step with a non-empty
    /// store, so its first use rebuilds it from the store.
    pub fn empty() -> Self {
        Self { edge: CompactRange::new(), open: HashMap::new() }
    }

    /// Resumes from the store's integrated tree.
    pub fn restore(store: &dyn Store) -> Result<Self, StoreError> {
        let size = store.integrated_size()?;
        let nodes = TileNodes { store, cache: None };
        let hashes = nodes.read_nodes(&CompactRange::edge_nodes(size))?;
        let edge = CompactRange::restore(size, hashes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Self { edge, open: HashMap::new() })
    }

    /// Resumes and integrates every sequenced leaf not yet integrated.
    pub fn catch_up(store: &dyn Store) -> Result<Self, StoreError> {
        let mut me = Self::restore(store)?;
        let sequenced = store.sequenced_size()?;
        while me.edge.size() < sequenced {
            let end = sequenced.min(me.edge.size() + CATCH_UP_LEAVES_MAX);
            let leaves = store.read_leaves(me.edge.size(), end)?;
            me.append(store, leaves.iter().map(|l| leaf_hash(l)))?;
        }
        Ok(me)
    }

    /// Leaves integrated.
    pub fn size(&self) -> u64 {
        self.edge.size()
    }

    /// The root of the integrated tree.
    pub fn root(&self) -> Hash {
        self.edge.root()
    }

    /// Appends leaf hashes and stores every tile they changed, with the new size.
    /// On error the integrator is stale; rebuild it with [`Self::catch_up`].
    pub fn append(
        &mut self,
        store: &dyn Store,
        leaf_hashes: impl IntoIterator<Item = Hash>,
    ) -> Result<(), StoreError> {
        let mut placed: Vec<(TileKey, usize, NodeId, Hash)> = Vec::new();
        for h in leaf_hashes {
            self.edge.append(h, |id, hash| {
                let (key, slot) = TileKey::locate(id);
                placed.push((key, slot, id, hash));
            });
        }
        let mut touched: BTreeMap<TileKey, ()> = BTreeMap::new();
        for (key, ..) in &placed {
            touched.insert(*key, ());
        }
        let unknown: Vec<TileKey> = touched.keys().filter(|k| !self.open.contains_key(k)).copied().collect();
        if !unknown.is_empty() {
            for (key, stored) in unknown.iter().zip(store.read_tiles(&unknown)?) {
                let tile = stored.unwrap_or_else(|| StoredTile {
                    key: *key,
                    width: 0,
                    hashes: vec![0; STORED_TILE_BYTES],
                });
                self.open.insert(*key, tile);
            }
        }
        for (key, slot, id, hash) in placed {
            let tile = self.open.get_mut(&key).ok_or_else(|| StoreError::Corrupt("tile vanished".into()))?;
            let bytes = tile
                .hashes
                .get_mut(slot * Hash::LEN..(slot + 1) * Hash::LEN)
                .ok_or_else(|| StoreError::Corrupt(format!("tile slot {slot} is out of range")))?;
            bytes.copy_from_slice(&hash.0);
            if id.level % TILE_HEIGHT == 0 {
                tile.width = tile.width.max((id.index % TILE_WIDTH) + 1);
            }
        }
        let changed: Vec<StoredTile> = touched.keys().filter_map(|k| self.open.get(k).cloned()).collect();
        store.integrate(&changed, self.edge.size())?;
        // A tile whose bottom level is full had all its levels completed by the
        // same append; it will never change again.
        self.open.retain(|_, t| t.width < TILE_WIDTH);
        Ok(())
    }
}
