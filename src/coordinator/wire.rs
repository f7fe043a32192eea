//! Kafka's message encoding as the internal topics' keys and values use it: big-endian
//! integers, `int16`-length strings, and the "flexible" forms (unsigned-varint lengths plus
//! one, tagged-field sections). One writer and one reader for both internal topics.

use crate::codec::Reader;

/// Appends Kafka message fields to a buffer.
#[derive(Debug, Default)]
pub(crate) struct Out {
    pub(crate) buf: Vec<u8>,
}

impl Out {
    pub(crate) fn i8(&mut self, v: i8) -> &mut Self {
        self.buf.push(v as u8);
        self
    }
    pub(crate) fn i16(&mut self, v: i16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// An unsigned varint (7 bits a byte, low groups first).
    pub(crate) fn uvarint(&mut self, mut v: u64) -> &mut Self {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
        self
    }
    /// A non-flexible string: `int16` length, then the UTF-8 bytes. Longer strings are
    /// refused by the callers before they get here (names are capped far below 32 KiB).
    pub(crate) fn string(&mut self, s: &str) -> &mut Self {
        // Longer than a Kafka string can be: cut at a character boundary, so that what is
        // read back is still UTF-8 (callers keep their strings within the bound).
        let mut len = s.len().min(i16::MAX as usize);
        while !s.is_char_boundary(len) {
            len -= 1;
        }
        self.i16(len as i16);
        self.buf.extend_from_slice(&s.as_bytes()[..len]);
        self
    }
    /// A non-flexible nullable string: length -1 for null.
    pub(crate) fn nullable_string(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.string(s),
            None => self.i16(-1),
        }
    }

    /// Non-flexible bytes: `int32` length, then the bytes.
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.i32(i32::try_from(b.len()).unwrap_or(i32::MAX));
        self.buf.extend_from_slice(b);
        self
    }

    /// A flexible string: `uvarint(len + 1)`, then the bytes.
    pub(crate) fn compact_string(&mut self, s: &str) -> &mut Self {
        self.uvarint(s.len() as u64 + 1);
        self.buf.extend_from_slice(s.as_bytes());
        self
    }
}

/// Reads Kafka message fields; every read is bounded and `None` past the end.
pub(crate) trait KafkaRead {
    fn i8(&mut self) -> Option<i8>;
    fn uvarint(&mut self) -> Option<u64>;
    fn string(&mut self) -> Option<String>;
    fn nullable_string(&mut self) -> Option<Option<String>>;
    fn compact_string(&mut self) -> Option<String>;
    fn compact_nullable_string(&mut self) -> Option<Option<String>>;
    fn bytes(&mut self, n: usize) -> Option<&[u8]>;
    /// Skips a tagged-field section, returning its fields as `(tag, payload)` in order.
    fn tagged(&mut self) -> Option<Vec<(u64, Vec<u8>)>>;
}

impl KafkaRead for Reader<'_> {
    fn i8(&mut self) -> Option<i8> {
        self.take::<1>().map(|b| b[0] as i8)
    }
    fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let [b] = self.take::<1>()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    fn string(&mut self) -> Option<String> {
        self.nullable_string()?
    }
    fn nullable_string(&mut self) -> Option<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Some(None);
        }
        let b = self.bytes(len as usize)?;
        Some(Some(std::str::from_utf8(b).ok()?.to_owned()))
    }
    fn compact_string(&mut self) -> Option<String> {
        self.compact_nullable_string()?
    }
    fn compact_nullable_string(&mut self) -> Option<Option<String>> {
        let n = self.uvarint()?;
        if n == 0 {
            return Some(None);
        }
        let b = self.bytes(usize::try_from(n - 1).ok()?)?;
        Some(Some(std::str::from_utf8(b).ok()?.to_owned()))
    }
    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        let b = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(b)
    }
    fn tagged(&mut self) -> Option<Vec<(u64, Vec<u8>)>> {
        let count = self.uvarint()?;
        // Each field takes at least two bytes: a count larger than that is damage.
        if count > self.remaining() as u64 / 2 {
            return None;
        }
        let mut out = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = usize::try_from(self.uvarint()?).ok()?;
            out.push((tag, self.bytes(size)?.to_vec()));
        }
        Some(out)
    }
}

/// The partition of an internal topic that holds `id` (a transactional id or a group id):
/// Kafka's `Utils.abs(id.hashCode()) % partitions`, with Java's `String.hashCode` over
/// UTF-16 code units and `Utils.abs` mapping `i32::MIN` to 0.
#[must_use]
pub fn partition_for(id: &str, partitions: u32) -> i32 {
    let hash = id
        .encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)));
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    (i64::from(abs) % i64::from(partitions.max(1))) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitioning_is_javas_string_hash() {
        // Values checked against Java's "x".hashCode().
        assert_eq!(partition_for("my-txn", 50), 45);
        assert_eq!(partition_for("txn-1", 50), 10);
        assert_eq!(partition_for("test-txn", 50), 31);
        assert_eq!(partition_for("a", 50), 47);
        assert_eq!(partition_for("grp", 50), 29);
        // Kafka's testDeletePartition: with two partitions "a" is in 1 and "b" in 0.
        assert_eq!(partition_for("a", 2), 1);
        assert_eq!(partition_for("b", 2), 0);
        // A character outside the BMP counts as two UTF-16 units.
        assert_eq!(partition_for("\u{1F600}", 1 << 30), {
            let h = (0xD83Di32).wrapping_mul(31).wrapping_add(0xDE00);
            h.abs() % (1 << 30)
        });
    }

    #[test]
    fn uvarints_and_strings_round_trip() {
        let mut o = Out::default();
        o.uvarint(0).uvarint(127).uvarint(128).uvarint(u64::MAX);
        o.string("héllo").compact_string("x").i8(-3);
        let mut r = Reader::new(&o.buf);
        assert_eq!(r.uvarint(), Some(0));
        assert_eq!(r.uvarint(), Some(127));
        assert_eq!(r.uvarint(), Some(128));
        assert_eq!(r.uvarint(), Some(u64::MAX));
        assert_eq!(r.string().as_deref(), Some("héllo"));
        assert_eq!(r.compact_string().as_deref(), Some("x"));
        assert_eq!(r.i8(), Some(-3));
        assert_eq!(r.i8(), None);
        // A length past the end is None, not a panic.
        let mut r = Reader::new(&[0x00, 0x09, b'a']);
        assert_eq!(r.string(), None);
        let mut r = Reader::new(&[0xff; 12]);
        assert_eq!(r.uvarint(), None);
    }
}
