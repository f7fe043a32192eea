"""Scenario 26: committed offsets survive a broker crash.

Invariant: an OffsetCommit and a TxnOffsetCommit whose transaction was committed with
EndTxn, each acknowledged, survive a SIGKILL of the broker immediately after the
acknowledgement. After the restart OffsetFetch answers the committed offset with its
metadata string and its leader epoch (with and without require_stable), and a consumer
joining the group starts exactly at the committed offsets (librdkafka validates the position
with OffsetForLeaderEpoch first): no reset to the earliest or latest offset.
"""

from harness import check_view

RECORDS = 10


def test_offsets_survive_a_broker_crash(clients, broker, names):
    topic = clients.create_topic(names("t"), 2)
    out = clients.create_topic(names("out"), 1)
    plain, txn = names("g"), names("gt")
    clients.produce("ck", topic, [{"partition": p, "key": "k", "value": "p%d-%d" % (p, i)}
                                  for p in (0, 1) for i in range(RECORDS)])
    clients.run("ck", "commit_offsets", group=plain,
                offsets=[[topic, 0, 4, "meta-0", 0], [topic, 1, 7, "meta-1", 0]])
    clients.produce("ck", out, [{"partition": 0, "key": "x", "value": "t"}], txid=names("tx"),
                    end="commit", offsets={"group": txn, "offsets": [[topic, 0, 2], [topic, 1, 9]]})
    broker.kill9()
    broker.restart(same_port=True)

    tps = [(topic, 0), (topic, 1)]
    for isolation in ("read_uncommitted", "read_committed"):
        got = clients.committed(plain, tps, isolation=isolation)
        assert [got[tp]["offset"] for tp in tps] == [4, 7], got
        assert [got[tp]["metadata"] for tp in tps] == ["meta-0", "meta-1"], got
        assert [got[tp]["leader_epoch"] for tp in tps] == [0, 0], got
        got = clients.committed(txn, tps, isolation=isolation)
        assert [got[tp]["offset"] for tp in tps] == [2, 9], got

    clients.sentinels(tps)
    for group, starts in ((plain, (4, 7)), (txn, (2, 9))):
        expected = {(topic, p): ["p%d-%d" % (p, i) for i in range(starts[p], RECORDS)] for p in (0, 1)}
        check_view(clients.read("ck", tps, "read_committed", group=group), expected)
