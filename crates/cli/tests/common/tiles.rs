//! Reading the log's C2SP tiles and entry bundles, for `tlog_tiles`.

use tlog_tiles::{Tile, TileReader};

use super::{Client, TILE_HEIGHT, TILE_WIDTH};

/// The C2SP path of a tile, `/log/tile/<L>/<N>[.p/<W>]`.
///
/// `tlog_tiles` (a port of Go's sumdb code) writes `tile/<H>/<L>/…`; C2SP tlog-tiles
/// fixes the height at 8 and leaves it out.
pub fn tile_path(tile: &Tile) -> String {
    assert_eq!(tile.height(), TILE_HEIGHT);
    let path = tile.path();
    let rest = path.strip_prefix("tile/8/").unwrap_or_else(|| panic!("unexpected tile path {path}"));
    format!("/log/tile/{rest}")
}

/// The C2SP path of an entry bundle, `/log/tile/entries/<N>[.p/<W>]`.
pub fn bundle_path(index: u64, width: u64) -> String {
    let tile = Tile::new(TILE_HEIGHT, 0, index, u32::try_from(width).unwrap(), false);
    let hash_path = tile_path(&tile);
    format!("/log/tile/entries/{}", hash_path.strip_prefix("/log/tile/0/").unwrap())
}

/// Splits an entry bundle: each entry is a big-endian u16 length and that many bytes.
pub fn parse_bundle(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut entries = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 2, "bundle ends inside a length prefix");
        let len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
        assert!(bytes.len() >= 2 + len, "bundle entry of {len} bytes runs past the end");
        entries.push(bytes[2..2 + len].to_vec());
        bytes = &bytes[2 + len..];
    }
    entries
}

/// Reads hash tiles over HTTP from our C2SP paths, for `tlog_tiles::TileHashReader`.
#[derive(Debug)]
pub struct HttpTiles<'a> {
    pub client: &'a Client,
}

impl HttpTiles<'_> {
    fn read_tile(&self, tile: &Tile) -> Vec<u8> {
        let path = tile_path(tile);
        let wanted = usize::try_from(tile.width()).unwrap() * 32;
        let reply = self.client.get(&path);
        if reply.status == 404 && u64::from(tile.width()) < TILE_WIDTH {
            // C2SP tlog-tiles: a client may fall back to the full tile when a
            // partial one is no longer served.
            let full = Tile::new(TILE_HEIGHT, tile.level(), tile.level_index(), 1 << TILE_HEIGHT, false);
            let full_path = tile_path(&full);
            let reply = self.client.get(&full_path).expect_status(200, &format!("GET {full_path}"));
            assert_eq!(reply.body.len(), 32 * 256, "{full_path}: wrong length");
            return reply.body[..wanted].to_vec();
        }
        let reply = reply.expect_status(200, &format!("GET {path}"));
        assert_eq!(reply.body.len(), wanted, "{path}: wrong length");
        reply.body
    }
}

impl TileReader for HttpTiles<'_> {
    fn height(&self) -> u8 {
        TILE_HEIGHT
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        Ok(tiles.iter().map(|t| self.read_tile(t)).collect())
    }

    fn save_tiles(&self, _tiles: &[Tile], _data: &[Vec<u8>]) {}
}
