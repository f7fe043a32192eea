"""Scenarios 10 and 16: a second producer with the same transactional id fences the first.

Invariant: P1 (transactional id X) has an open transaction with acknowledged records. P2 with
the same X runs init_transactions and commits its own record. P1's open transaction is aborted
(its records are never visible to read_committed consumers), and P1's next produce or commit
fails with its client's fatal fenced error: librdkafka _FENCED, kafka-python
ProducerFencedError, aiokafka ProducerFenced, kafkajs INVALID_PRODUCER_EPOCH. aiokafka (v0 of
the transactional APIs) and kafkajs (v0-1) must be sent INVALID_PRODUCER_EPOCH (47), never
PRODUCER_FENCED (90), which they do not know. A produce with the stale epoch is never
appended, not even as aborted data. P2 is unaffected.
"""

import pytest

from harness import CLIENTS, check_view


@pytest.mark.parametrize("action", ["produce_commit", "commit"])
@pytest.mark.parametrize("client", CLIENTS)
def test_zombie_is_fenced(client, action, clients, names):
    topic = clients.create_topic(names("t"), 1)
    tp = (topic, 0)
    txid = names("tx")
    p1_values = ["p1-%d" % i for i in range(3)]
    p1 = clients.start(client, "txn_open_and_hang", transactional_id=txid, txn_timeout_ms=30000,
                       records=[{"topic": topic, "partition": 0, "key": "p1", "value": v} for v in p1_values],
                       records_after=[{"topic": topic, "partition": 0, "key": "p1", "value": "p1-after"}])
    p1.wait_for("open", timeout=30)

    clients.produce(client, topic, [{"partition": 0, "key": "p2", "value": "p2"}], txid=txid, end="commit")

    p1.send(action)
    err = p1.failed(timeout=60)
    assert err["kind"] == "fenced", "P1 should be fenced, got %s\n%s" % (err, p1.describe())
    if client in ("aio", "kjs"):
        assert err["code"] == 47, "%s must be fenced with INVALID_PRODUCER_EPOCH (47): %s" % (client, err)
    if client == "kjs":
        assert err["type"] == "INVALID_PRODUCER_EPOCH", err

    clients.sentinels([tp])
    check_view(clients.read("ck", [tp], "read_committed"), {tp: ["p2"]})
    check_view(clients.read(client, [tp], "read_committed"), {tp: ["p2"]})
    # the aborted records stay in the log for read_uncommitted readers; the fenced produce does not
    check_view(clients.read("kp", [tp], "read_uncommitted"), {tp: p1_values + ["p2"]})
