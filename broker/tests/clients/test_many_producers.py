"""Scenario 9: many transactional producers interleaving on one partition.

Invariant: twelve transactional producers (confluent-kafka, kafka-python and aiokafka in
turn), each running four transactions that commit or abort at random, interleave on one
partition. read_committed consumers deliver exactly the committed records, in offset order,
with no aborted record; and the last stable offset seen by repeated ListOffsets queries
while they run never goes backwards.
"""

import random
import time

from harness import check_view, usable

PRODUCERS = 12
TXNS = 4
PER_TXN = 3


def test_many_producers_interleave_on_one_partition(clients, names):
    topic = clients.create_topic(names("t"), 1)
    tp = (topic, 0)
    rng = random.Random(9)
    plans = []
    for n in range(PRODUCERS):
        txns = [{"records": [{"partition": 0, "key": "p%d" % n, "value": "p%d-t%d-r%d" % (n, t, r)}
                             for r in range(PER_TXN)],
                 "end": rng.choice(["commit", "commit", "abort"])}
                for t in range(TXNS)]
        plans.append(txns)
    kinds = ("ck", "kp", "aio")
    producers = [clients.start(kinds[n % len(kinds)], "produce", topic=topic, transactional_id=names("tx%d" % n),
                               transactions=txns, txn_timeout_ms=20000)
                 for n, txns in enumerate(plans)]
    lso_seen = []
    while any(p.returncode is None for p in producers):
        lso_seen.append(clients.offsets([tp])[tp]["high_read_committed"])
        time.sleep(0.2)
    for p in producers:
        p.ok(timeout=120)
    assert lso_seen == sorted(lso_seen), "the LSO went backwards: %s" % lso_seen

    offset_of = {}
    for p in producers:
        for d in p.of("delivered"):
            offset_of[d["value"]] = d["offset"]
    committed = [r["value"] for txns in plans for t in txns if t["end"] == "commit" for r in t["records"]]
    missing = [v for v in committed if v not in offset_of]
    assert not missing, "no delivery report for %s" % missing[:5]
    expected = sorted(committed, key=offset_of.__getitem__)
    clients.sentinels([tp])
    for c in usable():
        check_view(clients.read(c, [tp], "read_committed", max_ms=60000), {tp: expected})
