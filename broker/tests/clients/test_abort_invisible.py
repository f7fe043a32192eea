"""Scenarios 2 and 4: an aborted transaction is never visible to read_committed consumers.

Invariants:
* (2) after a transactional producer (each of the four clients) writes N records over
  2 topics x 3 partitions and aborts, read_committed consumers (all four clients) deliver
  none of them, while read_uncommitted consumers deliver all N (aborted data is still
  returned to them, redpanda#6630); the next record of each partition lands after the
  aborted range plus one abort marker.
* (4) with commit, abort, commit on one partition, all fetched together, read_committed
  consumers deliver the first and third transactions only, in order (the brod#659 shape).
"""

import pytest

from harness import CLIENTS, check_view, expected_by_partition, usable

PARTITIONS = 3
PER_PARTITION = 6


@pytest.mark.parametrize("producer", CLIENTS)
def test_aborted_transaction_invisible(producer, clients, names):
    topics = [clients.create_topic(names("a"), PARTITIONS), clients.create_topic(names("b"), PARTITIONS)]
    parts = [(t, p) for t in topics for p in range(PARTITIONS)]
    recs = [{"topic": parts[i % len(parts)][0], "partition": parts[i % len(parts)][1],
             "key": "k%d" % i, "value": "aborted-%d" % i}
            for i in range(PER_PARTITION * len(parts))]
    d = clients.produce(producer, records=recs, txid=names("tx"), end="abort")
    assert [e["end"] for e in d.of("txn_end")] == ["abort"]

    after = clients.sentinels(parts)
    assert after == {tp: PER_PARTITION + 1 for tp in parts}, \
        "sentinel offsets %s: expected the aborted range (%d) plus one abort marker" % (after, PER_PARTITION)

    readers = [(clients.read(c, parts, "read_committed"), {}) for c in usable()]
    readers += [(clients.read(c, parts, "read_uncommitted"), expected_by_partition(recs)) for c in usable()]
    for r, expected in readers:
        check_view(r, expected)


@pytest.mark.parametrize("producer", CLIENTS)
def test_commit_abort_commit_in_one_fetch(producer, clients, names):
    topic = clients.create_topic(names("t"), 1)

    def txn(tag, end):
        return {"records": [{"topic": topic, "partition": 0, "key": "%s%d" % (tag, i),
                             "value": "%s-%d" % (tag, i)} for i in range(5)], "end": end}
    txns = [txn("tx1", "commit"), txn("tx2", "abort"), txn("tx3", "commit")]
    clients.run(producer, "produce", transactional_id=names("tx"), transactions=txns)
    # tx1 0-4, marker 5, tx2 6-10, marker 11, tx3 12-16, marker 17
    assert clients.sentinels([(topic, 0)]) == {(topic, 0): 18}

    committed = {(topic, 0): [r["value"] for r in txns[0]["records"] + txns[2]["records"]]}
    everything = {(topic, 0): [r["value"] for t in txns for r in t["records"]]}
    readers = [(clients.read(c, [(topic, 0)], "read_committed"), committed) for c in usable()]
    readers += [(clients.read(c, [(topic, 0)], "read_uncommitted"), everything) for c in ("ck", "kp")]
    for r, expected in readers:
        check_view(r, expected)
