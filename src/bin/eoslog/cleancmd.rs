//! `compact` and the cleaner's part of `describe`.

use std::path::Path;

use eoslog::{CleanReport, CleanerOptions, Log};
use serde_json::{json, Value};

use crate::{chain, logcmd, Failure, Out};

/// The cleaner's view of a log: how dirty it is and what the last clean did.
pub fn cleaner_json(log: &Log) -> Value {
    let state = match log.cleanability() {
        Ok(c) => json!({
            "dirty_ratio": c.dirty_ratio,
            "first_dirty_offset": c.first_dirty_offset.0,
            "first_uncleanable_offset": c.first_uncleanable_offset.0,
            "clean_bytes": c.clean_bytes,
            "dirty_bytes": c.dirty_bytes,
            "due": c.due,
        }),
        Err(e) => json!({ "error": chain(&e) }),
    };
    json!({
        "compacted": log.config().cleanup_policy.compact,
        "cleanability": state,
        "last_run": log.last_clean().map(|r| report_json(&r)),
    })
}

fn report_json(r: &CleanReport) -> Value {
    json!({
        "finished_ms": r.finished_ms,
        "duration_ms": r.duration_ms,
        "start_offset": r.start_offset.0,
        "end_offset": r.end_offset.0,
        "segments_read": r.segments_read,
        "segments_written": r.segments_written,
        "bytes_read": r.bytes_read,
        "bytes_written": r.bytes_written,
        "records_read": r.records_read,
        "records_kept": r.records_kept,
    })
}

/// `eoslog compact DIR`: one clean of everything cleanable, whatever the dirty ratio. The
/// log is opened with `cleanup.policy=compact` unless `--config` says otherwise.
pub fn compact(
    dir: &Path,
    pairs: &[String],
    dedupe_buffer_bytes: Option<usize>,
    as_json: bool,
    out: &mut Out,
) -> Result<(), Failure> {
    let mut all = vec!["cleanup.policy=compact".to_owned()];
    all.extend_from_slice(pairs);
    let log = logcmd::open(dir, &all, false, false)?;
    let mut options = CleanerOptions::default();
    if let Some(bytes) = dedupe_buffer_bytes {
        options = options.dedupe_buffer_bytes(bytes);
    }
    logcmd::with_log(log, |log| {
        if !log.config().cleanup_policy.compact {
            return Err(Failure::usage(
                "cleanup.policy does not include compact: nothing to do",
            ));
        }
        let report = log
            .clean(&options, true)
            .map_err(|e| Failure::failed(format!("cleaning {} failed: {}", dir.display(), chain(&e))))?;
        let Some(report) = report else {
            let c = log.cleanability().map_err(|e| Failure::failed(chain(&e)))?;
            let message = format!(
                "nothing cleanable: the first uncleanable offset is {} (LSO, high watermark, active segment or min.compaction.lag.ms)",
                c.first_uncleanable_offset.0
            );
            return if as_json {
                out.json(&json!({ "cleaned": false, "reason": message }))
            } else {
                out.line(&message)
            };
        };
        if as_json {
            return out.json(&json!({ "cleaned": true, "report": report_json(&report) }));
        }
        out.line(&format!(
            "cleaned offsets {}..{}: {} segments into {}, {} -> {} bytes, {} of {} records kept, {} ms",
            report.start_offset.0,
            report.end_offset.0,
            report.segments_read,
            report.segments_written,
            report.bytes_read,
            report.bytes_written,
            report.records_kept,
            report.records_read,
            report.duration_ms
        ))
    })
}
