"""DescribeConfigs (``kafka-configs --describe``) with the admin clients operators use.

Invariant: a topic's configs are described with the value its logs apply and Kafka's source:
TOPIC_CONFIG (DYNAMIC_TOPIC_CONFIG in both clients' names) for the topic's own (``cleanup.policy=compact`` from CreateTopics),
STATIC_BROKER_CONFIG for what the broker's ``--config`` sets for every topic
(``log.retention.ms``), DEFAULT_CONFIG otherwise, with the broker config behind each as its
synonym; the broker resource "0" lists the broker's own configs the same way. An unknown topic
is UNKNOWN_TOPIC_OR_PARTITION (librdkafka reports per-resource errors; kafka-python drops them
and shows no configs). Both clients send a broker's resource to that broker, so another
broker id never reaches this one (broker/tests/describe_configs.rs covers its answer).
"""

import pytest


@pytest.mark.broker_config({"log.retention.ms": "3600000"})
@pytest.mark.parametrize("client", ["ck", "kp"])
def test_topic_and_broker_configs_are_described_with_their_sources(client, clients, names):
    topic = clients.create_topic(names("t"), 1, config={"cleanup.policy": "compact"})
    missing = names("missing")
    resources = [
        {"type": "topic", "name": topic},
        {"type": "broker", "name": "0"},
        {"type": "topic", "name": missing},
    ]
    d = clients.run(client, "describe_configs", resources=resources)
    got = {(e["type"], e["name"]): e for e in d.of("configs")}
    assert len(got) == len(resources), d.describe()

    t = got[("topic", topic)]
    assert t["error"] is None, t
    c = t["configs"]
    source = {k: (v["value"], v["source"]) for k, v in c.items()}
    assert source["cleanup.policy"] == ("compact", "DYNAMIC_TOPIC_CONFIG"), source
    assert source["retention.ms"] == ("3600000", "STATIC_BROKER_CONFIG"), source
    assert source["segment.bytes"] == ("1073741824", "DEFAULT_CONFIG"), source
    # Alterable (test_alter_configs.py), but for the two the store fixes.
    fixed = {"eoslog.high.watermark", "eoslog.transaction.verification"}
    assert {k for k, v in c.items() if v["read_only"]} == fixed, c
    if client == "kp":
        # Asked with synonyms: the topic's own value first, then the broker's, then the default.
        assert c["retention.ms"]["synonyms"] == [
            ["log.retention.ms", "3600000", "STATIC_BROKER_CONFIG"],
            # Kafka's default is log.retention.hours=168 (log.retention.ms has none).
            ["log.retention.hours", "168", "DEFAULT_CONFIG"],
        ], c["retention.ms"]
        assert c["cleanup.policy"]["synonyms"] == [
            ["cleanup.policy", "compact", "DYNAMIC_TOPIC_CONFIG"],
            ["log.cleanup.policy", "delete", "DEFAULT_CONFIG"],
        ], c["cleanup.policy"]

    b = got[("broker", "0")]
    assert b["error"] is None, b
    bsource = {k: (v["value"], v["source"]) for k, v in b["configs"].items()}
    assert bsource["log.retention.ms"] == ("3600000", "STATIC_BROKER_CONFIG"), bsource
    assert bsource["transaction.max.timeout.ms"] == ("30000", "STATIC_BROKER_CONFIG"), bsource
    assert bsource["num.partitions"] == ("1", "DEFAULT_CONFIG"), bsource

    if client == "ck":
        # librdkafka's short name for UNKNOWN_TOPIC_OR_PARTITION.
        assert (got[("topic", missing)]["error"], got[("topic", missing)]["configs"]) == (
            "UNKNOWN_TOPIC_OR_PART", {}), got[("topic", missing)]
    else:
        assert got[("topic", missing)]["configs"] == {}


@pytest.mark.parametrize("client", ["ck", "kp"])
def test_replication_and_compression_level_configs_are_taken_and_described(client, clients, names):
    """The configs a single replica keeps without acting on them, and the compression levels,
    are taken at creation and described as the topic's own, the rest at Kafka's defaults;
    a produce to the topic is stored."""
    topic = clients.create_topic(names("t"), 1, config={
        "unclean.leader.election.enable": "false",
        "leader.replication.throttled.replicas": "*",
        "compression.type": "zstd",
        "compression.zstd.level": "10",
    })
    d = clients.run(client, "describe_configs", resources=[{"type": "topic", "name": topic}])
    (t,) = d.of("configs")
    source = {k: (v["value"], v["source"]) for k, v in t["configs"].items()}
    assert source["unclean.leader.election.enable"] == ("false", "DYNAMIC_TOPIC_CONFIG"), source
    assert source["leader.replication.throttled.replicas"] == ("*", "DYNAMIC_TOPIC_CONFIG"), source
    assert source["compression.zstd.level"] == ("10", "DYNAMIC_TOPIC_CONFIG"), source
    assert source["compression.gzip.level"] == ("-1", "DEFAULT_CONFIG"), source
    assert source["compression.lz4.level"] == ("9", "DEFAULT_CONFIG"), source
    assert source["follower.replication.throttled.replicas"][1] == "DEFAULT_CONFIG", source
    assert source["remote.storage.enable"] == ("false", "DEFAULT_CONFIG"), source

    p = clients.produce(client, topic, records=[{"partition": 0, "value": "stored at zstd level 10"}])
    assert [e["offset"] for e in p.of("delivered")] == [0], p.describe()


@pytest.mark.broker_config({"log.segment.delete.delay.ms": "5000"})
def test_file_delete_delay_is_a_topic_config_with_its_broker_default(clients, names):
    """``file.delete.delay.ms`` (how long a deleted segment's files wait as ``.deleted``) is
    taken at creation, and ``log.segment.delete.delay.ms`` is its broker default."""
    own = clients.create_topic(names("own"), 1, config={"file.delete.delay.ms": "0"})
    other = clients.create_topic(names("other"), 1)
    d = clients.run("kp", "describe_configs", resources=[
        {"type": "topic", "name": own}, {"type": "topic", "name": other}])
    got = {e["name"]: e["configs"]["file.delete.delay.ms"] for e in d.of("configs")}
    assert (got[own]["value"], got[own]["source"]) == ("0", "DYNAMIC_TOPIC_CONFIG"), got
    assert (got[other]["value"], got[other]["source"]) == ("5000", "STATIC_BROKER_CONFIG"), got
    assert got[other]["synonyms"] == [
        ["log.segment.delete.delay.ms", "5000", "STATIC_BROKER_CONFIG"],
        ["log.segment.delete.delay.ms", "60000", "DEFAULT_CONFIG"],
    ], got


@pytest.mark.broker_config({"log.retention.hours": "2", "log.roll.hours": "1"})
def test_broker_defaults_in_hours_reach_the_topics(clients, names):
    """A server.properties' ``log.retention.hours`` and ``log.roll.hours`` give every topic
    its ``retention.ms`` and ``segment.ms`` in milliseconds."""
    topic = clients.create_topic(names("t"), 1)
    d = clients.run("ck", "describe_configs", resources=[{"type": "topic", "name": topic}])
    (t,) = d.of("configs")
    source = {k: (v["value"], v["source"]) for k, v in t["configs"].items()}
    assert source["retention.ms"] == ("7200000", "STATIC_BROKER_CONFIG"), source
    assert source["segment.ms"] == ("3600000", "STATIC_BROKER_CONFIG"), source
    # Asked with synonyms (kafka-python): the broker config named as it was given.
    k = clients.run("kp", "describe_configs", resources=[{"type": "topic", "name": topic}])
    (kt,) = k.of("configs")
    # Then Kafka's default, which it names in hours too (log.retention.ms has none).
    assert kt["configs"]["retention.ms"]["synonyms"] == [
        ["log.retention.hours", "2", "STATIC_BROKER_CONFIG"],
        ["log.retention.hours", "168", "DEFAULT_CONFIG"],
    ], kt
    assert kt["configs"]["segment.ms"]["synonyms"] == [
        ["log.roll.hours", "1", "STATIC_BROKER_CONFIG"],
        ["log.roll.hours", "168", "DEFAULT_CONFIG"],
    ], kt
    b = clients.run("ck", "describe_configs", resources=[{"type": "broker", "name": "0"}])
    (bc,) = b.of("configs")
    assert (bc["configs"]["log.retention.hours"]["value"], bc["configs"]["log.retention.hours"]["source"]) == (
        "2", "STATIC_BROKER_CONFIG"), bc
