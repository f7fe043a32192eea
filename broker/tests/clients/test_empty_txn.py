"""Scenario 7: empty transactions (librdkafka 0103 do_test_empty_txn).

Invariant: begin+commit and begin+abort with nothing in them succeed and write nothing;
begin+send_offsets+commit makes the offsets visible to the group (stably: an OffsetFetch with
require_stable answers at once); begin+send_offsets+abort leaves the group with no committed
offset; and none of it disturbs a later transaction with data, whose record lands at offset 0
of its fresh partition (no stray markers were written to data partitions).
"""

import pytest

from harness import CLIENTS, check_view


@pytest.mark.parametrize("client", CLIENTS)
def test_empty_transactions(client, clients, names):
    topic = clients.create_topic(names("t"), 1)
    tp = (topic, 0)
    g_commit, g_abort = names("g-commit"), names("g-abort")
    txns = [
        {"records": [], "end": "commit"},
        {"records": [], "end": "abort"},
        {"records": [], "end": "commit", "offsets": {"group": g_commit, "offsets": [[topic, 0, 5]]}},
        {"records": [], "end": "abort", "offsets": {"group": g_abort, "offsets": [[topic, 0, 7]]}},
        {"records": [{"topic": topic, "partition": 0, "key": "k", "value": "data"}], "end": "commit"},
    ]
    d = clients.run(client, "produce", transactional_id=names("tx"), transactions=txns)
    assert [e["end"] for e in d.of("txn_end")] == ["commit", "abort", "commit", "abort", "commit"]
    delivered = d.of("delivered")
    assert [e["offset"] for e in delivered] == [0], "the data record should be at offset 0: %s" % delivered

    got = clients.committed(g_commit, [tp], isolation="read_committed", timeout_ms=10000)[tp]
    assert got["offset"] == 5, "offsets sent in a committed empty transaction: %s" % got
    got = clients.committed(g_abort, [tp], isolation="read_committed", timeout_ms=10000)[tp]
    assert got["offset"] < 0, "offsets sent in an aborted empty transaction became visible: %s" % got

    assert clients.sentinels([tp]) == {tp: 2}
    check_view(clients.read(client, [tp], "read_committed"), {tp: ["data"]})
