"""Scenario 24: assignment correctness with librdkafka's assignors.

Invariant: with range, roundrobin and cooperative-sticky, a group that grows from one member
to three gives every partition of the topic exactly one owner, every member some; a member
that closes (LeaveGroup) has its partitions moved to the others at once, well inside
session.timeout.ms; a member killed with SIGKILL has them moved only once the session
timeout evicts it.
"""

import pytest

from harness import owned, settle

PARTITIONS = 6
SESSION_TIMEOUT_S = 6.0  # the drivers' session.timeout.ms


@pytest.mark.parametrize("strategy", ["range", "roundrobin", "cooperative-sticky"])
def test_every_partition_has_one_owner(strategy, clients, names):
    topic = clients.create_topic(names("t"), PARTITIONS)
    want = {(topic, p) for p in range(PARTITIONS)}
    group = names("g")

    def member():
        return clients.start("ck", "member", group=group, topics=[topic], strategy=strategy)

    a = member()
    settle([a], want, 30)
    b, c = member(), member()
    settle([a, b, c], want, 30)
    assert [len(owned(m)) for m in (a, b, c)] == [2, 2, 2], [owned(m) for m in (a, b, c)]

    c.send("stop")
    c.wait_for("done", timeout=30)
    took = settle([a, b], want, 30)
    assert took < SESSION_TIMEOUT_S - 1, \
        "a LeaveGroup took %.1f s to move the leaver's partitions (session timeout %.0f s)" % (
            took, SESSION_TIMEOUT_S)

    b.kill9()
    took = settle([a], want, 30)
    assert took > SESSION_TIMEOUT_S - 2, \
        "a killed member's partitions moved after %.1f s, before its session could time out" % took
    a.send("stop")
    a.wait_for("done", timeout=30)
