"""Scenario 28: an idempotent producer across a broker crash.

Invariant: librdkafka, idempotent with acks=all and up to 5 requests in flight, produces a
stream to two partitions while the broker is SIGKILLed and restarted on the same data
directory. Afterwards each partition holds every record exactly once, in the order it was
produced (no duplicate from a retried batch, no gap), and every delivery report names the
offset where that record really is: a retry answered as a duplicate gets the original
offsets, which the restarted broker rebuilt from its log and snapshots.
"""

import time

from harness import check_view

RECORDS = 60000
KILL_AFTER = 10000


def test_idempotent_producer_across_a_broker_crash(clients, broker, names):
    topic = clients.create_topic(names("t"), 2)
    # librdkafka caps an idempotent producer at 5 requests in flight per connection.
    p = clients.start("ck", "produce", topic=topic, generate={"count": RECORDS, "partitions": 2},
                      end="none")
    deadline = time.monotonic() + 60
    while len(p.of("delivered")) < KILL_AFTER:
        assert p.returncode is None, "the producer ended before the crash\n" + p.describe()
        assert time.monotonic() < deadline, "too few deliveries before the crash\n" + p.describe()
        time.sleep(0.01)
    broker.kill9()
    in_flight_at_kill = RECORDS - len(p.of("delivered"))
    time.sleep(0.5)
    broker.restart(same_port=True)
    p.ok(timeout=180)
    assert in_flight_at_kill > 0, "every record was delivered before the crash: nothing was tested"
    delivered = p.of("delivered")
    assert not p.of("delivery_error"), p.describe()
    assert len(delivered) == RECORDS, "%d of %d delivered" % (len(delivered), RECORDS)

    tps = [(topic, 0), (topic, 1)]
    clients.sentinels(tps)
    expected = {tp: ["v%d" % i for i in range(RECORDS) if i % 2 == tp[1]] for tp in tps}
    reader = check_view(clients.read("ck", tps, "read_uncommitted", max_ms=120000), expected,
                        timeout=180)
    at = {(r["topic"], r["partition"], r["offset"]): r["value"] for r in reader.data_records}
    wrong = [d for d in delivered if at.get((d["topic"], d["partition"], d["offset"])) != d["value"]]
    assert not wrong, "%d delivery reports name an offset that holds another record, e.g. %s" % (
        len(wrong), wrong[:3])
