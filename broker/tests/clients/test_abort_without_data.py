"""Scenario 5: an aborted transaction with no data.

Invariant: a transaction that registered partitions (AddPartitionsToTxn) and aborted
without writing to them leaves only an ABORT marker there: the LSO moves past it, no
committed record of the next transaction on those partitions is lost or hidden, and every
client's read_committed consumer delivers exactly the committed records (the librdkafka
1.6 "Abort txn ctrl msg bad order" shape).
"""

import pytest

from harness import CLIENTS, check_view


@pytest.mark.parametrize("consumer", CLIENTS)
def test_abort_without_data_loses_nothing(consumer, clients, names):
    topic = clients.create_topic(names("t"), 2)
    d = clients.run("ck", "abort_without_data", timeout=90, topic=topic, partitions=[0, 1],
                    transactional_id=names("tx"), n=3)
    delivered = d.of("delivered")
    assert [e["error"] for e in delivered] == [None] * 6, d.describe()
    for part in (0, 1):
        offsets = sorted(e["offset"] for e in delivered if e["partition"] == part)
        # offset 0 is the ABORT marker of the transaction that only registered the partition
        assert offsets == [1, 2, 3], "partition %d: committed records at %s\n%s" % (part, offsets, d.describe())
    tps = [(topic, 0), (topic, 1)]
    clients.sentinels(tps)
    for iso in ("read_committed", "read_uncommitted"):
        view = clients.read(consumer, tps, iso)
        check_view(view, {tp: ["c0", "c1", "c2"] for tp in tps})
