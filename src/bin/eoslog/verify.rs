//! `eoslog verify`: checks a partition directory's segments and indexes by reading the files,
//! never through `Log::open` (which runs recovery and would truncate a torn tail): a verify
//! changes nothing and works on a locked directory.
//!
//! Checked, per `.log` file in offset order: every batch's length, magic and CRC, offsets
//! increasing within and across segments. Per `.index`: present when the segment has data,
//! whole entries, offsets and positions strictly increasing, each position the start of a
//! batch whose base offset is at most the entry's offset, each offset below the next indexed
//! batch and within the segment. Per `.timeindex`: present when the segment has data, whole
//! entries, timestamps strictly and offsets weakly increasing, offsets within the segment.
//! Per `.txnindex`: whole entries, version 0, marker offsets increasing and within the
//! segment, and exactly the aborted transactions the segment's batches hold (a replay of
//! the batches from the snapshot at the first segment's base: a lost or altered transaction
//! index is reported, as `Log::verify` reports it). A zero-filled tail of an index is the
//! preallocation of an active segment and is accepted.

use std::{
    io,
    path::{Path, PathBuf},
};

use serde_json::json;

use crate::scan::{self, EntryReader, Next, SegmentScanner};
use crate::{Failure, Out};

pub struct VerifyOptions {
    pub json: bool,
    /// Print a progress line on stderr every this many bytes of `.log` data scanned.
    pub progress_every: u64,
}

/// The first problem found: which file, at which byte, what.
#[derive(Debug)]
struct Problem {
    file: PathBuf,
    position: u64,
    message: String,
}

type Checked<T> = io::Result<Result<T, Problem>>;

fn problem<T>(file: &Path, position: u64, message: impl Into<String>) -> Checked<T> {
    Ok(Err(Problem {
        file: file.to_path_buf(),
        position,
        message: message.into(),
    }))
}

/// Propagates a found problem (the inner error) out of a function returning [`Checked`].
macro_rules! check {
    ($e:expr) => {
        match $e? {
            Ok(v) => v,
            Err(p) => return Ok(Err(p)),
        }
    };
}

struct Progress {
    total: u64,
    every: u64,
    next_mark: u64,
    /// Bytes of the segments already finished.
    finished: u64,
}

impl Progress {
    fn update(&mut self, in_current: u64) {
        let done = self.finished + in_current;
        while self.every > 0 && done >= self.next_mark && self.total > 0 {
            eprintln!(
                "eoslog verify: {}% ({} MiB of {} MiB scanned)",
                u128::from(self.next_mark) * 100 / u128::from(self.total),
                self.next_mark >> 20,
                self.total >> 20
            );
            self.next_mark = self.next_mark.saturating_add(self.every);
        }
    }
}

#[derive(Default)]
struct Summary {
    segments: u64,
    batches: u64,
    bytes: u64,
}

pub fn run(path: &Path, opts: &VerifyOptions, out: &mut Out) -> Result<(), Failure> {
    let io_fail = |e: io::Error| Failure::failed(format!("cannot read {}: {e}", path.display()));
    let segments = if path.is_dir() {
        scan::list_segments(path).map_err(io_fail)?
    } else if path.is_file() {
        let base = scan::segment_base(path).ok_or_else(|| {
            Failure::usage(format!(
                "{} is not a segment file (<20-digit offset>.log)",
                path.display()
            ))
        })?;
        vec![(base, path.to_path_buf())]
    } else {
        return Err(Failure::failed(format!(
            "{}: no such file or directory",
            path.display()
        )));
    };
    let mut total = 0;
    for (_, p) in &segments {
        total += std::fs::metadata(p)
            .map_err(|e| Failure::failed(format!("cannot read {}: {e}", p.display())))?
            .len();
    }
    let mut progress = Progress {
        total,
        every: opts.progress_every,
        next_mark: opts.progress_every,
        finished: 0,
    };
    let mut summary = Summary::default();
    let mut carried = None;
    // A lone `.log` file is checked alone; a directory's derived files are checked too.
    let mut txns = path
        .is_dir()
        .then(|| Transactions::seeded(path, segments.first().map_or(0, |s| s.0)));
    for (base, log_path) in &segments {
        let checked = verify_segment(
            *base,
            log_path,
            carried,
            txns.as_mut(),
            &mut progress,
            &mut summary,
        )
        .map_err(|e| Failure::failed(format!("cannot read {}: {e}", log_path.display())))?;
        match checked {
            Ok((next, size)) => {
                carried = Some(next);
                summary.segments += 1;
                summary.bytes += size;
                progress.finished += size;
            }
            Err(p) => {
                if opts.json {
                    out.json(&json!({
                        "status": "corrupt",
                        "file": p.file.display().to_string(),
                        "position": p.position,
                        "error": p.message,
                    }))?;
                } else {
                    out.line(&format!(
                        "corrupt: {} at byte {}: {}",
                        p.file.display(),
                        p.position,
                        p.message
                    ))?;
                }
                return Err(Failure::silent(1));
            }
        }
    }
    if opts.json {
        out.json(&json!({
            "status": "ok",
            "segments": summary.segments,
            "batches": summary.batches,
            "bytes": summary.bytes,
        }))
    } else {
        out.line(&format!(
            "ok: {} segments, {} batches, {} bytes",
            summary.segments, summary.batches, summary.bytes
        ))
    }
}

/// Checks one segment and its indexes. Returns the offset after its last batch and its size.
fn verify_segment(
    base: i64,
    log_path: &Path,
    carried: Option<i64>,
    mut txns: Option<&mut Transactions>,
    progress: &mut Progress,
    summary: &mut Summary,
) -> Checked<(i64, u64)> {
    let mut scanner = SegmentScanner::open(log_path)?;
    if let Some(prev) = carried.filter(|&c| base < c) {
        return problem(
            log_path,
            0,
            format!(
                "segment base offset {base} overlaps the previous segment, which ends below offset {prev}"
            ),
        );
    }
    let mut index = check!(OffsetIndexCheck::open(
        &log_path.with_extension("index"),
        base,
        scanner.len
    ));
    let mut expected: Vec<ExpectedAbort> = Vec::new();
    let mut next = base;
    let mut last = None;
    let mut max_timestamp = i64::MIN;
    loop {
        match scanner.next_batch(|h| h.is_control() && h.producer_id >= 0)? {
            Next::End => break,
            Next::Torn { position, reason } => {
                return problem(log_path, position, format!("{reason}; valid data ends here"));
            }
            Next::Batch(b) => {
                let h = &b.header;
                if !b.crc_ok() {
                    return problem(
                        log_path,
                        b.position,
                        format!(
                            "batch CRC mismatch: stored {:#010x}, computed {:#010x}",
                            h.crc, b.computed_crc
                        ),
                    );
                }
                if h.last_offset_delta < 0 {
                    return problem(
                        log_path,
                        b.position,
                        format!("negative last offset delta {}", h.last_offset_delta),
                    );
                }
                if h.base_offset < next {
                    return problem(
                        log_path,
                        b.position,
                        format!(
                            "batch offsets {}..={} out of order (expected >= {next})",
                            h.base_offset,
                            h.last_offset()
                        ),
                    );
                }
                check!(index.on_batch(b.position, h.base_offset));
                if let Some(e) = txns.as_mut().and_then(|t| t.apply(&b)) {
                    expected.push(e);
                }
                next = h.last_offset().saturating_add(1);
                last = Some(h.last_offset());
                max_timestamp = max_timestamp.max(h.max_timestamp);
                summary.batches += 1;
                progress.update(scanner.position);
            }
        }
    }
    // Data damage first; then the files derived from the data.
    for suffix in ["index", "timeindex"] {
        let p = log_path.with_extension(suffix);
        if scanner.len > 0 && !p.exists() && txns.is_some() {
            return problem(
                &p,
                0,
                format!("missing: the segment has {} bytes of data", scanner.len),
            );
        }
    }
    check!(index.finish(last));
    check!(check_time_index(
        &log_path.with_extension("timeindex"),
        base,
        last,
        max_timestamp
    ));
    let txn_path = log_path.with_extension("txnindex");
    let entries = check!(check_txn_index(&txn_path, base, last));
    if let Some(t) = txns {
        check!(t.compare(&txn_path, &entries, &expected));
    }
    Ok(Ok((next, scanner.len)))
}

/// Walks the offset index alongside the log scan (both are in position order).
struct OffsetIndexCheck {
    path: PathBuf,
    reader: Option<EntryReader<8>>,
    base: i64,
    log_len: u64,
    /// The next entry not yet matched to a batch: (entry position, offset, log position).
    pending: Option<(u64, i64, u64)>,
    /// The previous entry read: (offset, log position).
    prev: Option<(i64, u64)>,
    /// The last entry matched to a batch: (entry position, offset).
    matched: Option<(u64, i64)>,
    zero_tail: bool,
}

impl OffsetIndexCheck {
    fn open(path: &Path, base: i64, log_len: u64) -> Checked<OffsetIndexCheck> {
        let reader = EntryReader::<8>::open(path)?;
        if let Some(r) = reader.as_ref().filter(|r| !r.is_whole()) {
            return problem(
                path,
                r.len - r.len % 8,
                format!("length {} is not a multiple of the 8-byte entry", r.len),
            );
        }
        let mut me = OffsetIndexCheck {
            path: path.to_path_buf(),
            reader,
            base,
            log_len,
            pending: None,
            prev: None,
            matched: None,
            zero_tail: false,
        };
        check!(me.advance());
        Ok(Ok(me))
    }

    /// Reads the next entry into `pending`, checking it on its own and against the previous.
    fn advance(&mut self) -> Checked<()> {
        self.pending = None;
        let Some(reader) = self.reader.as_mut() else {
            return Ok(Ok(()));
        };
        while let Some((at, e)) = reader.next_entry()? {
            if e == [0u8; 8] {
                // Kafka never indexes position 0: zeros are the preallocated tail.
                self.zero_tail = true;
                continue;
            }
            if self.zero_tail {
                return problem(
                    &self.path,
                    at,
                    "non-zero entry after the zero-filled (preallocated) tail",
                );
            }
            let rel = i32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            let pos = i32::from_be_bytes([e[4], e[5], e[6], e[7]]);
            if rel < 0 || pos < 0 {
                return problem(
                    &self.path,
                    at,
                    format!("negative relative offset {rel} or position {pos}"),
                );
            }
            let off = self.base + i64::from(rel);
            let pos = pos as u64;
            if let Some((po, pp)) = self.prev {
                if off <= po || pos <= pp {
                    return problem(
                        &self.path,
                        at,
                        format!("entry (offset {off}, position {pos}) does not increase over (offset {po}, position {pp})"),
                    );
                }
            }
            if pos >= self.log_len {
                return problem(
                    &self.path,
                    at,
                    format!(
                        "position {pos} is past the end of the log file ({} bytes)",
                        self.log_len
                    ),
                );
            }
            self.prev = Some((off, pos));
            self.pending = Some((at, off, pos));
            return Ok(Ok(()));
        }
        Ok(Ok(()))
    }

    fn on_batch(&mut self, position: u64, base_offset: i64) -> Checked<()> {
        while let Some((at, off, pos)) = self.pending {
            if pos > position {
                break;
            }
            if pos < position {
                return problem(
                    &self.path,
                    at,
                    format!("position {pos} is not the start of a batch"),
                );
            }
            if off < base_offset {
                return problem(
                    &self.path,
                    at,
                    format!(
                        "offset {off} is below the base offset {base_offset} of the batch at position {pos}"
                    ),
                );
            }
            if let Some((prev_at, prev_off)) = self.matched {
                if prev_off >= base_offset {
                    return problem(
                        &self.path,
                        prev_at,
                        format!("offset {prev_off} is not below the next indexed batch (base offset {base_offset})"),
                    );
                }
            }
            self.matched = Some((at, off));
            check!(self.advance());
        }
        Ok(Ok(()))
    }

    fn finish(&mut self, last_offset: Option<i64>) -> Checked<()> {
        if let Some((at, _, pos)) = self.pending {
            return problem(
                &self.path,
                at,
                format!("position {pos} is not the start of a batch"),
            );
        }
        if let (Some((at, off)), Some(last)) = (self.matched, last_offset) {
            if off > last {
                return problem(
                    &self.path,
                    at,
                    format!("offset {off} is past the segment's last offset {last}"),
                );
            }
        }
        Ok(Ok(()))
    }
}

fn check_time_index(path: &Path, base: i64, last: Option<i64>, max_timestamp: i64) -> Checked<()> {
    let Some(mut reader) = EntryReader::<12>::open(path)? else {
        return Ok(Ok(()));
    };
    if !reader.is_whole() {
        return problem(
            path,
            reader.len - reader.len % 12,
            format!("length {} is not a multiple of the 12-byte entry", reader.len),
        );
    }
    let mut prev: Option<(i64, i64)> = None;
    let mut zero_tail = false;
    while let Some((at, e)) = reader.next_entry()? {
        if e == [0u8; 12] {
            zero_tail = true;
            continue;
        }
        if zero_tail {
            return problem(
                path,
                at,
                "non-zero entry after the zero-filled (preallocated) tail",
            );
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&e[..8]);
        let ts = i64::from_be_bytes(ts);
        let rel = i32::from_be_bytes([e[8], e[9], e[10], e[11]]);
        let off = base + i64::from(rel);
        let Some(last) = last.filter(|_| rel >= 0) else {
            return problem(path, at, format!("offset {off} is outside the segment"));
        };
        if off > last {
            return problem(
                path,
                at,
                format!("offset {off} is past the segment's last offset {last}"),
            );
        }
        if ts > max_timestamp {
            return problem(
                path,
                at,
                format!("timestamp {ts} is above the segment's largest batch timestamp {max_timestamp}"),
            );
        }
        if let Some((pt, po)) = prev {
            if ts <= pt || off < po {
                return problem(
                    path,
                    at,
                    format!("entry (timestamp {ts}, offset {off}) does not increase over (timestamp {pt}, offset {po})"),
                );
            }
        }
        prev = Some((ts, off));
    }
    Ok(Ok(()))
}

/// One `.txnindex` entry: producer, first offset, marker offset, last stable offset.
type TxnEntry = (i64, i64, i64, i64);

fn check_txn_index(path: &Path, base: i64, last: Option<i64>) -> Checked<Vec<TxnEntry>> {
    const ENTRY: usize = 34;
    let Some(mut reader) = EntryReader::<ENTRY>::open(path)? else {
        return Ok(Ok(Vec::new()));
    };
    let mut entries = Vec::new();
    if !reader.is_whole() {
        return problem(
            path,
            reader.len - reader.len % ENTRY as u64,
            format!(
                "length {} is not a multiple of the {ENTRY}-byte entry",
                reader.len
            ),
        );
    }
    let mut prev_last: Option<i64> = None;
    while let Some((at, e)) = reader.next_entry()? {
        let i64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&e[i..i + 8]);
            i64::from_be_bytes(b)
        };
        let version = i16::from_be_bytes([e[0], e[1]]);
        let (first_offset, last_offset) = (i64_at(10), i64_at(18));
        if version != 0 {
            return problem(path, at, format!("unknown entry version {version}"));
        }
        if last_offset < base || last.is_none_or(|l| last_offset > l) {
            return problem(
                path,
                at,
                format!("marker offset {last_offset} is outside the segment"),
            );
        }
        if first_offset > last_offset {
            return problem(
                path,
                at,
                format!("first offset {first_offset} is after the marker offset {last_offset}"),
            );
        }
        if prev_last.is_some_and(|p| last_offset <= p) {
            return problem(path, at, format!("marker offset {last_offset} does not increase"));
        }
        prev_last = Some(last_offset);
        entries.push((i64_at(2), first_offset, last_offset, i64_at(26)));
    }
    Ok(Ok(entries))
}

/// An aborted transaction a replay of the batches finds: what the `.txnindex` must hold.
#[derive(Debug, Clone, Copy)]
struct ExpectedAbort {
    producer_id: i64,
    first_offset: i64,
    marker_offset: i64,
    /// The last stable offset at the marker: the first offset of the earliest transaction of
    /// another producer open then, else marker + 1.
    stable: i64,
}

/// The transactions open as the batches go by (Kafka's rule: a producer's transaction
/// begins with its first transactional data batch and ends with its COMMIT or ABORT marker).
struct Transactions {
    open: std::collections::BTreeMap<i64, i64>,
    /// Whether the state at the first segment's base is known (empty at offset 0, or from
    /// the snapshot there). Without it, a transaction begun before the first segment is
    /// unknown: its entry is checked for order only.
    seeded: bool,
    first_base: i64,
}

impl Transactions {
    fn seeded(dir: &Path, first_base: i64) -> Transactions {
        let mut me = Transactions {
            open: std::collections::BTreeMap::new(),
            seeded: first_base == 0,
            first_base,
        };
        if first_base > 0 {
            let snapshot = dir.join(eoslog::file_name(first_base, "snapshot"));
            if let Some(s) = std::fs::read(snapshot)
                .ok()
                .and_then(|b| eoslog::decode::snapshot(&b).ok())
            {
                for e in s.entries.iter().filter(|e| e.txn_first_offset >= 0) {
                    me.open.insert(e.producer_id, e.txn_first_offset);
                }
                me.seeded = true;
            }
        }
        me
    }

    fn apply(&mut self, b: &scan::ScannedBatch) -> Option<ExpectedAbort> {
        let h = &b.header;
        if h.producer_id < 0 {
            return None;
        }
        if !h.is_control() {
            if h.is_transactional() {
                self.open.entry(h.producer_id).or_insert(h.base_offset);
            }
            return None;
        }
        let marker = b
            .bytes
            .as_deref()
            .and_then(|bytes| eoslog::RecordBatch::parse(bytes).ok())
            .and_then(|(batch, _)| batch.marker().ok().flatten())?;
        let first = self.open.remove(&h.producer_id)?;
        (marker.control_type == eoslog::ControlType::Abort).then(|| ExpectedAbort {
            producer_id: h.producer_id,
            first_offset: first,
            marker_offset: h.base_offset,
            stable: self
                .open
                .values()
                .min()
                .map_or(h.base_offset + 1, |&f| f.min(h.base_offset + 1)),
        })
    }

    fn compare(&self, path: &Path, entries: &[TxnEntry], expected: &[ExpectedAbort]) -> Checked<()> {
        let capped = |l: i64, marker: i64| l.min(marker + 1);
        let mut want = expected.iter().peekable();
        for (i, &(pid, first, marker, l)) in entries.iter().enumerate() {
            let at = (i * 34) as u64;
            match want.peek() {
                Some(w) if w.marker_offset == marker => {
                    let same = w.producer_id == pid
                        && w.first_offset == first
                        && (!self.seeded || capped(w.stable, marker) == capped(l, marker));
                    if !same {
                        return problem(
                            path,
                            at,
                            format!(
                                "entry (producer {pid}, first offset {first}, marker {marker}, stable offset {l}) disagrees with the log: (producer {}, first offset {}, stable offset {})",
                                w.producer_id, w.first_offset, w.stable
                            ),
                        );
                    }
                    want.next();
                }
                _ if !self.seeded && first < self.first_base => {}
                _ => {
                    return problem(
                        path,
                        at,
                        format!("entry for marker {marker} names no aborted transaction of the log"),
                    )
                }
            }
        }
        if let Some(w) = want.next() {
            return problem(
                path,
                (entries.len() * 34) as u64,
                format!(
                    "missing the aborted transaction of producer {} (offsets {}..={})",
                    w.producer_id, w.first_offset, w.marker_offset
                ),
            );
        }
        Ok(Ok(()))
    }
}
