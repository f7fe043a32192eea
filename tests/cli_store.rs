//! The `eoslog` commands over a store directory do what `kafka-transactions.sh` and
//! `kafka-dump-log --transaction-log-decoder/--offsets-decoder` do: they list and describe
//! transactional ids as the coordinator knows them, find a transaction left open at a
//! partition that no coordinator will end and abort it there, show a group's committed
//! and pending offsets, and decode the internal topics' records field by field.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use eoslog::{
    AppendOrigin, AppendOutcome, BatchBuilder, NewRecord, OffsetCommit, PartitionOffset, ProduceContext,
    ProducerEpoch, ProducerId, Sequence, Store, StoreConfig, TopicPartition, TxnOffsetCommit, TxnVersion,
};
use serde_json::Value;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eoslog"))
        .args(args)
        .output()
        .unwrap()
}

fn json_lines(o: &Output) -> Vec<Value> {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn config() -> StoreConfig {
    let mut c = StoreConfig::default();
    c.set("transaction.state.log.num.partitions", "3").unwrap();
    c.set("offsets.topic.num.partitions", "3").unwrap();
    c
}

fn txn_batch(pid: ProducerId, epoch: ProducerEpoch, seq: i32, value: &str) -> Vec<u8> {
    BatchBuilder::transactional(pid, epoch, Sequence(seq))
        .build(&[NewRecord::value(eoslog_now(), value.as_bytes())])
        .unwrap()
}

fn eoslog_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A store with: "done" committed (with offsets of group "grp"), "open" ongoing on out-0
/// (with pending offsets), and a hanging transaction of producer 9999 at out-1 that no
/// coordinator knows.
fn build(dir: &Path) {
    let store = Store::open(dir, config()).unwrap();
    store.create_topic("out", 2, &[]).unwrap();
    let txns = store.transactions();
    let ctx = |id| ProduceContext {
        transactional_id: Some(id),
        ..Default::default()
    };
    let out0 = TopicPartition::new("out", 0);
    let offsets = |p: eoslog::ProducerIdAndEpoch, id, offset| TxnOffsetCommit {
        transactional_id: id,
        producer: p,
        tv: TxnVersion::TV0,
        commit: OffsetCommit {
            group_id: "grp",
            generation_id: -1,
            member_id: "",
            group_instance_id: None,
            retention_ms: None,
            offsets: vec![PartitionOffset {
                partition: out0.clone(),
                offset,
                leader_epoch: -1,
                metadata: Some("m"),
            }],
        },
    };
    for (id, commit) in [("done", true), ("open", false)] {
        let p = txns.init_producer_id(Some(id), 60_000, None).unwrap();
        txns.add_partitions(id, p, std::slice::from_ref(&out0), TxnVersion::TV0)
            .unwrap();
        txns.add_offsets(id, p, "grp", TxnVersion::TV0).unwrap();
        let b = txn_batch(p.producer_id, p.producer_epoch, 0, id);
        assert!(matches!(
            store.produce("out", 0, &b, &ctx(id)).unwrap(),
            AppendOutcome::Appended(_)
        ));
        for r in store
            .offsets()
            .txn_commit(&offsets(p, id, if commit { 5 } else { 6 }))
        {
            r.unwrap();
        }
        if commit {
            txns.end_txn(id, p, true, TxnVersion::TV0).unwrap();
        }
    }
    let out1 = store.partition_dir("out", 1);
    store.close().unwrap();
    // A transaction a broker without KIP-890's checks let in: the store's own logs refuse
    // it, so it is written with the log alone.
    let log = eoslog::Log::open(&out1, eoslog::LogConfig::default()).unwrap();
    let stray = txn_batch(ProducerId(9999), ProducerEpoch(0), 0, "stray");
    assert!(matches!(
        log.append(&stray, AppendOrigin::Client).unwrap(),
        AppendOutcome::Appended(_)
    ));
    log.close().unwrap();
}

#[test]
fn transactions_list_and_describe_show_the_coordinators_state() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();
    let list = json_lines(&run(&["transactions", "--store", d, "--json", "list"]));
    let states: Vec<(&str, &str)> = list
        .iter()
        .map(|v| {
            (
                v["transactional_id"].as_str().unwrap(),
                v["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(states, vec![("done", "CompleteCommit"), ("open", "Ongoing")]);
    let only = json_lines(&run(&[
        "transactions",
        "--store",
        d,
        "--json",
        "list",
        "--state",
        "Ongoing",
    ]));
    assert_eq!(only.len(), 1);
    let desc = json_lines(&run(&[
        "transactions",
        "--store",
        d,
        "--json",
        "describe",
        "--transactional-id",
        "open",
    ]));
    assert_eq!(desc[0]["state"], "Ongoing");
    let parts: Vec<&str> = desc[0]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        parts.contains(&"out-0") && parts.iter().any(|p| p.starts_with("__consumer_offsets-")),
        "{parts:?}"
    );
    let missing = run(&[
        "transactions",
        "--store",
        d,
        "describe",
        "--transactional-id",
        "nobody",
    ]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn find_hanging_names_the_stray_transaction_and_abort_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();
    let hanging = json_lines(&run(&[
        "transactions",
        "--store",
        d,
        "--json",
        "find-hanging",
        "--topic",
        "out",
    ]));
    assert_eq!(hanging.len(), 1, "{hanging:?}");
    assert_eq!(
        (
            hanging[0]["partition"].as_i64(),
            hanging[0]["producer_id"].as_i64()
        ),
        (Some(1), Some(9999))
    );
    let start = hanging[0]["start_offset"].as_i64().unwrap().to_string();
    let aborted = json_lines(&run(&[
        "transactions",
        "--store",
        d,
        "abort",
        "--topic",
        "out",
        "--partition",
        "1",
        "--start-offset",
        &start,
    ]));
    assert_eq!(aborted[0]["status"], "aborted");
    let after = json_lines(&run(&["transactions", "--store", d, "--json", "find-hanging"]));
    assert!(after.is_empty(), "{after:?}");
}

#[test]
fn groups_offsets_shows_committed_and_pending() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();
    let lines = json_lines(&run(&[
        "groups", "--store", d, "--json", "offsets", "--group", "grp",
    ]));
    assert_eq!(lines[0]["offset"], 5, "{lines:?}");
    assert_eq!(lines[0]["metadata"], "m");
    assert!(lines[1]["pending_producer_id"].is_i64(), "{lines:?}");
    assert_eq!(lines[1]["partitions"][0], "out-0");
}

/// Stores group `live`: Stable at generation 4 with member `m-1` (client `c`, a 3-byte
/// assignment), as a broker that stopped with the group running leaves it.
fn store_live_group(dir: &Path) {
    let store = Store::open(dir, config()).unwrap();
    let member = eoslog::GroupMemberMetadata {
        member_id: "m-1".into(),
        client_id: "c".into(),
        assignment: vec![1, 2, 3],
        ..Default::default()
    };
    let value = eoslog::GroupMetadataValue {
        protocol_type: "consumer".into(),
        generation: 4,
        protocol: Some("range".into()),
        leader: Some("m-1".into()),
        current_state_timestamp: 0,
        members: vec![member],
    };
    store.offsets().store_group("live", Some(&value)).unwrap();
    store.close().unwrap();
}

#[test]
fn groups_list_shows_stored_groups_and_groups_known_by_offsets() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    store_live_group(dir.path());
    let lines = json_lines(&run(&[
        "groups",
        "--store",
        dir.path().to_str().unwrap(),
        "--json",
        "list",
    ]));
    let by_name = |n: &str| {
        lines
            .iter()
            .find(|l| l["group"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n}: {lines:?}"))
    };
    let live = by_name("live");
    assert_eq!(
        (live["state"].as_str(), live["generation"].as_i64()),
        (Some("Stable"), Some(4))
    );
    assert_eq!(live["members"][0]["member_id"], "m-1");
    assert_eq!(live["members"][0]["assignment_bytes"], 3);
    let grp = by_name("grp");
    assert_eq!(grp["state"], "Empty", "a group known only by its offsets: {grp}");
    assert!(grp["generation"].is_null());
}

#[test]
fn dump_decodes_the_internal_topics() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let store = Store::open(dir.path(), config()).unwrap();
    let txn_dir = store.partition_dir("__transaction_state", store.transactions().partition_for("done"));
    let offsets_dir = store.partition_dir("__consumer_offsets", store.offsets().partition_for("grp"));
    store.close().unwrap();
    let batches = json_lines(&run(&[
        "dump",
        txn_dir.to_str().unwrap(),
        "--json",
        "--decode",
        "transaction-log",
    ]));
    let states: Vec<&str> = batches
        .iter()
        .flat_map(|b| b["records"].as_array().unwrap().iter())
        .filter(|r| r["key"]["transactional_id"] == "done")
        .map(|r| r["value"]["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        vec!["Empty", "Ongoing", "Ongoing", "PrepareCommit", "CompleteCommit"]
    );
    let batches = json_lines(&run(&[
        "dump",
        offsets_dir.to_str().unwrap(),
        "--json",
        "--decode",
        "offsets",
    ]));
    let offsets: Vec<i64> = batches
        .iter()
        .filter(|b| b["is_control"] == false)
        .flat_map(|b| b["records"].as_array().unwrap().iter())
        .map(|r| {
            assert_eq!(r["key"]["type"], "offset_commit");
            assert_eq!(r["key"]["group"], "grp");
            r["value"]["offset"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(offsets, vec![5, 6]);
    // Text output carries the decoded key and payload too.
    let text = run(&["dump", offsets_dir.to_str().unwrap(), "--decode", "offsets"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("\"group\":\"grp\""));
}

#[test]
fn groups_delete_offsets_then_delete_removes_what_kafka_would() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();
    // A stored group with a member is refused, as DeleteGroups refuses a live group.
    store_live_group(dir.path());
    let refused = run(&[
        "groups", "--store", d, "--json", "delete", "--group", "live", "--group", "nobody",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    let lines: Vec<Value> = String::from_utf8(refused.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        (lines[0]["error"].as_str(), lines[1]["error"].as_str()),
        (Some("NON_EMPTY_GROUP"), Some("GROUP_ID_NOT_FOUND")),
        "{lines:?}"
    );
    let bad = run(&[
        "groups",
        "--store",
        d,
        "delete-offsets",
        "--group",
        "grp",
        "--topic",
        "out:7",
    ]);
    assert_eq!(bad.status.code(), Some(2), "no partition 7");

    // out-1 has no offset of grp: deleting it answers success and changes nothing.
    let deleted = json_lines(&run(&[
        "groups",
        "--store",
        d,
        "--json",
        "delete-offsets",
        "--group",
        "grp",
        "--topic",
        "out:1",
    ]));
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0]["error"].is_null(), "{deleted:?}");
    let left = json_lines(&run(&[
        "groups", "--store", d, "--json", "offsets", "--group", "grp",
    ]));
    assert_eq!(left[0]["offset"], 5, "{left:?}");
    let gone = json_lines(&run(&[
        "groups", "--store", d, "--json", "delete", "--group", "grp",
    ]));
    assert_eq!(gone[0]["deleted"], true, "{gone:?}");
    let listed = json_lines(&run(&["groups", "--store", d, "--json", "list"]));
    assert!(listed.iter().all(|l| l["group"] != "grp"), "{listed:?}");
    let left = json_lines(&run(&[
        "groups", "--store", d, "--json", "offsets", "--group", "grp",
    ]));
    assert!(
        left.is_empty(),
        "committed and pending offsets are gone: {left:?}"
    );
}
