"""ACL calls of the admin clients (``kafka-acls``).

Invariant: the broker authorizes nothing, as a Kafka broker without an authorizer, and
answers CreateAcls, DescribeAcls and DeleteAcls as such a broker does: each client reports
its own "security disabled" error for the calls whose answer it reads, no ACL is created,
listed or deleted, and the broker serves on (a produce after the calls is stored). The broker
describes ``authorizer.class.name`` as empty, as Kafka's default.

librdkafka drops DescribeAcls' top-level error code (``rd_kafka_DescribeAclsResponse_parse``
reads it and returns no error), so confluent-kafka reports an empty listing without an
error, against a Kafka broker without an authorizer as here; tools tell the two apart by
``authorizer.class.name``.
"""

import pytest

SECURITY_DISABLED = {"ck": "SECURITY_DISABLED", "kp": "SecurityDisabledError"}
# What each client reports for DescribeAcls (see above).
DESCRIBE_ERROR = {"ck": None, "kp": "SecurityDisabledError"}


@pytest.mark.parametrize("client", ["ck", "kp"])
def test_acl_calls_are_refused_as_security_disabled(client, clients, names):
    topic = clients.create_topic(names("t"), 1)
    d = clients.run(client, "acls", topic=topic, principal="User:alice")
    calls = [(e["call"], e["error"], e["acls"]) for e in d.of("acl")]
    err = SECURITY_DISABLED[client]
    assert calls == [("create", err, 0), ("describe", DESCRIBE_ERROR[client], 0), ("delete", err, 0)], d.describe()

    p = clients.produce(client, topic, records=[{"partition": 0, "value": "after the ACL calls"}])
    assert [e["offset"] for e in p.of("delivered")] == [0], p.describe()


def test_the_broker_describes_no_authorizer(clients, broker):
    c = clients.run("ck", "describe_configs", resources=[{"type": "broker", "name": "0"}])
    (e,) = c.of("configs")
    assert e["error"] is None, e
    assert e["configs"]["authorizer.class.name"]["value"] in ("", None), e
    assert e["configs"]["authorizer.class.name"]["source"] == "DEFAULT_CONFIG", e
