"""confluent-kafka's ``describe_cluster`` (librdkafka 2.16 sends Metadata v10 with
``include_cluster_authorized_operations``; DescribeCluster itself is covered over the wire in
``broker/tests/metadata.rs``).

Invariant: the cluster id is the broker's, the one node is this broker at its advertised
address and is the controller, and with no authorizer every operation Kafka allows on a
cluster is authorized, as Kafka answers Metadata v8-v10.
"""


def test_describe_cluster_names_this_broker(clients, broker):
    d = clients.run("ck", "describe_cluster")
    (c,) = d.of("cluster")
    host, port = broker.bootstrap.rsplit(":", 1)
    assert c["cluster_id"] == "eoslog", c
    assert c["nodes"] == [[c["controller"], host, int(port)]], c
    assert c["authorized_operations"] == sorted(
        ["ALTER", "ALTER_CONFIGS", "CLUSTER_ACTION", "CREATE", "DESCRIBE", "DESCRIBE_CONFIGS", "IDEMPOTENT_WRITE"]), c
