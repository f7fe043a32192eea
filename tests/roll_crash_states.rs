//! Invariant: a roll fsyncs the old segment's `.log` and `.txnindex`, then creates the new
//! segment, writes the snapshot and the checkpoint (each file fsynced before its rename) and
//! fsyncs the directory once for all three. A power loss before that fsync can leave any mix
//! of the three names; one after it can leave the old segment's index pages unwritten (they
//! are never fsynced: the checkpoint carries their checksums). Every mix opens whole: every
//! record once, the log end at the roll's base, lookups from any offset, and producer state
//! intact (a retry of the last batch is a duplicate at its original offset, the next
//! sequence is accepted). FORMAT.md §4.4 and §4.5.

mod common;
use common::*;

use eoslog::{AppendOutcome, Isolation};

const BATCHES: i32 = 20;

#[test]
fn every_mix_of_a_rolls_files_opens_whole() {
    let t = TestLog::with_config(config(&[
        ("segment.bytes", "100000"),
        ("index.interval.bytes", "0"),
    ]));
    let scratch = tempfile::tempdir().expect("scratch");
    let log = t.open();
    let mut last_at = 0;
    for i in 0..BATCHES {
        last_at = appended(client(&log, &idem(1, 0, i * 2, 2))).first_offset.0;
    }
    let end = i64::from(BATCHES) * 2;
    let expected = values(&log, Isolation::ReadUncommitted);
    let pre = scratch.path().join("pre");
    copy_dir(&t.path(), &pre);
    log.roll_segment().expect("roll");
    let post = scratch.path().join("post");
    copy_dir(&t.path(), &post);
    drop(log); // no clean shutdown

    let base = format!("{end:020}");
    let old_files = ["00000000000000000000.index", "00000000000000000000.timeindex"];
    assert!(
        post.join(format!("{base}.snapshot")).exists(),
        "the roll wrote a snapshot at its base"
    );
    for name in old_files {
        assert!(
            std::fs::metadata(post.join(name)).expect("index").len() > 0,
            "{name} has entries"
        );
    }
    for mask in 0..16u32 {
        let case = scratch.path().join(format!("case{mask}"));
        copy_dir(&post, &case);
        if mask & 1 != 0 {
            // the checkpoint rename was lost: the one before the roll
            std::fs::copy(pre.join("eoslog.checkpoint"), case.join("eoslog.checkpoint"))
                .expect("old checkpoint");
        }
        if mask & 2 != 0 {
            std::fs::remove_file(case.join(format!("{base}.snapshot"))).expect("snapshot");
        }
        if mask & 4 != 0 {
            for ext in ["log", "index", "timeindex"] {
                std::fs::remove_file(case.join(format!("{base}.{ext}"))).expect("new segment file");
            }
        }
        if mask & 8 != 0 {
            // the old segment's index pages never reached the disk
            for name in old_files {
                let len = std::fs::metadata(case.join(name)).expect("index").len();
                std::fs::write(case.join(name), vec![0u8; len as usize]).expect("zero");
            }
        }
        let log = t.open_at(&case);
        assert_eq!(log.log_end_offset(), off(end), "case {mask}");
        assert_eq!(values(&log, Isolation::ReadUncommitted), expected, "case {mask}");
        assert_lookups(&log, end, &format!("case {mask}"));
        match client(&log, &idem(1, 0, (BATCHES - 1) * 2, 2)) {
            AppendOutcome::Duplicate(info) => assert_eq!(info.first_offset, off(last_at), "case {mask}"),
            other => panic!("case {mask}: a retry of the last batch was {other:?}"),
        }
        assert_eq!(
            appended(client(&log, &idem(1, 0, BATCHES * 2, 2))).first_offset,
            off(end),
            "case {mask}"
        );
        drop(log);
    }
}
