//! Records of the `__transaction_state` topic, byte for byte Kafka's
//! (`TransactionLogKey` v0 and `TransactionLogValue` v0/v1), so Kafka's own decoders read
//! what eoslog writes. See `docs/FORMAT.md` §7.1.
//!
//! ```text
//! key   : version i16 = 0 | transactional_id string
//! value : version i16 (0, or 1 = flexible) | producer_id i64 | producer_epoch i16
//!         | timeout_ms i32 | state i8 | partitions (null iff Empty) | last_update_ms i64
//!         | start_ms i64 | v1: tagged fields {0: previous pid, 1: next pid, 2: client TV}
//! ```

use std::collections::BTreeSet;

use crate::codec::Reader;

use super::wire::{KafkaRead, Out};
use super::{TopicPartition, TxnState};

/// The one key version of transaction records.
pub(crate) const KEY_VERSION: i16 = 0;

/// One record value: a transactional id's state as the coordinator persists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxnLogValue {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// Empty for `Empty` (written as null) and the Complete states (an empty array).
    pub partitions: BTreeSet<TopicPartition>,
    pub last_update_ms: i64,
    /// -1 when no transaction started (Empty).
    pub start_ms: i64,
    /// Tag 0 (v1): the producer id before an epoch-exhaustion rotation, -1 if none.
    pub previous_producer_id: i64,
    /// Tag 1 (v1): the producer id a TV2 commit or abort at an exhausted epoch moves to.
    pub next_producer_id: i64,
    /// Tag 2 (v1): the transaction version of the client's last request.
    pub client_tv: i16,
}

/// What a key turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TxnKey {
    Id(String),
    /// A key version this coordinator does not know: the record is skipped (Kafka's
    /// `testReadTxnRecordKeyCanReadUnknownMessage`).
    Unknown(i16),
}

pub(crate) fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut o = Out::default();
    o.i16(KEY_VERSION).string(transactional_id);
    o.buf
}

/// `None` for bytes that are not a key at all (damage).
pub(crate) fn decode_key(bytes: &[u8]) -> Option<TxnKey> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    if version != KEY_VERSION {
        return Some(TxnKey::Unknown(version));
    }
    let id = r.string()?;
    Some(TxnKey::Id(id))
}

/// Why a value could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ValueError {
    /// Kafka's `shouldThrowExceptionWriteInvalidTxn`: an Empty state with partitions.
    EmptyWithPartitions,
    /// A state that is never persisted (Dead, PrepareEpochFence) or unknown.
    State(i8),
    /// A value version this coordinator cannot read.
    Version(i16),
    /// Truncated or inconsistent bytes.
    Malformed,
}

/// Groups partitions by topic (topics and partitions ascending).
fn by_topic(partitions: &BTreeSet<TopicPartition>) -> Vec<(&str, Vec<i32>)> {
    let mut out: Vec<(&str, Vec<i32>)> = Vec::new();
    for tp in partitions {
        match out.last_mut() {
            Some((t, ps)) if *t == &*tp.topic => ps.push(tp.partition),
            _ => out.push((&tp.topic, vec![tp.partition])),
        }
    }
    out
}

/// Encodes a value at `version` (0 when the server's transaction version is 0, else 1).
pub(crate) fn encode_value(v: &TxnLogValue, version: i16) -> Result<Vec<u8>, ValueError> {
    if v.state == TxnState::Empty && !v.partitions.is_empty() {
        return Err(ValueError::EmptyWithPartitions);
    }
    if !v.state.is_persisted() {
        return Err(ValueError::State(v.state as i8));
    }
    let flexible = version >= 1;
    let mut o = Out::default();
    o.i16(version)
        .i64(v.producer_id)
        .i16(v.producer_epoch)
        .i32(v.timeout_ms)
        .i8(v.state as i8);
    let topics = by_topic(&v.partitions);
    match (v.state == TxnState::Empty, flexible) {
        (true, false) => {
            o.i32(-1);
        }
        (true, true) => {
            o.uvarint(0);
        }
        (false, false) => {
            o.i32(topics.len() as i32);
            for (topic, ps) in &topics {
                o.string(topic).i32(ps.len() as i32);
                for p in ps {
                    o.i32(*p);
                }
            }
        }
        (false, true) => {
            o.uvarint(topics.len() as u64 + 1);
            for (topic, ps) in &topics {
                o.compact_string(topic).uvarint(ps.len() as u64 + 1);
                for p in ps {
                    o.i32(*p);
                }
                o.uvarint(0); // the element's tagged fields
            }
        }
    }
    o.i64(v.last_update_ms).i64(v.start_ms);
    if flexible {
        let mut tags: Vec<(u64, Vec<u8>)> = Vec::new();
        if v.previous_producer_id != -1 {
            tags.push((0, v.previous_producer_id.to_be_bytes().to_vec()));
        }
        if v.next_producer_id != -1 {
            tags.push((1, v.next_producer_id.to_be_bytes().to_vec()));
        }
        if v.client_tv != 0 {
            tags.push((2, v.client_tv.to_be_bytes().to_vec()));
        }
        o.uvarint(tags.len() as u64);
        for (tag, payload) in tags {
            o.uvarint(tag).uvarint(payload.len() as u64);
            o.buf.extend_from_slice(&payload);
        }
    }
    Ok(o.buf)
}

/// Decodes a value of version 0 or 1; unknown tagged fields are skipped.
pub(crate) fn decode_value(bytes: &[u8]) -> Result<TxnLogValue, ValueError> {
    let mut r = Reader::new(bytes);
    let m = ValueError::Malformed;
    let version = r.i16().ok_or(m.clone())?;
    if !(0..=1).contains(&version) {
        return Err(ValueError::Version(version));
    }
    let flexible = version == 1;
    let producer_id = r.i64().ok_or(m.clone())?;
    let producer_epoch = r.i16().ok_or(m.clone())?;
    let timeout_ms = r.i32().ok_or(m.clone())?;
    let state_id = r.i8().ok_or(m.clone())?;
    let state = TxnState::from_id(state_id)
        .filter(|s| s.is_persisted())
        .ok_or(ValueError::State(state_id))?;
    let mut partitions = BTreeSet::new();
    let topics: i64 = if flexible {
        r.uvarint().ok_or(m.clone())? as i64 - 1
    } else {
        i64::from(r.i32().ok_or(m.clone())?)
    };
    for _ in 0..topics.max(0) {
        let topic = if flexible { r.compact_string() } else { r.string() }.ok_or(m.clone())?;
        let n: i64 = if flexible {
            r.uvarint().ok_or(m.clone())? as i64 - 1
        } else {
            i64::from(r.i32().ok_or(m.clone())?)
        };
        if n < 0 || n as u64 > r.remaining() as u64 / 4 {
            return Err(m);
        }
        let topic: std::sync::Arc<str> = topic.into();
        for _ in 0..n {
            let partition = r.i32().ok_or(m.clone())?;
            partitions.insert(TopicPartition {
                topic: topic.clone(),
                partition,
            });
        }
        if flexible {
            r.tagged().ok_or(m.clone())?;
        }
    }
    let last_update_ms = r.i64().ok_or(m.clone())?;
    let start_ms = r.i64().ok_or(m.clone())?;
    let mut v = TxnLogValue {
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        // Kafka ignores partitions stored with an Empty state.
        partitions: if state == TxnState::Empty {
            BTreeSet::new()
        } else {
            partitions
        },
        last_update_ms,
        start_ms,
        previous_producer_id: -1,
        next_producer_id: -1,
        client_tv: 0,
    };
    if flexible {
        for (tag, payload) in r.tagged().ok_or(m.clone())? {
            let mut p = Reader::new(&payload);
            match tag {
                0 => v.previous_producer_id = p.i64().ok_or(m.clone())?,
                1 => v.next_producer_id = p.i64().ok_or(m.clone())?,
                2 => v.client_tv = p.i16().ok_or(m.clone())?,
                _ => {} // a newer coordinator's field
            }
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    fn value(state: TxnState, epoch: i16, parts: &[(&str, i32)]) -> TxnLogValue {
        TxnLogValue {
            producer_id: 1000,
            producer_epoch: epoch,
            timeout_ms: 60_000,
            state,
            partitions: parts.iter().map(|&(t, p)| tp(t, p)).collect(),
            last_update_ms: 1_700_000_000_000,
            start_ms: if state == TxnState::Empty {
                -1
            } else {
                1_699_999_990_000
            },
            previous_producer_id: -1,
            next_producer_id: -1,
            client_tv: 0,
        }
    }

    #[test]
    fn key_bytes_are_kafkas() {
        assert_eq!(hex(&encode_key("my-txn")), "000000066d792d74786e");
        assert_eq!(
            decode_key(&encode_key("my-txn")),
            Some(TxnKey::Id("my-txn".into()))
        );
        assert_eq!(decode_key(&[0x7f, 0xff, 0, 0]), Some(TxnKey::Unknown(32767)));
        assert_eq!(decode_key(&[0x00]), None);
    }

    #[test]
    fn v0_values_are_kafkas() {
        let ongoing = value(TxnState::Ongoing, 5, &[("foo", 0), ("foo", 1)]);
        let bytes = encode_value(&ongoing, 0).expect("encode");
        assert_eq!(
            hex(&bytes),
            "000000000000000003e8000500 00ea6001000000010003666f6f000000020000000000000001\
             0000018bcfe568000000018bcfe540f0"
                .replace(' ', "")
        );
        assert_eq!(decode_value(&bytes), Ok(ongoing));
        let empty = value(TxnState::Empty, 6, &[]);
        let bytes = encode_value(&empty, 0).expect("encode");
        assert_eq!(
            hex(&bytes),
            "000000000000000003e8000600 00ea6000ffffffff0000018bcfe56800ffffffffffffffff".replace(' ', "")
        );
        assert_eq!(decode_value(&bytes), Ok(empty));
    }

    #[test]
    fn v1_values_are_kafkas() {
        let mut ongoing = value(TxnState::Ongoing, 5, &[("foo", 0), ("foo", 1)]);
        ongoing.client_tv = 2;
        let bytes = encode_value(&ongoing, 1).expect("encode");
        assert_eq!(
            hex(&bytes),
            "000100000000000003e8000500 00ea600102 04666f6f030000000000000001 00\
             0000018bcfe568000000018bcfe540f0 0102020002"
                .replace(' ', "")
        );
        assert_eq!(decode_value(&bytes), Ok(ongoing));
        let mut empty = value(TxnState::Empty, 6, &[]);
        empty.previous_producer_id = 999;
        empty.client_tv = 2;
        let bytes = encode_value(&empty, 1).expect("encode");
        assert_eq!(
            hex(&bytes),
            "000100000000000003e8000600 00ea600000 0000018bcfe56800ffffffffffffffff\
             02 0008 00000000000003e7 02 02 0002"
                .replace(' ', "")
        );
        assert_eq!(decode_value(&bytes), Ok(empty));
    }

    #[test]
    fn empty_with_partitions_is_refused_and_unknown_tags_are_skipped() {
        let bad = value(TxnState::Empty, 0, &[("t", 0)]);
        assert_eq!(encode_value(&bad, 1), Err(ValueError::EmptyWithPartitions));
        // A future tag (5) at top level is skipped.
        let v = value(TxnState::CompleteCommit, 3, &[]);
        let mut bytes = encode_value(&v, 1).expect("encode");
        let last = bytes.len() - 1;
        assert_eq!(bytes[last], 0, "no tags written");
        bytes[last] = 1;
        bytes.extend_from_slice(&[5, 2, 0xab, 0xcd]);
        assert_eq!(decode_value(&bytes), Ok(v));
        assert_eq!(decode_value(&[0, 2, 0]), Err(ValueError::Version(2)));
        assert_eq!(decode_value(&[0, 1, 0]), Err(ValueError::Malformed));
    }
}
