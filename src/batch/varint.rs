//! Kafka's zigzag varints and varlongs (unsigned LEB128 underneath), as records encode their
//! lengths and deltas.

use crate::error::RecordErrorKind;

/// Decodes an unsigned LEB128 varint of at most `max_bytes` from `buf[*pos..]`.
#[inline]
fn read_unsigned_varint(buf: &[u8], pos: &mut usize, max_bytes: u32) -> Result<u64, RecordErrorKind> {
    // Most varints in a record (attributes-adjacent deltas, null key, header count) are one
    // byte: decide those without entering the loop.
    if let Some(&b) = buf.get(*pos) {
        if b < 0x80 {
            *pos += 1;
            return Ok(u64::from(b));
        }
    }
    read_unsigned_varint_loop(buf, pos, max_bytes)
}

fn read_unsigned_varint_loop(buf: &[u8], pos: &mut usize, max_bytes: u32) -> Result<u64, RecordErrorKind> {
    let mut value: u64 = 0;
    for i in 0..max_bytes {
        let Some(&b) = buf.get(*pos) else {
            return Err(RecordErrorKind::PrematureEof);
        };
        *pos += 1;
        if i == 9 && b > 1 {
            // The tenth byte of a varlong may carry only the 64th bit.
            return Err(RecordErrorKind::VarintOverflow);
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(RecordErrorKind::VarintOverflow)
}

/// Zigzag-decoded signed varint (32-bit, at most 5 bytes).
#[inline]
pub(crate) fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i32, RecordErrorKind> {
    let raw = read_unsigned_varint(buf, pos, 5)?;
    if raw > u64::from(u32::MAX) {
        return Err(RecordErrorKind::VarintOverflow);
    }
    let raw = raw as u32;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Zigzag-decoded signed varlong (64-bit, at most 10 bytes).
#[inline]
pub(crate) fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64, RecordErrorKind> {
    let raw = read_unsigned_varint(buf, pos, 10)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

/// Appends the zigzag varint encoding of `v`.
pub(crate) fn write_varint(out: &mut Vec<u8>, v: i32) {
    write_unsigned_varint(out, u64::from(((v << 1) ^ (v >> 31)) as u32));
}

/// Appends the zigzag varlong encoding of `v`.
pub(crate) fn write_varlong(out: &mut Vec<u8>, v: i64) {
    write_unsigned_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn write_unsigned_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_extremes() {
        for v in [0, 1, -1, 63, -64, 64, i32::MAX, i32::MIN] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            let mut pos = 0;
            assert_eq!(read_varint(&out, &mut pos), Ok(v));
            assert_eq!(pos, out.len());
        }
        for v in [0i64, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut out = Vec::new();
            write_varlong(&mut out, v);
            let mut pos = 0;
            assert_eq!(read_varlong(&out, &mut pos), Ok(v));
        }
        let mut null = Vec::new();
        write_varint(&mut null, -1);
        assert_eq!(null, [0x01]);
        let mut pos = 0;
        assert_eq!(
            read_varint(&[0xff; 6], &mut pos),
            Err(RecordErrorKind::VarintOverflow)
        );
    }
}
