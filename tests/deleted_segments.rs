//! Invariant: a segment deleted by retention, DeleteRecords or truncation never touches the
//! directory again, even when a reader still holds it: the reader goes on through the open
//! `.log` handle without indexes, and no index file of the deleted segment comes back (nor
//! does a lookup remove files a newer segment with the same base now owns). Issue #13,
//! item 4.

mod common;
use common::*;
use eoslog::{AppendOrigin, BatchBuilder, Isolation, NewRecord, Offset};

/// A replicated batch of one record at `base` (a follower copies offsets as they are; gaps
/// between batches are legal, as after compaction).
fn replicated_at(base: i64, value: &str) -> Vec<u8> {
    let mut b = BatchBuilder::new()
        .build(&[NewRecord::value(T0, value.as_bytes())])
        .expect("build");
    b[..8].copy_from_slice(&base.to_be_bytes()); // base offset: outside the CRC
    b
}

#[test]
fn a_reader_holding_a_deleted_segment_recreates_no_index_files() {
    reader_holding_a_deleted_segment("0");
}

#[test]
fn a_reader_holding_a_segment_set_aside_recreates_no_index_files() {
    reader_holding_a_deleted_segment("60000");
}

/// With `file.delete.delay.ms` = `delay`: unlinked at once (0) or set aside as `.deleted`.
fn reader_holding_a_deleted_segment(delay: &str) {
    // Each batch fills a segment: the follower rolls at the next batch's base offset, so
    // segment 0 holds offset 0 only and covers 0..20.
    let t = TestLog::with_config(config(&[
        ("segment.bytes", "100"),
        ("file.delete.delay.ms", delay),
    ]));
    {
        let log = t.open();
        for (base, v) in [(0, "a"), (20, "b"), (40, "c")] {
            appended(
                log.append(&replicated_at(base, v), AppendOrigin::Replication)
                    .expect("replicate"),
            );
        }
        let bases: Vec<i64> = log.segments().iter().map(|s| s.base_offset.0).collect();
        assert_eq!(bases, vec![0, 20, 40]);
        log.close().expect("close");
    }
    // Reopened, the two inactive segments have not read their indexes yet.
    let gate = Gate::new(GateOn::Read);
    let log = gate.open(&t, |p| p.ends_with("00000000000000000000.log"));
    gate.arm();
    std::thread::scope(|s| {
        // Offset 15 lies in the gap after segment 0's data: the read walks segment 0's
        // headers (and blocks there), then moves on to segment 20.
        let reader = s.spawn(|| log.read(Offset(15), 1 << 20, Isolation::Replica));
        gate.wait_entered();
        // Meanwhile DeleteRecords deletes segments 0 and 20.
        assert_eq!(
            log.delete_records_before(Offset(40)).expect("delete records"),
            Offset(40)
        );
        assert_eq!(log.segments().len(), 1);
        gate.release();
        let fetch = reader.join().expect("reader").expect("the read finishes");
        let bytes = fetch.bytes().expect("bytes");
        assert!(
            !bytes.is_empty(),
            "the deleted segment's data is still readable through the open handle"
        );
    });
    let of_deleted = || -> (Vec<String>, Vec<String>) {
        std::fs::read_dir(t.path())
            .expect("dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("00000000000000000000.") || n.starts_with("00000000000000000020."))
            .partition(|n| n.ends_with(".deleted"))
    };
    let (aside, left) = of_deleted();
    assert!(left.is_empty(), "files of deleted segments came back: {left:?}");
    if delay == "0" {
        assert!(aside.is_empty(), "{aside:?}");
    } else {
        // Only what the segments had: their `.log` and the two index files.
        assert_eq!(aside.len(), 6, "{aside:?}");
        t.clock.advance(60_000);
        log.run_maintenance().expect("maintenance");
        assert_eq!(of_deleted(), (vec![], vec![]));
    }
    log.verify(|_, _| {}).expect("verify");
}
