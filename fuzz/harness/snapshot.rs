//! Harness of the `snapshot_decode` fuzz target, shared with `tests/fuzz_regressions.rs`.
//!
//! Invariants: no byte string makes `eoslog::decode::snapshot` panic, and whatever it decodes
//! survives a round trip: `snapshot(&encode_snapshot(&decoded)) == Ok(decoded)`.
//!
//! Input: `mode` byte, then the payload. Odd `mode`: the payload is taken as a snapshot body
//! after the CRC (`count` onwards) and the 6-byte `version 1 | crc` prefix is made valid, so
//! decoding gets past the CRC check. Even `mode`: the payload as is.
#![allow(dead_code)]

use eoslog::crc32c;
use eoslog::decode::{encode_snapshot, snapshot};

/// The bytes the decoder sees for a fuzz input.
pub fn prepare(data: &[u8]) -> Vec<u8> {
    let Some((&mode, payload)) = data.split_first() else {
        return Vec::new();
    };
    if mode % 2 == 0 {
        return payload.to_vec();
    }
    let mut out = Vec::with_capacity(6 + payload.len());
    out.extend_from_slice(&1i16.to_be_bytes());
    out.extend_from_slice(&crc32c(payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Decodes one fuzz input and checks the round trip.
pub fn run(data: &[u8]) {
    let bytes = prepare(data);
    match snapshot(&bytes) {
        Ok(decoded) => {
            let encoded = encode_snapshot(&decoded);
            match snapshot(&encoded) {
                Ok(again) => assert_eq!(again, decoded, "snapshot round trip changed the snapshot"),
                Err(e) => panic!("re-encoded snapshot does not decode: {e:?}"),
            }
        }
        Err((position, detail)) => {
            let _ = (position, detail.to_string());
        }
    }
}
