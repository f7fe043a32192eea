"""Scenarios 12, 13 and 14: the broker enforces transaction timeouts.

Invariants:
* (12) a producer killed with an open transaction (transaction.timeout.ms 5000) and never
  restarted: the broker aborts the transaction by itself within the timeout plus the sweep
  period (200 ms here), never before the timeout; the LSO is unpinned, read_committed
  consumers move on past it and never deliver its records.
* (13) a producer hung (SIGSTOP) past its timeout and then resumed: its commit fails with
  its client's fatal fenced error (the expiry bumped the epoch, redpanda expired_tx_test) and
  nothing it wrote is ever visible.
* (14) init_transactions with transaction.timeout.ms above the broker's
  transaction.max.timeout.ms fails with INVALID_TRANSACTION_TIMEOUT (librdkafka 0103
  do_test_misuse_txn), for every client.
"""

import time

import pytest

from harness import CLIENTS, check_view

TXN_TIMEOUT_MS = 5000


def open_txn(clients, client, names, topic, n=3):
    d = clients.start(client, "txn_open_and_hang", transactional_id=names("tx"), txn_timeout_ms=TXN_TIMEOUT_MS,
                      records=[{"topic": topic, "partition": 0, "key": "z", "value": "zombie-%d" % i}
                               for i in range(n)])
    return d


@pytest.mark.parametrize("client", ["ck", "kp"])
def test_killed_producer_is_aborted_by_timeout(client, clients, names):
    topic = clients.create_topic(names("t"), 1)
    tp = (topic, 0)
    started = time.monotonic()  # the transaction begins after this
    p = open_txn(clients, client, names, topic)
    p.wait_for("open", timeout=30)
    p.kill9()
    assert clients.sentinels([tp]) == {tp: 3}

    r = clients.read("ck", [tp], "read_committed", max_ms=60000)
    first = r.wait_for("record", timeout=60)
    waited = first["_t"] - started
    assert waited >= TXN_TIMEOUT_MS / 1000 - 0.5, \
        "the transaction ended %.1f s after it began, before its %d ms timeout" % (waited, TXN_TIMEOUT_MS)
    assert time.monotonic() - started < TXN_TIMEOUT_MS / 1000 + 15, "the broker took too long to abort"
    check_view(r, {tp: []})

    offs = clients.offsets([tp])[tp]
    assert offs["high_read_committed"] == offs["high_read_uncommitted"] == 5, offs
    check_view(clients.read("kp", [tp], "read_committed"), {tp: []})


@pytest.mark.timeout(300)
@pytest.mark.parametrize("client", CLIENTS)
def test_hung_producer_is_fenced_after_timeout(client, clients, names):
    topic = clients.create_topic(names("t"), 1)
    tp = (topic, 0)
    p = open_txn(clients, client, names, topic)
    p.wait_for("open", timeout=30)
    p.sigstop()
    time.sleep(TXN_TIMEOUT_MS / 1000 + 3)
    p.sigcont()
    p.send("commit")
    err = p.failed(timeout=60)
    assert err["kind"] == "fenced", "the expired producer's commit should be fenced: %s\n%s" % (err, p.describe())
    if client in ("aio", "kjs"):
        assert err["code"] == 47, err

    clients.sentinels([tp])
    check_view(clients.read("ck", [tp], "read_committed"), {tp: []})
    check_view(clients.read(client, [tp], "read_committed"), {tp: []})


@pytest.mark.broker_config({"transaction.max.timeout.ms": 10000})
@pytest.mark.parametrize("client", CLIENTS)
def test_timeout_above_maximum_is_refused(client, clients, names):
    topic = clients.create_topic(names("t"), 1)
    d = clients.start(client, "produce", transactional_id=names("tx"), txn_timeout_ms=20000,
                      topic=topic, records=[{"partition": 0, "value": "never"}], end="commit")
    err = d.failed(timeout=60)
    assert err["kind"] == "invalid_txn_timeout", "expected INVALID_TRANSACTION_TIMEOUT: %s\n%s" % (err, d.describe())
    # a timeout within the maximum works on the same broker
    clients.produce(client, topic, [{"partition": 0, "value": "ok"}], txid=names("tx2"), end="commit",
                    txn_timeout_ms=10000)
