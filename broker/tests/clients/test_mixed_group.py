"""Scenario 25: one consumer group of three client families.

Invariant: librdkafka, kafka-python and aiokafka members with the "roundrobin" assignor
share one group: every partition has exactly one owner among them. kafkajs, whose default
assigner's protocol is named "RoundRobinAssigner", cannot join that group: its JoinGroup is
answered INCONSISTENT_GROUP_PROTOCOL, and the group's assignment stays as it was. When the
librdkafka member closes, the other two take its partitions.

The librdkafka member joins first and owns every partition before the others start, so it
leads the three-member generation. kafka-python 3.0.12 started first sometimes leads a
generation of its own before its metadata has the topic (it warns "No partition metadata
for topic" and assigns nothing); in about one run in 25 its poll() then never returns: its
main thread waits forever on a fetch task its IO thread never runs (the stacks the harness
dumps show both threads idle), its heartbeats stop and the broker expires its session as
Kafka would. A client bug, not the property under test. After librdkafka leaves, the
older of the other two members leads.
"""

from harness import owned, settle

PARTITIONS = 6


def test_three_client_families_share_a_roundrobin_group(clients, names):
    topic = clients.create_topic(names("t"), PARTITIONS)
    want = {(topic, p) for p in range(PARTITIONS)}
    group = names("g")
    def member(client):
        return clients.start(client, "member", group=group, topics=[topic], strategy="roundrobin")
    members = [member("ck")]
    settle(members, want, 45)
    members += [member(c) for c in ("kp", "aio")]
    settle(members, want, 45)
    assert [len(owned(m)) for m in members] == [2, 2, 2], [owned(m) for m in members]
    before = [owned(m) for m in members]

    kjs = clients.start("kjs", "join", group=group, topics=[topic])
    err = kjs.failed(60)
    assert err.get("type") == "INCONSISTENT_GROUP_PROTOCOL" or err.get("code") == 23, kjs.describe()
    assert [owned(m) for m in members] == before, "a refused join changed the assignment"

    members[0].send("stop")
    members[0].wait_for("done", timeout=30)
    settle(members[1:], want, 30)
    for m in members[1:]:
        m.send("stop")
        m.wait_for("done", timeout=30)
