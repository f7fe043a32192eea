"""``message.timestamp.before.max.ms`` and ``message.timestamp.after.max.ms`` with real
producers.

Invariant: a CreateTime topic refuses a record stamped more than ``before.max.ms`` before
the broker's clock or more than ``after.max.ms`` after it (Kafka 4's default: one hour
ahead, no bound behind) with INVALID_TIMESTAMP, which each client reports as its own
invalid-timestamp error for that record, and stores nothing of it; records inside the
window are delivered; a bound changed with IncrementalAlterConfigs applies to the next
produce.
"""

import time

import pytest

HOUR_MS = 3_600_000

# Each client's producer, with retries off so that a refusal is reported at once.
PRODUCER_CONF = {
    "ck": {"producer_conf": {"enable.idempotence": False, "retries": 0}},
    "kp": {"conf": {"enable_idempotence": False, "retries": 0}},
    "aio": {"conf": {"enable_idempotence": False}},
}
# What each client calls INVALID_TIMESTAMP (code 32).
INVALID_TIMESTAMP = {"ck": "INVALID_TIMESTAMP", "kp": "InvalidTimestampError", "aio": "InvalidTimestampError"}


def now_ms():
    return int(time.time() * 1000)


def produce_refused(clients, client, topic, record, conf):
    """Produces one record that must be refused; returns the names of the refusals the
    client reported (aiokafka raises from its send, and its driver exits with the error)."""
    if client == "aio":
        d = clients.start(client, "produce", topic=topic, records=[record], end="none", **conf)
        return [d.failed()["name"]], d
    d = clients.produce(client, topic, records=[record], **conf)
    return [e["name"] for e in d.of("delivery_error")], d


@pytest.mark.parametrize("client", ["ck", "kp", "aio"])
def test_a_record_outside_the_topics_window_is_refused(client, clients, names):
    topic = clients.create_topic(names("t"), 1, config={"message.timestamp.before.max.ms": "60000"})
    conf = PRODUCER_CONF[client]
    for stamp in (now_ms() - 10 * 60_000, now_ms() + 2 * HOUR_MS):
        names_, d = produce_refused(clients, client, topic, {"partition": 0, "value": "v", "timestamp": stamp}, conf)
        assert names_ == [INVALID_TIMESTAMP[client]], d.describe()
        assert not d.of("delivered"), d.describe()
    d = clients.produce(client, topic, records=[{"partition": 0, "value": "in the window",
                                                 "timestamp": now_ms() - 1000}], **conf)
    assert [e["offset"] for e in d.of("delivered")] == [0], d.describe()
    assert clients.offsets([(topic, 0)])[(topic, 0)]["high_read_uncommitted"] == 1, "only that record stored"


def test_a_live_change_of_the_bound_applies_to_the_next_produce(clients, names):
    topic = clients.create_topic(names("t"), 1)
    conf = PRODUCER_CONF["ck"]
    old = {"partition": 0, "value": "a day old", "timestamp": now_ms() - 24 * HOUR_MS}
    d = clients.produce("ck", topic, records=[old], **conf)
    assert d.of("delivered"), d.describe()
    d = clients.run("ck", "alter_configs", resources=[{
        "type": "topic", "name": topic, "ops": [["SET", "message.timestamp.before.max.ms", str(HOUR_MS)]]}])
    (e,) = d.of("altered")
    assert e["error"] is None, e
    names_, d = produce_refused(clients, "ck", topic, dict(old, timestamp=now_ms() - 24 * HOUR_MS), conf)
    assert names_ == ["INVALID_TIMESTAMP"], d.describe()
