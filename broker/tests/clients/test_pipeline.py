"""Scenarios 17 and 19: the consume-transform-produce pipeline is exactly once.

Invariant: a pipeline (read_committed consumer in group G, auto-commit off, a transactional
producer, send_offsets_to_transaction every K records) turns N non-transactional input records
into an output in which every input record appears exactly once among the committed records,
in input order per partition (the output partition is the input's), and G's committed offset of
each input partition equals its end, so the committed offsets match the output.
* (17) happy path, once per client family, one member.
* (19) three members sharing G (three librdkafka members; one librdkafka and two
  kafka-python members), with the broker SIGKILLed twice mid-run and restarted on the same
  data dir; the clients reconnect (or, if the broker could not get its port back, are
  restarted with the same transactional ids and group). Nothing acknowledged may be lost or
  applied twice. Group members must be KIP-447 clients (TxnOffsetCommit v3): a member whose
  generation is stale after the restart must be fenced. aiokafka sends TxnOffsetCommit v0,
  which carries no generation, so it cannot be fenced (scenario 22) and runs here alone.
"""

import time

import pytest

from harness import CLIENTS, DriverError, by_partition, check_view, exactly_once_report, source_of


def make_input(clients, topic, partitions, per_partition):
    recs = [{"topic": topic, "partition": i % partitions, "key": "k%d" % (i % partitions),
             "value": "in-%d" % i} for i in range(partitions * per_partition)]
    d = clients.produce("ck", None, recs)
    inputs = {(e["topic"], e["partition"], e["offset"]) for e in d.of("delivered")}
    assert len(inputs) == len(recs)
    return inputs


def wait_committed(clients, group, topic, partitions, per_partition, max_ms, watch=()):
    d = clients.run("ck", "wait_committed", group=group, max_ms=max_ms, timeout=max_ms / 1000 + 60,
                    targets=[[topic, p, per_partition] for p in range(partitions)])
    done = d.of("done")[0]
    if not done["ok"]:
        raise AssertionError("group %s did not commit every input within %d ms: %s\n%s" % (
            group, max_ms, done["offsets"], "\n".join(w.describe(8) for w in watch)))


def verify_output(clients, group, src, dst, partitions, inputs):
    out_parts = [(dst, p) for p in range(partitions)]
    clients.sentinels(out_parts)
    r = clients.read("ck", out_parts, "read_committed", max_ms=60000)
    r.ok(90)
    assert not r.of("done")[0]["timed_out"], r.describe()
    out = r.data_records
    sources = [source_of(x) for x in out]
    missing, duplicated, foreign = exactly_once_report(inputs, sources)
    assert not (missing or duplicated or foreign), \
        "output is not exactly once: %d missing %s, %d duplicated %s, %d foreign %s" % (
            len(missing), missing[:10], len(duplicated), duplicated[:10], len(foreign), foreign[:10])
    assert len(out) == len(inputs)
    for (t, p), recs in by_partition(out).items():
        srcs = [source_of(x) for x in recs]
        assert all(s[1] == p for s in srcs), "output partition %d holds other partitions' input" % p
        offs = [s[2] for s in srcs]
        assert offs == sorted(offs), "output of partition %d is out of input order" % p
    ends = {}
    for t, p, o in inputs:
        ends[(t, p)] = max(ends.get((t, p), -1), o + 1)
    committed = clients.committed(group, [(src, p) for p in range(partitions)], isolation="read_committed")
    assert {k: v["offset"] for k, v in committed.items()} == ends, \
        "committed offsets %s do not match the output (input ends %s)" % (committed, ends)


@pytest.mark.parametrize("client", CLIENTS)
def test_pipeline_happy_path(client, clients, names):
    partitions, per = 3, 40
    src = clients.create_topic(names("in"), partitions)
    dst = clients.create_topic(names("out"), partitions)
    inputs = make_input(clients, src, partitions, per)
    group = names("g")
    pipe = clients.start(client, "pipeline", input_topics=[src], output_topic=dst, group=group,
                         transactional_id=names("tx"), commit_every=10, txn_timeout_ms=10000)
    wait_committed(clients, group, src, partitions, per, 90000, watch=[pipe])
    pipe.send("stop")
    pipe.ok(60)
    assert pipe.of("committed"), "the pipeline committed no transaction\n" + pipe.describe()
    verify_output(clients, group, src, dst, partitions, inputs)


def test_pipeline_with_deliberate_aborts(clients, names):
    """Scenario 20: every third transaction is aborted and the consumer seeks back to the
    committed offsets; every input still appears exactly once in the committed output."""
    partitions, per = 3, 40
    src = clients.create_topic(names("in"), partitions)
    dst = clients.create_topic(names("out"), partitions)
    inputs = make_input(clients, src, partitions, per)
    group = names("g")
    pipe = clients.start("ck", "pipeline", input_topics=[src], output_topic=dst, group=group,
                         transactional_id=names("tx"), commit_every=7, abort_every=3,
                         txn_timeout_ms=10000)
    wait_committed(clients, group, src, partitions, per, 90000, watch=[pipe])
    pipe.send("stop")
    pipe.ok(60)
    deliberate = [e for e in pipe.of("aborted") if e["reason"] == "deliberate" and e["records"]]
    assert deliberate, "no transaction with records was aborted on purpose\n" + pipe.describe()
    assert pipe.of("rewound"), pipe.describe()
    verify_output(clients, group, src, dst, partitions, inputs)


def committed_events(pipes):
    return sum(len(p.of("committed")) for p in pipes)


class Members:
    """The pipeline members of one group. A member whose client hung in a transactional call
    (the drivers' watchdog reports kind "client_hang", e.g. kafka-python 3.0.12 losing an
    AddOffsetsToTxn to a broker restart) is restarted with the same transactional id, as an
    operator would; any other exit fails the test."""

    def __init__(self, start, members, txids):
        self.start_one = start
        self.members = list(zip(members, txids))
        self.pipes = [start(c, t) for c, t in self.members]
        self.all = list(self.pipes)
        self.restarted = []

    def check(self):
        for i, p in enumerate(self.pipes):
            if p.returncode is None:
                continue
            err = p.error()
            if err is not None and err["kind"] == "client_hang":
                self.restarted.append("%s %s: %s" % (p.client, self.members[i][1], err["message"]))
                print("restarting a hung member:", self.restarted[-1])
                self.pipes[i] = self.start_one(*self.members[i])
                self.all.append(self.pipes[i])
            else:
                raise DriverError("a pipeline member exited\n%s" % p.describe())

    def restart_all(self):
        for p in self.pipes:
            p.kill9()
        self.pipes = [self.start_one(c, t) for c, t in self.members]
        self.all += self.pipes


@pytest.mark.timeout(480)
@pytest.mark.parametrize("members", [("ck", "ck", "ck"), ("ck", "kp", "kp"), ("aio",)],
                         ids=["ck3", "ck-kp-kp", "aio1"])
def test_pipeline_survives_broker_kill9(members, clients, broker, names):
    partitions, per = 6, 150
    src = clients.create_topic(names("in"), partitions)
    dst = clients.create_topic(names("out"), partitions)
    inputs = make_input(clients, src, partitions, per)
    group = names("g")

    def start(client, txid):
        return clients.start(client, "pipeline", input_topics=[src], output_topic=dst, group=group,
                             transactional_id=txid, commit_every=20, txn_timeout_ms=10000,
                             record_delay_ms=5)
    m = Members(start, members, [names("tx%d" % i) for i in range(len(members))])
    for kill in range(2):
        base = committed_events(m.all)
        deadline = time.monotonic() + 90
        while committed_events(m.all) < base + 5:
            m.check()
            assert time.monotonic() < deadline, "pipelines made no progress before kill %d\n%s" % (
                kill + 1, "\n".join(p.describe(8) for p in m.pipes))
            time.sleep(0.05)
        broker.kill9()
        time.sleep(0.5)
        if not broker.restart(same_port=True):
            m.restart_all()  # the clients cannot follow a new port
    w = clients.start("ck", "wait_committed", group=group, max_ms=240000,
                      targets=[[src, p, per] for p in range(partitions)])
    while w.returncode is None:
        m.check()
        time.sleep(0.2)
    w.ok(10)
    done = w.of("done")[0]
    assert done["ok"], "group %s did not commit every input: %s\n%s" % (
        group, done["offsets"], "\n".join(p.describe(8) for p in m.pipes))
    for p in m.pipes:
        if p.returncode is None:
            p.send("stop")
    for p in m.pipes:
        p.wait(120)
        err = p.error()
        if err is not None and err["kind"] == "client_hang":
            m.restarted.append("%s (at stop): %s" % (p.client, err["message"]))
        else:
            p.ok(10)
    verify_output(clients, group, src, dst, partitions, inputs)
    if m.restarted:
        print("members restarted after a client hang:", m.restarted)
