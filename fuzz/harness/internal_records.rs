//! Harness of the `internal_records` fuzz target, shared with `tests/fuzz_regressions.rs`.
//!
//! Invariants: no key or value makes `eoslog::decode_internal_record` panic or allocate
//! without bound, for either internal topic; and a group's metadata that decodes (any
//! version, 0 to 4) survives a round trip through the version eoslog writes:
//! `decode(encode_group_metadata(v)) == v`.
//!
//! Input: `mode` byte, then the payload. `mode % 4`: 0, a `__transaction_state` record and
//! 1, a `__consumer_offsets` record, whose key is the payload's first `payload[0]` bytes
//! (after that length byte) and whose value is the rest; 2, the payload is the value of
//! group `g`'s metadata record; 3, the same with a null value (a tombstone).
#![allow(dead_code)]

use eoslog::decode::encode_group_metadata;
use eoslog::{decode_internal_record, InternalRecord};

const TXN: &str = "__transaction_state";
const OFFSETS: &str = "__consumer_offsets";
/// The metadata key of group `g`: version 2, then the string.
const GROUP_KEY: &[u8] = &[0, 2, 0, 1, b'g'];

/// Decodes one fuzz input and checks the round trip.
pub fn run(data: &[u8]) {
    let Some((&mode, payload)) = data.split_first() else {
        return;
    };
    let (topic, key, value) = match mode % 4 {
        m @ (0 | 1) => {
            let Some((&n, rest)) = payload.split_first() else {
                return;
            };
            let (key, value) = rest.split_at(usize::from(n).min(rest.len()));
            (if m == 0 { TXN } else { OFFSETS }, key, Some(value))
        }
        2 => (OFFSETS, GROUP_KEY, Some(payload)),
        _ => (OFFSETS, GROUP_KEY, None),
    };
    let Ok(InternalRecord::GroupMetadata {
        group,
        value: Some(v),
    }) = decode_internal_record(topic, Some(key), value)
    else {
        return;
    };
    let encoded = encode_group_metadata(&v);
    match decode_internal_record(OFFSETS, Some(key), Some(&encoded)) {
        Ok(InternalRecord::GroupMetadata {
            group: g,
            value: Some(again),
        }) => {
            assert_eq!((g, again), (group, v), "group metadata changed in a round trip");
        }
        other => panic!("re-encoded group metadata does not decode: {other:?}"),
    }
}
