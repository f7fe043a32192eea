"""``min.insync.replicas`` with real producers.

Invariant: the broker is one replica, and Kafka (3.7+, KAFKA-15583) requires
``min(min.insync.replicas, replicas)`` in-sync replicas, so an ``acks=all`` produce to a
topic created with ``min.insync.replicas=2`` is stored, as a single-replica Kafka topic
stores it; DescribeConfigs shows the topic's value.
"""

import pytest


@pytest.mark.parametrize("client", ["ck", "kp"])
def test_acks_all_is_stored_on_a_one_replica_topic_asking_for_two(client, clients, names):
    topic = clients.create_topic(names("t"), 1, config={"min.insync.replicas": "2"})
    d = clients.produce(client, topic, records=[{"partition": 0, "value": "acks=all"}])
    assert [e["offset"] for e in d.of("delivered")] == [0], d.describe()

    c = clients.run("ck", "describe_configs", resources=[{"type": "topic", "name": topic}])
    (e,) = c.of("configs")
    assert e["configs"]["min.insync.replicas"]["value"] == "2", e
    assert e["configs"]["min.insync.replicas"]["source"] == "DYNAMIC_TOPIC_CONFIG", e
