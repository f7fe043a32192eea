"""Scenario 3: an open transaction pins the last stable offset (LSO).

Invariant: while producer A's transaction (records at offsets 0-2) is open, a record that
non-transactional producer B writes after it (offset 3) is invisible to read_committed
consumers of all four clients, ListOffsets(latest, read_committed) answers A's first offset
(0) through both librdkafka's watermark query and its admin list_offsets, and
ListOffsets(latest, read_uncommitted) and read_uncommitted consumers see everything at once.
When A ends, the LSO moves to the high watermark and read_committed consumers deliver A's
records (on commit, not on abort) and then B's, in offset order.
"""

import time

import pytest

from harness import CLIENTS, check_view, usable

A_RECORDS = 3
WAIT_WHILE_OPEN = 3.0


@pytest.mark.parametrize("holder,end", [(c, "commit") for c in CLIENTS] + [("ck", "abort")])
def test_open_transaction_pins_lso(holder, end, clients, names):
    topic = clients.create_topic(names("t"), 1)
    tp = (topic, 0)
    a_values = ["a%d" % i for i in range(A_RECORDS)]
    a = clients.start(holder, "txn_open_and_hang", transactional_id=names("tx"), txn_timeout_ms=30000,
                      records=[{"topic": topic, "partition": 0, "key": "a", "value": v} for v in a_values])
    a.wait_for("open", timeout=30)
    assert clients.sentinels([tp]) == {tp: A_RECORDS}

    offs = clients.offsets([tp])[tp]
    assert offs["high_read_committed"] == 0, "read_committed watermark %s, want A's first offset 0" % offs
    assert offs["admin_latest_read_committed"] == 0, offs
    assert offs["high_read_uncommitted"] == A_RECORDS + 1, offs
    assert offs["admin_latest_read_uncommitted"] == A_RECORDS + 1, offs

    # read_uncommitted sees A and B at once, while A is still open
    check_view(clients.read("ck", [tp], "read_uncommitted"), {tp: a_values}, timeout=30)
    check_view(clients.read("kp", [tp], "read_uncommitted"), {tp: a_values}, timeout=30)

    waiting = [clients.read(c, [tp], "read_committed", max_ms=90000) for c in usable()]
    for w in waiting:
        w.wait_for("assigned", timeout=30)
    time.sleep(WAIT_WHILE_OPEN)
    for w in waiting:
        assert w.returncode is None, "read_committed consumer ended while A was open\n" + w.describe()
        assert w.records == [], "read_committed consumer delivered records past the LSO\n" + w.describe()

    a.send(end)
    assert a.wait_for("result", timeout=30)["ok"]
    expected = {tp: a_values if end == "commit" else []}
    for w in waiting:
        check_view(w, expected)

    offs = clients.offsets([tp])[tp]
    # A's data, B's record, A's marker
    assert offs["high_read_committed"] == offs["high_read_uncommitted"] == A_RECORDS + 2, offs
    assert offs["admin_latest_read_committed"] == A_RECORDS + 2, offs
