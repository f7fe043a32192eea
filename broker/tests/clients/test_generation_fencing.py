"""Scenario 22: KIP-447 generation fencing of transactional offset commits.

Invariant: offsets sent to a transaction with consumer group metadata from before the group
moved on are refused, and the transaction cannot commit them:
* after a rebalance (a second member joined), TxnOffsetCommit v3 answers ILLEGAL_GENERATION
  (the member is still there, its generation is not);
* after a static member (group.instance.id) was replaced by a newer instance, it answers
  FENCED_INSTANCE_ID.
librdkafka fails the transaction; after an abort, the same offsets sent with fresh metadata
commit. The group's committed offset is the fresh commit's, and the stale transaction's
output record is never visible to read_committed.
"""

import pytest

from harness import check_view

EXPECTED = {"rebalance": {"ILLEGAL_GENERATION"}, "static": {"FENCED_INSTANCE_ID"}}


@pytest.mark.parametrize("how", ["rebalance", "static"])
def test_stale_group_metadata_is_fenced(how, clients, names):
    src = clients.create_topic(names("in"), 2)
    out = clients.create_topic(names("out"), 1)
    clients.produce("ck", src, [{"partition": 0, "key": "k", "value": "v%d" % i} for i in range(5)])
    group = names("g")
    d = clients.run("ck", "stale_metadata", timeout=120, group=group, topic=src, out=out, how=how,
                    instance=names("inst") if how == "static" else None,
                    transactional_id=names("tx"), offset=3)
    [stale] = d.of("stale")
    assert stale["name"] in EXPECTED[how], "stale metadata answered %s\n%s" % (stale, d.describe())
    assert not stale["fatal"], stale
    assert d.of("fresh"), d.describe()
    tp = (src, 0)
    assert clients.committed(group, [tp], isolation="read_committed")[tp]["offset"] == 3
    clients.sentinels([(out, 0)])
    view = clients.read("kp", [(out, 0)], "read_committed")
    check_view(view, {(out, 0): ["fresh"]})
