//! The snapshot byte format: LEB128 varints, little-endian floats, length-prefixed
//! strings. Written by hand so the format is stable, compact and versioned by one byte
//! that we control; a serde format would tie the bytes to a crate's release.

use crate::error::SnapshotError;

/// Appends values to a byte buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub(crate) bytes: Vec<u8>,
}

impl Writer {
    pub(crate) fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }

    pub(crate) fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.bytes.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.bytes.push(value as u8);
    }

    /// Zig-zag so small negative numbers stay small.
    pub(crate) fn signed(&mut self, value: i64) {
        self.varint(((value << 1) ^ (value >> 63)) as u64);
    }

    pub(crate) fn f32(&mut self, value: f32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn str(&mut self, value: &str) {
        self.varint(value.len() as u64);
        self.bytes.extend_from_slice(value.as_bytes());
    }
}

/// Reads values back, refusing truncated or impossible input.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn u8(&mut self) -> Result<u8, SnapshotError> {
        let (first, rest) = self.bytes.split_first().ok_or(SnapshotError::Corrupt("it ends early"))?;
        self.bytes = rest;
        Ok(*first)
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], SnapshotError> {
        if len > self.bytes.len() {
            return Err(SnapshotError::Corrupt("it ends early"));
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    pub(crate) fn varint(&mut self) -> Result<u64, SnapshotError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(SnapshotError::Corrupt("a number is too long"))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, SnapshotError> {
        u32::try_from(self.varint()?).map_err(|_| SnapshotError::Corrupt("a number is out of range"))
    }

    /// A count that must not exceed `max` (so hostile bytes cannot make us allocate).
    pub(crate) fn len(&mut self, max: usize) -> Result<usize, SnapshotError> {
        let n = self.varint()?;
        usize::try_from(n).ok().filter(|n| *n <= max).ok_or(SnapshotError::Corrupt("a length is too large"))
    }

    pub(crate) fn signed(&mut self) -> Result<i64, SnapshotError> {
        let raw = self.varint()?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    pub(crate) fn f32(&mut self) -> Result<f32, SnapshotError> {
        let bytes = self.take(4)?;
        let array: [u8; 4] = bytes.try_into().map_err(|_| SnapshotError::Corrupt("it ends early"))?;
        let value = f32::from_le_bytes(array);
        if value.is_finite() { Ok(value) } else { Err(SnapshotError::Corrupt("a number is not finite")) }
    }

    /// A float that must lie in `[0, 1]`.
    pub(crate) fn unit(&mut self) -> Result<f32, SnapshotError> {
        let value = self.f32()?;
        if (0.0..=1.0).contains(&value) {
            Ok(value)
        } else {
            Err(SnapshotError::Corrupt("a fraction is outside 0..1"))
        }
    }

    pub(crate) fn str(&mut self, max: usize) -> Result<&'a str, SnapshotError> {
        let len = self.len(max)?;
        std::str::from_utf8(self.take(len)?).map_err(|_| SnapshotError::Corrupt("a name is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() -> Result<(), SnapshotError> {
        let mut w = Writer::default();
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            w.varint(v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            w.signed(v);
        }
        w.f32(0.25);
        w.str("agt_é");
        let mut r = Reader::new(&w.bytes);
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(r.varint()?, v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(r.signed()?, v);
        }
        assert_eq!(r.f32()?, 0.25);
        assert_eq!(r.str(16)?, "agt_é");
        assert!(r.is_empty());
        Ok(())
    }
}
