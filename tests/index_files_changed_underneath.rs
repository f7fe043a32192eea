//! Invariant: an index file that another process shortens or removes while the log is open
//! never takes the embedding process down (a memory-mapped inactive index would die of
//! SIGBUS): inactive segments read their indexes with `pread`, a short read is an error the
//! lookup survives by walking the log, reads return the right data, and `verify` reports the
//! damage. Only the active segment's indexes are mapped (the crate docs state the remaining
//! contract). Issue #13, item 8.

mod common;
use common::*;
use eoslog::{Isolation, Offset};

#[test]
fn an_inactive_index_truncated_by_another_process_is_survived() {
    let t = TestLog::with_config(config(&[("index.interval.bytes", "1")]));
    let log = t.open();
    for i in 0..1200 {
        appended(client(&log, &plain(&[&format!("value-{i:04}")])));
    }
    log.roll_segment().expect("roll");
    appended(client(&log, &plain(&["active"])));
    // Load the inactive segment's index, as a fetch does.
    let want = log
        .read(Offset(900), 300, Isolation::ReadUncommitted)
        .expect("read")
        .bytes()
        .expect("bytes");
    let index = t.path().join("00000000000000000000.index");
    assert!(
        std::fs::metadata(&index).expect("index").len() > 8192,
        "the index spans several blocks"
    );
    for len in [8192u64, 4096, 3, 0] {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&index)
            .expect("open")
            .set_len(len)
            .expect("shorten");
        for from in [0, 500, 900, 1199] {
            let (records, _) = log
                .read_records(Offset(from), 100, Isolation::ReadUncommitted)
                .expect("read through a shortened index");
            assert_eq!(
                String::from_utf8(records[0].value.clone().expect("value")).expect("utf8"),
                format!("value-{from:04}")
            );
        }
        let got = log
            .read(Offset(900), 300, Isolation::ReadUncommitted)
            .expect("read")
            .bytes()
            .expect("bytes");
        assert_eq!(got, want);
        let err = log
            .verify(|_, _| {})
            .expect_err("verify reports the shortened index");
        assert!(err.to_string().contains("00000000000000000000.index"), "{err}");
    }
    // Rewritten with other bytes of the right length: every block read disagrees with the
    // summary kept in memory, lookups fail, and reads walk the segment instead.
    let original = 1200 * 8;
    std::fs::write(&index, vec![0x5a; original]).expect("rewrite");
    for from in [0, 500, 1199] {
        let (records, _) = log
            .read_records(Offset(from), 100, Isolation::ReadUncommitted)
            .expect("read through a rewritten index");
        assert_eq!(records[0].offset, Offset(from));
    }
    std::fs::remove_file(&index).expect("remove");
    assert_eq!(values(&log, Isolation::ReadUncommitted).len(), 1201);
}
