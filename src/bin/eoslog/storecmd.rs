//! Commands over a store directory, what `kafka-transactions.sh` and
//! `kafka-consumer-groups.sh --describe --offsets` do: list, describe, find-hanging and
//! abort transactions; show a group's offsets.
//!
//! Each opens the store (which recovers logs, completes transactions decided before a crash
//! and aborts ones that outlived their timeout, as any open does) and closes it cleanly.

use std::path::Path;

use eoslog::{
    ListFilter, ProducerId, Store, StoreConfig, StoreError, TopicPartition, TransactionDescription, TxnState,
};
use serde_json::{json, Value};

use crate::{chain, Failure, Out};

/// Opens the store with `pairs` set; internal topic partition counts default to the ones
/// the store was created with.
fn open(dir: &Path, pairs: &[String]) -> Result<Store, Failure> {
    if !dir.join(eoslog::STORE_FILE).exists() {
        return Err(Failure::failed(format!(
            "{} is not a store directory",
            dir.display()
        )));
    }
    let mut config = StoreConfig::default();
    for p in pairs {
        config.set_pair(p).map_err(|e| Failure::usage(e.to_string()))?;
    }
    loop {
        match Store::open(dir, config.clone()) {
            Ok(s) => return Ok(s),
            Err(StoreError::PartitionCountChanged { topic, stored, .. }) => {
                let key = if topic == eoslog::TRANSACTION_STATE_TOPIC {
                    "transaction.state.log.num.partitions"
                } else {
                    "offsets.topic.num.partitions"
                };
                config
                    .set(key, &stored.to_string())
                    .map_err(|e| Failure::usage(e.to_string()))?;
            }
            Err(e) => {
                return Err(Failure::failed(format!(
                    "cannot open store {}: {}",
                    dir.display(),
                    chain(&e)
                )))
            }
        }
    }
}

/// Runs `f` on the open store, then closes it (reporting a close failure too).
fn with_store(
    dir: &Path,
    pairs: &[String],
    f: impl FnOnce(&Store) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let store = open(dir, pairs)?;
    let result = f(&store);
    let closed = store
        .close()
        .map_err(|e| Failure::failed(format!("closing the store: {}", chain(&e))));
    result.and(closed)
}

fn parts(list: &[TopicPartition]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

fn describe_json(d: &TransactionDescription) -> Value {
    json!({
        "transactional_id": d.transactional_id,
        "state": d.state.name(),
        "producer_id": d.producer_id.0,
        "producer_epoch": d.producer_epoch,
        "timeout_ms": d.timeout_ms,
        "start_ms": d.start_ms,
        "last_update_ms": d.last_update_ms,
        "partitions": parts(&d.partitions),
        "coordinator_partition": d.coordinator_partition,
    })
}

/// `transactions list`.
pub fn list(
    dir: &Path,
    pairs: &[String],
    states: &[String],
    producer_ids: &[i64],
    min_duration_ms: Option<i64>,
    as_json: bool,
    out: &mut Out,
) -> Result<(), Failure> {
    let states = states
        .iter()
        .map(|s| TxnState::from_name(s).ok_or_else(|| Failure::usage(format!("unknown state {s}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let filter = ListFilter {
        states,
        producer_ids: producer_ids.iter().map(|p| ProducerId(*p)).collect(),
        min_duration_ms,
    };
    with_store(dir, pairs, |store| {
        for t in store.transactions().list(&filter) {
            if as_json {
                out.json(&json!({
                    "transactional_id": t.transactional_id,
                    "producer_id": t.producer_id.0,
                    "state": t.state.name(),
                }))?;
            } else {
                out.line(&format!(
                    "{}\t{}\t{}",
                    t.transactional_id, t.producer_id.0, t.state
                ))?;
            }
        }
        Ok(())
    })
}

/// `transactions describe`.
pub fn describe(dir: &Path, pairs: &[String], id: &str, as_json: bool, out: &mut Out) -> Result<(), Failure> {
    with_store(dir, pairs, |store| {
        let d = store
            .transactions()
            .describe(id)
            .map_err(|e| Failure::failed(format!("{id}: {e}")))?;
        if as_json {
            return out.json(&describe_json(&d));
        }
        out.line(&format!(
            "transactionalId: {} state: {} producerId: {} producerEpoch: {} timeoutMs: {} startMs: {} lastUpdateMs: {} partitions: [{}] coordinatorPartition: {}",
            d.transactional_id,
            d.state,
            d.producer_id.0,
            d.producer_epoch,
            d.timeout_ms,
            d.start_ms,
            d.last_update_ms,
            parts(&d.partitions).join(","),
            d.coordinator_partition
        ))
    })
}

/// The partitions a command names: one, every partition of a topic, or all.
fn selected(
    store: &Store,
    topic: Option<&str>,
    partition: Option<i32>,
) -> Result<Option<Vec<TopicPartition>>, Failure> {
    match (topic, partition) {
        (None, None) => Ok(None),
        (Some(t), Some(p)) => Ok(Some(vec![TopicPartition::new(t, p)])),
        (Some(t), None) => {
            let all: Vec<_> = store
                .all_partitions(false)
                .into_iter()
                .filter(|tp| &*tp.topic == t)
                .collect();
            if all.is_empty() {
                return Err(Failure::failed(format!("unknown topic {t}")));
            }
            Ok(Some(all))
        }
        (None, Some(_)) => Err(Failure::usage("--partition needs --topic")),
    }
}

/// `transactions find-hanging`.
pub fn find_hanging(
    dir: &Path,
    pairs: &[String],
    topic: Option<&str>,
    partition: Option<i32>,
    as_json: bool,
    out: &mut Out,
) -> Result<(), Failure> {
    with_store(dir, pairs, |store| {
        let which = selected(store, topic, partition)?;
        let hanging = store
            .transactions()
            .find_hanging(which.as_deref())
            .map_err(|e| Failure::failed(chain(&e)))?;
        for h in hanging {
            let t = &h.transaction;
            if as_json {
                out.json(&json!({
                    "topic": &*h.partition.topic,
                    "partition": h.partition.partition,
                    "producer_id": t.producer_id.0,
                    "producer_epoch": t.producer_epoch.0,
                    "start_offset": t.first_offset.0,
                    "last_timestamp": t.last_timestamp,
                    "age_ms": t.age_ms,
                    "reason": h.reason,
                }))?;
            } else {
                out.line(&format!(
                    "{}\tproducerId: {} producerEpoch: {} startOffset: {} ageMs: {} ({})",
                    h.partition, t.producer_id.0, t.producer_epoch.0, t.first_offset.0, t.age_ms, h.reason
                ))?;
            }
        }
        Ok(())
    })
}

/// `transactions abort`: aborts the open transaction at one partition that began at
/// `start_offset` (or is `producer_id`'s), at the producer's own epoch.
pub fn abort(
    dir: &Path,
    pairs: &[String],
    tp: &TopicPartition,
    start_offset: Option<i64>,
    producer_id: Option<i64>,
    out: &mut Out,
) -> Result<(), Failure> {
    with_store(dir, pairs, |store| {
        let log = store
            .partition(&tp.topic, tp.partition)
            .map_err(|e| Failure::failed(chain(&e)))?;
        let open = log.open_transactions();
        let found = open.iter().find(|t| {
            start_offset.is_none_or(|o| t.first_offset.0 == o)
                && producer_id.is_none_or(|p| t.producer_id.0 == p)
        });
        let Some(t) = found else {
            return Err(Failure::failed(format!("{tp}: no such open transaction")));
        };
        match log.abort_transaction(t.producer_id, t.first_offset) {
            Ok(Some(outcome)) => {
                let info = outcome.info();
                out.json(&json!({
                    "status": if info.is_some() { "aborted" } else { "refused" },
                    "producer_id": t.producer_id.0,
                    "start_offset": t.first_offset.0,
                    "marker_offset": info.map(|i| i.first_offset.0),
                }))
            }
            Ok(None) => out.json(&json!({"status": "already_ended", "producer_id": t.producer_id.0})),
            Err(e) => Err(Failure::failed(chain(&e))),
        }
    })
}

/// `groups offsets`: a group's committed offsets and the producers holding pending ones.
pub fn group_offsets(
    dir: &Path,
    pairs: &[String],
    group: &str,
    as_json: bool,
    out: &mut Out,
) -> Result<(), Failure> {
    with_store(dir, pairs, |store| {
        let offsets = store.offsets();
        let committed = offsets
            .fetch(group, None, false)
            .map_err(|e| Failure::failed(e.to_string()))?;
        for (tp, answer) in committed {
            let Ok(Some(c)) = answer else { continue };
            if as_json {
                out.json(&json!({
                    "group": group,
                    "topic": &*tp.topic,
                    "partition": tp.partition,
                    "offset": c.offset,
                    "leader_epoch": c.leader_epoch,
                    "metadata": c.metadata,
                    "commit_timestamp": c.commit_timestamp,
                }))?;
            } else {
                out.line(&format!(
                    "{tp}\toffset: {} leaderEpoch: {} metadata: {:?}",
                    c.offset, c.leader_epoch, c.metadata
                ))?;
            }
        }
        for (pid, tps) in offsets
            .pending(group)
            .map_err(|e| Failure::failed(e.to_string()))?
        {
            if as_json {
                out.json(&json!({"group": group, "pending_producer_id": pid.0, "partitions": parts(&tps)}))?;
            } else {
                out.line(&format!(
                    "pending producerId: {} partitions: [{}]",
                    pid.0,
                    parts(&tps).join(",")
                ))?;
            }
        }
        Ok(())
    })
}

/// `groups list`: every group, with its last stored metadata (`Empty` with no record: a
/// group known only by its offsets).
pub fn group_list(dir: &Path, pairs: &[String], as_json: bool, out: &mut Out) -> Result<(), Failure> {
    with_store(dir, pairs, |store| {
        let offsets = store.offsets();
        let stored: std::collections::HashMap<String, eoslog::GroupMetadataValue> =
            offsets.stored_groups().into_iter().collect();
        for group in offsets.groups() {
            let meta = stored.get(&group);
            let state = match meta {
                Some(m) if !m.members.is_empty() => "Stable",
                _ => "Empty",
            };
            if as_json {
                out.json(&json!({
                    "group": group,
                    "state": state,
                    "generation": meta.map(|m| m.generation),
                    "protocol_type": meta.map(|m| m.protocol_type.as_str()),
                    "protocol": meta.and_then(|m| m.protocol.as_deref()),
                    "leader": meta.and_then(|m| m.leader.as_deref()),
                    "members": meta.map_or(Vec::new(), |m| m.members.iter().map(crate::dump::member_json).collect()),
                }))?;
            } else {
                let detail = meta.map_or(String::new(), |m| {
                    format!(
                        " generation: {} protocol: {} members: {}",
                        m.generation,
                        m.protocol.as_deref().unwrap_or("-"),
                        m.members.len()
                    )
                });
                out.line(&format!("{group}\tstate: {state}{detail}"))?;
            }
        }
        Ok(())
    })
}

/// `groups delete`: DeleteGroups of each group, in order; one line per group with its
/// outcome (Kafka's error name). Exits 1 if any was refused.
pub fn group_delete(
    dir: &Path,
    pairs: &[String],
    groups: &[String],
    as_json: bool,
    out: &mut Out,
) -> Result<(), Failure> {
    with_store(dir, pairs, |store| {
        let mut refused = false;
        for group in groups {
            let error = store.offsets().delete_group(group).err();
            refused |= error.is_some();
            let name = error.as_ref().map(|e| e.kafka_error().name());
            if as_json {
                out.json(&json!({"group": group, "deleted": error.is_none(), "error": name}))?;
            } else {
                match &error {
                    None => out.line(&format!("{group}\tdeleted"))?,
                    Some(e) => out.line(&format!("{group}\t{}: {e}", e.kafka_error().name()))?,
                }
            }
        }
        if refused {
            Err(Failure::silent(1))
        } else {
            Ok(())
        }
    })
}

/// `groups delete-offsets`: OffsetDelete of a group's offsets of the given topics (`T` for
/// every partition, `T:0,1` for some); one line per partition with its outcome.
pub fn group_delete_offsets(
    dir: &Path,
    pairs: &[String],
    group: &str,
    topics: &[String],
    as_json: bool,
    out: &mut Out,
) -> Result<(), Failure> {
    with_store(dir, pairs, |store| {
        let known = store.topics();
        let mut asked = Vec::new();
        for spec in topics {
            let (topic, list) = match spec.split_once(':') {
                Some((t, ps)) => (t, Some(ps)),
                None => (spec.as_str(), None),
            };
            let Some(info) = known.iter().find(|t| t.name == topic) else {
                return Err(Failure::usage(format!("no topic {topic:?} in the store")));
            };
            match list {
                None => asked.extend((0..info.partitions as i32).map(|p| TopicPartition::new(topic, p))),
                Some(ps) => {
                    for p in ps.split(',') {
                        let p: i32 = p
                            .trim()
                            .parse()
                            .map_err(|_| Failure::usage(format!("bad partition {p:?} in {spec:?}")))?;
                        if p < 0 || p >= info.partitions as i32 {
                            return Err(Failure::usage(format!(
                                "{topic} has {} partitions: no partition {p}",
                                info.partitions
                            )));
                        }
                        asked.push(TopicPartition::new(topic, p));
                    }
                }
            }
        }
        let answers = store
            .offsets()
            .delete_offsets(group, &asked)
            .map_err(|e| Failure::failed(format!("{}: {e}", e.kafka_error().name())))?;
        let mut refused = false;
        for (tp, answer) in asked.iter().zip(answers) {
            let name = answer.as_ref().err().map(|e| e.kafka_error().name());
            refused |= name.is_some();
            if as_json {
                out.json(
                    &json!({"group": group, "topic": &*tp.topic, "partition": tp.partition, "error": name}),
                )?;
            } else {
                out.line(&format!("{tp}\t{}", name.unwrap_or("deleted")))?;
            }
        }
        if refused {
            Err(Failure::silent(1))
        } else {
            Ok(())
        }
    })
}
