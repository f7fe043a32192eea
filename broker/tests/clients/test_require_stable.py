"""Scenario 21: pending transactional offsets are not leaked.

Invariant: while a transaction holding offsets for group G (sent with
send_offsets_to_transaction) is open,
* an OffsetFetch without require_stable answers the old committed offset, never the pending one;
* an OffsetFetch with require_stable (OffsetFetch v7, what read_committed librdkafka and
  kafka-python 3 consumers send) does not answer a stable offset: UNSTABLE_OFFSET_COMMIT,
  which the clients retry;
* a new read_committed consumer in G delivers nothing until the transaction ends, then starts
  from the pending offset if the transaction committed, or from the old offset if it aborted.
"""

import time

import pytest

from harness import check_view

OLD, PENDING, N = 3, 7, 10


@pytest.mark.parametrize("end", ["commit", "abort"])
@pytest.mark.parametrize("consumer", ["ck", "kp"])
def test_pending_offsets_not_leaked(consumer, end, clients, names):
    src = clients.create_topic(names("in"), 1)
    out = clients.create_topic(names("out"), 1)
    tp = (src, 0)
    values = ["v%d" % i for i in range(N)]
    clients.produce("ck", src, [{"partition": 0, "key": "k", "value": v} for v in values])
    group = names("g")
    clients.run("ck", "commit_offsets", group=group, offsets=[[src, 0, OLD]])
    assert clients.committed(group, [tp])[tp]["offset"] == OLD

    holder = clients.start("ck", "txn_open_and_hang", transactional_id=names("tx"), txn_timeout_ms=30000,
                           records=[{"topic": out, "partition": 0, "key": "o", "value": "out"}],
                           offsets={"group": group, "offsets": [[src, 0, PENDING]]})
    holder.wait_for("open", timeout=30)

    got = clients.committed(group, [tp], isolation="read_uncommitted")[tp]
    assert got["offset"] == OLD, "OffsetFetch without require_stable answered %s, not the old %d" % (got, OLD)

    d = clients.start("ck", "committed", group=group, partitions=[list(tp)], isolation="read_committed",
                      timeout_ms=3000)
    d.wait(40)
    stable = [o for e in d.of("committed") for o in e["offsets"] if o["error"] is None and o["offset"] >= 0]
    assert not stable, "OffsetFetch with require_stable answered a stable offset while one was pending: %s" % stable
    assert d.errors or any(o["error"] for e in d.of("committed") for o in e["offsets"]), d.describe()

    clients.sentinels([tp])
    waiting = clients.read(consumer, [tp], "read_committed", group=group, max_ms=90000)
    waiting.wait_for("assigned", timeout=30)
    time.sleep(3)
    assert waiting.records == [], "a consumer of G delivered records while G's offsets were pending\n" + \
        waiting.describe()

    holder.send(end)
    assert holder.wait_for("result", timeout=30)["ok"]
    start = PENDING if end == "commit" else OLD
    check_view(waiting, {tp: values[start:]})
    assert waiting.data_records[0]["offset"] == start
    assert clients.committed(group, [tp], isolation="read_committed")[tp]["offset"] == start
