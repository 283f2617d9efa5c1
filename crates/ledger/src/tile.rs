//! C2SP `tlog-tiles`: tile addressing, paths and entry bundles.
//!
//! Tiles have height 8: a tile at tile-level `L` holds up to 256 consecutive hashes
//! of tree level `8·L`; tile-level `0` of the data kind holds entry bundles.
//! Indexes in paths are split into three-digit groups, all but the last prefixed
//! with `x` (`1234067` → `x001/x234/067`); a partial tile of width `W` appends
//! `.p/<W>`.

use crate::proof::NodeId;

/// Tile height in tree levels.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;
/// Highest tile level a path may name (level 63 would address tree level 504).
pub const TILE_LEVEL_MAX: u8 = 63;

/// What a tile path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileId {
    /// `None` for an entry bundle, otherwise the tile level.
    pub level: Option<u8>,
    /// Tile index within its level.
    pub index: u64,
    /// Width: 256 for a full tile, 1..=255 for a partial one.
    pub width: u64,
}

/// Why a tile path is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tile path `{path}`: {why}")]
pub struct TilePathError {
    path: String,
    why: &'static str,
}

impl TileId {
    /// Parses the part of a path after `tile/`: `<L>/<N>[.p/<W>]` or
    /// `entries/<N>[.p/<W>]`.
    pub fn parse(path: &str) -> Result<Self, TilePathError> {
        let err = |why| TilePathError { path: path.to_owned(), why };
        let (head, rest) = path.split_once('/').ok_or_else(|| err("expected `<L>/<N>` or `entries/<N>`"))?;
        let level = if head == "entries" {
            None
        } else {
            let l = parse_decimal(head).ok_or_else(|| err("level is not a decimal number"))?;
            Some(
                u8::try_from(l)
                    .ok()
                    .filter(|l| *l <= TILE_LEVEL_MAX)
                    .ok_or_else(|| err("level is too large"))?,
            )
        };
        let (index_part, width) = match rest.split_once(".p/") {
            Some((index_part, w)) => {
                let w = parse_decimal(w).ok_or_else(|| err("partial width is not a decimal number"))?;
                if w == 0 || w >= TILE_WIDTH {
                    return Err(err("partial width must be between 1 and 255"));
                }
                (index_part, w)
            }
            None => (rest, TILE_WIDTH),
        };
        let index = parse_index(index_part).ok_or_else(|| err("index is not in `x001/x234/067` form"))?;
        Ok(Self { level, index, width })
    }

    /// The path after `tile/`.
    pub fn path(&self) -> String {
        let level = self.level.map_or_else(|| "entries".to_owned(), |l| l.to_string());
        let partial = if self.width < TILE_WIDTH { format!(".p/{}", self.width) } else { String::new() };
        format!("{level}/{}{partial}", format_index(self.index))
    }

    /// For a hash tile, the tree nodes it holds, left to right.
    pub fn first_node(&self) -> Option<NodeId> {
        let level = self.level?;
        Some(NodeId { level: level * TILE_HEIGHT, index: self.index.checked_mul(TILE_WIDTH)? })
    }

    /// The number of leaves a tree must have for this tile to exist.
    pub fn tree_size_needed(&self) -> Option<u64> {
        let level = u32::from(self.level.unwrap_or(0)) * u32::from(TILE_HEIGHT);
        let last = self.index.checked_mul(TILE_WIDTH)?.checked_add(self.width)?;
        if level >= 64 {
            return None;
        }
        last.checked_mul(1u64 << level)
    }
}

fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

fn parse_index(s: &str) -> Option<u64> {
    let mut parts: Vec<&str> = s.split('/').collect();
    let last = parts.pop()?;
    let mut value: u64 = 0;
    for part in parts {
        let digits = part.strip_prefix('x')?;
        value = value.checked_mul(1000)?.checked_add(three_digits(digits)?)?;
    }
    value.checked_mul(1000)?.checked_add(three_digits(last)?)
}

fn three_digits(s: &str) -> Option<u64> {
    if s.len() != 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn format_index(mut n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    n /= 1000;
    while n > 0 {
        groups.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

/// Appends one entry to a bundle: big-endian u16 length, then the bytes.
pub fn push_bundle_entry(bundle: &mut Vec<u8>, entry: &[u8]) -> Result<(), TilePathError> {
    let len = u16::try_from(entry.len())
        .map_err(|_| TilePathError { path: String::new(), why: "entry longer than 65535 bytes" })?;
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(entry);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        for (path, level, index, width) in [
            ("0/000", Some(0), 0, 256),
            ("0/x001/x234/067", Some(0), 1_234_067, 256),
            ("1/x001/x234/067.p/8", Some(1), 1_234_067, 8),
            ("entries/123.p/255", None, 123, 255),
        ] {
            let t = TileId::parse(path).unwrap();
            assert_eq!((t.level, t.index, t.width), (level, index, width));
            assert_eq!(t.path(), path);
        }
        for bad in ["0/1", "0/0001", "x/000", "0/000.p/0", "0/000.p/256", "64/000", "0/x1/000", "01/000", "0"]
        {
            assert!(TileId::parse(bad).is_err(), "{bad}");
        }
    }
}

/// Hashes a stored subtree tile holds: tree levels `8·T` to `8·T + 7` of one
/// 256-wide subtree (256 + 128 + … + 2).
pub const STORED_TILE_HASHES: usize = 510;
/// Bytes of a stored subtree tile.
pub const STORED_TILE_BYTES: usize = STORED_TILE_HASHES * 32;

/// A stored subtree tile: tile level `T` (tree levels `8·T ..= 8·T+7`) and index.
///
/// Storing all eight levels of a tile together (not just its bottom level, as the
/// C2SP wire format does) means the eight lowest hashes of an audit path come from
/// one read, and nothing is recomputed to answer a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileKey {
    /// Tile level: tree levels `8·level ..= 8·level + 7`.
    pub level: u8,
    /// Index among the tiles of this level.
    pub index: u64,
}

impl TileKey {
    /// Where a tree node lives: its tile and its slot within the tile.
    ///
    /// Slots are level by level: the 256 hashes of tree level `8·T` first, then
    /// the 128 of level `8·T + 1`, and so on.
    pub fn locate(node: NodeId) -> (Self, usize) {
        let within = node.level % TILE_HEIGHT;
        let per_tile_shift = TILE_HEIGHT - within;
        let key = Self { level: node.level / TILE_HEIGHT, index: node.index >> per_tile_shift };
        let offset = (node.index & ((1u64 << per_tile_shift) - 1)) as usize;
        (key, slot_base(within) + offset)
    }

    /// Whether `slot` holds a complete node when the tile's bottom level has
    /// `width` hashes.
    pub fn slot_complete(slot: usize, width: u64) -> bool {
        let mut within = 0u8;
        while within + 1 < TILE_HEIGHT && slot >= slot_base(within + 1) {
            within += 1;
        }
        let offset = (slot - slot_base(within)) as u64;
        slot < STORED_TILE_HASHES && (offset + 1) << within <= width
    }
}

/// First slot of within-tile level `within` (0..8): 0, 256, 384, 448, …
fn slot_base(within: u8) -> usize {
    (2 * TILE_WIDTH as usize) - ((2 * TILE_WIDTH as usize) >> within)
}

#[cfg(test)]
mod stored_tests {
    use super::*;

    #[test]
    fn nodes_map_to_distinct_slots_of_their_tile() {
        assert_eq!(TileKey::locate(NodeId { level: 0, index: 5 }), (TileKey { level: 0, index: 0 }, 5));
        assert_eq!(TileKey::locate(NodeId { level: 0, index: 261 }), (TileKey { level: 0, index: 1 }, 5));
        assert_eq!(TileKey::locate(NodeId { level: 1, index: 8 }), (TileKey { level: 0, index: 0 }, 264));
        assert_eq!(TileKey::locate(NodeId { level: 7, index: 3 }), (TileKey { level: 0, index: 1 }, 509));
        assert_eq!(TileKey::locate(NodeId { level: 8, index: 3 }), (TileKey { level: 1, index: 0 }, 3));
        let mut seen = std::collections::HashSet::new();
        for level in 0..8u8 {
            for index in 0..(256u64 >> level) {
                let (key, slot) = TileKey::locate(NodeId { level, index });
                assert_eq!(key, TileKey { level: 0, index: 0 });
                assert!(slot < STORED_TILE_HASHES && seen.insert(slot));
                assert!(TileKey::slot_complete(slot, 256));
            }
        }
        assert!(TileKey::slot_complete(1, 2) && !TileKey::slot_complete(2, 2));
        assert!(TileKey::slot_complete(256, 2) && !TileKey::slot_complete(257, 3));
        assert!(TileKey::slot_complete(509, 256) && !TileKey::slot_complete(509, 255));
    }
}
