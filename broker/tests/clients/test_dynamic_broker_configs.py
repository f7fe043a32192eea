"""Dynamic broker configs (``kafka-configs --entity-type brokers --entity-name <id>``) with
the admin clients operators use.

Invariant: a topic default changed on the BROKER resource named by this broker's id applies
to a served topic without its own value and to a topic created after: DescribeConfigs shows
the value with its source (DYNAMIC_BROKER_CONFIG), a DELETE gives the static default back,
a topic's own value still wins, and a broker config that is not a topic default is refused
with INVALID_REQUEST. confluent-kafka (librdkafka) and kafka-python each send them. Neither
can name the cluster-wide resource (``""``, ``--entity-default``): both refuse it before
sending, so ``broker/tests/alter_configs.rs`` covers that one over the wire.
"""

import pytest


def topic_config(clients, client, topic, key):
    d = clients.run(client, "describe_configs", resources=[{"type": "topic", "name": topic}])
    (e,) = d.of("configs")
    assert e["error"] is None, e
    c = e["configs"][key]
    return c["value"], c["source"]


def alter(clients, client, ops):
    d = clients.run(client, "alter_configs", resources=[{"type": "broker", "name": "0", "ops": ops}])
    (e,) = d.of("altered")
    return e


@pytest.mark.parametrize("client", ["ck", "kp"])
def test_broker_defaults_change_while_the_broker_serves(client, clients, names):
    topic = clients.create_topic(names("t"), 1)
    own = clients.create_topic(names("own"), 1, config={"retention.ms": "1000"})
    assert topic_config(clients, client, topic, "retention.ms") == ("604800000", "DEFAULT_CONFIG")

    e = alter(clients, client, [["SET", "log.retention.ms", "7000"]])
    assert e["error"] is None, e
    assert topic_config(clients, client, topic, "retention.ms") == ("7000", "DYNAMIC_BROKER_CONFIG")
    assert topic_config(clients, client, own, "retention.ms") == ("1000", "DYNAMIC_TOPIC_CONFIG")
    later = clients.create_topic(names("later"), 1)
    assert topic_config(clients, client, later, "retention.ms") == ("7000", "DYNAMIC_BROKER_CONFIG")

    e = alter(clients, client, [["DELETE", "log.retention.ms", None]])
    assert e["error"] is None, e
    assert topic_config(clients, client, topic, "retention.ms") == ("604800000", "DEFAULT_CONFIG")

    e = alter(clients, client, [["SET", "num.partitions", "3"]])
    assert e["error"] is not None and ("INVALID_REQUEST" in e["error"] or "InvalidRequest" in e["error"]), e
