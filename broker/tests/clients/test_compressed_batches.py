"""Scenario 8: compressed transactional batches.

Invariant: transactional batches compressed with gzip, snappy, lz4 and zstd by librdkafka
and by kafka-python are stored as the client sent them (eoslog dump shows each data batch
valid, transactional and still carrying the client's codec, followed by the commit marker),
and every consumer decodes them: confluent-kafka, kafka-python and aiokafka for all four
codecs, kafkajs for gzip (the only codec it has without extra codec packages).

The stored-bytes check runs only when <repo>/target/release/eoslog exists (or EOSLOG_BIN);
without it the test still checks consumption and says so in its output.
"""

import json
import subprocess

import pytest

from harness import check_view, eoslog_bin, usable

N = 40


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
@pytest.mark.parametrize("producer", ["ck", "kp"])
def test_compressed_transactional_batches(producer, codec, clients, names, broker):
    topic = clients.create_topic(names("t"), 1)
    tp = (topic, 0)
    values = ["%s-%s-%03d-" % (producer, codec, i) + "compressible " * 20 for i in range(N)]
    clients.produce(producer, topic, [{"partition": 0, "key": "k%d" % i, "value": v} for i, v in enumerate(values)],
                    txid=names("tx"), end="commit", compression=codec)
    clients.sentinels([tp])

    readers = [clients.read(c, [tp], "read_committed") for c in ("ck", "kp", "aio")]
    readers.append(clients.read("kp", [tp], "read_uncommitted"))
    if codec == "gzip" and usable(["kjs"]):
        readers.append(clients.read("kjs", [tp], "read_committed"))
    for r in readers:
        check_view(r, {tp: values})

    eoslog = eoslog_bin()
    if not eoslog.exists():
        print("eoslog binary %s absent: stored batches not inspected" % eoslog)
        return
    dirs = broker.partition_dirs(topic, 0)
    assert len(dirs) == 1, "expected one directory for %s-0 under %s, found %s" % (topic, broker.data_dir, dirs)
    out = subprocess.run([str(eoslog), "dump", "--json", str(dirs[0])], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, "eoslog dump failed (%d): %s" % (out.returncode, out.stderr)
    batches = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    data = [b for b in batches if not b.get("is_control")]
    assert all(b.get("is_valid") for b in batches), batches
    txn_data = [b for b in data if b.get("is_transactional")]
    assert sum(b["count"] for b in txn_data) == N, "transactional data batches: %s" % txn_data
    for b in txn_data:
        assert codec in str(b.get("compression", "")).lower(), \
            "a %s batch was stored as %r (recompressed?): %s" % (codec, b.get("compression"), b)
    last = max(b["last_offset"] for b in txn_data)
    markers = [b for b in batches if b.get("is_control") and b["base_offset"] == last + 1]
    assert markers and markers[0].get("is_transactional"), "no commit marker after the data: %s" % batches


@pytest.mark.parametrize("producer", ["ck", "kp"])
def test_a_topic_compression_type_recompresses_transactional_batches(producer, clients, names, broker):
    """A topic created with compression.type=zstd stores the client's gzip transactional
    batches recompressed in zstd (as Kafka's leader does), still transactional, with their
    records and the commit marker after them; every consumer decodes them."""
    topic = clients.create_topic(names("t"), 1, config={"compression.type": "zstd"})
    tp = (topic, 0)
    values = ["%s-recompressed-%03d-" % (producer, i) + "compressible " * 20 for i in range(N)]
    clients.produce(producer, topic, [{"partition": 0, "key": "k%d" % i, "value": v} for i, v in enumerate(values)],
                    txid=names("tx"), end="commit", compression="gzip")
    clients.sentinels([tp])
    for r in [clients.read(c, [tp], "read_committed") for c in ("ck", "kp", "aio")]:
        check_view(r, {tp: values})

    eoslog = eoslog_bin()
    if not eoslog.exists():
        # Consumers decode gzip as well as zstd: only the stored batches can tell.
        pytest.skip("eoslog binary %s absent: the stored codec cannot be checked" % eoslog)
    (d,) = broker.partition_dirs(topic, 0)
    out = subprocess.run([str(eoslog), "dump", "--json", str(d)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, "eoslog dump failed (%d): %s" % (out.returncode, out.stderr)
    batches = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert all(b.get("is_valid") for b in batches), batches
    data = [b for b in batches if not b.get("is_control")]
    txn_data = [b for b in data if b.get("is_transactional")]
    assert sum(b["count"] for b in txn_data) == N, "transactional data batches: %s" % txn_data
    assert all("zstd" in str(b.get("compression", "")).lower() for b in data), data
    last = max(b["last_offset"] for b in txn_data)
    markers = [b for b in batches if b.get("is_control") and b["base_offset"] == last + 1]
    assert markers and markers[0].get("is_transactional"), "no commit marker after the data: %s" % batches
