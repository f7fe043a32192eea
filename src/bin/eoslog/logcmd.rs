//! The commands that open the log (`Log::open`, which recovers it after an unclean shutdown)
//! and close it cleanly when done, so the next open skips recovery.

use std::{
    io::{self, Read},
    path::Path,
};

use eoslog::{
    AbortedTxn, AppendError, AppendOptions, AppendOutcome, BatchIter, CoordinatorEpoch, Durability, Log,
    LogConfig, LogStats, MarkerType, OpenError, OpenTransaction, OwnedRecord, ProducerEpoch, ProducerId,
    ProducerInfo, SegmentInfo, TxnMarker, LOG_OVERHEAD,
};
pub use eoslog::{AppendOrigin as Origin, Isolation, Offset};
use serde_json::{json, Map, Value};

use crate::{chain, scan, Failure, Out};

/// Builds the configuration from `--config KEY=VALUE` pairs; `manual_hw` adds
/// `eoslog.high.watermark=manual` (needed for `--high-watermark` to stick).
fn config(pairs: &[String], manual_hw: bool) -> Result<LogConfig, Failure> {
    let mut c = LogConfig::default();
    for pair in pairs {
        c.set_pair(pair).map_err(|e| {
            Failure::usage(format!(
                "--config {pair}: {e} (known keys: {})",
                eoslog::CONFIG_KEYS.join(", ")
            ))
        })?;
    }
    if manual_hw {
        c.set("eoslog.high.watermark", "manual")
            .map_err(|e| Failure::usage(e.to_string()))?;
    }
    Ok(c)
}

/// Opens the log. Only `create` commands (append) may open a directory without segments:
/// `Log::open` would otherwise turn any directory into a partition log.
pub fn open(dir: &Path, pairs: &[String], create: bool, manual_hw: bool) -> Result<Log, Failure> {
    let config = config(pairs, manual_hw)?;
    if !create {
        let segments = if dir.is_dir() {
            scan::list_segments(dir)
                .map_err(|e| Failure::failed(format!("cannot list {}: {e}", dir.display())))?
        } else {
            return Err(Failure::failed(format!("{}: no such directory", dir.display())));
        };
        if segments.is_empty() {
            return Err(Failure::failed(format!(
                "{} is not a partition directory (no .log segment); `eoslog append` creates a log",
                dir.display()
            )));
        }
    }
    Log::open(dir, config).map_err(|e| match e {
        OpenError::Config(c) => Failure::usage(c.to_string()),
        e => Failure::failed(format!("cannot open {}: {}", dir.display(), chain(&e))),
    })
}

/// Runs `f` on the log, then closes it cleanly whatever happened.
pub fn with_log<T>(log: Log, f: impl FnOnce(&Log) -> Result<T, Failure>) -> Result<T, Failure> {
    let result = f(&log);
    let closed = log.close();
    match (result, closed) {
        (Ok(v), Ok(())) => Ok(v),
        (Ok(_), Err(e)) => Err(Failure::failed(format!("closing the log failed: {}", chain(&e)))),
        (Err(f), Ok(())) => Err(f),
        (Err(f), Err(e)) => {
            eprintln!("eoslog: closing the log failed too: {}", chain(&e));
            Err(f)
        }
    }
}

fn set_high_watermark(log: &Log, hw: Option<i64>) {
    if let Some(hw) = hw {
        let set = log.set_high_watermark(Offset(hw));
        if set.0 != hw {
            eprintln!(
                "eoslog: note: high watermark {hw} clamped to {set} (the log spans {}..{})",
                log.log_start_offset(),
                log.log_end_offset()
            );
        }
    }
}

// ----- append ----------------------------------------------------------------------------

/// Batches read from stdin in large chunks: one `read` brings many batches, and each batch is
/// handed to the log as a slice of the buffer, never copied.
struct BatchInput<R> {
    input: R,
    buf: Vec<u8>,
    /// The unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    eof: bool,
    /// Byte position in the input of `buf[start]`.
    position: u64,
}

/// Bytes the input buffer starts with (and reads at a time while batches are smaller).
const INPUT_CHUNK: usize = 1 << 20;

impl<R: Read> BatchInput<R> {
    fn new(input: R) -> Self {
        BatchInput {
            input,
            buf: vec![0; INPUT_CHUNK],
            start: 0,
            end: 0,
            eof: false,
            position: 0,
        }
    }

    /// The next batch, split off by its length field, and its byte position in the input;
    /// `Ok(None)` at the end. `before_blocking` runs whenever the next read could block (the
    /// caller flushes its output there, so that whoever feeds stdin sees every result line
    /// before eoslog waits for more input).
    fn next(
        &mut self,
        mut before_blocking: impl FnMut() -> Result<(), Failure>,
    ) -> Result<Option<(&[u8], u64)>, Failure> {
        loop {
            let avail = &self.buf[self.start..self.end];
            let need = match avail.get(..LOG_OVERHEAD) {
                Some(head) => {
                    let length = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
                    let Ok(length) = usize::try_from(length) else {
                        return Err(self.unreadable(format!("negative batch length {length}")));
                    };
                    LOG_OVERHEAD + length
                }
                None => LOG_OVERHEAD,
            };
            if avail.len() >= need && avail.len() >= LOG_OVERHEAD {
                let (at, position) = (self.start, self.position);
                self.start += need;
                self.position += need as u64;
                return Ok(Some((&self.buf[at..at + need], position)));
            }
            if self.eof {
                return match avail.len() {
                    0 => Ok(None),
                    n if n < LOG_OVERHEAD => Err(self.unreadable(format!("{n} stray bytes"))),
                    n => {
                        Err(self
                            .unreadable(format!("truncated batch ({need} bytes declared, {n} available)")))
                    }
                };
            }
            self.make_room(need);
            if !stdin_ready() {
                before_blocking()?;
            }
            let n = loop {
                match self.input.read(&mut self.buf[self.end..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Failure::failed(format!("cannot read stdin: {e}"))),
                }
            };
            self.eof = n == 0;
            self.end += n;
        }
    }

    /// Moves the unconsumed bytes to the front and, for a batch larger than the buffer, grows
    /// it: at most doubling, and only once the buffer is full of input, so a garbage length
    /// field never makes eoslog allocate more than twice what it was sent.
    fn make_room(&mut self, need: usize) {
        if self.start > 0 && (self.end == self.buf.len() || self.buf.len() - self.start < need) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grown = self.buf.len().saturating_mul(2).min(need.max(self.buf.len() + 1));
            self.buf.resize(grown, 0);
        }
    }

    fn unreadable(&self, what: String) -> Failure {
        Failure::failed(format!(
            "stdin is not a sequence of record batches: {what} at byte {}; earlier batches were processed",
            self.position
        ))
    }
}

/// Whether a read of stdin would return at once (data or end of input waiting). Where that
/// cannot be told, it is assumed not: the caller then flushes before every read.
fn stdin_ready() -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let stdin = io::stdin();
    let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
    matches!(poll(&mut fds, Some(&Timespec { tv_sec: 0, tv_nsec: 0 })), Ok(n) if n > 0)
}

/// Prints the `{"status": ...}` line of an append. A storage failure is printed and then
/// returned as the command's failure. Returns whether the append was refused.
fn print_outcome(
    out: &mut Out,
    result: Result<AppendOutcome, AppendError>,
    context: impl FnOnce() -> String,
) -> Result<bool, Failure> {
    match result {
        Ok(AppendOutcome::Appended(info)) => {
            out.json(&json!({
                "status": "appended",
                "base_offset": info.first_offset.0,
                "last_offset": info.last_offset.0,
            }))?;
            Ok(false)
        }
        Ok(AppendOutcome::Duplicate(info)) => {
            out.json(&json!({
                "status": "duplicate",
                "base_offset": info.first_offset.0,
                "last_offset": info.last_offset.0,
            }))?;
            Ok(false)
        }
        Ok(AppendOutcome::Rejected(r)) => {
            out.json(&json!({ "status": "error", "error": r.kafka_error().name() }))?;
            eprintln!("eoslog: {} rejected: {r:?}", context());
            Ok(true)
        }
        Err(AppendError::Storage(e)) => {
            out.json(&json!({ "status": "error", "error": e.kafka_error().name() }))?;
            Err(Failure::failed(format!(
                "{}: storage failure: {}",
                context(),
                chain(&e)
            )))
        }
        Err(e) => {
            out.json(&json!({ "status": "error", "error": e.kafka_error().name() }))?;
            eprintln!("eoslog: {} refused: {}", context(), chain(&e));
            Ok(true)
        }
    }
}

pub fn append(
    dir: &Path,
    pairs: &[String],
    origin: Origin,
    leader_epoch: Option<i32>,
    sync: bool,
    out: &mut Out,
) -> Result<(), Failure> {
    let log = open(dir, pairs, true, false)?;
    with_log(log, |log| {
        let options = AppendOptions {
            origin,
            leader_epoch,
            durability: sync.then_some(Durability::SyncEachAppend),
            verification_guard: None,
        };
        // Buffered appends become durable at close; meanwhile a second thread makes them
        // durable every WRITEBACK_BYTES through `Log::wait_durable`, whose fsync runs outside
        // the appender's lock: the disk writes back while stdin is still being appended,
        // instead of all at the end (and the log's own interval flushes find little to do).
        let (tx, rx) = std::sync::mpsc::sync_channel::<Offset>(1);
        std::thread::scope(|scope| {
            let writeback = (!sync).then(|| {
                scope.spawn(move || -> Result<(), Failure> {
                    while let Ok(end) = rx.recv() {
                        log.wait_durable(end)
                            .map_err(|e| Failure::failed(format!("fsync failed: {}", chain(&e))))?;
                    }
                    Ok(())
                })
            });
            let appended = append_stdin(log, &options, out, |bytes_since| {
                if writeback.is_some() && bytes_since >= WRITEBACK_BYTES {
                    // Never waits: a writeback still running takes the next one later.
                    return tx.try_send(log.log_end_offset()).is_ok();
                }
                false
            });
            drop(tx);
            let written_back = writeback.map_or(Ok(()), |h| {
                h.join()
                    .unwrap_or_else(|_| Err(Failure::failed("the writeback thread panicked")))
            });
            appended.and(written_back)
        })
    })
}

/// Bytes appended between two writebacks of `eoslog append`.
const WRITEBACK_BYTES: u64 = 8 << 20;

/// Appends every batch of stdin, printing one result line each; `kick` is told how many bytes
/// were appended since it last returned `true`.
fn append_stdin(
    log: &Log,
    options: &AppendOptions,
    out: &mut Out,
    mut kick: impl FnMut(u64) -> bool,
) -> Result<(), Failure> {
    // Result lines are flushed only when the next read of stdin would block: a pipe fed
    // interactively (or a producer killed mid-stream) still sees every result at once, while a
    // stream of batches costs one read per chunk and one write per page of results.
    let mut input = BatchInput::new(io::stdin().lock());
    let (mut index, mut since) = (0usize, 0u64);
    loop {
        let next = input.next(|| out.flush())?;
        let Some((batch, position)) = next else {
            return Ok(());
        };
        let result = log.append_with(batch, options);
        print_outcome(out, result, || {
            format!("batch {index} (at byte {position} of stdin)")
        })?;
        index += 1;
        since += batch.len() as u64;
        if kick(since) {
            since = 0;
        }
    }
}

// ----- reads -------------------------------------------------------------------------------

pub struct ReadOptions {
    pub from: i64,
    pub max_bytes: usize,
    pub isolation: Isolation,
    pub high_watermark: Option<i64>,
    pub json: bool,
}

fn lossy(b: Option<&Vec<u8>>) -> Value {
    b.map_or(Value::Null, |b| {
        Value::String(String::from_utf8_lossy(b).into_owned())
    })
}

fn read_fail(e: &eoslog::ReadError) -> Failure {
    Failure::failed(format!("read failed ({}): {}", e.kafka_error().name(), chain(e)))
}

pub fn read(dir: &Path, pairs: &[String], opts: &ReadOptions, out: &mut Out) -> Result<(), Failure> {
    let log = open(dir, pairs, false, opts.high_watermark.is_some())?;
    with_log(log, |log| {
        set_high_watermark(log, opts.high_watermark);
        let mut next = Offset(opts.from);
        loop {
            let (records, after) = log
                .read_records(next, opts.max_bytes, opts.isolation)
                .map_err(|e| read_fail(&e))?;
            for r in &records {
                print_record(out, r, opts.json)?;
            }
            // A fetch can return only filtered batches (an aborted transaction) and still
            // advance: stop only when nothing more was read.
            if after <= next {
                return Ok(());
            }
            next = after;
        }
    })
}

fn print_record(out: &mut Out, r: &OwnedRecord, as_json: bool) -> Result<(), Failure> {
    if as_json {
        return out.json(&json!({
            "offset": r.offset.0,
            "timestamp": r.timestamp,
            "key": lossy(r.key.as_ref()),
            "value": lossy(r.value.as_ref()),
        }));
    }
    let text = |b: Option<&Vec<u8>>| {
        b.map_or_else(|| "null".to_owned(), |b| String::from_utf8_lossy(b).into_owned())
    };
    out.line(&format!(
        "offset: {} timestamp: {} key: {} value: {}",
        r.offset,
        r.timestamp,
        text(r.key.as_ref()),
        text(r.value.as_ref())
    ))
}

pub fn fetch(dir: &Path, pairs: &[String], opts: &ReadOptions, out: &mut Out) -> Result<(), Failure> {
    let log = open(dir, pairs, false, opts.high_watermark.is_some())?;
    with_log(log, |log| {
        set_high_watermark(log, opts.high_watermark);
        let result = log
            .read(Offset(opts.from), opts.max_bytes, opts.isolation)
            .map_err(|e| read_fail(&e))?;
        let bytes = result
            .bytes()
            .map_err(|e| Failure::failed(format!("reading the fetched batches failed: {}", chain(&e))))?;
        let mut batches = Vec::new();
        for item in BatchIter::new(&bytes) {
            let (_, b) = item.map_err(|(position, e)| {
                Failure::failed(format!("fetched bytes are not batches at byte {position}: {e}"))
            })?;
            batches.push((
                b.base_offset(),
                b.last_offset(),
                b.producer_id().0,
                b.is_transactional(),
                b.is_control(),
            ));
        }
        let aborted = result.aborted_transactions.as_ref().map(|list| {
            list.iter()
                .map(|a| (a.producer_id.0, a.first_offset.0))
                .collect::<Vec<_>>()
        });
        if opts.json {
            return out.json(&json!({
                "high_watermark": result.high_watermark.0,
                "last_stable_offset": result.last_stable_offset.0,
                "log_start_offset": result.log_start_offset.0,
                "aborted_transactions": aborted.as_ref().map(|list| list
                    .iter()
                    .map(|&(producer_id, first_offset)| json!({
                        "producer_id": producer_id,
                        "first_offset": first_offset,
                    }))
                    .collect::<Vec<_>>()),
                "batches": batches
                    .iter()
                    .map(|&(base, last, pid, txn, control)| json!({
                        "base_offset": base,
                        "last_offset": last,
                        "producer_id": pid,
                        "is_transactional": txn,
                        "is_control": control,
                    }))
                    .collect::<Vec<_>>(),
            }));
        }
        let aborted_text = aborted.map_or_else(
            || "none (not read_committed)".to_owned(),
            |list| {
                let items: Vec<String> = list
                    .iter()
                    .map(|(p, f)| format!("(producerId {p}, firstOffset {f})"))
                    .collect();
                format!("[{}]", items.join(", "))
            },
        );
        out.line(&format!(
            "highWatermark: {} lastStableOffset: {} logStartOffset: {} abortedTransactions: {aborted_text}",
            result.high_watermark, result.last_stable_offset, result.log_start_offset
        ))?;
        for (base, last, pid, txn, control) in batches {
            out.line(&format!(
                "baseOffset: {base} lastOffset: {last} producerId: {pid} isTransactional: {txn} isControl: {control}"
            ))?;
        }
        Ok(())
    })
}

// ----- offsets -----------------------------------------------------------------------------

pub enum Truncate {
    To(i64),
    Fully(i64),
}

fn print_offsets(log: &Log, as_json: bool, out: &mut Out) -> Result<(), Failure> {
    if as_json {
        out.json(&json!({
            "log_start_offset": log.log_start_offset().0,
            "log_end_offset": log.log_end_offset().0,
        }))
    } else {
        out.line(&format!(
            "log start offset: {} log end offset: {}",
            log.log_start_offset(),
            log.log_end_offset()
        ))
    }
}

pub fn truncate(
    dir: &Path,
    pairs: &[String],
    mode: Truncate,
    as_json: bool,
    out: &mut Out,
) -> Result<(), Failure> {
    let log = open(dir, pairs, false, false)?;
    with_log(log, |log| {
        let done = match mode {
            Truncate::To(offset) => {
                if offset >= log.log_end_offset().0 {
                    eprintln!(
                        "eoslog: note: nothing to truncate, the log ends at offset {}",
                        log.log_end_offset()
                    );
                }
                log.truncate_to(Offset(offset))
            }
            Truncate::Fully(offset) => log.truncate_fully_and_start_at(Offset(offset)),
        };
        done.map_err(|e| Failure::failed(format!("truncation failed: {}", chain(&e))))?;
        print_offsets(log, as_json, out)
    })
}

pub fn delete_records(
    dir: &Path,
    pairs: &[String],
    before: i64,
    as_json: bool,
    out: &mut Out,
) -> Result<(), Failure> {
    let log = open(dir, pairs, false, false)?;
    with_log(log, |log| {
        log.delete_records_before(Offset(before)).map_err(|e| {
            Failure::failed(format!(
                "delete-records failed ({}): {}",
                e.kafka_error().name(),
                chain(&e)
            ))
        })?;
        print_offsets(log, as_json, out)
    })
}

// ----- state -------------------------------------------------------------------------------

fn producer_json(p: &ProducerInfo) -> Value {
    let ProducerInfo {
        producer_id,
        producer_epoch,
        last_sequence,
        last_timestamp,
        coordinator_epoch,
        current_txn_start_offset,
    } = *p;
    json!({
        "producer_id": producer_id.0,
        "producer_epoch": producer_epoch.0,
        "last_sequence": last_sequence.0,
        "last_timestamp": last_timestamp,
        "coordinator_epoch": coordinator_epoch.0,
        "current_txn_start_offset": current_txn_start_offset.map_or(-1, |o| o.0),
    })
}

pub fn producers(dir: &Path, pairs: &[String], as_json: bool, out: &mut Out) -> Result<(), Failure> {
    let log = open(dir, pairs, false, false)?;
    with_log(log, |log| {
        let mut list = log.producers();
        list.sort_by_key(|p| p.producer_id);
        for p in &list {
            if as_json {
                out.json(&producer_json(p))?;
            } else {
                out.line(&format!(
                    "producerId: {} producerEpoch: {} lastSequence: {} lastTimestamp: {} coordinatorEpoch: {} currentTxnStartOffset: {}",
                    p.producer_id,
                    p.producer_epoch,
                    p.last_sequence,
                    p.last_timestamp,
                    p.coordinator_epoch,
                    p.current_txn_start_offset.map_or(-1, |o| o.0)
                ))?;
            }
        }
        Ok(())
    })
}

/// Every field of [`LogStats`] (tests/cli.rs checks the list against the struct).
fn stats_json(s: &LogStats) -> Value {
    let rejections: Map<String, Value> = s
        .rejections
        .iter()
        .map(|(name, n)| ((*name).to_owned(), json!(n)))
        .collect();
    json!({
        "appends": s.appends,
        "appended_bytes": s.appended_bytes,
        "appended_records": s.appended_records,
        "duplicates": s.duplicates,
        "rejections": rejections,
        "markers": s.markers,
        "producers": s.producers,
        "producer_evictions": s.producer_evictions,
        "producers_expired": s.producers_expired,
        "open_transactions": s.open_transactions,
        "oldest_open_transaction_age_ms": s.oldest_open_transaction_age_ms,
        "lso_lag": s.lso_lag,
        "aborted_transactions": s.aborted_transactions,
        "forced_aborts": s.forced_aborts,
        "rolls": s.rolls,
        "recoveries": s.recoveries,
        "truncated_bytes_on_recovery": s.truncated_bytes_on_recovery,
        "fsyncs": s.fsyncs,
        "durable_waiters": s.durable_waiters,
    })
}

pub fn describe(
    dir: &Path,
    pairs: &[String],
    high_watermark: Option<i64>,
    as_json: bool,
    out: &mut Out,
) -> Result<(), Failure> {
    let log = open(dir, pairs, false, high_watermark.is_some())?;
    with_log(log, |log| {
        set_high_watermark(log, high_watermark);
        let segments: Vec<Value> = log
            .segments()
            .into_iter()
            .map(|SegmentInfo { base_offset, size }| json!({ "base_offset": base_offset.0, "size": size }))
            .collect();
        let open: Vec<Value> = log
            .open_transactions()
            .into_iter()
            .map(|t| {
                let OpenTransaction {
                    producer_id,
                    producer_epoch,
                    first_offset,
                    last_timestamp,
                    age_ms: _,
                    is_late: _,
                } = t;
                json!({
                    "producer_id": producer_id.0,
                    "producer_epoch": producer_epoch.0,
                    "first_offset": first_offset.0,
                    "last_timestamp": last_timestamp,
                })
            })
            .collect();
        let aborted: Vec<Value> = log
            .aborted_transactions()
            .into_iter()
            .map(
                |AbortedTxn {
                     producer_id,
                     first_offset,
                     last_offset,
                     last_stable_offset,
                 }| {
                    json!({
                        "producer_id": producer_id,
                        "first_offset": first_offset,
                        "last_offset": last_offset,
                        "last_stable_offset": last_stable_offset,
                    })
                },
            )
            .collect();
        let stats = log.stats();
        let description = json!({
            "log_start_offset": log.log_start_offset().0,
            "log_end_offset": log.log_end_offset().0,
            "high_watermark": log.high_watermark().0,
            "last_stable_offset": log.last_stable_offset().0,
            "first_unstable_offset": log.first_unstable_offset().map(|o| o.0),
            "segments": segments,
            "producer_count": log.producers().len(),
            "open_transactions": open,
            "aborted_transactions": aborted,
            "cleaner": crate::cleancmd::cleaner_json(log),
            "stats": stats_json(&stats),
        });
        if as_json {
            return out.json(&description);
        }
        // Text: the same content, one `key: value` per line (nested values as JSON).
        if let Value::Object(map) = description {
            for key in [
                "log_start_offset",
                "log_end_offset",
                "high_watermark",
                "last_stable_offset",
                "first_unstable_offset",
                "producer_count",
                "segments",
                "open_transactions",
                "aborted_transactions",
                "cleaner",
                "stats",
            ] {
                if let Some(v) = map.get(key) {
                    out.line(&format!("{key}: {v}"))?;
                }
            }
        }
        Ok(())
    })
}

pub fn txns(
    dir: &Path,
    pairs: &[String],
    hanging: bool,
    as_json: bool,
    out: &mut Out,
) -> Result<(), Failure> {
    let log = open(dir, pairs, false, false)?;
    with_log(log, |log| {
        for t in log.open_transactions() {
            let OpenTransaction {
                producer_id,
                producer_epoch,
                first_offset,
                last_timestamp,
                age_ms,
                is_late,
            } = t;
            if hanging && !is_late {
                continue;
            }
            if as_json {
                out.json(&json!({
                    "producer_id": producer_id.0,
                    "producer_epoch": producer_epoch.0,
                    "first_offset": first_offset.0,
                    "last_timestamp": last_timestamp,
                    "age_ms": age_ms,
                    "is_late": is_late,
                }))?;
            } else {
                out.line(&format!(
                    "producerId: {producer_id} producerEpoch: {producer_epoch} firstOffset: {first_offset} \
                     lastTimestamp: {last_timestamp} ageMs: {age_ms} isLate: {is_late}"
                ))?;
            }
        }
        Ok(())
    })
}

pub fn abort(
    dir: &Path,
    pairs: &[String],
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    out: &mut Out,
) -> Result<(), Failure> {
    let log = open(dir, pairs, false, false)?;
    with_log(log, |log| {
        if !log
            .open_transactions()
            .iter()
            .any(|t| t.producer_id.0 == producer_id)
        {
            eprintln!(
                "eoslog: note: producer {producer_id} has no open transaction; the marker completes nothing"
            );
        }
        let result = log.write_marker(&TxnMarker {
            producer_id: ProducerId(producer_id),
            producer_epoch: ProducerEpoch(producer_epoch),
            coordinator_epoch: CoordinatorEpoch(coordinator_epoch),
            marker: MarkerType::Abort,
            timestamp: None,
        });
        if print_outcome(out, result, || "the ABORT marker".to_owned())? {
            return Err(Failure::silent(1));
        }
        Ok(())
    })
}
