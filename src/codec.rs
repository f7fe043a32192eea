//! Big-endian integers, the byte order of every Kafka file: the one reader of fixed-width
//! fields that the batch, index, transaction-index and snapshot decoders share.
//!
//! Every read is bounds-checked and returns `None` past the end of the buffer: bytes read
//! from disk are never trusted to be long enough.

/// The `i16` at `at`, if the buffer holds it.
pub(crate) fn be_i16(buf: &[u8], at: usize) -> Option<i16> {
    Some(i16::from_be_bytes(
        buf.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

/// The `i32` at `at`, if the buffer holds it.
pub(crate) fn be_i32(buf: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(
        buf.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// The `i64` at `at`, if the buffer holds it.
pub(crate) fn be_i64(buf: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(
        buf.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// A cursor over a buffer of big-endian fields.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    pub(crate) buf: &'a [u8],
    /// The next byte to read.
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// The next `N` bytes, if present (the cursor moves only when they are).
    pub(crate) fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let bytes = self
            .buf
            .get(self.pos..self.pos.checked_add(N)?)?
            .try_into()
            .ok()?;
        self.pos += N;
        Some(bytes)
    }

    pub(crate) fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }

    pub(crate) fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }

    pub(crate) fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_big_endian_and_bounded() {
        let b = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09];
        assert_eq!(be_i16(&b, 0), Some(0x0102));
        assert_eq!(be_i32(&b, 1), Some(0x0203_0405));
        assert_eq!(be_i64(&b, 1), Some(0x0203_0405_0607_0809));
        assert_eq!(be_i64(&b, 2), None);
        assert_eq!(be_i32(&b, usize::MAX), None);
        let mut r = Reader::new(&b);
        assert_eq!(r.i32(), Some(0x0102_0304));
        assert_eq!(r.i64(), None, "a short read does not move the cursor");
        assert_eq!(r.remaining(), 5);
        assert_eq!(r.i16(), Some(0x0506));
    }
}
