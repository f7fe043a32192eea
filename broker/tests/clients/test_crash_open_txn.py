"""Scenario 29: read_committed across a broker crash with an open transaction.

Invariant: a transaction that is open when the broker is SIGKILLed is still open after the
restart. Its first offset pins the last stable offset exactly as before the crash
(ListOffsets latest read_committed answers it, read_committed consumers of every client get
nothing past it), so the LSO a consumer observes never moves back or forward across the
crash. When the producer, reconnected to the restarted broker, ends the transaction, the
LSO moves to the high watermark and read_committed consumers deliver its records on commit
and none on abort, then the record written after it.
"""

import time

import pytest

from harness import check_view, usable

A_RECORDS = 3


@pytest.mark.parametrize("end", ["commit", "abort"])
def test_open_transaction_survives_a_broker_crash(end, clients, broker, names):
    topic = clients.create_topic(names("t"), 1)
    tp = (topic, 0)
    a_values = ["a%d" % i for i in range(A_RECORDS)]
    a = clients.start("ck", "txn_open_and_hang", transactional_id=names("tx"), txn_timeout_ms=30000,
                      records=[{"topic": topic, "partition": 0, "key": "a", "value": v} for v in a_values])
    a.wait_for("open", timeout=30)
    assert clients.sentinels([tp]) == {tp: A_RECORDS}
    before = clients.offsets([tp])[tp]
    assert before["high_read_committed"] == 0, before
    assert before["high_read_uncommitted"] == A_RECORDS + 1, before

    broker.kill9()
    broker.restart(same_port=True)

    after = clients.offsets([tp])[tp]
    assert after["high_read_committed"] == 0, \
        "the LSO moved across the crash: %s before, %s after" % (before, after)
    assert after["admin_latest_read_committed"] == 0, after
    assert after["high_read_uncommitted"] == A_RECORDS + 1, after

    waiting = [clients.read(c, [tp], "read_committed", max_ms=90000) for c in usable()]
    for w in waiting:
        w.wait_for("assigned", timeout=30)
    time.sleep(2.0)
    for w in waiting:
        assert w.returncode is None, "read_committed consumer ended while A was open\n" + w.describe()
        assert w.records == [], "read_committed consumer delivered records past the LSO\n" + w.describe()

    a.send(end)
    result = a.wait_for("result", timeout=60)
    assert result["ok"], "the producer could not %s after the restart: %s" % (end, result)
    expected = {tp: a_values if end == "commit" else []}
    for w in waiting:
        check_view(w, expected)
    final = clients.offsets([tp])[tp]
    # A's data, the sentinel, A's marker
    assert final["high_read_committed"] == final["high_read_uncommitted"] == A_RECORDS + 2, final
