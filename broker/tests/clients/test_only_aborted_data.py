"""Scenario 6: a fetch response made only of aborted data (librdkafka's 0129 shape).

Invariant: aborted transactions holding ten times a consumer's fetch.max.bytes, followed by
one small committed transaction, are crossed by every read_committed consumer (all four
clients) with no error and no stall: each delivers exactly the committed records and reaches
the sentinel behind them. Every fetch of the aborted range returns nothing but aborted batches
(the broker returns them whole, as Kafka does; the client drops them using the response's
aborted-transaction list), so a client that waited for a non-empty delivery before asking
for the next offset would stall here.

eoslog-broker has no broker-side filter of aborted data (nor has Kafka), so the scenario's
"filter on" case does not apply.
"""

import pytest

from harness import CLIENTS, check_view

FETCH_MAX = 64 * 1024
# Records of "v<i>" with key "k0" take ~12 bytes in a batch: 60,000 of them are ~700 KiB,
# over ten fetches' worth, split into three aborted transactions, in batches of at most 16 KiB
# so that a fetch holds several of them (a first batch larger than the fetch limit is
# returned whole, KIP-74).
ABORTED_PER_TXN = 20000
ABORTED_TXNS = 3

# Each client's names for "a fetch returns at most FETCH_MAX bytes".
SMALL_FETCH = {
    "ck": {"fetch.max.bytes": FETCH_MAX, "max.partition.fetch.bytes": FETCH_MAX,
           "message.max.bytes": FETCH_MAX},
    "kp": {"fetch_max_bytes": FETCH_MAX, "max_partition_fetch_bytes": FETCH_MAX},
    "aio": {"fetch_max_bytes": FETCH_MAX, "max_partition_fetch_bytes": FETCH_MAX},
    "kjs": {"maxBytes": FETCH_MAX, "maxBytesPerPartition": FETCH_MAX},
}


@pytest.mark.parametrize("consumer", CLIENTS)
def test_consumer_crosses_only_aborted_fetches(consumer, clients, names):
    topic = clients.create_topic(names("t"), 1)
    txid = names("tx")
    for _ in range(ABORTED_TXNS):
        d = clients.run("ck", "produce", timeout=120.0, topic=topic, transactional_id=txid,
                        generate={"count": ABORTED_PER_TXN, "partitions": 1}, end="abort",
                        producer_conf={"batch.size": 16384})
        assert [e["end"] for e in d.of("txn_end")] == ["abort"]
    committed = [{"partition": 0, "key": "c", "value": "committed-%d" % i} for i in range(5)]
    clients.produce("ck", topic, committed, txid=txid)
    end = clients.sentinels([(topic, 0)])[(topic, 0)]
    # Every aborted record, an abort marker per aborted transaction, the committed records
    # and their commit marker come before the sentinel.
    assert end == ABORTED_TXNS * (ABORTED_PER_TXN + 1) + len(committed) + 1, end

    r = clients.read(consumer, [(topic, 0)], "read_committed", max_ms=60000,
                     consumer_conf=SMALL_FETCH[consumer])
    check_view(r, {(topic, 0): [c["value"] for c in committed]}, timeout=90.0)
