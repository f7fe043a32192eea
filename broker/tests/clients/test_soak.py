"""Scenario 30: a bounded soak.

Invariant: two exactly-once pipelines sharing a group, a producer that keeps writing aborted
transactions into their output topic, and read_committed consumers of that output run for a
fixed amount of work under a time cap. Throughout, the last stable offset of each output
partition never goes back and stays within a bounded distance of the high watermark, and the
broker's resident memory stays flat. At the end every input record is in the output exactly
once, no aborted record reaches a read_committed consumer (librdkafka, kafka-python, aiokafka),
and each consumer's offsets increase per partition.
"""

import time

import pytest

from harness import assert_offsets_increase
from test_pipeline import make_input, verify_output

PARTITIONS, PER_PARTITION = 3, 400
MAX_LAG = 2000  # records between the LSO and the HW: a few open transactions' worth
MAX_RSS_GROWTH_KB = 64 * 1024


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


@pytest.mark.timeout(300)
def test_bounded_soak(clients, broker, names):
    src = clients.create_topic(names("in"), PARTITIONS)
    dst = clients.create_topic(names("out"), PARTITIONS)
    inputs = make_input(clients, src, PARTITIONS, PER_PARTITION)
    out_parts = [(dst, p) for p in range(PARTITIONS)]
    group = names("g")
    pipes = [clients.start("ck", "pipeline", input_topics=[src], output_topic=dst, group=group,
                           transactional_id=names("tx%d" % i), commit_every=10, txn_timeout_ms=10000,
                           record_delay_ms=10)
             for i in range(2)]
    aborted = [{"records": [{"partition": j % PARTITIONS, "key": "a", "value": "aborted-%d-%d" % (i, j)}
                            for j in range(6)], "end": "abort"} for i in range(60)]
    aborter = clients.start("ck", "produce", topic=dst, transactional_id=names("aborter"),
                            transactions=aborted, pause_ms=150)
    rss = [rss_kb(broker.pid)]
    lso = {tp: -1 for tp in out_parts}
    max_lag = 0
    w = clients.start("ck", "wait_committed", group=group, max_ms=180000,
                      targets=[[src, p, PER_PARTITION] for p in range(PARTITIONS)])
    while w.returncode is None:
        for p in pipes:
            assert p.returncode is None, "a pipeline exited\n" + p.describe()
        for tp, r in clients.offsets(out_parts).items():
            stable, high = r["high_read_committed"], r["high_read_uncommitted"]
            assert stable >= lso[tp], "the LSO of %s went back: %d -> %d" % (tp, lso[tp], stable)
            lso[tp] = stable
            max_lag = max(max_lag, high - stable)
        rss.append(rss_kb(broker.pid))
        time.sleep(0.5)
    w.ok(10)
    assert w.of("done")[0]["ok"], "group %s did not commit every input: %s" % (group, w.of("done")[0]["offsets"])
    aborter.ok(120)
    for p in pipes:
        p.send("stop")
    for p in pipes:
        p.ok(60)
    assert len(rss) >= 5, "the soak ended before it was sampled: %s" % rss
    assert max_lag <= MAX_LAG, "the LSO fell %d records behind the HW" % max_lag
    assert max(rss) - rss[0] <= MAX_RSS_GROWTH_KB, "broker RSS grew from %d to %d kB: %s" % (
        rss[0], max(rss), rss)
    verify_output(clients, group, src, dst, PARTITIONS, inputs)  # ck, read_committed
    for client in ("kp", "aio"):
        r = clients.read(client, out_parts, "read_committed", max_ms=60000)
        r.ok(90)
        assert not r.of("done")[0]["timed_out"], r.describe()
        got = r.data_records
        leaked = [x for x in got if x["value"].startswith("aborted-")]
        assert not leaked, "%s delivered aborted records: %s" % (client, leaked[:5])
        assert len(got) == len(inputs), "%s delivered %d of %d" % (client, len(got), len(inputs))
        assert_offsets_increase(got, client)
    print("soak: %d RSS samples %d..%d kB, max LSO lag %d" % (len(rss), min(rss), max(rss), max_lag))
