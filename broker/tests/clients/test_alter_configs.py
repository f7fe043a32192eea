"""IncrementalAlterConfigs and AlterConfigs (``kafka-configs --alter``) with the admin clients
operators use.

Invariant: a topic's own configs change while the broker serves it, and DescribeConfigs
then shows the new values with the topic's source (DYNAMIC_TOPIC_CONFIG); a DELETE gives
the key its default back; a list op (APPEND) edits ``cleanup.policy``; ``validate_only``
changes nothing; an unknown key is INVALID_CONFIG and changes nothing. confluent-kafka
(librdkafka) sends IncrementalAlterConfigs, and AlterConfigs through its deprecated
``alter_configs``; kafka-python sends either, and for AlterConfigs first reads the topic's
own configs and sends them along (the request replaces them all).
"""

import pytest


def configs(clients, client, topic):
    d = clients.run(client, "describe_configs", resources=[{"type": "topic", "name": topic}])
    (e,) = d.of("configs")
    assert e["error"] is None, e
    return {k: (v["value"], v["source"]) for k, v in e["configs"].items()}


def alter(clients, client, topic, ops, **kw):
    d = clients.run(client, "alter_configs", resources=[{"type": "topic", "name": topic, "ops": ops}], **kw)
    (e,) = d.of("altered")
    return e


@pytest.mark.parametrize("client", ["ck", "kp"])
def test_incremental_alter_configs_changes_a_served_topic(client, clients, names):
    topic = clients.create_topic(names("t"), 1, config={"retention.ms": "1000"})
    d = clients.produce("ck", topic, records=[{"partition": 0, "value": "no key, before"}])
    assert d.of("delivered"), d.describe()

    e = alter(clients, client, topic, [["SET", "max.message.bytes", "2000"], ["DELETE", "retention.ms", None],
                                       ["APPEND", "cleanup.policy", "compact"]])
    assert e["error"] is None, e
    c = configs(clients, client, topic)
    assert c["max.message.bytes"] == ("2000", "DYNAMIC_TOPIC_CONFIG"), c
    assert c["cleanup.policy"] == ("delete,compact", "DYNAMIC_TOPIC_CONFIG"), c
    assert c["retention.ms"] == ("604800000", "DEFAULT_CONFIG"), c

    # validate_only answers as a change would and changes nothing.
    e = alter(clients, client, topic, [["SET", "segment.ms", "60000"]], validate_only=True)
    assert e["error"] is None, e
    assert configs(clients, client, topic)["segment.ms"] == ("604800000", "DEFAULT_CONFIG")

    # An unknown key refuses the whole resource.
    e = alter(clients, client, topic, [["SET", "segment.ms", "60000"], ["SET", "no.such.config", "1"]])
    assert e["error"] is not None and ("INVALID_CONFIG" in e["error"] or "InvalidConfiguration" in e["error"]), e
    assert configs(clients, client, topic)["segment.ms"] == ("604800000", "DEFAULT_CONFIG")

    # The partition serves on under its new config: compacted now, it refuses a record
    # without a key (it took one before the change) and takes one with a key.
    d = clients.produce("ck", topic, records=[{"partition": 0, "value": "no key"}],
                        producer_conf={"enable.idempotence": False, "retries": 0})
    assert [e["name"] for e in d.of("delivery_error")] == ["INVALID_RECORD"], d.describe()
    d = clients.produce("ck", topic, records=[{"partition": 0, "key": "k", "value": "after"}])
    assert d.of("delivered"), d.describe()


@pytest.mark.parametrize("client", ["ck", "kp"])
def test_alter_configs_replaces_the_topics_configs(client, clients, names):
    topic = clients.create_topic(names("t"), 1, config={"retention.ms": "1000", "cleanup.policy": "compact"})
    e = alter(clients, client, topic, [["SET", "segment.ms", "60000"]], incremental=False)
    assert e["error"] is None, e
    c = configs(clients, client, topic)
    assert c["segment.ms"] == ("60000", "DYNAMIC_TOPIC_CONFIG"), c
    if client == "ck":
        # The request replaced the topic's configs: the others are back to their defaults.
        assert c["retention.ms"] == ("604800000", "DEFAULT_CONFIG"), c
        assert c["cleanup.policy"] == ("delete", "DEFAULT_CONFIG"), c
    else:
        # kafka-python sent the topic's own configs along.
        assert c["retention.ms"] == ("1000", "DYNAMIC_TOPIC_CONFIG"), c
        assert c["cleanup.policy"] == ("compact", "DYNAMIC_TOPIC_CONFIG"), c
