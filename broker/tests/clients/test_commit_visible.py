"""Scenario 1: a committed transaction is visible, exactly and in order, to every client.

Invariant: after a transactional producer (each of confluent-kafka, kafka-python, aiokafka,
kafkajs) writes N records over 2 topics x 3 partitions and commits, every consumer (the same
four), read_committed and read_uncommitted alike, delivers exactly those N records, in
per-partition production order, with no control record among them; and each partition holds
its records at offsets 0..k-1 followed by exactly one commit marker (the next record lands at
offset k+1).
"""

import pytest

from harness import CLIENTS, check_view, expected_by_partition, usable

PARTITIONS = 3
PER_PARTITION = 8


def make_records(topics):
    recs = []
    parts = [(t, p) for t in topics for p in range(PARTITIONS)]
    for i in range(PER_PARTITION * len(parts)):
        t, p = parts[i % len(parts)]
        recs.append({"topic": t, "partition": p, "key": "k%d" % i, "value": "%s/%d/v%d" % (t[-8:], p, i)})
    return parts, recs


@pytest.mark.parametrize("producer", CLIENTS)
def test_committed_transaction_visible_to_all_consumers(producer, clients, names):
    topics = [clients.create_topic(names("a"), PARTITIONS), clients.create_topic(names("b"), PARTITIONS)]
    parts, recs = make_records(topics)
    d = clients.produce(producer, records=recs, txid=names("tx"), end="commit")
    assert len(d.of("txn_end")) == 1

    # the next record of each partition comes after the data and exactly one marker
    after = clients.sentinels(parts)
    assert after == {tp: PER_PARTITION + 1 for tp in parts}, \
        "sentinel offsets %s: each partition should hold %d records and one commit marker" % (
            after, PER_PARTITION)

    expected = expected_by_partition(recs)
    readers = []
    for c in usable():
        for iso in ("read_committed", "read_uncommitted"):
            readers.append(clients.read(c, parts, iso))
    # one group-mode (subscribe) reader per Python client as well
    for c in ("ck", "kp", "aio"):
        readers.append(clients.read(c, parts, "read_committed", group=names("g-" + c)))
    for r in readers:
        check_view(r, expected)
