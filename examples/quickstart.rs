//! The eoslog quickstart: an idempotent producer whose retry is recognised, a transaction that
//! aborts and one that commits, and a read_committed read that sees only committed data.
//!
//! Run it with `cargo run --example quickstart`.

use eoslog::{
    AppendOrigin, AppendOutcome, BatchBuilder, CoordinatorEpoch, Isolation, Log, LogConfig, MarkerType,
    NewRecord, Offset, ProducerEpoch, ProducerId, Sequence, TxnMarker,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("payments-0");
    let log = Log::open(&path, LogConfig::default())?;
    let now = 1_700_000_000_000;
    println!("opened {}", path.display());

    // 1. Idempotence: the same batch sent twice (a producer retry) is written once.
    let batch = BatchBuilder::idempotent(ProducerId(1000), ProducerEpoch(0), Sequence(0))
        .build(&[NewRecord::key_value(now, b"alice", b"+100")])?;
    for attempt in 1..=2 {
        match log.append(&batch, AppendOrigin::Client)? {
            AppendOutcome::Appended(i) => {
                println!("attempt {attempt}: appended at offset {}", i.first_offset)
            }
            AppendOutcome::Duplicate(i) => {
                println!(
                    "attempt {attempt}: duplicate, answered with original offset {}",
                    i.first_offset
                )
            }
            AppendOutcome::Rejected(r) => println!("attempt {attempt}: rejected {}", r.kafka_error()),
        }
    }

    // 2. Transactions: producer 2000 writes, the coordinator aborts; then writes and commits.
    let pid = ProducerId(2000);
    let txns = [
        (0, "bob", "-50 (aborted)", MarkerType::Abort),
        (1, "bob", "-30", MarkerType::Commit),
    ];
    for (seq, key, value, outcome) in txns {
        let batch = BatchBuilder::transactional(pid, ProducerEpoch(0), Sequence(seq))
            .build(&[NewRecord::key_value(now, key.as_bytes(), value.as_bytes())])?;
        let _ = log.append(&batch, AppendOrigin::Client)?;
        println!(
            "transaction open: last stable offset {} (log end {})",
            log.last_stable_offset(),
            log.log_end_offset()
        );
        let _ = log.write_marker(&TxnMarker {
            producer_id: pid,
            producer_epoch: ProducerEpoch(0),
            coordinator_epoch: CoordinatorEpoch(0),
            marker: outcome,
            timestamp: Some(now),
        })?;
        println!(
            "{outcome:?} written: last stable offset {}",
            log.last_stable_offset()
        );
    }

    // 3. read_committed: the aborted record is never visible; read_uncommitted shows it.
    for isolation in [Isolation::ReadUncommitted, Isolation::ReadCommitted] {
        let (records, _) = log.read_records(Offset(0), 1 << 20, isolation)?;
        println!("{isolation:?}:");
        for r in records {
            println!(
                "  offset {} {}={}",
                r.offset,
                String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()),
                String::from_utf8_lossy(r.value.as_deref().unwrap_or_default())
            );
        }
    }
    let fetch = log.read(Offset(0), 1 << 20, Isolation::ReadCommitted)?;
    println!(
        "a read_committed fetch carries the aborted transactions: {:?}",
        fetch.aborted_transactions
    );
    log.close()?;
    println!("closed cleanly; files: {:?}", {
        let mut names: Vec<_> = std::fs::read_dir(&path)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    });
    Ok(())
}
