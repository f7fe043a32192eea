"""Group membership across a broker crash (groundwork for scenarios 19 and 22).

Invariant: a member id handed out before a broker SIGKILL is never handed out again after the
restart. KIP-447 fencing of zombie pipeline members rests on it: TxnOffsetCommit v3 is checked
against (member id, generation), so if a restarted broker gives a new member the id (and the
generation) a zombie still holds, the zombie's stale offsets are accepted, and exactly-once is
lost. Kafka makes member ids unique with a UUID (client id + "-" + UUID).
"""

from harness import check_view


def test_member_ids_unique_across_restart(clients, broker, names):
    topic = clients.create_topic(names("t"), 1)
    group = names("g")
    a = clients.read("ck", [(topic, 0)], "read_committed", group=group, max_ms=120000,
                     consumer_conf={"client.id": "pipeline"})
    first = a.wait_for("assigned", timeout=30)["member_id"]
    assert first, "librdkafka reported no member id"
    broker.kill9()
    a.kill9()  # the zombie: it keeps believing it holds `first`
    broker.restart(same_port=False)
    b = clients.read("ck", [(topic, 0)], "read_committed", group=group, max_ms=60000,
                     consumer_conf={"client.id": "pipeline"})
    second = b.wait_for("assigned", timeout=30)["member_id"]
    assert second != first, \
        "the restarted broker handed out member id %r again: a zombie holding it would pass KIP-447 fencing" % first
    clients.sentinels([(topic, 0)])
    check_view(b, {(topic, 0): []})
