//! Invariant: a log whose `compression.type` names a codec stores every client data batch
//! in that codec, as Kafka's leader recompresses (`LogValidator`): the stored batch is a
//! valid Kafka batch (CRC, header, the same offsets, producer fields, flags and records,
//! in the codec named), a retry of the original batch is still answered as a duplicate at
//! its offsets, markers stay as written, and everything reads back the same after a
//! reopen. `producer` (the default) stores each batch byte for byte; a replicated batch
//! is never recompressed; a copy over `max.message.bytes` is refused. A recompressed batch
//! is written at the codec's level (`compression.gzip.level`, `compression.zstd.level`),
//! read from the config at each append; the levels take Kafka's ranges, and lz4 only its
//! default (the fast compressor this build has).
#![cfg(all(feature = "gzip", feature = "snappy", feature = "lz4", feature = "zstd"))]

mod common;
use common::*;

use eoslog::{
    AppendError, AppendOrigin, BatchBuilder, Compression, Isolation, Log, NewRecord, ProducerEpoch,
    ProducerId, Sequence,
};

/// Every stored batch, as (base offset, codec, producer id, transactional, control).
fn stored(log: &Log) -> Vec<(i64, Compression, i64, bool, bool)> {
    headers(log).into_iter().map(|h| h.0).collect()
}

/// Every stored batch's (base offset, codec, producer id, transactional, control), and its
/// (producer epoch, base sequence, last offset delta, max timestamp).
#[allow(clippy::type_complexity)]
fn headers(log: &Log) -> Vec<((i64, Compression, i64, bool, bool), (i16, i32, i32, i64))> {
    map_batches(log, |b| {
        (
            (
                b.base_offset(),
                b.compression().expect("codec"),
                b.producer_id().0,
                b.is_transactional(),
                b.is_control(),
            ),
            (
                b.producer_epoch().0,
                b.base_sequence().0,
                b.last_offset_delta(),
                b.max_timestamp(),
            ),
        )
    })
}

fn values_of(n: usize, tag: &str) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{tag}-{i}-{}", "x".repeat(50)).into_bytes())
        .collect()
}

/// `batch` claiming `max` as its max timestamp in its header (CRC recomputed).
fn claiming_max(mut batch: Vec<u8>, max: i64) -> Vec<u8> {
    batch[35..43].copy_from_slice(&max.to_be_bytes());
    let crc = eoslog::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

fn batch(builder: BatchBuilder, codec: Compression, values: &[Vec<u8>], t0: i64) -> Vec<u8> {
    let recs: Vec<NewRecord<'_>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| NewRecord::value(t0 + i as i64, v))
        .collect();
    builder.compression(codec).build(&recs).expect("build")
}

#[test]
fn client_batches_are_stored_in_the_logs_codec_and_retries_stay_duplicates() {
    let t = TestLog::with_config(config(&[("compression.type", "zstd")]));
    let log = t.open();
    let gz_values = values_of(5, "gz");
    // Its header claims a max timestamp its records do not have.
    let gz = claiming_max(
        batch(
            BatchBuilder::idempotent(ProducerId(7), ProducerEpoch(3), Sequence(40)),
            Compression::Gzip,
            &gz_values,
            T0,
        ),
        T0 + 1000,
    );
    let first = appended(client(&log, &gz));
    assert_eq!((first.first_offset, first.last_offset), (off(0), off(4)));
    // The records' largest timestamp, as the copy's header carries it.
    assert_eq!(first.max_timestamp, T0 + 4);
    assert_eq!(
        headers(&log)[0].1,
        (3, 40, 4, T0 + 4),
        "epoch, sequence, delta, max"
    );
    let plain_values = values_of(3, "plain");
    let raw = batch(BatchBuilder::new(), Compression::None, &plain_values, T0);
    appended(client(&log, &raw));
    // A transaction in lz4 and its marker.
    let tx_values = values_of(2, "tx");
    let tx = batch(
        BatchBuilder::transactional(ProducerId(8), ProducerEpoch(0), Sequence(0)),
        Compression::Lz4,
        &tx_values,
        T0,
    );
    appended(client(&log, &tx));
    commit(&log, 8, 0);
    let zstd_values = values_of(2, "zstd");
    let already = batch(BatchBuilder::new(), Compression::Zstd, &zstd_values, T0);
    appended(client(&log, &already));

    let expect = vec![
        (0, Compression::Zstd, 7, false, false),
        (5, Compression::Zstd, -1, false, false),
        (8, Compression::Zstd, 8, true, false),
        (10, Compression::None, 8, true, true),
        (11, Compression::Zstd, -1, false, false),
    ];
    let all: Vec<String> = [&gz_values, &plain_values, &tx_values, &zstd_values]
        .iter()
        .flat_map(|vs| vs.iter().map(|v| String::from_utf8(v.clone()).expect("utf8")))
        .collect();
    assert_eq!(stored(&log), expect);
    assert_eq!(values(&log, Isolation::ReadCommitted), all);
    // The zstd batch was stored as sent.
    let tail = log
        .read(off(11), 1 << 20, Isolation::ReadUncommitted)
        .expect("read")
        .bytes()
        .expect("bytes");
    assert_eq!(
        &tail[12..],
        &already[12..],
        "a batch already in the codec is not rewritten"
    );

    // A retry of the gzip batch, as the producer sends it again.
    match client(&log, &gz) {
        eoslog::AppendOutcome::Duplicate(info) => {
            assert_eq!((info.first_offset, info.last_offset), (off(0), off(4)));
        }
        other => panic!("a retry was {other:?}"),
    }
    // A crash: recovery reads every batch (CRCs, offsets) again.
    drop(log);
    let log = t.open();
    assert_eq!(stored(&log), expect);
    assert_eq!(values(&log, Isolation::ReadCommitted), all);
}

#[test]
fn uncompressed_decompresses_and_producer_keeps_bytes() {
    let t = TestLog::with_config(config(&[("compression.type", "uncompressed")]));
    let log = t.open();
    let vals = values_of(4, "v");
    appended(client(
        &log,
        &batch(BatchBuilder::new(), Compression::Snappy, &vals, T0),
    ));
    assert_eq!(stored(&log), vec![(0, Compression::None, -1, false, false)]);
    assert_eq!(values(&log, Isolation::ReadUncommitted).len(), 4);

    let t = TestLog::new();
    let log = t.open();
    let gz = batch(BatchBuilder::new(), Compression::Gzip, &vals, T0);
    appended(client(&log, &gz));
    let back = log
        .read(off(0), 1 << 20, Isolation::ReadUncommitted)
        .expect("read")
        .bytes()
        .expect("bytes");
    assert_eq!(&back[12..], &gz[12..], "producer: stored byte for byte");
}

#[test]
fn replicated_batches_are_never_recompressed() {
    let t = TestLog::with_config(config(&[("compression.type", "zstd")]));
    let log = t.open();
    let gz = batch(BatchBuilder::new(), Compression::Gzip, &values_of(3, "r"), T0);
    appended(log.append(&gz, AppendOrigin::Replication).expect("replicated"));
    assert_eq!(stored(&log), vec![(0, Compression::Gzip, -1, false, false)]);
}

#[test]
fn a_copy_over_max_message_bytes_is_refused() {
    // Bytes no codec can shrink (xorshift): the gzip copy is its input plus gzip's framing,
    // so larger than the batch the client sent, which fits exactly.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let vals: Vec<Vec<u8>> = (0..20)
        .map(|_| {
            (0..200)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        })
        .collect();
    let raw = batch(BatchBuilder::new(), Compression::None, &vals, T0);
    let max = raw.len().to_string();
    let t = TestLog::with_config(config(&[
        ("compression.type", "gzip"),
        ("max.message.bytes", &max),
    ]));
    let log = t.open();
    match log.append(&raw, AppendOrigin::Client) {
        Err(AppendError::MessageTooLarge { size, max, .. }) => {
            assert!(size > max && max == raw.len() as u64, "{size} {max}");
        }
        other => panic!("a copy over max.message.bytes was {other:?}"),
    }
    assert_eq!(log.log_end_offset(), off(0), "nothing was written");
}

#[test]
fn log_append_time_copies_and_coordinator_appends_of_several_batches() {
    let t = TestLog::with_config(config(&[
        ("compression.type", "lz4"),
        ("message.timestamp.type", "LogAppendTime"),
    ]));
    let log = t.open();
    // A coordinator's append of three batches: two rebuilt, one already in lz4.
    let a = values_of(2, "a");
    let b = values_of(3, "b");
    let c = values_of(1, "c");
    let mut bytes = batch(BatchBuilder::new(), Compression::Gzip, &a, T0);
    bytes.extend(batch(BatchBuilder::new(), Compression::Lz4, &b, T0));
    bytes.extend(batch(BatchBuilder::new(), Compression::None, &c, T0));
    let info = appended(log.append(&bytes, AppendOrigin::Coordinator).expect("append"));
    assert_eq!((info.first_offset, info.last_offset), (off(0), off(5)));
    let now = T0; // the test clock
    let h = headers(&log);
    assert_eq!(
        h.iter()
            .map(|x| (x.0 .0, x.0 .1, x.1 .2, x.1 .3))
            .collect::<Vec<_>>(),
        vec![
            (0, Compression::Lz4, 1, now),
            (2, Compression::Lz4, 2, now),
            (5, Compression::Lz4, 0, now)
        ],
        "(base, codec, last offset delta, max timestamp = append time)"
    );
    let got = values(&log, Isolation::ReadUncommitted);
    let want: Vec<String> = [&a, &b, &c]
        .iter()
        .flat_map(|vs| vs.iter().map(|v| String::from_utf8(v.clone()).expect("utf8")))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_live_change_of_compression_type_applies_to_the_next_append() {
    let t = TestLog::new();
    let log = t.open();
    let vals = values_of(2, "v");
    appended(client(
        &log,
        &batch(BatchBuilder::new(), Compression::Gzip, &vals, T0),
    ));
    let mut c = (*log.config()).clone();
    c.set("compression.type", "snappy").expect("snappy");
    log.set_config(c).expect("set_config");
    appended(client(
        &log,
        &batch(BatchBuilder::new(), Compression::Gzip, &vals, T0),
    ));
    let codecs: Vec<Compression> = stored(&log).iter().map(|b| b.1).collect();
    assert_eq!(codecs, [Compression::Gzip, Compression::Snappy]);
}

#[test]
fn a_producers_log_append_time_batch_is_recompressed_as_create_time() {
    // Kafka rebuilds the batch with the log's timestamp type; its records carry the time
    // they read in the original, the header's max timestamp.
    let t = TestLog::with_config(config(&[("compression.type", "zstd")]));
    let log = t.open();
    let mut gz = claiming_max(
        batch(
            BatchBuilder::new(),
            Compression::Gzip,
            &values_of(3, "lat"),
            T0 - 10,
        ),
        T0 - 1,
    );
    let attrs = i16::from_be_bytes([gz[21], gz[22]]) | 0x08;
    gz[21..23].copy_from_slice(&attrs.to_be_bytes());
    let crc = eoslog::crc32c(&gz[21..]);
    gz[17..21].copy_from_slice(&crc.to_be_bytes());
    let info = appended(client(&log, &gz));
    assert_eq!(info.max_timestamp, T0 - 1);
    assert_eq!(
        map_batches(&log, |b| (
            b.compression().expect("codec"),
            b.timestamp_type(),
            b.max_timestamp()
        )),
        vec![(Compression::Zstd, eoslog::TimestampType::CreateTime, T0 - 1)]
    );
    let (recs, _) = log
        .read_records(off(0), usize::MAX / 2, Isolation::ReadUncommitted)
        .expect("records");
    assert_eq!(
        recs.iter().map(|r| r.timestamp).collect::<Vec<_>>(),
        vec![T0 - 1; 3]
    );
}

#[test]
fn a_recompressed_batch_is_written_at_the_codecs_level_from_the_next_append() {
    // Text that compresses, but not to nothing: a higher level finds more.
    let vals: Vec<Vec<u8>> = (0..400)
        .map(|i: u64| {
            format!(
                "{i:06} {} {}",
                i.wrapping_mul(2_654_435_761) % 9973,
                "lorem ipsum dolor ".repeat(1 + (i % 3) as usize)
            )
            .into_bytes()
        })
        .collect();
    for (codec, key, default, low, high) in [
        ("gzip", "compression.gzip.level", "6", "1", "9"),
        ("zstd", "compression.zstd.level", "3", "1", "19"),
    ] {
        let t = TestLog::with_config(config(&[("compression.type", codec)]));
        let log = t.open();
        let mut sizes = Vec::new();
        // The default first, then each level set on the open log.
        for level in [None, Some(default), Some(low), Some(high)] {
            if let Some(level) = level {
                let mut c = (*log.config()).clone();
                c.set(key, level).expect("level");
                log.set_config(c).expect("set_config");
            }
            appended(client(
                &log,
                &batch(BatchBuilder::new(), Compression::None, &vals, T0),
            ));
            sizes.push(map_batches(&log, |b| b.size()).pop().expect("a batch"));
        }
        assert_eq!(
            sizes[0], sizes[1],
            "{codec}: the default level is {default}: {sizes:?}"
        );
        assert!(
            sizes[3] < sizes[2],
            "{codec}: level {high} writes less than {low}: {sizes:?}"
        );
        // Every copy reads back as the records sent, in the log's codec.
        let expected: Vec<String> = vals
            .iter()
            .map(|v| String::from_utf8(v.clone()).expect("utf8"))
            .collect();
        let read = values(&log, Isolation::ReadUncommitted);
        assert_eq!(read.len(), 4 * vals.len());
        for copy in read.chunks(vals.len()) {
            assert_eq!(copy, &expected[..], "{codec}");
        }
        assert!(stored(&log).iter().all(|b| b.1.name() == codec));
    }
}

#[test]
fn the_levels_take_kafkas_ranges_and_lz4_only_its_default() {
    let mut c = eoslog::LogConfig::default();
    for (key, accepted, refused) in [
        (
            "compression.gzip.level",
            &["-1", "1", "9"][..],
            &["0", "10", "-2", "x"][..],
        ),
        (
            "compression.zstd.level",
            &["-131072", "-1", "0", "22"],
            &["-131073", "23"],
        ),
        ("compression.lz4.level", &["9"], &["0", "1", "10", "17", "18"]),
    ] {
        for v in accepted {
            c.set(key, v).unwrap_or_else(|e| panic!("{key}={v}: {e}"));
            assert_eq!(c.get(key).as_deref(), Some(*v));
        }
        let kept = c.get(key);
        for v in refused {
            assert!(c.set(key, v).is_err(), "{key}={v}");
            assert_eq!(c.get(key), kept, "a refusal keeps {key}");
        }
    }
    let d = eoslog::LogConfig::default();
    assert_eq!(
        [
            "compression.gzip.level",
            "compression.lz4.level",
            "compression.zstd.level"
        ]
        .map(|k| d.get(k)),
        [Some("-1".to_owned()), Some("9".to_owned()), Some("3".to_owned())],
        "Kafka's defaults"
    );
}
