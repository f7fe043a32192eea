"""Deleting consumer groups and their offsets with the admin clients operators use.

Invariants:
* DeleteGroups (librdkafka's and kafka-python's admin clients) refuses a group with members
  with NON_EMPTY_GROUP and an unknown group with GROUP_ID_NOT_FOUND, and deletes an Empty
  group with every committed offset: a consumer of the group afterwards finds no offset;
* OffsetDelete (kafka-python's ``delete_group_offsets``, KIP-496) refuses the partitions of
  a topic the live group subscribes to with GROUP_SUBSCRIBED_TO_TOPIC and deletes the offsets
  of the others; once the group is Empty it deletes any.
"""

from harness import settle


def deleted(d):
    return {e["group"]: e["error"] for e in d.of("deleted")}


def test_groups_and_offsets_are_deleted_by_admin_clients(clients, names):
    topic = clients.create_topic(names("t"), 2)
    other = clients.create_topic(names("o"), 1)
    group = names("g")
    # Offsets on both topics, committed while the group is Empty (a simple consumer's).
    clients.run("ck", "commit_offsets", group=group,
                offsets=[[topic, 0, 3], [topic, 1, 4], [other, 0, 5]])
    member = clients.start("ck", "member", group=group, topics=[topic], strategy="range")
    settle([member], {(topic, 0), (topic, 1)}, 30)

    d = clients.run("kp", "delete_group_offsets", group=group, partitions=[[topic, 0], [other, 0]])
    result = d.of("deleted_offsets")[0]
    assert (result["error"], result["partitions"]) == (
        None, [[other, 0, None], [topic, 0, "GROUP_SUBSCRIBED_TO_TOPIC"]]), result
    got = clients.committed(group, [(topic, 0), (other, 0)])
    assert (got[(topic, 0)]["offset"], got[(other, 0)]["offset"]) == (3, -1001), got

    assert deleted(clients.run("ck", "delete_groups", groups=[group])) == {group: "NON_EMPTY_GROUP"}
    assert deleted(clients.run("kp", "delete_groups", groups=[group])) == {group: "NON_EMPTY_GROUP"}

    member.send("stop")
    member.wait_for("done", timeout=30)
    assert deleted(clients.run("ck", "delete_groups", groups=[group, names("none")])) == {
        group: None, names("none"): "GROUP_ID_NOT_FOUND"}
    got = clients.committed(group, [(topic, 0), (topic, 1)])
    assert {k: v["offset"] for k, v in got.items()} == {(topic, 0): -1001, (topic, 1): -1001}, got

    # kafka-python's DeleteGroups, and OffsetDelete of an Empty group.
    simple = names("s")
    clients.run("ck", "commit_offsets", group=simple, offsets=[[topic, 0, 7], [topic, 1, 8]])
    d = clients.run("kp", "delete_group_offsets", group=simple, partitions=[[topic, 0]])
    assert d.of("deleted_offsets")[0]["partitions"] == [[topic, 0, None]]
    got = clients.committed(simple, [(topic, 0), (topic, 1)])
    assert {k: v["offset"] for k, v in got.items()} == {(topic, 0): -1001, (topic, 1): 8}, got
    assert deleted(clients.run("kp", "delete_groups", groups=[simple])) == {simple: None}
    assert clients.committed(simple, [(topic, 1)])[(topic, 1)]["offset"] == -1001
