//! Compression codecs of record batches, framed the way Kafka's Java client frames them.
//!
//! A compressed v2 batch holds its whole records area as one compressed blob (the 61-byte
//! header, including `recordsCount`, stays uncompressed). The framing of that blob per codec:
//!
//! * **gzip**: a gzip stream (RFC 1952). Concatenated members are accepted.
//! * **snappy**: the xerial `SnappyOutputStream` framing: the 8-byte magic
//!   `82 'S' 'N' 'A' 'P' 'P' 'Y' 00`, a big-endian int32 version and compatible version (both 1),
//!   then blocks of big-endian int32 length + raw snappy block, one block per 32 KiB of input.
//!   A payload without the magic is read as one raw snappy block, as xerial's
//!   `SnappyInputStream` does (some non-Java clients send that).
//! * **lz4**: one LZ4 frame (magic `0x184D2204`), independent 64 KiB blocks, no block or content
//!   checksum, a correct header checksum, as Kafka's `Lz4BlockOutputStream` writes for magic v2.
//!   Readers accept what Kafka's `Lz4BlockInputStream` accepts: any block size from 64 KiB to
//!   4 MiB, optional content size, block and content checksums (all verified); dependent
//!   (linked) blocks and dictionary ids are refused, as Kafka refuses them.
//! * **zstd**: a standard zstd frame (several frames are accepted).
//!
//! Every decoder's output is bounded: decompressing more than `max_len` bytes is an error, so
//! a small "decompression bomb" cannot make the engine allocate without limit. No input makes
//! these functions panic.

#[cfg(any(feature = "gzip", feature = "lz4", feature = "zstd"))]
use std::io::Read;

use crate::error::BatchError;

/// Compression codec of a record batch (attribute bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// No compression (codec id 0): the records area is the records themselves.
    None,
    /// gzip (codec id 1): a gzip stream.
    Gzip,
    /// Snappy (codec id 2): xerial-framed snappy blocks.
    Snappy,
    /// LZ4 (codec id 3): an LZ4 frame.
    Lz4,
    /// Zstandard (codec id 4): a zstd frame.
    Zstd,
}

impl Compression {
    /// The codec for attribute bits 0-2 of a batch.
    ///
    /// # Errors
    ///
    /// [`BatchError::UnknownCodec`] for an id other than 0 to 4.
    pub fn from_id(id: u8) -> Result<Compression, BatchError> {
        match id {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            codec => Err(BatchError::UnknownCodec { codec }),
        }
    }

    /// The codec id stored in attribute bits 0-2.
    #[must_use]
    pub const fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The name Kafka uses for the codec (`compression.type`): `"none"`, `"gzip"`,
    /// `"snappy"`, `"lz4"` or `"zstd"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Whether this build can compress and decompress the codec (its cargo feature is
    /// enabled). [`Compression::None`] is always enabled.
    #[must_use]
    pub const fn is_enabled(self) -> bool {
        match self {
            Compression::None => true,
            Compression::Gzip => cfg!(feature = "gzip"),
            Compression::Snappy => cfg!(feature = "snappy"),
            Compression::Lz4 => cfg!(feature = "lz4"),
            Compression::Zstd => cfg!(feature = "zstd"),
        }
    }
}

/// Decompress a batch's records area. Output larger than `max_len` bytes is an error
/// ([`BatchError::Decompression`]): this protects against decompression bombs. Never panics,
/// whatever the input.
///
/// A disabled codec returns [`BatchError::CodecDisabled`].
pub(crate) fn decompress(codec: Compression, data: &[u8], max_len: usize) -> Result<Vec<u8>, BatchError> {
    if codec == Compression::None {
        if data.len() > max_len {
            return Err(too_large(codec, max_len));
        }
        return Ok(data.to_vec());
    }
    if data.is_empty() && codec.is_enabled() {
        // Every codec frames even empty content in a few bytes (a header at least), so an
        // empty payload is corrupt. Some decoders would take it for empty content.
        return Err(decompression_error(codec, "empty compressed payload"));
    }
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => gzip::decompress(data, max_len),
        Compression::Snappy => snappy::decompress(data, max_len),
        Compression::Lz4 => lz4::decompress(data, max_len),
        Compression::Zstd => zstd_codec::decompress(data, max_len),
    }
}

/// Compress `data` the way Kafka's Java producer frames it (see the module documentation).
///
/// A disabled codec returns [`BatchError::CodecDisabled`]. The codecs cannot fail on
/// in-memory data except for inputs over 4 GiB (snappy); such a failure is reported as
/// [`BatchError::Decompression`] with a reason starting with "compression failed".
pub(crate) fn compress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, BatchError> {
    compress_at(codec, data, None)
}

/// [`compress`] at `level` (`compression.gzip.level`, `compression.zstd.level`, as
/// [`crate::LogConfig`] checked it); `None` is the codec's default, and snappy and lz4 (the
/// fast compressor, Kafka's default level 9) have one level only.
pub(crate) fn compress_at(
    codec: Compression,
    data: &[u8],
    level: Option<i32>,
) -> Result<Vec<u8>, BatchError> {
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => gzip::compress(data, level),
        Compression::Snappy => snappy::compress(data, level),
        Compression::Lz4 => lz4::compress(data, level),
        Compression::Zstd => zstd_codec::compress(data, level),
    }
}

/// A [`BatchError::Decompression`] for `codec`.
fn decompression_error(codec: Compression, reason: impl std::fmt::Display) -> BatchError {
    BatchError::Decompression {
        codec: codec.name(),
        reason: reason.to_string(),
    }
}

/// The error for output beyond `max_len`.
fn too_large(codec: Compression, max_len: usize) -> BatchError {
    decompression_error(
        codec,
        format_args!("decompressed size exceeds the limit of {max_len} bytes"),
    )
}

/// A failure while compressing (only possible for absurd input sizes).
#[cfg(any(feature = "gzip", feature = "snappy", feature = "lz4", feature = "zstd"))]
fn compression_error(codec: Compression, reason: impl std::fmt::Display) -> BatchError {
    decompression_error(codec, format_args!("compression failed: {reason}"))
}

/// Read `reader` to its end, failing once it yields more than `max_len` bytes.
/// `hint` is the expected output size (used only to size the first allocation).
#[cfg(any(feature = "gzip", feature = "lz4", feature = "zstd"))]
fn read_bounded<R: Read>(
    codec: Compression,
    reader: R,
    max_len: usize,
    hint: usize,
) -> Result<Vec<u8>, BatchError> {
    let limit = u64::try_from(max_len).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::with_capacity(hint.min(max_len));
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| decompression_error(codec, e))?;
    if out.len() > max_len {
        return Err(too_large(codec, max_len));
    }
    Ok(out)
}

/// The first allocation for decompressing `compressed_len` bytes: a guess of 4x, capped so a
/// large input does not reserve memory it may never use.
#[cfg(any(feature = "gzip", feature = "lz4", feature = "zstd"))]
fn size_hint(compressed_len: usize) -> usize {
    compressed_len.saturating_mul(4).min(1 << 20)
}

/// A stand-in module for a codec whose cargo feature is off.
#[cfg(not(all(feature = "gzip", feature = "snappy", feature = "lz4", feature = "zstd")))]
macro_rules! disabled_codec {
    ($module:ident, $codec:ident) => {
        mod $module {
            use super::Compression;
            use crate::error::BatchError;

            pub(super) fn compress(_data: &[u8], _level: Option<i32>) -> Result<Vec<u8>, BatchError> {
                Err(BatchError::CodecDisabled {
                    codec: Compression::$codec.name(),
                })
            }

            pub(super) fn decompress(_data: &[u8], _max_len: usize) -> Result<Vec<u8>, BatchError> {
                Err(BatchError::CodecDisabled {
                    codec: Compression::$codec.name(),
                })
            }
        }
    };
}

#[cfg(not(feature = "gzip"))]
disabled_codec!(gzip, Gzip);
#[cfg(not(feature = "snappy"))]
disabled_codec!(snappy, Snappy);
#[cfg(not(feature = "lz4"))]
disabled_codec!(lz4, Lz4);
#[cfg(not(feature = "zstd"))]
disabled_codec!(zstd_codec, Zstd);

#[cfg(feature = "gzip")]
mod gzip {
    //! gzip: a plain gzip stream (Kafka wraps a `GZIPOutputStream`, default level).

    use std::io::Write;

    use flate2::{read::MultiGzDecoder, write::GzEncoder};

    use super::{compression_error, read_bounded, size_hint, Compression};
    use crate::error::BatchError;

    const CODEC: Compression = Compression::Gzip;

    /// `level` 1 to 9; `None` (and Kafka's -1) is zlib's default, 6.
    pub(super) fn compress(data: &[u8], level: Option<i32>) -> Result<Vec<u8>, BatchError> {
        let level = match level.and_then(|l| u32::try_from(l).ok()) {
            Some(l @ 1..=9) => flate2::Compression::new(l),
            _ => flate2::Compression::default(),
        };
        let mut encoder = GzEncoder::new(Vec::with_capacity(data.len() / 2 + 32), level);
        encoder.write_all(data).map_err(|e| compression_error(CODEC, e))?;
        encoder.finish().map_err(|e| compression_error(CODEC, e))
    }

    pub(super) fn decompress(data: &[u8], max_len: usize) -> Result<Vec<u8>, BatchError> {
        read_bounded(CODEC, MultiGzDecoder::new(data), max_len, size_hint(data.len()))
    }
}

#[cfg(feature = "snappy")]
mod snappy {
    //! snappy in xerial's `SnappyOutputStream` framing, with the raw-block fallback of
    //! `SnappyInputStream`.

    use snap::raw::{decompress_len, Decoder, Encoder};

    use super::{compression_error, decompression_error, too_large, Compression};
    use crate::error::BatchError;

    const CODEC: Compression = Compression::Snappy;

    /// xerial's stream magic: `0x82`, `"SNAPPY"`, `0`.
    pub(super) const MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
    /// The full stream header: magic, int32 version 1, int32 compatible version 1 (big-endian).
    pub(super) const HEADER: [u8; 16] = [
        0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
    ];
    /// Bytes of input per block (`SnappyOutputStream`'s default block size, used by Kafka).
    pub(super) const BLOCK_SIZE: usize = 32 * 1024;

    /// Snappy has one level.
    pub(super) fn compress(data: &[u8], _level: Option<i32>) -> Result<Vec<u8>, BatchError> {
        let mut out = Vec::with_capacity(HEADER.len() + data.len() / 2 + 64);
        out.extend_from_slice(&HEADER);
        let mut encoder = Encoder::new();
        for chunk in data.chunks(BLOCK_SIZE) {
            let block = encoder
                .compress_vec(chunk)
                .map_err(|e| compression_error(CODEC, e))?;
            let len = i32::try_from(block.len())
                .map_err(|_| compression_error(CODEC, "block longer than i32::MAX"))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&block);
        }
        Ok(out)
    }

    pub(super) fn decompress(data: &[u8], max_len: usize) -> Result<Vec<u8>, BatchError> {
        if data.starts_with(&MAGIC) {
            decompress_framed(data, max_len)
        } else {
            let mut out = Vec::new();
            decompress_block(data, max_len, &mut out)?;
            Ok(out)
        }
    }

    /// Decode the xerial stream in `data` (which starts with the magic).
    ///
    /// The version fields are not checked: xerial only requires version >= 1 and some
    /// producers are known to write them little-endian. A header repeated between blocks
    /// (streams concatenated, which newer xerial versions read) is skipped.
    fn decompress_framed(data: &[u8], max_len: usize) -> Result<Vec<u8>, BatchError> {
        let mut out = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            if rest.starts_with(&MAGIC) {
                rest = rest
                    .get(HEADER.len()..)
                    .ok_or_else(|| decompression_error(CODEC, "truncated xerial stream header"))?;
                continue;
            }
            let Some((len_bytes, tail)) = rest.split_first_chunk::<4>() else {
                return Err(decompression_error(
                    CODEC,
                    format_args!("{} trailing bytes, too short for a block length", rest.len()),
                ));
            };
            let len = i32::from_be_bytes(*len_bytes);
            let len = usize::try_from(len)
                .map_err(|_| decompression_error(CODEC, format_args!("negative block length {len}")))?;
            if len > tail.len() {
                return Err(decompression_error(
                    CODEC,
                    format_args!("block of {len} bytes but only {} bytes remain", tail.len()),
                ));
            }
            let (block, tail) = tail.split_at(len);
            decompress_block(block, max_len, &mut out)?;
            rest = tail;
        }
        Ok(out)
    }

    /// Append the raw snappy block `block` to `out`, keeping `out` within `max_len`.
    fn decompress_block(block: &[u8], max_len: usize, out: &mut Vec<u8>) -> Result<(), BatchError> {
        if block.is_empty() {
            return Err(decompression_error(CODEC, "empty snappy block"));
        }
        let n = decompress_len(block).map_err(|e| decompression_error(CODEC, e))?;
        if n > max_len.saturating_sub(out.len()) {
            return Err(too_large(CODEC, max_len));
        }
        // A snappy element of k input bytes produces at most 64 output bytes for k >= 3 (a
        // copy), so a block can never expand more than ~22x: refuse a declared length beyond
        // that before allocating it (a few bytes could otherwise claim gigabytes).
        if n > block.len().saturating_mul(24).saturating_add(64) {
            return Err(decompression_error(
                CODEC,
                format_args!(
                    "block of {} bytes cannot decode to the {n} bytes it declares",
                    block.len()
                ),
            ));
        }
        let start = out.len();
        out.resize(start + n, 0);
        let written = out
            .get_mut(start..)
            .ok_or_else(|| decompression_error(CODEC, "internal buffer error"))
            .and_then(|dst| {
                Decoder::new()
                    .decompress(block, dst)
                    .map_err(|e| decompression_error(CODEC, e))
            });
        match written {
            Ok(w) if w == n => Ok(()),
            Ok(w) => Err(decompression_error(
                CODEC,
                format_args!("block declared {n} bytes but decoded to {w}"),
            )),
            Err(e) => Err(e),
        }
    }
}

#[cfg(feature = "lz4")]
mod lz4 {
    //! LZ4 frame format, as Kafka's `Lz4BlockOutputStream` writes it and its
    //! `Lz4BlockInputStream` reads it.

    use std::io::Write;

    use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

    use super::{compression_error, decompression_error, read_bounded, size_hint, Compression};
    use crate::error::BatchError;

    const CODEC: Compression = Compression::Lz4;
    /// LZ4 frame magic number (stored little-endian).
    const MAGIC: u32 = 0x184D_2204;
    const FLG_VERSION_MASK: u8 = 0b1100_0000;
    const FLG_VERSION_1: u8 = 0b0100_0000;
    const FLG_INDEPENDENT: u8 = 0b0010_0000;
    const FLG_BLOCK_CHECKSUM: u8 = 0b0001_0000;
    const FLG_CONTENT_SIZE: u8 = 0b0000_1000;
    const FLG_CONTENT_CHECKSUM: u8 = 0b0000_0100;
    /// Bit 1 is reserved; bit 0 (dictionary id) is reserved for Kafka, which refuses it.
    const FLG_RESERVED: u8 = 0b0000_0011;
    const BD_RESERVED: u8 = 0b1000_1111;
    const BLOCK_UNCOMPRESSED: u32 = 0x8000_0000;

    /// lz4's fast compressor, which Kafka uses at its default level (9), the only level
    /// `compression.lz4.level` takes here.
    pub(super) fn compress(data: &[u8], _level: Option<i32>) -> Result<Vec<u8>, BatchError> {
        // Kafka (magic v2): FLG 0x60 (version 1, independent blocks, no checksums, no content
        // size), BD 0x40 (64 KiB blocks), correct header checksum. An incompressible block is
        // stored uncompressed (high bit of its length), as both Kafka and lz4_flex do.
        let info = FrameInfo::new()
            .block_size(BlockSize::Max64KB)
            .block_mode(BlockMode::Independent)
            .block_checksums(false)
            .content_checksum(false)
            .content_size(None);
        let mut encoder = FrameEncoder::with_frame_info(info, Vec::with_capacity(data.len() / 2 + 32));
        encoder.write_all(data).map_err(|e| compression_error(CODEC, e))?;
        encoder.finish().map_err(|e| compression_error(CODEC, e))
    }

    pub(super) fn decompress(data: &[u8], max_len: usize) -> Result<Vec<u8>, BatchError> {
        check_frame(data).map_err(|reason| decompression_error(CODEC, reason))?;
        // `check_frame` proved the input is exactly one complete frame, so the decoder never
        // meets a truncated frame (which it would take for the end of the stream).
        read_bounded(CODEC, FrameDecoder::new(data), max_len, size_hint(data.len()))
    }

    fn le_u32(data: &[u8], pos: usize) -> Result<u32, String> {
        data.get(pos..)
            .and_then(|rest| rest.first_chunk::<4>())
            .map(|bytes| u32::from_le_bytes(*bytes))
            .ok_or_else(|| format!("frame truncated at byte {pos}"))
    }

    /// Walk the frame structure without decoding: descriptor flags as Kafka accepts them,
    /// every block length within the frame's maximum and the input, an end mark, and no
    /// bytes after the frame. Checksums are verified by the decoder afterwards.
    fn check_frame(data: &[u8]) -> Result<(), String> {
        let magic = le_u32(data, 0)?;
        if magic != MAGIC {
            return Err(format!("not an LZ4 frame (magic {magic:#010x})"));
        }
        let (&flg, &bd) = match (data.get(4), data.get(5)) {
            (Some(flg), Some(bd)) => (flg, bd),
            _ => return Err("frame descriptor truncated".into()),
        };
        if flg & FLG_VERSION_MASK != FLG_VERSION_1 {
            return Err(format!("unsupported frame version in FLG {flg:#04x}"));
        }
        if flg & FLG_RESERVED != 0 {
            return Err(format!("reserved or dictionary-id bits set in FLG {flg:#04x}"));
        }
        if flg & FLG_INDEPENDENT == 0 {
            return Err("dependent (linked) blocks are not supported by Kafka".into());
        }
        if bd & BD_RESERVED != 0 {
            return Err(format!("reserved bits set in BD {bd:#04x}"));
        }
        let block_size_id = (bd >> 4) & 0x07;
        if !(4..=7).contains(&block_size_id) {
            return Err(format!("unsupported block size id {block_size_id}"));
        }
        let max_block = 1usize << (2 * usize::from(block_size_id) + 8);
        let block_checksum = if flg & FLG_BLOCK_CHECKSUM != 0 { 4 } else { 0 };
        // Magic, FLG, BD, optional content size, then the header checksum byte.
        let mut pos = 6 + if flg & FLG_CONTENT_SIZE != 0 { 8 } else { 0 };
        if data.len() <= pos {
            return Err("frame descriptor truncated".into());
        }
        pos += 1;
        loop {
            let word = le_u32(data, pos)?;
            pos += 4;
            if word == 0 {
                break;
            }
            if word == BLOCK_UNCOMPRESSED {
                return Err(format!("empty block at byte {}", pos - 4));
            }
            let len = usize::try_from(word & !BLOCK_UNCOMPRESSED)
                .map_err(|_| "block length overflows usize".to_string())?;
            if len > max_block {
                return Err(format!(
                    "block of {len} bytes exceeds the frame's {max_block}-byte maximum"
                ));
            }
            let end = pos
                .checked_add(len + block_checksum)
                .filter(|&end| end <= data.len())
                .ok_or_else(|| format!("block at byte {} truncated", pos - 4))?;
            pos = end;
        }
        if flg & FLG_CONTENT_CHECKSUM != 0 {
            pos += 4;
            if pos > data.len() {
                return Err("content checksum truncated".into());
            }
        }
        if pos != data.len() {
            return Err(format!("{} bytes after the end of the frame", data.len() - pos));
        }
        Ok(())
    }
}

#[cfg(feature = "zstd")]
mod zstd_codec {
    //! zstd: a standard zstd frame (Kafka uses zstd-jni's stream at level 3).

    use super::{compression_error, decompression_error, read_bounded, size_hint, Compression};
    use crate::error::BatchError;

    const CODEC: Compression = Compression::Zstd;
    /// Kafka's default `compression.zstd.level`.
    const LEVEL: i32 = 3;

    /// `level` -131072 to 22; `None` is Kafka's default, 3.
    pub(super) fn compress(data: &[u8], level: Option<i32>) -> Result<Vec<u8>, BatchError> {
        zstd::bulk::compress(data, level.unwrap_or(LEVEL)).map_err(|e| compression_error(CODEC, e))
    }

    pub(super) fn decompress(data: &[u8], max_len: usize) -> Result<Vec<u8>, BatchError> {
        let decoder =
            zstd::stream::read::Decoder::with_buffer(data).map_err(|e| decompression_error(CODEC, e))?;
        read_bounded(CODEC, decoder, max_len, size_hint(data.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// Deterministic pseudo-random bytes (xorshift64*).
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect()
    }

    /// Record-like data: repeated text with some noise, compressible but not trivially.
    fn sample(len: usize) -> Vec<u8> {
        let noise = noise(7, len / 8 + 1);
        let mut out = Vec::with_capacity(len);
        let mut i = 0usize;
        while out.len() < len {
            out.extend_from_slice(format!("record {i:06} value=").as_bytes());
            out.extend_from_slice(
                &noise[(i * 7) % noise.len()..][..8.min(noise.len() - (i * 7) % noise.len())],
            );
            i += 1;
        }
        out.truncate(len);
        out
    }

    fn enabled() -> impl Iterator<Item = Compression> {
        ALL.into_iter().filter(|c| c.is_enabled())
    }

    #[test]
    fn ids_and_names() {
        for (id, codec) in ALL.iter().enumerate() {
            let id = u8::try_from(id).expect("small");
            assert_eq!(codec.id(), id);
            assert_eq!(Compression::from_id(id), Ok(*codec));
        }
        let names: Vec<_> = ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["none", "gzip", "snappy", "lz4", "zstd"]);
        for id in [5u8, 6, 7, 8, 255] {
            assert_eq!(
                Compression::from_id(id),
                Err(BatchError::UnknownCodec { codec: id })
            );
        }
        assert!(Compression::None.is_enabled());
        assert_eq!(Compression::Gzip.is_enabled(), cfg!(feature = "gzip"));
        assert_eq!(Compression::Snappy.is_enabled(), cfg!(feature = "snappy"));
        assert_eq!(Compression::Lz4.is_enabled(), cfg!(feature = "lz4"));
        assert_eq!(Compression::Zstd.is_enabled(), cfg!(feature = "zstd"));
    }

    #[test]
    fn disabled_codecs_say_so() {
        for codec in ALL.into_iter().filter(|c| !c.is_enabled()) {
            let want = Err(BatchError::CodecDisabled { codec: codec.name() });
            assert_eq!(compress(codec, b"abc"), want);
            assert_eq!(decompress(codec, b"abc", 100), want);
            assert_eq!(decompress(codec, b"", 100), want);
        }
    }

    #[test]
    fn round_trip_every_codec() {
        let inputs = [Vec::new(), b"hello, kafka".to_vec(), sample(200 * 1024)];
        for codec in enabled() {
            for input in &inputs {
                let packed = compress(codec, input).expect("compress");
                let unpacked = decompress(codec, &packed, input.len()).expect("decompress");
                assert!(
                    unpacked == *input,
                    "{} round trip of {} bytes",
                    codec.name(),
                    input.len()
                );
                if codec != Compression::None && input.len() > 1024 {
                    assert!(packed.len() < input.len(), "{} did not compress", codec.name());
                }
            }
        }
    }

    #[test]
    fn incompressible_round_trip() {
        let input = noise(99, 150 * 1024);
        for codec in enabled() {
            let packed = compress(codec, &input).expect("compress");
            assert_eq!(
                decompress(codec, &packed, input.len()).expect("decompress"),
                input
            );
        }
    }

    #[test]
    fn bomb_guard() {
        let zeros = vec![0u8; 1 << 20];
        for codec in enabled() {
            let packed = compress(codec, &zeros).expect("compress");
            if codec != Compression::None {
                assert!(
                    packed.len() < 64 * 1024,
                    "{} packed to {}",
                    codec.name(),
                    packed.len()
                );
            }
            assert_eq!(
                decompress(codec, &packed, zeros.len()).expect("at the limit"),
                zeros
            );
            for max_len in [zeros.len() - 1, 1000, 0] {
                match decompress(codec, &packed, max_len) {
                    Err(BatchError::Decompression { codec: name, reason }) => {
                        assert_eq!(name, codec.name());
                        assert!(reason.contains("exceeds the limit"), "{reason}");
                    }
                    other => panic!("{} with max_len {max_len}: {other:?}", codec.name()),
                }
            }
        }
    }

    #[test]
    fn garbage_is_an_error() {
        let garbage: Vec<Vec<u8>> = vec![
            Vec::new(),
            vec![0x80],
            vec![0xff; 7],
            b"definitely not compressed data, just text".to_vec(),
            noise(1, 64),
            noise(2, 4096),
        ];
        for codec in enabled().filter(|&c| c != Compression::None) {
            if codec != Compression::Snappy {
                // (The single byte 0 is a valid raw snappy block: empty content.)
                assert!(decompress(codec, &[0], 1 << 20).is_err(), "{}", codec.name());
            }
            for g in &garbage {
                assert!(
                    decompress(codec, g, 1 << 20).is_err(),
                    "{} accepted {} garbage bytes",
                    codec.name(),
                    g.len()
                );
            }
        }
    }

    /// Truncations and bit flips of valid payloads: any result is fine, a panic is not.
    #[test]
    fn mangled_input_never_panics() {
        let input = sample(100 * 1024);
        for codec in enabled() {
            let packed = compress(codec, &input).expect("compress");
            let mut cuts: Vec<usize> = (0..packed.len().min(64)).collect();
            cuts.extend((0..packed.len()).step_by(997));
            for cut in cuts {
                let _ = decompress(codec, &packed[..cut], 1 << 20);
            }
            for (i, flip) in noise(5, 300).chunks(2).enumerate() {
                let mut bad = packed.clone();
                let pos = (usize::from(flip[0]) * 251 + i * 131) % bad.len();
                bad[pos] ^= flip[1] | 1;
                let _ = decompress(codec, &bad, 1 << 20);
            }
            // Pure noise with the codec's first bytes in front.
            for seed in 0..50 {
                let mut bad = packed[..packed.len().min(20)].to_vec();
                bad.extend(noise(seed, 300));
                let _ = decompress(codec, &bad, 1 << 20);
            }
        }
    }

    #[test]
    fn truncated_payloads_are_errors() {
        let input = sample(100 * 1024);
        for codec in enabled().filter(|&c| c != Compression::None) {
            let packed = compress(codec, &input).expect("compress");
            for cut in [1, packed.len() / 2, packed.len() - 1] {
                assert!(
                    decompress(codec, &packed[..cut], 1 << 20).is_err(),
                    "{} accepted a payload cut at {cut} of {}",
                    codec.name(),
                    packed.len()
                );
            }
        }
    }

    #[cfg(feature = "snappy")]
    #[test]
    fn snappy_xerial_layout() {
        let input = sample(100 * 1024);
        let packed = compress(Compression::Snappy, &input).expect("compress");
        assert_eq!(packed[..16], snappy::HEADER);
        assert_eq!(packed[..8], [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0x00]);
        // Walk the blocks: big-endian lengths, each a raw block of at most 32 KiB input.
        let mut rest = &packed[16..];
        let mut sizes = Vec::new();
        while !rest.is_empty() {
            let len = i32::from_be_bytes(rest[..4].try_into().expect("4 bytes"));
            let len = usize::try_from(len).expect("positive");
            let block = &rest[4..4 + len];
            sizes.push(snap::raw::decompress_len(block).expect("raw block"));
            rest = &rest[4 + len..];
        }
        assert_eq!(sizes, [32768, 32768, 32768, 4096]);
        // Empty input: the header alone.
        assert_eq!(compress(Compression::Snappy, b"").expect("empty"), snappy::HEADER);
        assert_eq!(
            decompress(Compression::Snappy, &snappy::HEADER, 0),
            Ok(Vec::new())
        );
    }

    #[cfg(feature = "snappy")]
    #[test]
    fn snappy_raw_block_fallback() {
        for input in [b"x".to_vec(), sample(1000), sample(200 * 1024)] {
            let raw = snap::raw::Encoder::new().compress_vec(&input).expect("raw");
            assert_eq!(
                decompress(Compression::Snappy, &raw, input.len()),
                Ok(input.clone())
            );
            if !input.is_empty() {
                assert!(decompress(Compression::Snappy, &raw, input.len() - 1).is_err());
            }
        }
        // The empty raw block is the single byte 0.
        assert_eq!(decompress(Compression::Snappy, &[0], 0), Ok(Vec::new()));
    }

    #[cfg(feature = "snappy")]
    #[test]
    fn snappy_framing_edge_cases() {
        let a = compress(Compression::Snappy, b"first part ").expect("a");
        let b = compress(Compression::Snappy, b"second part").expect("b");
        // Concatenated streams (a header between blocks) decode as one.
        let both = [a.clone(), b].concat();
        assert_eq!(
            decompress(Compression::Snappy, &both, 100),
            Ok(b"first part second part".to_vec())
        );
        // Version fields are not checked (some producers write them little-endian).
        let mut le = a.clone();
        le[8..16].copy_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(
            decompress(Compression::Snappy, &le, 100),
            Ok(b"first part ".to_vec())
        );
        // Negative, oversized and zero block lengths, a short header, a dangling length.
        let mut neg = snappy::HEADER.to_vec();
        neg.extend_from_slice(&(-5i32).to_be_bytes());
        neg.extend_from_slice(&[0; 8]);
        let mut big = snappy::HEADER.to_vec();
        big.extend_from_slice(&1000i32.to_be_bytes());
        big.extend_from_slice(&[0; 8]);
        let mut zero = snappy::HEADER.to_vec();
        zero.extend_from_slice(&0i32.to_be_bytes());
        let mut dangling = a.clone();
        dangling.extend_from_slice(&[0, 0]);
        for bad in [neg, big, zero, snappy::HEADER[..12].to_vec(), dangling] {
            assert!(decompress(Compression::Snappy, &bad, 1000).is_err(), "{bad:02x?}");
        }
        // A block whose declared length exceeds the limit is refused before allocating.
        let mut huge = snappy::HEADER.to_vec();
        let block = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]; // declares 4 GiB - 1
        huge.extend_from_slice(&i32::try_from(block.len()).expect("small").to_be_bytes());
        huge.extend_from_slice(&block);
        assert!(decompress(Compression::Snappy, &huge, 1 << 20).is_err());
    }

    #[cfg(feature = "gzip")]
    #[test]
    fn gzip_members_and_trailing_bytes() {
        let a = compress(Compression::Gzip, b"first ").expect("a");
        let b = compress(Compression::Gzip, b"second").expect("b");
        assert_eq!(a[..3], [0x1f, 0x8b, 0x08]);
        let both = [a.clone(), b].concat();
        assert_eq!(
            decompress(Compression::Gzip, &both, 100),
            Ok(b"first second".to_vec())
        );
        let mut trailing = a.clone();
        trailing.extend_from_slice(b"junk after the member");
        assert!(decompress(Compression::Gzip, &trailing, 100).is_err());
        let mut bad_crc = a.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        assert!(decompress(Compression::Gzip, &bad_crc, 100).is_err());
    }

    #[cfg(feature = "lz4")]
    #[test]
    fn lz4_frame_matches_kafka() {
        // Empty input: magic, FLG 0x60, BD 0x40, HC 0x82, end mark.
        let empty = compress(Compression::Lz4, b"").expect("empty");
        assert_eq!(empty, [0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82, 0, 0, 0, 0]);
        assert_eq!(decompress(Compression::Lz4, &empty, 0), Ok(Vec::new()));
        // Blocks of at most 64 KiB, independent.
        let input = sample(200 * 1024);
        let packed = compress(Compression::Lz4, &input).expect("compress");
        assert_eq!(packed[..7], [0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82]);
        // An incompressible block is stored raw with the high bit set, as Kafka does.
        let raw = compress(Compression::Lz4, &noise(3, 1000)).expect("raw");
        let word = u32::from_le_bytes(raw[7..11].try_into().expect("4 bytes"));
        assert_eq!(word, 0x8000_0000 | 1000);
    }

    #[cfg(feature = "lz4")]
    #[test]
    fn lz4_frame_checks() {
        let good = compress(Compression::Lz4, b"hello hello hello hello").expect("compress");
        // Trailing bytes, a bad header checksum, linked blocks, a dictionary id, a bad
        // block size id, a missing end mark.
        let mut trailing = good.clone();
        trailing.push(0);
        let mut bad_hc = good.clone();
        bad_hc[6] ^= 0xff;
        let mut linked = good.clone();
        linked[4] &= !0x20;
        let mut dict = good.clone();
        dict[4] |= 0x01;
        let mut bd = good.clone();
        bd[5] = 0x30;
        let no_end = good[..good.len() - 4].to_vec();
        let mut legacy = good.clone();
        legacy[..4].copy_from_slice(&0x184C_2102u32.to_le_bytes());
        for bad in [trailing, bad_hc, linked, dict, bd, no_end, legacy] {
            assert!(decompress(Compression::Lz4, &bad, 1000).is_err(), "{bad:02x?}");
        }
        // Frames with content size, block checksums and a content checksum (other clients)
        // are accepted and their checksums verified.
        let info = lz4_flex::frame::FrameInfo::new()
            .block_size(lz4_flex::frame::BlockSize::Max256KB)
            .block_checksums(true)
            .content_checksum(true)
            .content_size(Some(23));
        let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
        std::io::Write::write_all(&mut enc, b"hello hello hello hello").expect("write");
        let other = enc.finish().expect("finish");
        assert_eq!(
            decompress(Compression::Lz4, &other, 100),
            Ok(b"hello hello hello hello".to_vec())
        );
        let mut bad_sum = other.clone();
        let n = bad_sum.len();
        bad_sum[n - 1] ^= 1;
        assert!(decompress(Compression::Lz4, &bad_sum, 100).is_err());
    }

    /// The kafka-python fixtures (test_fixture/kafka-python, written by generate.py there):
    /// every compressed records area decodes to the records kafka-python serialised.
    #[test]
    fn kafka_python_fixtures() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test_fixture/kafka-python");
        let read =
            |name: &str| std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
        let plain = read("uncompressed.bin");
        assert_eq!(plain[22] & 0x07, 0);
        let records = &plain[61..];
        for (file, codec) in [
            ("gzip.bin", Compression::Gzip),
            ("snappy.bin", Compression::Snappy),
            ("lz4.bin", Compression::Lz4),
            ("zstd.bin", Compression::Zstd),
            ("lz4_large.bin", Compression::Lz4),
        ] {
            let batch = read(file);
            assert_eq!(Compression::from_id(batch[22] & 0x07), Ok(codec), "{file}");
            if !codec.is_enabled() {
                continue;
            }
            let out = decompress(codec, &batch[61..], 8 << 20).expect(file);
            if file == "lz4_large.bin" {
                // 1000 records of 1 KiB values; see expected.json.
                assert_eq!(out.len(), 1_042_872);
                let crc = crate::batch::crc32c(&out);
                assert_eq!(crc, 1_508_616_571, "records area CRC-32C (expected.json)");
            } else {
                assert_eq!(out, records, "{file}");
            }
        }
    }
}
