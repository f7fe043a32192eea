"""Scenario 23: a scale-out pipeline (Kafka's group_mode_transactions_test shape).

Invariant: pipeline instances with their own transactional ids share group G over a
6-partition input; an instance joins mid-run and another leaves mid-run (its close sends
LeaveGroup), each change a rebalance that moves partitions between transactional producers.
Every input record still appears exactly once in the committed output, in input order per
partition, and G's committed offsets end at the input's end.
"""

import time

import pytest

from test_pipeline import committed_events as commits, make_input, verify_output, wait_committed


def wait_commits(pipes, n, timeout=90):
    deadline = time.monotonic() + timeout
    while commits(pipes) < n:
        for p in pipes:
            assert p.returncode is None or p.of("done"), "a pipeline exited\n" + p.describe()
        assert time.monotonic() < deadline, "no progress\n" + "\n".join(p.describe(6) for p in pipes)
        time.sleep(0.05)


@pytest.mark.timeout(300)
def test_instances_join_and_leave_mid_run_exactly_once(clients, names):
    partitions, per = 6, 120
    src = clients.create_topic(names("in"), partitions)
    dst = clients.create_topic(names("out"), partitions)
    inputs = make_input(clients, src, partitions, per)
    group = names("g")

    def start(i):
        return clients.start("ck", "pipeline", input_topics=[src], output_topic=dst, group=group,
                             transactional_id=names("tx%d" % i), commit_every=10, txn_timeout_ms=10000,
                             record_delay_ms=5)
    pipes = [start(0), start(1)]
    wait_commits(pipes, 8)
    pipes.append(start(2))
    wait_commits(pipes, commits(pipes) + 10)
    leaver = pipes[0]
    leaver.send("stop")
    leaver.ok(60)
    wait_committed(clients, group, src, partitions, per, 150000, watch=pipes)
    for p in pipes[1:]:
        p.send("stop")
    for p in pipes[1:]:
        p.ok(60)
    assert all(commits([p]) for p in pipes), "an instance never committed: %s" % [commits([p]) for p in pipes]
    verify_output(clients, group, src, dst, partitions, inputs)
