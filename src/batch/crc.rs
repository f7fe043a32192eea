//! CRC-32C (Castagnoli), the checksum of every batch: whole, over pieces, and combined.

/// CRC-32C (Castagnoli) of `data`, as Kafka stores it.
///
/// Computed by `crc-fast`. `benches/crc.rs` compares it with the `crc32c` crate: on a CPU
/// without AVX-512 (the EPYC of BENCHMARKS.md) `crc32c` is faster on an isolated 16 KiB
/// buffer, but through `Log::append` the two measured the same, so the choice stays with the
/// crate whose AVX-512 path is several times faster where that exists.
#[must_use]
pub fn crc32c(data: &[u8]) -> u32 {
    #[expect(clippy::cast_possible_truncation, reason = "CRC-32 results fit in 32 bits")]
    let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32;
    crc
}

/// CRC-32C over several pieces, equal to [`crc32c`] of their concatenation.
#[derive(Clone)]
pub(crate) struct Crc32cDigest(crc_fast::Digest);

impl Crc32cDigest {
    pub(crate) fn new() -> Self {
        Crc32cDigest(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi))
    }
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    pub(crate) fn value(&self) -> u32 {
        #[expect(clippy::cast_possible_truncation, reason = "CRC-32 results fit in 32 bits")]
        let crc = self.0.finalize() as u32;
        crc
    }
}

/// The CRC-32C of `a ‖ b` from the CRC-32C of `a`, that of `b` and `b`'s length.
pub(crate) fn crc32c_combine(crc_a: u32, crc_b: u32, len_b: u64) -> u32 {
    #[expect(clippy::cast_possible_truncation, reason = "CRC-32 results fit in 32 bits")]
    let crc = crc_fast::checksum_combine(
        crc_fast::CrcAlgorithm::Crc32Iscsi,
        u64::from(crc_a),
        u64::from(crc_b),
        len_b,
    ) as u32;
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_pieces_and_combination_match_the_whole() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let whole = crc32c(&data);
        let mut d = Crc32cDigest::new();
        for piece in data.chunks(77) {
            d.update(piece);
        }
        assert_eq!(d.value(), whole);
        let (a, b) = data.split_at(333);
        assert_eq!(crc32c_combine(crc32c(a), crc32c(b), b.len() as u64), whole);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn crc32c_check_value() {
        // The CRC-32C check value from the Castagnoli catalogue, as Kafka's Crc32C computes it.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn crc32c_agrees_with_an_independent_implementation() {
        // crc-fast picks a SIMD path by CPU and length; check it against the `crc32c` crate
        // (a different algorithm: interleaved SSE4.2 `crc32` streams, or tables) at every
        // alignment and across block-size boundaries.
        let data: Vec<u8> = (0..20_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let lens = (0..300).chain([1023, 1024, 1025, 4095, 4096, 4097, 16_384, 16_385]);
        for len in lens {
            for start in [0, 1, 3, 7] {
                let s = &data[start..start + len];
                let fast = u64::from(crc32c(s));
                assert_eq!(u64::from(crc32c::crc32c(s)), fast, "len {len} at {start}");
            }
        }
    }
}
