"""Scenario 27: version negotiation.

Invariants:
* ApiVersions at an unknown version (v99), on a raw socket, is answered in the v0 format with
  error 35 UNSUPPORTED_VERSION and an ApiVersions entry saying which versions to retry with
  (0-4); the connection stays usable, and the retry at v0 and at v3 succeeds.
* The advertised ranges are exactly the broker contract's (section 2.6 of the reference), and
  nothing that must not be advertised is (KIP-848 ConsumerGroupHeartbeat, share groups,
  telemetry, WriteTxnMarkers, SaslHandshake).
* Every client connects: confluent-kafka (librdkafka 2.16), kafka-python (which must infer a
  broker version of at least 2.5, so it enables KIP-360 epoch bumps), aiokafka and kafkajs.
  (kcat, librdkafka 2.0.2, is in test_kcat.py.)
"""

import pytest

import kafka_wire as wire
from harness import CLIENTS

# The broker contract: (min, max) per API key.
CONTRACT = {
    18: (0, 4),    # ApiVersions
    3: (0, 12),    # Metadata
    0: (3, 9),     # Produce
    1: (4, 12),    # Fetch
    2: (1, 7),     # ListOffsets
    10: (0, 3),    # FindCoordinator
    22: (0, 4),    # InitProducerId
    24: (0, 3),    # AddPartitionsToTxn
    25: (0, 3),    # AddOffsetsToTxn
    26: (0, 3),    # EndTxn
    28: (0, 3),    # TxnOffsetCommit
    11: (0, 7),    # JoinGroup
    14: (0, 5),    # SyncGroup
    12: (0, 4),    # Heartbeat
    13: (0, 4),    # LeaveGroup
    8: (2, 8),     # OffsetCommit
    9: (1, 7),     # OffsetFetch
    23: (2, 4),    # OffsetForLeaderEpoch
    19: (2, 5),    # CreateTopics
}
# May be advertised (admin and debugging): DescribeGroups, ListGroups, DeleteTopics,
# DeleteRecords, DescribeConfigs, AlterConfigs, CreatePartitions, DeleteGroups, OffsetDelete,
# IncrementalAlterConfigs, DescribeCluster, DescribeProducers, DescribeTransactions,
# ListTransactions, and DescribeAcls, CreateAcls, DeleteAcls (answered SECURITY_DISABLED).
OPTIONAL = {15, 16, 20, 21, 29, 30, 31, 32, 33, 37, 42, 44, 47, 60, 61, 65, 66}
# Must not be: SaslHandshake, WriteTxnMarkers, ConsumerGroupHeartbeat/Describe (KIP-848),
# GetTelemetrySubscriptions/PushTelemetry, share groups.
FORBIDDEN = {17, 27, 68, 69, 71, 72, 76, 77, 78, 79, 80, 81, 82, 83, 84}


def roundtrip(sock, version, corr):
    sock.sendall(wire.api_versions_request(version, corr))
    return wire.read_frame(sock)


def check_advertised(keys):
    for k, rng in CONTRACT.items():
        assert keys.get(k) == rng, "API key %d advertised as %s, the contract says %s" % (k, keys.get(k), rng)
    extra = set(keys) - set(CONTRACT)
    assert not extra & FORBIDDEN, "advertises forbidden API keys %s" % sorted(extra & FORBIDDEN)
    assert extra <= OPTIONAL, "advertises unexpected API keys %s (all: %s)" % (sorted(extra - OPTIONAL), keys)


def test_unsupported_api_versions_version_gets_v0_error_reply(broker):
    with wire.connect(broker.bootstrap) as s:
        corr, err, keys = wire.parse_api_versions_v0(roundtrip(s, 99, 7))
        assert corr == 7
        assert err == 35, "ApiVersions v99 should fail with UNSUPPORTED_VERSION (35), got %d" % err
        assert keys.get(18) == (0, 4), "the reply must carry the ApiVersions range to retry with: %s" % keys
        # the client retries on the same connection
        corr, err, keys = wire.parse_api_versions_v0(roundtrip(s, 0, 8))
        assert (corr, err) == (8, 0)
        check_advertised(keys)


def test_api_versions_v3_flexible(broker):
    with wire.connect(broker.bootstrap) as s:
        corr, err, keys, throttle = wire.parse_api_versions_v3(roundtrip(s, 3, 11))
        assert (corr, err, throttle) == (11, 0, 0)
        check_advertised(keys)
        corr, err, keys4, _ = wire.parse_api_versions_v3(roundtrip(s, 4, 12))
        assert (corr, err) == (12, 0)
        assert keys4 == keys


@pytest.mark.parametrize("client", CLIENTS)
def test_every_client_connects(client, clients):
    info = clients.run(client, "info").of("info")[0]
    if client == "kp":
        inferred = tuple(info["producer_api_version"])
        assert inferred >= (2, 5), "kafka-python inferred broker version %s; KIP-360 needs >= 2.5" % (inferred,)
    if client in ("ck", "kjs"):
        host, port = broker_addr(clients)
        assert [b[1:] for b in info["brokers"]] == [[host, port]], \
            "Metadata must advertise the address clients dial: %s" % info["brokers"]


def broker_addr(clients):
    return clients.broker.host, clients.broker.port
