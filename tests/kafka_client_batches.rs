//! Invariant: a batch built by a real Kafka client (kafka-python 3.0.12, every codec, plain,
//! idempotent and transactional) is accepted as the leader accepts it and stored unchanged
//! except for the base offset and the partition leader epoch, which the log assigns; its records
//! decode to exactly what the client wrote. Fixtures: `test_fixture/kafka-python/`. Issue #2.

use eoslog::{AppendOptions, AppendOrigin, AppendOutcome, Isolation, Log, LogConfig, Offset, RecordBatch};
use serde_json::Value;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn kafka_python_batches_are_stored_byte_for_byte() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test_fixture/kafka-python");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("expected.json")).expect("json"))
            .expect("parse");
    let cases = expected["cases"].as_array().expect("cases");
    assert!(cases.len() >= 9);
    for case in cases {
        let file = case["file"].as_str().expect("file");
        let sent = std::fs::read(root.join(file)).expect("fixture");
        let header = &case["header"];
        let dir = tempfile::tempdir().expect("tmp");
        let log = Log::open(dir.path().join("t-0"), LogConfig::default()).expect("open");
        // Put something before it so the base offset really is reassigned.
        let filler = eoslog::BatchBuilder::new()
            .build(&[eoslog::NewRecord::value(1_700_000_000_000, b"filler")])
            .expect("filler");
        assert!(matches!(
            log.append(&filler, AppendOrigin::Client).expect("filler"),
            AppendOutcome::Appended(_)
        ));
        let opts = AppendOptions {
            leader_epoch: Some(7),
            ..AppendOptions::new(AppendOrigin::Client)
        };
        let info = match log.append_with(&sent, &opts).expect(file) {
            AppendOutcome::Appended(i) => i,
            other => panic!("{file}: {other:?}"),
        };
        assert_eq!(info.first_offset, Offset(1), "{file}");
        assert_eq!(
            info.last_offset.0,
            1 + header["last_offset_delta"].as_i64().expect("d"),
            "{file}"
        );
        let stored = log
            .read(Offset(1), 1, Isolation::ReadUncommitted)
            .expect("read")
            .bytes()
            .expect("bytes");
        assert_eq!(stored.len(), sent.len(), "{file}");
        assert_eq!(&stored[..8], &1i64.to_be_bytes(), "{file}: base offset assigned");
        assert_eq!(
            &stored[12..16],
            &7i32.to_be_bytes(),
            "{file}: leader epoch stamped"
        );
        assert_eq!(&stored[8..12], &sent[8..12], "{file}");
        assert_eq!(
            &stored[16..],
            &sent[16..],
            "{file}: CRC and everything it covers unchanged"
        );
        let batch = RecordBatch::parse_exact(&stored).expect("valid");
        assert_eq!(
            batch.compression().expect("codec").name(),
            header["compression"].as_str().expect("c"),
            "{file}"
        );
        assert_eq!(batch.producer_id().0, header["producer_id"].as_i64().expect("p"));
        assert_eq!(
            batch.is_transactional(),
            header["is_transactional"].as_bool().expect("t")
        );
        let records = batch.records().expect("records");
        let got: Vec<_> = records.iter().collect::<Result<_, _>>().expect("decode");
        let want = case["records"].as_array().expect("records");
        assert_eq!(got.len(), want.len(), "{file}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.timestamp, w["timestamp"].as_i64().expect("ts"), "{file}");
            assert_eq!(g.key.map(<[u8]>::to_vec), w["key"].as_str().map(hex), "{file}");
            match (&w["value"], &w["value_crc32c"]) {
                (Value::String(v), _) => assert_eq!(g.value.map(<[u8]>::to_vec), Some(hex(v)), "{file}"),
                (_, Value::Number(crc)) => {
                    let v = g.value.expect("value");
                    assert_eq!(v.len() as u64, w["value_len"].as_u64().expect("len"));
                    assert_eq!(u64::from(eoslog::crc32c(v)), crc.as_u64().expect("crc"), "{file}");
                }
                (Value::Null, _) => assert_eq!(g.value, None, "{file}"),
                other => panic!("{file}: unexpected fixture value {other:?}"),
            }
        }
        log.close().expect("close");
    }
}
