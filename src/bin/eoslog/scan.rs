//! Reads segment and index files directly, in bounded chunks, without opening a `Log`: the
//! file-level half of `dump` and `verify`, which must work on a locked or damaged directory
//! and never change a byte.
//!
//! A `.log` file is read through a 1 MiB buffer. Each batch's CRC is computed as its bytes
//! stream past, so a batch is held in memory only when its records are wanted (and then only
//! up to [`RETAIN_LIMIT`]).

use std::{
    fmt,
    fs::File,
    io::{self, BufRead, BufReader, Read},
    path::{Path, PathBuf},
};

use eoslog::{Compression, HEADER_SIZE, LOG_OVERHEAD};

/// Read buffer of a segment scan.
const CHUNK: usize = 1 << 20;
/// Largest batch whose bytes a scan keeps for record decoding.
pub const RETAIN_LIMIT: u64 = 64 << 20;

// Field positions of the v2 batch header (docs: src/batch/mod.rs, Kafka's DefaultRecordBatch).
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const MIN_LENGTH: i32 = (HEADER_SIZE - LOG_OVERHEAD) as i32;

/// The fixed 61-byte header of a v2 record batch.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub base_offset: i64,
    pub length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn be<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

impl Header {
    fn parse(b: &[u8; HEADER_SIZE]) -> Header {
        Header {
            base_offset: i64::from_be_bytes(be(b, 0)),
            length: i32::from_be_bytes(be(b, 8)),
            partition_leader_epoch: i32::from_be_bytes(be(b, 12)),
            magic: i8::from_be_bytes(be(b, MAGIC_AT)),
            crc: u32::from_be_bytes(be(b, CRC_AT)),
            attributes: i16::from_be_bytes(be(b, ATTRIBUTES_AT)),
            last_offset_delta: i32::from_be_bytes(be(b, 23)),
            max_timestamp: i64::from_be_bytes(be(b, 35)),
            producer_id: i64::from_be_bytes(be(b, 43)),
            producer_epoch: i16::from_be_bytes(be(b, 51)),
            base_sequence: i32::from_be_bytes(be(b, 53)),
            records_count: i32::from_be_bytes(be(b, 57)),
        }
    }

    /// Total size including the 12-byte log overhead.
    pub fn size(&self) -> u64 {
        LOG_OVERHEAD as u64 + u64::try_from(self.length).unwrap_or(0)
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset.saturating_add(i64::from(self.last_offset_delta))
    }
    /// Kafka's last sequence, wrapping at `i32::MAX`; -1 without a sequence.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let delta = self.last_offset_delta.max(0);
        if self.base_sequence > i32::MAX - delta {
            self.base_sequence - (i32::MAX - delta) - 1
        } else {
            self.base_sequence + delta
        }
    }
    pub fn compression_name(&self) -> String {
        let id = (self.attributes & 0x07) as u8;
        Compression::from_id(id).map_or_else(|_| format!("unknown({id})"), |c| c.name().to_owned())
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & 0x08 != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
}

/// One batch read from a file.
pub struct ScannedBatch {
    /// Byte position of the batch in the file.
    pub position: u64,
    pub header: Header,
    /// CRC-32C of the bytes the stored CRC covers, computed while reading.
    pub computed_crc: u32,
    /// The whole batch, when the caller asked for it and it is at most [`RETAIN_LIMIT`].
    pub bytes: Option<Vec<u8>>,
}

impl ScannedBatch {
    pub fn crc_ok(&self) -> bool {
        self.header.crc == self.computed_crc
    }
}

/// Why the bytes at a position are not a batch; the scan of the file stops there.
#[derive(Debug, Clone)]
pub enum Torn {
    /// Fewer bytes remain than the batch needs.
    Truncated { needed: u64, available: u64 },
    /// `batchLength` below the v2 header size.
    InvalidLength(i32),
    /// Not a v2 batch.
    UnsupportedMagic(i8),
}

impl fmt::Display for Torn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Torn::Truncated { needed, available } => write!(
                f,
                "truncated batch: {needed} bytes needed, {available} bytes left in the file"
            ),
            Torn::InvalidLength(l) => write!(f, "invalid batch length {l}"),
            Torn::UnsupportedMagic(m) => {
                write!(f, "unsupported magic {m} (only v2 batches are supported)")
            }
        }
    }
}

/// Streams the batches of one `.log` file.
pub struct SegmentScanner {
    reader: BufReader<File>,
    pub path: PathBuf,
    /// Next byte to read.
    pub position: u64,
    /// File length when the scan started (bytes appended later are not read).
    pub len: u64,
    done: bool,
}

pub enum Next {
    Batch(ScannedBatch),
    /// The bytes at `position` are not a batch.
    Torn {
        position: u64,
        reason: Torn,
    },
    End,
}

impl SegmentScanner {
    pub fn open(path: &Path) -> io::Result<SegmentScanner> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(SegmentScanner {
            reader: BufReader::with_capacity(CHUNK, file),
            path: path.to_path_buf(),
            position: 0,
            len,
            done: false,
        })
    }

    /// Reads the next batch. `retain` says, from the header, whether the batch's bytes are
    /// wanted.
    pub fn next_batch(&mut self, retain: impl FnOnce(&Header) -> bool) -> io::Result<Next> {
        if self.done || self.position >= self.len {
            self.done = true;
            return Ok(Next::End);
        }
        let start = self.position;
        let remaining = self.len - start;
        let torn = |me: &mut Self, reason| {
            me.done = true;
            Ok(Next::Torn {
                position: start,
                reason,
            })
        };
        let mut raw = [0u8; HEADER_SIZE];
        let got = usize::try_from(remaining.min(HEADER_SIZE as u64)).unwrap_or(HEADER_SIZE);
        read_exact_or_eof(&mut self.reader, &mut raw[..got])?;
        self.position += got as u64;
        if got < LOG_OVERHEAD {
            return torn(
                self,
                Torn::Truncated {
                    needed: LOG_OVERHEAD as u64,
                    available: remaining,
                },
            );
        }
        let length = i32::from_be_bytes(be(&raw, 8));
        if length < MIN_LENGTH {
            // Name a legacy (v0/v1) message as such when its magic byte is there.
            if length >= 0 && got > MAGIC_AT && raw[MAGIC_AT] as i8 != 2 {
                return torn(self, Torn::UnsupportedMagic(raw[MAGIC_AT] as i8));
            }
            return torn(self, Torn::InvalidLength(length));
        }
        let size = LOG_OVERHEAD as u64 + length as u64;
        if size > remaining {
            return torn(
                self,
                Torn::Truncated {
                    needed: size,
                    available: remaining,
                },
            );
        }
        // size >= HEADER_SIZE and size <= remaining, so the whole header was read.
        let header = Header::parse(&raw);
        if header.magic != 2 {
            return torn(self, Torn::UnsupportedMagic(header.magic));
        }
        let mut digest = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
        digest.update(&raw[ATTRIBUTES_AT..]);
        let mut bytes = (retain(&header) && size <= RETAIN_LIMIT).then(|| {
            let mut v = Vec::with_capacity(size as usize);
            v.extend_from_slice(&raw);
            v
        });
        let mut body = size - HEADER_SIZE as u64;
        while body > 0 {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                // The file shrank under us.
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{} shrank while being read", self.path.display()),
                ));
            }
            let n = buf.len().min(usize::try_from(body).unwrap_or(usize::MAX));
            digest.update(&buf[..n]);
            if let Some(v) = bytes.as_mut() {
                v.extend_from_slice(&buf[..n]);
            }
            self.reader.consume(n);
            body -= n as u64;
            self.position += n as u64;
        }
        #[expect(clippy::cast_possible_truncation, reason = "CRC-32 values fit in 32 bits")]
        let computed_crc = digest.finalize() as u32;
        Ok(Next::Batch(ScannedBatch {
            position: start,
            header,
            computed_crc,
            bytes,
        }))
    }
}

fn read_exact_or_eof(r: &mut impl Read, buf: &mut [u8]) -> io::Result<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being read")
        } else {
            e
        }
    })
}

/// Streams the fixed-size entries of an index file.
pub struct EntryReader<const N: usize> {
    reader: BufReader<File>,
    /// Byte position of the next entry.
    pub position: u64,
    /// Whole entries in the file.
    entries_end: u64,
    /// File length.
    pub len: u64,
}

impl<const N: usize> EntryReader<N> {
    /// `Ok(None)` when the file does not exist.
    pub fn open(path: &Path) -> io::Result<Option<EntryReader<N>>> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        Ok(Some(EntryReader {
            reader: BufReader::with_capacity(CHUNK, file),
            position: 0,
            entries_end: len - len % N as u64,
            len,
        }))
    }

    /// Whether the length is a whole number of entries.
    pub fn is_whole(&self) -> bool {
        self.entries_end == self.len
    }

    /// The next whole entry and its position.
    pub fn next_entry(&mut self) -> io::Result<Option<(u64, [u8; N])>> {
        if self.position >= self.entries_end {
            return Ok(None);
        }
        let mut e = [0u8; N];
        read_exact_or_eof(&mut self.reader, &mut e)?;
        let at = self.position;
        self.position += N as u64;
        Ok(Some((at, e)))
    }
}

/// The `.log` files of a partition directory, by base offset.
pub fn list_segments(dir: &Path) -> io::Result<Vec<(i64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((base, "log")) = eoslog::parse_file_name(name) {
            if entry.file_type()?.is_file() {
                out.push((base, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The base offset in a segment file's name, when it has the `<digits>.log` form.
pub fn segment_base(path: &Path) -> Option<i64> {
    let name = path.file_name()?.to_str()?;
    match eoslog::parse_file_name(name) {
        Some((base, "log")) => Some(base),
        _ => None,
    }
}
