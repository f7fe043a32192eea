//! `eoslog dump`: prints every batch of a segment file (or of every segment of a directory),
//! reading the files directly.

use std::path::{Path, PathBuf};

use eoslog::{ControlType, Marker, RecordBatch};
use serde_json::{json, Value};

use crate::scan::{self, Header, Next, ScannedBatch, SegmentScanner};
use crate::{Failure, Out};

pub struct DumpOptions {
    pub json: bool,
    pub records: bool,
    /// The internal topic whose record schemas decode keys and values.
    pub decode: Option<&'static str>,
}

/// What went wrong while dumping, for the exit status.
#[derive(Default)]
struct Damage {
    any: bool,
}

pub fn run(path: &Path, opts: &DumpOptions, out: &mut Out) -> Result<(), Failure> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let segs = scan::list_segments(path)
            .map_err(|e| Failure::failed(format!("cannot list {}: {e}", path.display())))?;
        if segs.is_empty() {
            return Err(Failure::failed(format!("no .log segment in {}", path.display())));
        }
        segs.into_iter().map(|(_, p)| p).collect()
    } else if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        return Err(Failure::failed(format!(
            "{}: no such file or directory",
            path.display()
        )));
    };
    let mut damage = Damage::default();
    for file in &files {
        dump_file(file, opts, out, &mut damage)?;
    }
    if damage.any {
        // Every problem was already printed where it was found.
        return Err(Failure::silent(1));
    }
    Ok(())
}

fn dump_file(path: &Path, opts: &DumpOptions, out: &mut Out, damage: &mut Damage) -> Result<(), Failure> {
    let io_fail = |e: std::io::Error| Failure::failed(format!("cannot read {}: {e}", path.display()));
    let mut scanner = SegmentScanner::open(path).map_err(io_fail)?;
    if !opts.json {
        out.line(&format!("Dumping {}", path.display()))?;
        if let Some(base) = scan::segment_base(path) {
            out.line(&format!("Log starting offset: {base}"))?;
        }
    }
    let want_bytes = |h: &Header| opts.records || h.is_control();
    loop {
        match scanner.next_batch(want_bytes).map_err(io_fail)? {
            Next::End => return Ok(()),
            Next::Torn { position, reason } => {
                damage.any = true;
                let message = format!("{}: {reason}; valid data ends at byte {position}", path.display());
                if opts.json {
                    out.json(&json!({ "error": message, "position": position }))?;
                } else {
                    out.line(&format!("Error at byte {position}: {message}"))?;
                }
                return Ok(());
            }
            Next::Batch(batch) => {
                if !batch.crc_ok() {
                    damage.any = true;
                }
                print_batch(path, &batch, opts, out, damage)?;
            }
        }
    }
}

struct Decoded {
    marker: Option<Marker>,
    records: Option<Vec<DumpRecord>>,
}

struct DumpRecord {
    offset: i64,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<String>,
}

/// Decodes the control type and (when asked) the records of a batch whose bytes were kept.
fn decode(path: &Path, batch: &ScannedBatch, want_records: bool, damage: &mut Damage) -> Decoded {
    let mut decoded = Decoded {
        marker: None,
        records: None,
    };
    let warn = |what: String| {
        eprintln!(
            "eoslog dump: {} batch at byte {}: {what}",
            path.display(),
            batch.position
        );
    };
    let Some(bytes) = batch.bytes.as_deref() else {
        if want_records || batch.header.is_control() {
            warn(format!(
                "{} bytes is more than the {} MiB a dump decodes; records not shown",
                batch.header.size(),
                scan::RETAIN_LIMIT >> 20
            ));
        }
        return decoded;
    };
    let parsed = match RecordBatch::parse(bytes) {
        Ok((b, _)) => b,
        Err(e) => {
            damage.any = true;
            warn(format!("{e}"));
            return decoded;
        }
    };
    if parsed.is_control() {
        match parsed.marker() {
            Ok(m) => decoded.marker = m,
            Err(e) => {
                damage.any = true;
                warn(format!("unreadable control record: {e}"));
            }
        }
    }
    if want_records {
        let mut list = Vec::new();
        match parsed.records() {
            Ok(records) => {
                for r in records.iter() {
                    match r {
                        Ok(r) => list.push(DumpRecord {
                            offset: r.offset,
                            timestamp: r.timestamp,
                            key: r.key.map(<[u8]>::to_vec),
                            value: r.value.map(<[u8]>::to_vec),
                            headers: r
                                .headers
                                .iter()
                                .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
                                .collect(),
                        }),
                        Err(e) => {
                            damage.any = true;
                            warn(format!("{e}"));
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                damage.any = true;
                warn(format!("{e}"));
            }
        }
        decoded.records = Some(list);
    }
    decoded
}

/// A record of an internal topic as JSON: its key and its value (`null` for a tombstone,
/// `{"unknown_version": v}` for a schema version eoslog does not know, `{"error": ..}` for
/// bytes that do not follow the schema).
fn decoded_json(topic: &str, r: &DumpRecord) -> (Value, Value) {
    use eoslog::InternalRecord as R;
    match eoslog::decode_internal_record(topic, r.key.as_deref(), r.value.as_deref()) {
        Ok(R::TransactionState {
            transactional_id,
            value,
        }) => (
            json!({"type": "transaction_state", "transactional_id": transactional_id}),
            value.map_or(Value::Null, |v| {
                json!({
                    "producer_id": v.producer_id,
                    "producer_epoch": v.producer_epoch,
                    "timeout_ms": v.timeout_ms,
                    "state": v.state.name(),
                    "partitions": v.partitions.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "last_update_ms": v.last_update_ms,
                    "start_ms": v.start_ms,
                    "previous_producer_id": v.previous_producer_id,
                    "next_producer_id": v.next_producer_id,
                    "client_transaction_version": v.client_transaction_version,
                })
            }),
        ),
        Ok(R::Offset {
            group,
            partition,
            value,
        }) => (
            json!({"type": "offset_commit", "group": group, "topic": &*partition.topic, "partition": partition.partition}),
            value.map_or(Value::Null, |v| {
                json!({
                    "offset": v.offset,
                    "leader_epoch": v.leader_epoch,
                    "metadata": v.metadata,
                    "commit_timestamp": v.commit_timestamp,
                })
            }),
        ),
        Ok(R::GroupMetadata { group, value }) => (
            json!({"type": "group_metadata", "group": group}),
            value.map_or(Value::Null, |v| {
                json!({
                    "protocol_type": v.protocol_type,
                    "generation": v.generation,
                    "protocol": v.protocol,
                    "leader": v.leader,
                    "current_state_timestamp": v.current_state_timestamp,
                    "members": v.members.iter().map(member_json).collect::<Vec<_>>(),
                })
            }),
        ),
        Ok(R::Unknown { version }) => (json!({"unknown_version": version}), Value::Null),
        Ok(other) => (json!({"unknown": format!("{other:?}")}), Value::Null),
        Err(e) => (json!({"error": e.to_string()}), Value::Null),
    }
}

/// A group member as a stored group metadata record holds it (`dump --decode offsets`,
/// `groups list`).
pub fn member_json(m: &eoslog::GroupMemberMetadata) -> Value {
    json!({
        "member_id": m.member_id,
        "instance_id": m.instance_id,
        "client_id": m.client_id,
        "client_host": m.client_host,
        "session_timeout": m.session_timeout_ms,
        "rebalance_timeout": m.rebalance_timeout_ms,
        "subscription_bytes": m.subscription.len(),
        "assignment_bytes": m.assignment.len(),
    })
}

fn lossy(b: Option<&Vec<u8>>) -> Value {
    b.map_or(Value::Null, |b| {
        Value::String(String::from_utf8_lossy(b).into_owned())
    })
}

fn control_name(c: Option<ControlType>) -> Option<&'static str> {
    match c {
        Some(ControlType::Commit) => Some("COMMIT"),
        Some(ControlType::Abort) => Some("ABORT"),
        _ => None,
    }
}

fn print_batch(
    path: &Path,
    batch: &ScannedBatch,
    opts: &DumpOptions,
    out: &mut Out,
    damage: &mut Damage,
) -> Result<(), Failure> {
    let h = &batch.header;
    let decoded = decode(path, batch, opts.records, damage);
    if opts.json {
        let mut obj = json!({
            "base_offset": h.base_offset,
            "last_offset": h.last_offset(),
            "count": h.records_count,
            "position": batch.position,
            "size": h.size(),
            "magic": h.magic,
            "crc": h.crc,
            "is_valid": batch.crc_ok(),
            "compression": h.compression_name(),
            "producer_id": h.producer_id,
            "producer_epoch": h.producer_epoch,
            "base_sequence": h.base_sequence,
            "is_transactional": h.is_transactional(),
            "is_control": h.is_control(),
            "control_type": control_name(decoded.marker.map(|m| m.control_type)),
            "partition_leader_epoch": h.partition_leader_epoch,
            "max_timestamp": h.max_timestamp,
        });
        if opts.records {
            let records = decoded.records.as_ref().map_or(Value::Null, |list| {
                list.iter()
                    .map(|r| {
                        let (key, value) = match opts.decode.filter(|_| !h.is_control()) {
                            Some(topic) => decoded_json(topic, r),
                            None => (lossy(r.key.as_ref()), lossy(r.value.as_ref())),
                        };
                        json!({
                            "offset": r.offset,
                            "timestamp": r.timestamp,
                            "key": key,
                            "value": value,
                        })
                    })
                    .collect()
            });
            if let Value::Object(map) = &mut obj {
                map.insert("records".to_owned(), records);
            }
        }
        return out.json(&obj);
    }
    let ts_type = if h.is_log_append_time() {
        "LogAppendTime"
    } else {
        "CreateTime"
    };
    let control = match (h.is_control(), decoded.marker) {
        (false, _) => String::new(),
        (true, None) => " controlType: unreadable".to_owned(),
        (
            true,
            Some(Marker {
                control_type: ControlType::Other(t),
                ..
            }),
        ) => format!(" controlType: UNKNOWN({t})"),
        (true, Some(m)) => format!(
            " controlType: {} coordinatorEpoch: {}",
            control_name(Some(m.control_type)).unwrap_or("UNKNOWN"),
            m.coordinator_epoch
        ),
    };
    out.line(&format!(
        "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} producerId: {} \
         producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} isControl: {}{control} \
         position: {} {ts_type}: {} size: {} magic: {} compresscodec: {} crc: {} isvalid: {}",
        h.base_offset,
        h.last_offset(),
        h.records_count,
        h.base_sequence,
        h.last_sequence(),
        h.producer_id,
        h.producer_epoch,
        h.partition_leader_epoch,
        h.is_transactional(),
        h.is_control(),
        batch.position,
        h.max_timestamp,
        h.size(),
        h.magic,
        h.compression_name(),
        h.crc,
        batch.crc_ok(),
    ))?;
    if let Some(records) = &decoded.records {
        for r in records {
            let text = |b: &Option<Vec<u8>>| {
                b.as_ref()
                    .map_or_else(|| "null".to_owned(), |b| String::from_utf8_lossy(b).into_owned())
            };
            let size = |b: &Option<Vec<u8>>| b.as_ref().map_or(-1, |b| b.len() as i64);
            if let Some(m) = decoded.marker.filter(|_| h.is_control()) {
                out.line(&format!(
                    "| offset: {} {ts_type}: {} endTxnMarker: {} coordinatorEpoch: {}",
                    r.offset,
                    r.timestamp,
                    m.control_type.name(),
                    m.coordinator_epoch
                ))?;
                continue;
            }
            let (key, payload) = match opts.decode {
                Some(topic) => {
                    let (k, v) = decoded_json(topic, r);
                    (k.to_string(), v.to_string())
                }
                None => (text(&r.key), text(&r.value)),
            };
            out.line(&format!(
                "| offset: {} {ts_type}: {} keySize: {} valueSize: {} headerKeys: [{}] key: {key} payload: {payload}",
                r.offset,
                r.timestamp,
                size(&r.key),
                size(&r.value),
                r.headers.join(","),
            ))?;
        }
    }
    Ok(())
}
