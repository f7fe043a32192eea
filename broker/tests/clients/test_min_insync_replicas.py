"""``min.insync.replicas`` with real producers.

Invariant: the broker is one replica, so an ``acks=all`` produce to a topic whose
``min.insync.replicas`` is 2 is refused with NOT_ENOUGH_REPLICAS (each client reports its
own not-enough-replicas error) and nothing is stored, as a Kafka partition with one in-sync
replica answers; ``acks=1`` is stored; DescribeConfigs shows the topic's value.
"""

import pytest

# Retries off: NOT_ENOUGH_REPLICAS is retriable, and each client would retry it until its
# delivery timeout.
CONF = {
    "ck": lambda acks: {"producer_conf": {"enable.idempotence": False, "retries": 0, "acks": acks}},
    "kp": lambda acks: {"conf": {"enable_idempotence": False, "retries": 0, "acks": acks}},
}
NOT_ENOUGH_REPLICAS = {"ck": "NOT_ENOUGH_REPLICAS", "kp": "NotEnoughReplicasError"}


@pytest.mark.parametrize("client", ["ck", "kp"])
def test_acks_all_is_refused_when_the_topic_wants_two_replicas(client, clients, names):
    topic = clients.create_topic(names("t"), 1, config={"min.insync.replicas": "2"})
    d = clients.produce(client, topic, records=[{"partition": 0, "value": "acks=all"}],
                        **CONF[client]("all" if client == "ck" else -1))
    assert [e["name"] for e in d.of("delivery_error")] == [NOT_ENOUGH_REPLICAS[client]], d.describe()
    assert not d.of("delivered"), d.describe()
    d = clients.produce(client, topic, records=[{"partition": 0, "value": "acks=1"}], **CONF[client](1))
    assert [e["offset"] for e in d.of("delivered")] == [0], d.describe()

    c = clients.run("ck", "describe_configs", resources=[{"type": "topic", "name": topic}])
    (e,) = c.of("configs")
    assert e["configs"]["min.insync.replicas"]["value"] == "2", e
    assert e["configs"]["min.insync.replicas"]["source"] == "DYNAMIC_TOPIC_CONFIG", e
