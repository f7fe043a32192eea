"""Group membership across a broker crash (scenarios 19 and 22).

Invariants:
* a Stable group survives a broker SIGKILL as Kafka's survives a coordinator failover: the
  restarted broker resumes the stored group, so its librdkafka members keep their member ids
  and partitions, their heartbeats of the old generation are answered, and no rebalance
  happens, even past the session timeout;
* a member id handed out before a broker SIGKILL is never handed out again after the
  restart. KIP-447 fencing of zombie pipeline members rests on it: TxnOffsetCommit v3 is checked
against (member id, generation), so if a restarted broker gives a new member the id (and the
generation) a zombie still holds, the zombie's stale offsets are accepted, and exactly-once is
lost. Kafka makes member ids unique with a UUID (client id + "-" + UUID).
"""

import time

from harness import check_view, owned, settle

SESSION_TIMEOUT_S = 6.0  # the drivers' session.timeout.ms


def test_stable_group_resumes_without_a_rebalance(clients, broker, names):
    topic = clients.create_topic(names("t"), 4)
    want = {(topic, p) for p in range(4)}
    group = names("g")
    members = [clients.start("ck", "member", group=group, topics=[topic], strategy="range")
               for _ in range(2)]
    settle(members, want, 30)

    def state():
        return [(len(m.of("owns")), owned(m), m.of("owns")[-1]["member_id"]) for m in members]

    before = state()
    broker.kill9()
    assert broker.restart(same_port=True), "the broker came back on another port; the members cannot follow"
    # A member the broker had forgotten hears UNKNOWN_MEMBER_ID at its next heartbeat
    # (every 500 ms) and rejoins; one whose heartbeats went unanswered would be evicted
    # once its session ran out. Wait past both.
    time.sleep(SESSION_TIMEOUT_S + 2)
    assert state() == before, "the group rebalanced across the restart:\n%s" % "\n".join(
        m.describe(6) for m in members)
    for m in members:
        m.send("stop")
        m.wait_for("done", timeout=30)


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
