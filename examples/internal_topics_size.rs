//! How big the coordinator's internal topics get after many transactions, with the store's
//! maintenance cleaning them (they are compacted, as in Kafka).
//!
//! Runs N transactions (default 1,000,000; the first argument sets it) over 100
//! transactional ids, each committing one consumer offset inside the transaction for one of
//! 10 groups × 10 partitions (every tenth transaction aborts), calling the store's
//! maintenance every 1,000 transactions, then prints the bytes appended to
//! `__transaction_state` and `__consumer_offsets` and the bytes their segments hold. The
//! second argument sets `log.cleaner.delete.retention.ms` (default Kafka's one day, within
//! which the markers of finished transactions stay; 0 lets the cleaner remove them).
//!
//! ```text
//! cargo run --release --example internal_topics_size -- 1000000
//! cargo run --release --example internal_topics_size -- 1000000 0
//! ```

use std::time::Instant;

use eoslog::{
    OffsetCommit, PartitionOffset, Store, StoreConfig, TopicPartition, TxnOffsetCommit, TxnVersion,
};

fn dir_bytes(root: &std::path::Path, prefix: &str) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(root).expect("dir").filter_map(Result::ok) {
        if e.file_name().to_string_lossy().starts_with(prefix) {
            for f in std::fs::read_dir(e.path())
                .expect("partition")
                .filter_map(Result::ok)
            {
                if f.file_name().to_string_lossy().ends_with(".log") {
                    total += f.metadata().expect("meta").len();
                }
            }
        }
    }
    total
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args().nth(1).map_or(Ok(1_000_000), |a| a.parse())?;
    let delete_retention = std::env::args().nth(2).unwrap_or_else(|| "86400000".into());
    let dir = tempfile::tempdir()?;
    let mut config = StoreConfig::default();
    for (k, v) in [
        ("eoslog.internal.durability", "buffered"),
        ("log.cleaner.backoff.ms", "0"),
        ("transaction.state.log.segment.bytes", "1048576"),
        ("offsets.topic.segment.bytes", "1048576"),
        ("log.cleaner.delete.retention.ms", &delete_retention),
    ] {
        config.set(k, v)?;
    }
    let store = Store::open(dir.path(), config)?;
    store.create_topic("in", 10, &[])?;
    let ids: Vec<String> = (0..100).map(|i| format!("txn-{i}")).collect();
    let groups: Vec<String> = (0..10).map(|i| format!("group-{i}")).collect();
    let mut producers = Vec::new();
    for id in &ids {
        producers.push(store.transactions().init_producer_id(Some(id), 60_000, None)?);
    }
    let started = Instant::now();
    let mut cleaned = 0;
    for t in 0..n {
        let i = (t % 100) as usize;
        let (id, p) = (&ids[i], producers[i]);
        let group = &groups[(t / 100 % 10) as usize];
        let txns = store.transactions();
        txns.add_offsets(id, p, group, TxnVersion::TV0)?;
        let commit = TxnOffsetCommit {
            transactional_id: id,
            producer: p,
            tv: TxnVersion::TV0,
            commit: OffsetCommit {
                group_id: group,
                generation_id: -1,
                member_id: "",
                group_instance_id: None,
                retention_ms: None,
                offsets: vec![PartitionOffset {
                    partition: TopicPartition::new("in", (t % 10) as i32),
                    offset: t as i64,
                    leader_epoch: -1,
                    metadata: None,
                }],
            },
        };
        for r in store.offsets().txn_commit(&commit) {
            r?;
        }
        txns.end_txn(id, p, t % 10 != 9, TxnVersion::TV0)?;
        if t % 1000 == 999 {
            cleaned += store.run_maintenance().cleaned_logs;
        }
    }
    let elapsed = started.elapsed();
    cleaned += store.run_maintenance().cleaned_logs;
    let mut appended = 0;
    for (topic, parts) in [("__transaction_state", 50), ("__consumer_offsets", 50)] {
        for p in 0..parts {
            appended += store.partition(topic, p)?.stats().appended_bytes;
        }
    }
    let txn_state = dir_bytes(dir.path(), "__transaction_state-");
    let offsets = dir_bytes(dir.path(), "__consumer_offsets-");
    println!(
        "{n} transactions in {:.1} s ({:.0}/s), {cleaned} cleans: {appended} bytes appended to the internal topics; \
         on disk after compaction: __transaction_state {txn_state} bytes, __consumer_offsets {offsets} bytes \
         ({:.1} bytes per transaction)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        (txn_state + offsets) as f64 / n as f64
    );
    store.close()?;
    Ok(())
}
