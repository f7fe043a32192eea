//! OffsetCommit, OffsetFetch and OffsetDelete over the store's `__consumer_offsets`. The committer's
//! generation and member are checked against the membership the group coordinator
//! ([`crate::groups`]) gives the store; OffsetFetch with `require_stable` (v7) answers
//! `UNSTABLE_OFFSET_COMMIT` for a partition with offsets pending in an open transaction.

use eoslog::{OffsetCommit, PartitionOffset, TopicPartition};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest,
    OffsetFetchResponse,
};

use super::{per_partition, s, topic_name, Asked, Ctx};

pub(crate) async fn offset_commit(ctx: &Ctx, r: OffsetCommitRequest) -> OffsetCommitResponse {
    let version = ctx.version;
    let asked: Asked = r
        .topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let codes = ctx
        .blocking(move |sh| {
            let offsets: Vec<PartitionOffset<'_>> = r
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| PartitionOffset {
                        partition: TopicPartition::new(t.name.0.as_str(), p.partition_index),
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.as_ref().map(|m| m.as_str()),
                    })
                })
                .collect();
            let req = OffsetCommit {
                group_id: r.group_id.0.as_str(),
                generation_id: r.generation_id_or_member_epoch,
                member_id: r.member_id.as_str(),
                group_instance_id: r.group_instance_id.as_ref().map(|i| i.as_str()),
                // v2-v4 carry a retention time; -1 means the broker's.
                retention_ms: (2..=4)
                    .contains(&version)
                    .then_some(r.retention_time_ms)
                    .filter(|&r| r >= 0),
                offsets,
            };
            sh.store
                .offsets()
                .commit(&req)
                .into_iter()
                .map(|a| a.err().map_or(0, |e| e.kafka_error().code()))
                .collect::<Vec<i16>>()
        })
        .await;
    let mut out = OffsetCommitResponse::default();
    out.topics = per_partition(
        asked,
        codes,
        |name, partitions| {
            let mut t = OffsetCommitResponseTopic::default();
            t.name = name;
            t.partitions = partitions;
            t
        },
        |index, code| {
            let mut pr = OffsetCommitResponsePartition::default();
            pr.partition_index = index;
            pr.error_code = code;
            pr
        },
    );
    out
}

pub(crate) async fn offset_fetch(ctx: &Ctx, r: OffsetFetchRequest) -> OffsetFetchResponse {
    let version = ctx.version;
    let group = r.group_id.0.to_string();
    let asked: Option<Vec<TopicPartition>> = r.topics.as_ref().map(|ts| {
        ts.iter()
            .flat_map(|t| {
                t.partition_indexes
                    .iter()
                    .map(|&p| TopicPartition::new(t.name.0.as_str(), p))
            })
            .collect()
    });
    let require_stable = version >= 7 && r.require_stable;
    let answer = ctx
        .blocking(move |sh| sh.store.offsets().fetch(&group, asked.as_deref(), require_stable))
        .await;
    let mut out = OffsetFetchResponse::default();
    match answer {
        Err(e) => {
            if version >= 2 {
                out.error_code = e.kafka_error().code();
            } else {
                // v1 has no top-level code: each asked partition carries it.
                for t in r.topics.iter().flatten() {
                    let mut rt = OffsetFetchResponseTopic::default();
                    rt.name = t.name.clone();
                    rt.partitions = t
                        .partition_indexes
                        .iter()
                        .map(|&p| {
                            let mut pr = OffsetFetchResponsePartition::default();
                            pr.partition_index = p;
                            pr.committed_offset = -1;
                            pr.metadata = Some(s(""));
                            pr.error_code = e.kafka_error().code();
                            pr
                        })
                        .collect();
                    out.topics.push(rt);
                }
            }
        }
        Ok(fetched) => {
            for (tp, result) in fetched {
                let mut pr = OffsetFetchResponsePartition::default();
                pr.partition_index = tp.partition;
                pr.committed_offset = -1;
                pr.metadata = Some(s(""));
                if version >= 5 {
                    pr.committed_leader_epoch = -1;
                }
                match result {
                    Ok(Some(c)) => {
                        pr.committed_offset = c.offset;
                        if version >= 5 {
                            pr.committed_leader_epoch = c.leader_epoch;
                        }
                        pr.metadata = Some(s(c.metadata));
                    }
                    Ok(None) => {}
                    Err(e) => pr.error_code = e.kafka_error().code(),
                }
                match out.topics.iter_mut().find(|t| t.name.0.as_str() == &*tp.topic) {
                    Some(t) => t.partitions.push(pr),
                    None => {
                        let mut t = OffsetFetchResponseTopic::default();
                        t.name = topic_name(&tp.topic);
                        t.partitions = vec![pr];
                        out.topics.push(t);
                    }
                }
            }
        }
    }
    out
}

/// OffsetDelete (KIP-496): partitions of unknown topics answer `UNKNOWN_TOPIC_OR_PARTITION`;
/// the store deletes the others' offsets as the group allows, or the whole request gets
/// the group's error (`GROUP_ID_NOT_FOUND`, `NON_EMPTY_GROUP`, ...).
pub(crate) async fn offset_delete(ctx: &Ctx, r: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let asked: Asked = r
        .topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let group = r.group_id.0.to_string();
    let flat: Vec<TopicPartition> = asked
        .iter()
        .flat_map(|(t, ps)| ps.iter().map(move |&p| TopicPartition::new(t.as_str(), p)))
        .collect();
    let answer = ctx
        .blocking(move |sh| {
            let exists: Vec<bool> = flat
                .iter()
                .map(|tp| sh.store.has_partition(&tp.topic, tp.partition))
                .collect();
            let known: Vec<TopicPartition> = flat
                .iter()
                .zip(&exists)
                .filter(|(_, e)| **e)
                .map(|(tp, _)| tp.clone())
                .collect();
            let mut deleted = sh
                .store
                .offsets()
                .delete_offsets(&group, &known)?
                .into_iter()
                .peekable();
            Ok::<_, eoslog::CoordinatorError>(
                exists
                    .iter()
                    .map(|&e| match (e, deleted.next_if(|_| e)) {
                        (false, _) => eoslog::KafkaError::UnknownTopicOrPartition.code(),
                        (true, Some(a)) => a.err().map_or(0, |e| e.kafka_error().code()),
                        (true, None) => eoslog::KafkaError::UnknownServerError.code(),
                    })
                    .collect::<Vec<i16>>(),
            )
        })
        .await;
    let mut out = OffsetDeleteResponse::default();
    match answer {
        Err(e) => out.error_code = e.kafka_error().code(),
        Ok(codes) => {
            out.topics = per_partition(
                asked,
                codes,
                |name, partitions| {
                    let mut t = OffsetDeleteResponseTopic::default();
                    t.name = name;
                    t.partitions = partitions;
                    t
                },
                |index, code| {
                    let mut p = OffsetDeleteResponsePartition::default();
                    p.partition_index = index;
                    p.error_code = code;
                    p
                },
            );
        }
    }
    out
}
