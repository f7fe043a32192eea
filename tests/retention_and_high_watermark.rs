//! Invariant: retention, DeleteRecords and restarts never lose what they must keep: a segment
//! recovered after a crash keeps its newest timestamp (so time retention does not delete recent
//! data), the producer state of deleted segments survives a crash after DeleteRecords moved the
//! log start into a later segment, and a completed transaction whose marker is not yet below the
//! high watermark keeps holding the last stable offset back after a restart. Each was found by
//! the model-based test (`tests/model_based.rs`) once it drove the high watermark and
//! retention (issue #5).

mod common;
use common::*;
use eoslog::{BatchBuilder, Isolation, NewRecord, Offset, ProducerEpoch, ProducerId, Sequence};

const HOUR: i64 = 3_600_000;

fn idem_at(pid: i64, seq: i32, ts: i64) -> Vec<u8> {
    let v = format!("p{pid}-s{seq}");
    BatchBuilder::idempotent(ProducerId(pid), ProducerEpoch(0), Sequence(seq))
        .build(&[NewRecord::value(ts, v.as_bytes())])
        .expect("build")
}

/// Recovery resumes at the recovery point inside the active segment, trusting the index
/// entries below it. The time index's unwritten (zero-filled) slots used to pass for an entry
/// with timestamp 0, and the batches after its last real entry were not looked at: the segment
/// then looked a day old (or 53 years) and time retention deleted data written a second ago.
#[test]
fn time_retention_after_crash_recovery_keeps_recent_data() {
    let t = TestLog::with_config(config(&[
        ("retention.ms", &HOUR.to_string()),
        ("index.interval.bytes", "100"),
    ]));
    for old_batches in [0, 3] {
        let t = TestLog::with_config(t.config.clone());
        let end;
        {
            let log = t.open();
            // Old batches (some indexed), then a fresh one after the last index entry.
            for seq in 0..old_batches {
                appended(client(&log, &idem_at(1, seq, T0 - 2 * HOUR)));
            }
            appended(client(&log, &idem_at(1, old_batches, T0)));
            log.flush().expect("flush");
            end = log.log_end_offset();
            // Crash: no close; recovery resumes at the flushed end.
        }
        t.clock.set(T0 + 1000);
        let log = t.open();
        assert_eq!(log.log_end_offset(), end);
        assert_eq!(
            log.apply_retention().expect("retention"),
            0,
            "{old_batches} old batches: a segment with data from a second ago was deleted by time"
        );
        assert_eq!(log.log_start_offset(), Offset(0));
        t.clock.set(T0 + 2 * HOUR);
        assert_eq!(
            log.apply_retention().expect("retention"),
            1,
            "now it is old enough"
        );
    }
}

/// DeleteRecords moved the log start into the second segment and deleted the first; the
/// snapshot at the second segment's base (holding the first segment's producers) used to be
/// deleted with it, so recovery after a crash replayed only the second segment and forgot
/// producer 2: its retry was written again instead of being answered as a duplicate.
#[test]
fn producer_state_of_deleted_segments_survives_a_crash() {
    let t = TestLog::new();
    let retry = idem(2, 0, 2, 1);
    {
        let log = t.open();
        appended(client(&log, &idem(2, 0, 0, 1)));
        appended(client(&log, &idem(2, 0, 1, 1)));
        appended(client(&log, &retry));
        log.roll_segment().expect("roll");
        appended(client(&log, &idem(0, 0, 0, 1)));
        appended(client(&log, &idem(0, 0, 1, 1)));
        assert_eq!(
            log.delete_records_before(Offset(4)).expect("delete records"),
            Offset(4)
        );
        assert_eq!(log.segments().len(), 1, "the first segment is gone");
        // Crash: no close, so no snapshot at the end.
    }
    let log = t.open();
    match client(&log, &retry) {
        eoslog::AppendOutcome::Duplicate(i) => assert_eq!(i.first_offset, Offset(2)),
        other => panic!("retry of producer 2 after the crash: {other:?}"),
    }
}

/// A committed transaction whose COMMIT marker is not yet below the high watermark is not
/// stable: read_committed must not pass its first offset. That fact now survives a restart in
/// the snapshot (Kafka forgets it when the marker lies below the snapshot offset).
#[test]
fn unreplicated_commit_holds_the_lso_across_restart() {
    let t = TestLog::with_config(config(&[("eoslog.high.watermark", "manual")]));
    {
        let log = t.open();
        appended(client(&log, &txn(7, 0, 0, 1)));
        log.set_high_watermark(Offset(1));
        commit(&log, 7, 0); // marker at 1, high watermark 1: not replicated yet
        assert_eq!(log.last_stable_offset(), Offset(0));
        log.roll_segment().expect("roll"); // snapshot at 2
        appended(client(&log, &plain(&["after"])));
        log.close().expect("close");
    }
    let log = t.open();
    assert_eq!(
        log.high_watermark(),
        Offset(0),
        "a replica's high watermark starts at the log start"
    );
    log.set_high_watermark(Offset(1));
    assert_eq!(
        log.last_stable_offset(),
        Offset(0),
        "the commit marker at 1 is not below the high watermark"
    );
    assert!(values(&log, Isolation::ReadCommitted).is_empty());
    log.set_high_watermark(Offset(3));
    assert_eq!(log.last_stable_offset(), Offset(3));
    assert_eq!(values(&log, Isolation::ReadCommitted), ["t7-s0", "after"]);
    // The snapshot is still a Kafka v1 snapshot with eoslog's section after the entries.
    let snap = std::fs::read(t.path().join("00000000000000000002.snapshot")).expect("snapshot");
    let decoded = eoslog::decode::snapshot(&snap).expect("decodes");
    assert_eq!(decoded.entries.len(), 1);
    assert_eq!(
        decoded.unreplicated,
        [eoslog::decode::UnreplicatedTxn {
            first_offset: 0,
            last_offset: 1
        }]
    );
}
