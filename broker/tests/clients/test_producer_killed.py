"""Scenario 11: a transactional producer killed mid-transaction, then restarted.

Invariant: a producer SIGKILLed after its records are acknowledged and before it commits
leaves its transaction open: the LSO stays at the transaction's first offset and
read_committed sees nothing of it. A new instance with the same transactional.id runs
init_transactions: the broker aborts the old transaction (its epoch is bumped, its marker
written), the LSO moves past it, and the new instance's committed records are the only ones
any read_committed consumer delivers.
"""

import pytest

from harness import CLIENTS, check_view, usable

A_RECORDS = 3


@pytest.mark.parametrize("client", CLIENTS)
def test_killed_producer_restarted_aborts_its_transaction(client, clients, names):
    topic = clients.create_topic(names("t"), 1)
    tp = (topic, 0)
    txid = names("tx")
    a = clients.start(client, "txn_open_and_hang", transactional_id=txid, txn_timeout_ms=30000,
                      records=[{"topic": topic, "partition": 0, "key": "a", "value": "a%d" % i}
                               for i in range(A_RECORDS)])
    a.wait_for("open", timeout=30)
    a.kill9()
    offs = clients.offsets([tp])[tp]
    assert offs["high_read_committed"] == 0, "the killed producer's transaction no longer pins the LSO: %s" % offs
    assert offs["high_read_uncommitted"] == A_RECORDS, offs

    clients.produce(client, topic, [{"partition": 0, "key": "b", "value": "b0"}], txid=txid,
                    end="commit", txn_timeout_ms=10000)
    offs = clients.offsets([tp])[tp]
    # A's records, the ABORT marker the restart wrote, b0, its COMMIT marker
    assert offs["high_read_committed"] == offs["high_read_uncommitted"] == A_RECORDS + 3, offs
    clients.sentinels([tp])
    for c in usable():
        check_view(clients.read(c, [tp], "read_committed"), {tp: ["b0"]})
