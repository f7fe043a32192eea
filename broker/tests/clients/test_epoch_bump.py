"""Scenario 15: KIP-360 recovery of a producer whose records timed out in flight.

Invariant: a transactional librdkafka producer whose Produce goes unanswered past
message.timeout.ms (the broker is stopped with SIGSTOP, as a failpoint delaying one Produce
would) gets an abortable error, not a fatal one. abort_transaction then sends InitProducerId
with its current producer id and epoch, and the coordinator bumps the epoch of the same id
instead of fencing it. The producer's next transaction commits under that id with a higher
epoch and sequences from 0, so nothing it wrote before is duplicated and nothing after is
lost: a read_committed consumer delivers exactly the records of the last transaction, and the
log holds every record of the aborted one (the timed-out batch may or may not have been
appended after the broker resumed) followed by its ABORT marker.
"""

import json
import subprocess

from harness import check_view, eoslog_bin


def test_timed_out_transaction_is_aborted_with_an_epoch_bump(clients, broker, names):
    topic = clients.create_topic(names("t"), 1)
    tp = (topic, 0)

    def recs(tag, n):
        return [{"partition": 0, "key": tag, "value": "%s-%d" % (tag, i)} for i in range(n)]

    first, after, final = recs("first", 5), recs("after", 5), recs("final", 5)
    d = clients.start("ck", "epoch_bump", topic=topic, transactional_id=names("tx"),
                      txn_timeout_ms=20000, message_timeout_ms=3000,
                      records=first, records_after=after, records_final=final)
    d.wait_for("open", timeout=30)
    broker.pause()
    try:
        d.send("stall")
        stalled = d.wait_for("stalled", timeout=30)
    finally:
        broker.resume()
    assert stalled["delivered"] == 0, "records produced while the broker was stopped were acknowledged"
    timed_out = d.of("delivery_error")
    assert len(timed_out) == len(after), d.describe()
    assert all(e["name"] == "_MSG_TIMED_OUT" for e in timed_out), timed_out
    d.send("resume")
    d.ok(60)
    failed = d.of("commit_failed")[0]
    assert failed["txn_requires_abort"] and not failed["fatal"], \
        "the timed-out transaction must be abortable, not fatal: %s" % failed

    clients.sentinels([tp])
    check_view(clients.read("ck", [tp], "read_committed"), {tp: [r["value"] for r in final]})

    eoslog = eoslog_bin()
    assert eoslog.exists(), "the eoslog binary %s is needed to read the stored batches" % eoslog
    dirs = broker.partition_dirs(topic, 0)
    out = subprocess.run([str(eoslog), "dump", "--json", str(dirs[0])], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    batches = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    txn = [b for b in batches if b["is_transactional"]]
    pid, epoch = txn[0]["producer_id"], txn[0]["producer_epoch"]
    assert all(b["producer_id"] == pid for b in txn), \
        "the producer was given a new id instead of an epoch bump: %s" % txn
    aborted_marker = [b for b in txn if b["is_control"] and b["control_type"] == "ABORT"]
    commit_marker = [b for b in txn if b["is_control"] and b["control_type"] == "COMMIT"]
    assert len(aborted_marker) == 1 and len(commit_marker) == 1, txn
    last_data = [b for b in txn if not b["is_control"] and b["base_offset"] > aborted_marker[0]["base_offset"]]
    assert last_data and all(b["producer_epoch"] > epoch for b in last_data), \
        "the transaction after the abort did not run on a bumped epoch: %s" % txn
    assert last_data[0]["base_sequence"] == 0, "sequences did not restart at the new epoch: %s" % last_data
    assert sum(b["count"] for b in last_data) == len(final), last_data
