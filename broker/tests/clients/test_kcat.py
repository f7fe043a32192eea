"""kcat (librdkafka 2.0.2 from Debian) against the broker.

Invariants:
* kcat's metadata listing (-L) works: the old librdkafka negotiates versions and sees the
  topic with all its partitions at the address it dialled.
* kcat -P with -X transactional.id produces all of stdin as one transaction, committed at EOF
  (transaction.timeout.ms 10000: librdkafka's default 60000 is above the test broker's
  transaction.max.timeout.ms 30000 and is rightly refused):
  kcat -C (read_committed, librdkafka's default) and confluent-kafka deliver it all, in order.
* kcat -P killed by a signal (SIGINT) before EOF never commits: its records, already
  acknowledged and visible to read_uncommitted readers, are never delivered to read_committed
  ones (kcat -C and confluent-kafka), and the LSO moves on (kcat 1.7.1 exits without ending
  the transaction, so the broker's timeout aborts it).
"""

import json
import os
import signal
import subprocess
import time

from harness import check_view


def run_kcat(kcat, logdir, label, args, input_text=None, timeout=60):
    with open(logdir / ("kcat-%s.log" % label), "ab") as log:
        log.write(("=== kcat %s\n" % " ".join(args)).encode())
        log.flush()
        p = subprocess.run([kcat] + args, input=input_text, stdout=subprocess.PIPE, stderr=log,
                           text=True, timeout=timeout)
    assert p.returncode == 0, "kcat %s exited %d (log %s)" % (args, p.returncode, logdir)
    return p.stdout


def consume_committed(kcat, logdir, broker, topic):
    out = run_kcat(kcat, logdir, "consume", ["-b", broker.bootstrap, "-C", "-t", topic, "-p", "0",
                                              "-o", "beginning", "-e", "-q",
                                              "-X", "isolation.level=read_committed",
                                              "-X", "broker.address.family=v4",
                                              "-f", "%o|%k|%s\\n"])
    return [line.split("|", 2) for line in out.splitlines() if line]


def test_kcat_metadata(kcat, broker, clients, names, logdir):
    topic = clients.create_topic(names("t"), 3)
    md = json.loads(run_kcat(kcat, logdir, "metadata", ["-b", broker.bootstrap, "-L", "-J", "-t", topic,
                                                         "-X", "broker.address.family=v4"]))
    assert [(b["name"]) for b in md["brokers"]] == ["%s:%d" % (broker.host, broker.port)], md["brokers"]
    (t,) = [t for t in md["topics"] if t["topic"] == topic]
    assert sorted(p["partition"] for p in t["partitions"]) == [0, 1, 2], t


def test_kcat_transactional_produce_commits_at_eof(kcat, broker, clients, names, logdir):
    topic = clients.create_topic(names("t"), 1)
    lines = ["k%d:value-%d" % (i, i) for i in range(20)]
    run_kcat(kcat, logdir, "produce", ["-b", broker.bootstrap, "-P", "-t", topic, "-p", "0", "-K", ":",
                                        "-X", "transactional.id=" + names("tx"), "-X", "transaction.timeout.ms=10000",
                                        "-X", "broker.address.family=v4"],
             input_text="\n".join(lines) + "\n")
    got = consume_committed(kcat, logdir, broker, topic)
    assert [(k, v) for _, k, v in got] == [tuple(line.split(":")) for line in lines], got
    assert [int(o) for o, _, _ in got] == list(range(20))
    tp = (topic, 0)
    assert clients.sentinels([tp]) == {tp: 21}  # 20 records and the commit marker
    check_view(clients.read("ck", [tp], "read_committed"), {tp: ["value-%d" % i for i in range(20)]})


def test_kcat_killed_by_signal_never_commits(kcat, broker, clients, names, logdir):
    topic = clients.create_topic(names("t"), 1)
    tp = (topic, 0)
    # kcat reads stdin through stdio: it produces a chunk only once the buffer fills, so write
    # well over a buffer's worth and keep stdin open
    n = 3000
    with open(logdir / "kcat-produce.log", "ab") as log:
        p = subprocess.Popen([kcat, "-b", broker.bootstrap, "-P", "-t", topic, "-p", "0", "-K", ":",
                              "-X", "transactional.id=" + names("tx"), "-X", "transaction.timeout.ms=5000",
                              "-X", "broker.address.family=v4"],
                             stdin=subprocess.PIPE, stderr=log, text=True)
    try:
        p.stdin.write("".join("k%d:doomed-%d-%s\n" % (i, i, "x" * 50) for i in range(n)))
        p.stdin.flush()
        deadline = time.monotonic() + 30
        while True:  # until some records are in the log (read_uncommitted sees them)
            r = clients.read("ck", [tp], "read_uncommitted", idle_ms=1000, max_ms=5000)
            r.ok(30)
            if r.data_records:
                break
            assert time.monotonic() < deadline, "kcat's records never reached the log"
        os.kill(p.pid, signal.SIGINT)
        time.sleep(0.5)
        p.stdin.close()  # kcat 1.7.1 waits in its stdin read until EOF, then exits
        p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    clients.sentinels([tp])
    # kcat exits without ending the transaction: the broker aborts it by its timeout
    check_view(clients.read("ck", [tp], "read_committed", max_ms=60000), {tp: []}, timeout=90)
    got = consume_committed(kcat, logdir, broker, topic)
    assert [v for _, _, v in got] == ["__sentinel__0"], got
    offs = clients.offsets([tp])[tp]
    assert offs["high_read_committed"] == offs["high_read_uncommitted"], offs
