"""Issue #16 through the protocol: a compacted topic written by a transactional producer.

Invariant: a topic created over CreateTopics with cleanup.policy=compact is cleaned by the
broker's maintenance while clients use it; afterwards every read_committed consumer, folding
records by key in offset order, sees exactly the latest committed value of each key, never an
aborted one, with increasing offsets, and fewer records than were committed (the clean ran).
"""

import json
import time

import pytest

from harness import SENTINEL

KEYS = 5
TXNS = 24


@pytest.mark.broker_config({"log.cleaner.backoff.ms": "0"})
@pytest.mark.parametrize("consumer", ["ck", "kp", "aio"])
def test_compacted_topic_keeps_latest_committed_value_per_key(consumer, broker, clients, names):
    topic = clients.create_topic(names("c"), 1, config={
        "cleanup.policy": "compact",
        "segment.bytes": "2048",
        "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": "0",
    })
    txns, latest = [], {}
    for i in range(TXNS):
        end = "abort" if i % 4 == 3 else "commit"
        recs = []
        for k in range(KEYS):
            value = "%s-%d-%d" % ("aborted" if end == "abort" else "v", i, k)
            recs.append({"partition": 0, "key": "k%d" % k, "value": value})
            if end == "commit":
                latest["k%d" % k] = value
        txns.append({"records": recs, "end": end})
    clients.produce("ck", topic, transactions=txns, txid=names("tx"))
    committed = sum(len(t["records"]) for t in txns if t["end"] == "commit")

    state = broker.data_dir / ("%s-0" % topic) / "eoslog.cleaner"
    deadline = time.monotonic() + 60
    while not (state.exists() and "last_run" in state.read_text()):
        assert time.monotonic() < deadline, "the broker never cleaned %s" % topic
        time.sleep(0.2)

    tp = (topic, 0)
    clients.sentinels([tp])
    d = clients.read(consumer, [tp], "read_committed")
    d.ok(90)
    assert not d.of("done")[0]["timed_out"], d.describe()
    seen, last_offset = {}, -1
    for r in d.data_records:
        assert r["offset"] > last_offset, "offsets must increase\n" + d.describe()
        last_offset = r["offset"]
        assert not r["value"].startswith("aborted"), "aborted record delivered: %s" % json.dumps(r)
        seen[r["key"]] = r["value"]
    assert seen == latest, "latest per key %s, expected %s\n%s" % (seen, latest, d.describe())
    assert len(d.data_records) < committed, "%d of %d committed records delivered: nothing cleaned" % (
        len(d.data_records), committed)
    assert SENTINEL not in seen
