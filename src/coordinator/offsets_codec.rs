//! Records of the `__consumer_offsets` topic, byte for byte Kafka's: `OffsetCommitKey`
//! (versions 0 and 1), `OffsetCommitValue` (0 to 4; eoslog writes 3 as Kafka 4.x does),
//! `GroupMetadataKey` (version 2) and `GroupMetadataValue` (0 to 4; eoslog writes 3). See
//! `docs/FORMAT.md` §7.2.
//!
//! ```text
//! offset key   : version i16 = 1 | group string | topic string | partition i32
//! group key    : version i16 = 2 | group string
//! offset value : version i16 = 3 | offset i64 | leader_epoch i32 | metadata string
//!                | commit_timestamp i64
//! group value  : version i16 = 3 | protocol_type string | generation i32
//!                | protocol nullable string | leader nullable string
//!                | current_state_timestamp i64 | members [member_id string
//!                | instance_id nullable string | client_id string | client_host string
//!                | rebalance_timeout i32 | session_timeout i32 | subscription bytes
//!                | assignment bytes]
//! ```

use crate::codec::Reader;

use super::records::{GroupMemberMetadata, GroupMetadataValue};
use super::wire::{KafkaRead, Out};

/// The key version eoslog writes for offset commits (Kafka's `newOffsetCommitRecord`).
pub(crate) const OFFSET_KEY_VERSION: i16 = 1;
/// The value version eoslog writes (Kafka 4.x without an expire timestamp).
pub(crate) const OFFSET_VALUE_VERSION: i16 = 3;

/// A `__consumer_offsets` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OffsetsKey {
    /// Versions 0 and 1: a committed offset.
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    /// Version 2: a group's metadata (membership, written by a group coordinator).
    Group { group: String },
    /// Versions 3 and up (KIP-848 and later record types): skipped.
    Other(i16),
}

pub(crate) fn encode_offset_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut o = Out::default();
    o.i16(OFFSET_KEY_VERSION)
        .string(group)
        .string(topic)
        .i32(partition);
    o.buf
}

/// `None` for bytes that are not a key (damage).
pub(crate) fn decode_key(bytes: &[u8]) -> Option<OffsetsKey> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    Some(match version {
        0 | 1 => OffsetsKey::Offset {
            group: r.string()?,
            topic: r.string()?,
            partition: r.i32()?,
        },
        2 => OffsetsKey::Group { group: r.string()? },
        v => OffsetsKey::Other(v),
    })
}

/// A committed offset as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OffsetValue {
    pub offset: i64,
    /// -1 when the committer did not give one.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
    /// Version 1 only: an explicit expiry.
    pub expire_timestamp: i64,
}

pub(crate) fn encode_offset_value(v: &OffsetValue) -> Vec<u8> {
    let mut o = Out::default();
    if v.expire_timestamp >= 0 {
        // An explicit expire timestamp: version 1, as Kafka writes it.
        o.i16(1)
            .i64(v.offset)
            .string(&v.metadata)
            .i64(v.commit_timestamp)
            .i64(v.expire_timestamp);
        return o.buf;
    }
    o.i16(OFFSET_VALUE_VERSION)
        .i64(v.offset)
        .i32(v.leader_epoch)
        .string(&v.metadata)
        .i64(v.commit_timestamp);
    o.buf
}

/// Decodes versions 0 to 4. `Err(Some(v))` for a newer version, `Err(None)` for damage.
pub(crate) fn decode_offset_value(bytes: &[u8]) -> Result<OffsetValue, Option<i16>> {
    let mut r = Reader::new(bytes);
    let version = r.i16().ok_or(None)?;
    if !(0..=4).contains(&version) {
        return Err(Some(version));
    }
    let offset = r.i64().ok_or(None)?;
    let leader_epoch = if version >= 3 { r.i32().ok_or(None)? } else { -1 };
    let metadata = if version >= 4 {
        r.compact_string()
    } else {
        r.string()
    }
    .ok_or(None)?;
    let commit_timestamp = r.i64().ok_or(None)?;
    let expire_timestamp = if version == 1 { r.i64().ok_or(None)? } else { -1 };
    if version >= 4 {
        r.tagged().ok_or(None)?;
    }
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
        expire_timestamp,
    })
}

/// The key version of a group's metadata record.
pub(crate) const GROUP_KEY_VERSION: i16 = 2;
/// The value version eoslog writes for group metadata (Kafka 4.x writes 3 for classic
/// groups).
pub(crate) const GROUP_VALUE_VERSION: i16 = 3;

pub(crate) fn encode_group_key(group: &str) -> Vec<u8> {
    let mut o = Out::default();
    o.i16(GROUP_KEY_VERSION).string(group);
    o.buf
}

/// `GroupMetadataValue` version 3: every member with its subscription and assignment.
pub fn encode_group_value(v: &GroupMetadataValue) -> Vec<u8> {
    let mut o = Out::default();
    o.i16(GROUP_VALUE_VERSION)
        .string(&v.protocol_type)
        .i32(v.generation)
        .nullable_string(v.protocol.as_deref())
        .nullable_string(v.leader.as_deref())
        .i64(v.current_state_timestamp)
        .i32(i32::try_from(v.members.len()).unwrap_or(i32::MAX));
    for m in &v.members {
        o.string(&m.member_id)
            .nullable_string(m.instance_id.as_deref())
            .string(&m.client_id)
            .string(&m.client_host)
            .i32(m.rebalance_timeout_ms)
            .i32(m.session_timeout_ms)
            .bytes(&m.subscription)
            .bytes(&m.assignment);
    }
    o.buf
}

/// Decodes `GroupMetadataValue` versions 0 to 4. `Err(Some(v))` for a newer version,
/// `Err(None)` for damage.
pub(crate) fn decode_group_value(bytes: &[u8]) -> Result<GroupMetadataValue, Option<i16>> {
    let mut r = Reader::new(bytes);
    let version = r.i16().ok_or(None)?;
    if !(0..=4).contains(&version) {
        return Err(Some(version));
    }
    let flex = version >= 4;
    let string = |r: &mut Reader<'_>| if flex { r.compact_string() } else { r.string() };
    let nullable = |r: &mut Reader<'_>| {
        if flex {
            r.compact_nullable_string()
        } else {
            r.nullable_string()
        }
    };
    let blob = |r: &mut Reader<'_>| -> Option<Vec<u8>> {
        let n = if flex {
            usize::try_from(r.uvarint()?.checked_sub(1)?).ok()?
        } else {
            usize::try_from(r.i32()?).ok()?
        };
        r.bytes(n).map(<[u8]>::to_vec)
    };
    let protocol_type = string(&mut r).ok_or(None)?;
    let generation = r.i32().ok_or(None)?;
    let protocol = nullable(&mut r).ok_or(None)?;
    let leader = nullable(&mut r).ok_or(None)?;
    let current_state_timestamp = if version >= 2 { r.i64().ok_or(None)? } else { -1 };
    let count: i64 = if flex {
        i64::try_from(r.uvarint().ok_or(None)?)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .ok_or(None)?
    } else {
        i64::from(r.i32().ok_or(None)?)
    };
    // Each member takes at least 14 bytes: a count that cannot fit in what is left is
    // damage, refused before anything is reserved for it.
    if count > (r.remaining() / 14) as i64 {
        return Err(None);
    }
    let mut members = Vec::with_capacity(count.max(0) as usize);
    for _ in 0..count.max(0) {
        let member_id = string(&mut r).ok_or(None)?;
        let instance_id = if version >= 3 {
            nullable(&mut r).ok_or(None)?
        } else {
            None
        };
        let client_id = string(&mut r).ok_or(None)?;
        let client_host = string(&mut r).ok_or(None)?;
        let rebalance_timeout_ms = if version >= 1 {
            Some(r.i32().ok_or(None)?)
        } else {
            None
        };
        let session_timeout_ms = r.i32().ok_or(None)?;
        let subscription = blob(&mut r).ok_or(None)?;
        let assignment = blob(&mut r).ok_or(None)?;
        if flex {
            r.tagged().ok_or(None)?;
        }
        members.push(GroupMemberMetadata {
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms: rebalance_timeout_ms.unwrap_or(session_timeout_ms),
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    if flex {
        r.tagged().ok_or(None)?;
    }
    Ok(GroupMetadataValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp,
        members,
    })
}

/// The topics of a consumer's subscription (`ConsumerProtocolSubscription`, a member's
/// metadata in a consumer group): an int16 version, then the topics as an array of strings,
/// in every version (later fields are not needed). `None` when it does not read. The count
/// is checked against the bytes left before anything is reserved.
#[must_use]
pub fn subscription_topics(bytes: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader::new(bytes);
    if r.i16()? < 0 {
        return None;
    }
    let count = usize::try_from(r.i32()?).ok()?;
    // Each topic takes at least its two length bytes.
    if count > r.remaining() / 2 {
        return None;
    }
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        topics.push(r.string()?);
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn offset_records_are_kafkas() {
        let key = encode_offset_key("grp", "in", 3);
        assert_eq!(hex(&key), "00010003677270000269 6e00000003".replace(' ', ""));
        assert_eq!(
            decode_key(&key),
            Some(OffsetsKey::Offset {
                group: "grp".into(),
                topic: "in".into(),
                partition: 3
            })
        );
        assert_eq!(
            decode_key(&[0, 2, 0, 3, b'g', b'r', b'p']),
            Some(OffsetsKey::Group { group: "grp".into() })
        );
        assert_eq!(decode_key(&[0, 5]), Some(OffsetsKey::Other(5)));
        let v = OffsetValue {
            offset: 42,
            leader_epoch: 7,
            metadata: String::new(),
            commit_timestamp: 1_700_000_000_000,
            expire_timestamp: -1,
        };
        let bytes = encode_offset_value(&v);
        assert_eq!(hex(&bytes), "0003000000000000002a0000000700000000018bcfe56800");
        assert_eq!(decode_offset_value(&bytes), Ok(v.clone()));
        // With an explicit expire timestamp: version 1 (no leader epoch), as Kafka writes it.
        let explicit = OffsetValue {
            leader_epoch: -1,
            expire_timestamp: 1_700_000_060_000,
            ..v
        };
        let bytes = encode_offset_value(&explicit);
        assert_eq!(
            hex(&bytes),
            "0001000000000000002a00000000018bcfe568000000018bcfe65260"
        );
        assert_eq!(decode_offset_value(&bytes), Ok(explicit));
        assert_eq!(decode_offset_value(&[0, 9]), Err(Some(9)));
        assert_eq!(decode_offset_value(&[0, 3, 1]), Err(None));
    }

    #[test]
    fn older_offset_values_decode() {
        // Version 1: offset, metadata, commit timestamp, expire timestamp.
        let mut o = Out::default();
        o.i16(1).i64(5).string("m").i64(10).i64(20);
        let v = decode_offset_value(&o.buf).expect("v1");
        assert_eq!(
            (v.offset, v.leader_epoch, v.metadata.as_str(), v.expire_timestamp),
            (5, -1, "m", 20)
        );
        // Version 4: compact metadata and a tagged section.
        let mut o = Out::default();
        o.i16(4).i64(6).i32(2).compact_string("x").i64(11).uvarint(0);
        let v = decode_offset_value(&o.buf).expect("v4");
        assert_eq!((v.offset, v.leader_epoch, v.metadata.as_str()), (6, 2, "x"));
    }

    #[test]
    fn group_metadata_v3_decodes() {
        // An empty consumer group at generation 1 (Kafka 4.x writes version 3).
        let bytes = [
            0x00, 0x03, 0x00, 0x08, b'c', b'o', b'n', b's', b'u', b'm', b'e', b'r', 0x00, 0x00, 0x00, 0x01,
            0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        let g = decode_group_value(&bytes).expect("group");
        assert_eq!(g.protocol_type, "consumer");
        assert_eq!(g.generation, 1);
        assert_eq!((&g.protocol, &g.leader), (&None, &None));
        assert_eq!(g.current_state_timestamp, 1_700_000_000_000);
        assert!(g.members.is_empty());
        assert_eq!(encode_group_value(&g), bytes, "eoslog writes what Kafka wrote");
    }

    #[test]
    fn group_metadata_with_members_round_trips() {
        let g = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 7,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            current_state_timestamp: 1_700_000_000_000,
            members: vec![
                GroupMemberMetadata {
                    member_id: "m-1".into(),
                    instance_id: Some("static-1".into()),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 6_000,
                    subscription: vec![0, 1, 2],
                    assignment: vec![9; 40],
                },
                GroupMemberMetadata {
                    member_id: "m-2".into(),
                    ..GroupMemberMetadata::default()
                },
            ],
        };
        let bytes = encode_group_value(&g);
        assert_eq!(
            decode_key(&encode_group_key("grp")),
            Some(OffsetsKey::Group { group: "grp".into() })
        );
        assert_eq!(decode_group_value(&bytes), Ok(g));
        // Every truncation is damage, never a panic.
        for n in 0..bytes.len() {
            assert_eq!(decode_group_value(&bytes[..n]), Err(None), "truncated to {n}");
        }
        // A member count far beyond the bytes is refused before anything is reserved.
        let mut huge = bytes.clone();
        let at = 2 + 2 + 8 + 4 + 2 + 5 + 2 + 3 + 8;
        huge[at..at + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(decode_group_value(&huge), Err(None));
        // A flexible (v4) member count of 2^63 is damage, not an overflow.
        let mut o = Out::default();
        o.i16(4)
            .compact_string("consumer")
            .i32(1)
            .uvarint(0)
            .uvarint(0)
            .i64(0)
            .uvarint(1 << 63);
        assert_eq!(decode_group_value(&o.buf), Err(None));
    }

    #[test]
    fn a_string_too_long_for_kafka_is_cut_at_a_character_boundary() {
        let v = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 1,
            protocol: Some("range".into()),
            leader: None,
            current_state_timestamp: 0,
            members: vec![GroupMemberMetadata {
                member_id: "é".repeat(20_000), // 40,000 bytes
                ..GroupMemberMetadata::default()
            }],
        };
        let back = decode_group_value(&encode_group_value(&v)).expect("reads back");
        let id = &back.members[0].member_id;
        assert!(
            id.len() <= i16::MAX as usize && id.chars().all(|c| c == 'é'),
            "{} bytes",
            id.len()
        );
    }
}
