"""Scenario 18: the pipeline's own process SIGKILLed at chosen points, then restarted.

Invariant: a consume-transform-produce pipeline (librdkafka, send_offsets_to_transaction every
10 records) killed with SIGKILL while its transaction holds produced records, right after it
begins send_offsets_to_transaction, and right after it begins commit_transaction, and each time
restarted with the same transactional.id and group, still turns every input record into
exactly one committed output record, in input order per partition, and the group's committed
offsets end at the input's end. Whatever the killed instance left open is aborted when the next
instance initializes (or committed, if its EndTxn had already reached the broker), never both.
"""

import time

import pytest

from test_pipeline import make_input, verify_output, wait_committed

KILL_POINTS = ["holding records", "in send_offsets", "in commit", "holding records", "in commit"]


def kill_at(pipe, point, timeout=60):
    """Waits for the pipeline to reach `point` in a transaction begun after now, then kills it."""
    t0 = time.monotonic()

    def after(e):
        return e["_t"] > t0
    if point == "holding records":
        # a transaction under way: committed before, records consumed since, no commit yet
        pipe.wait_for("committed", timeout=timeout, pred=after)
        time.sleep(0.02)
    elif point == "in send_offsets":
        pipe.wait_for("call", timeout=timeout,
                      pred=lambda e: after(e) and e["fn"] == "send_offsets_to_transaction")
    else:
        pipe.wait_for("call", timeout=timeout, pred=lambda e: after(e) and e["fn"] == "commit_transaction")
    pipe.kill9()


@pytest.mark.timeout(300)
def test_pipeline_killed_at_each_step_is_exactly_once(clients, names):
    partitions, per = 3, 120
    src = clients.create_topic(names("in"), partitions)
    dst = clients.create_topic(names("out"), partitions)
    inputs = make_input(clients, src, partitions, per)
    group, txid = names("g"), names("tx")

    def start():
        return clients.start("ck", "pipeline", input_topics=[src], output_topic=dst, group=group,
                             transactional_id=txid, commit_every=10, txn_timeout_ms=10000,
                             record_delay_ms=3, trace=True)
    pipe = start()
    for point in KILL_POINTS:
        kill_at(pipe, point)
        pipe.wait(10)
        pipe = start()
    wait_committed(clients, group, src, partitions, per, 150000, watch=[pipe])
    pipe.send("stop")
    pipe.ok(60)
    verify_output(clients, group, src, dst, partitions, inputs)
