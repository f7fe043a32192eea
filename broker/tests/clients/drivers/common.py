"""Shared plumbing of the Python client drivers (ck.py, kp.py, aio.py).

A driver is run as ``python DRIVER.py '<json args>'`` and prints one JSON object per line on
stdout; every library log goes to stderr. The tests read the lines as events. The argument
object always has ``op`` and ``bootstrap``; the rest depends on the operation:

produce
    ``transactional_id`` (absent: plain idempotent producer), ``txn_timeout_ms`` (10000),
    ``compression`` (none/gzip/snappy/lz4/zstd), ``producer_conf`` (ck: extra librdkafka
    settings), ``topic`` (default for records),
    ``transactions``: a list of ``{"records": [...], "end": "commit"|"abort",
    "offsets": {"group": G, "offsets": [[topic, partition, offset], ...]}}``; or the shorthand
    ``records`` + ``end`` ("commit", "abort", or "none" for no transaction); or
    ``generate``: ``{"count": N, "partitions": P}``, N records with value ``v<i>`` and key
    ``k<i mod P>`` in partition ``i mod P`` (too many to pass on the command line).
    A record is ``{"topic"?, "partition"?, "key"?, "value"}`` (strings; key may be null).
    Events: ready, txn_begun, delivered, txn_end, done.
consume
    ``topics`` + ``group`` (subscribe) or ``assign``: ``[[topic, partition], ...]``;
    ``isolation`` (read_committed/read_uncommitted), ``expect`` (stop after that many
    non-sentinel records), ``until_sentinels`` (stop once a sentinel came from each listed
    partition), ``idle_ms`` (stop after that long without a record, counted from the
    assignment), ``max_ms`` (hard cap, 30000), ``commit`` (commit at the end, group mode),
    ``consumer_conf`` (extra consumer settings, in the client's own names).
    Events: assigned, record, done (with ``timed_out``).
txn_open_and_hang
    ``transactional_id``, ``txn_timeout_ms``, ``records``, optional ``offsets`` (as above).
    Opens a transaction, produces, waits for the acks, sends the offsets, prints ``open``,
    then reads one command from stdin: ``commit``, ``abort``, ``produce_commit`` (produce
    ``records_after`` then commit) or ``produce`` (produce ``records_after`` and flush).
    It prints ``result`` or ``error`` and exits. EOF on stdin: exits at once without ending
    the transaction.
pipeline
    consume-transform-produce: ``input_topics``, ``output_topic``, ``group``,
    ``transactional_id``, ``commit_every`` (K), ``txn_timeout_ms``, ``abort_every`` (ck
    only: every n-th transaction is aborted and the consumer rewound to the committed
    offsets instead of committing); runs until ``stop`` is
    read from stdin or ``idle_ms`` passes with nothing pending, or ``max_ms``. Output
    record: same key, same partition as the input, value ``transform(topic, p, o, value)``.
    Events: assigned, revoked, committed, aborted, done.
epoch_bump (ck)
    scenario 15 (KIP-360): ``transactional_id``, ``message_timeout_ms``, ``records``,
    ``records_after`` (produced while the broker is stopped; they time out),
    ``records_final``; stdin lines ``stall`` and ``resume``. Events: open, stalled,
    commit_failed, aborted, committed, done.
delete_groups (ck, kp)
    ``groups``: DeleteGroups through the admin client. Events: deleted (``group``, ``error``:
    Kafka's error name, or null), done.
delete_group_offsets (kp)
    ``group``, ``partitions``: OffsetDelete. Events: deleted_offsets (``error``: the request's
    error name or null; ``partitions``: ``[[topic, partition, error name or null], ...]``), done.
info
    connects and prints the client's versions (kafka-python: the inferred broker version).

Errors are printed as ``{"event": "error", "kind": K, "code": C, "name": N, "message": M,
"fatal": F, "during": D}`` and the driver exits 1. ``kind`` is "fenced" (PRODUCER_FENCED,
INVALID_PRODUCER_EPOCH or the client's own fenced error), "invalid_txn_timeout", "abortable",
"timeout" or "other"; ``code`` is the Kafka error code where the client exposes it.
"""

import faulthandler
import json
import os
import signal
import sys
import threading
import time

SENTINEL = "__sentinel__"

# The harness sends SIGUSR1 to a driver that does not finish in time: every thread's stack
# goes to stderr (the driver's log) before it is killed.
faulthandler.register(signal.SIGUSR1, all_threads=True)

_out_lock = threading.Lock()


def emit(event, **fields):
    """Prints one event line on stdout and flushes it."""
    fields = {"event": event, **fields}
    line = json.dumps(fields, sort_keys=True, default=str)
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def parse_args():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: %s '<json args>'\n" % sys.argv[0])
        sys.exit(2)
    args = json.loads(sys.argv[1])
    if "op" not in args or "bootstrap" not in args:
        sys.stderr.write("args need op and bootstrap\n")
        sys.exit(2)
    return args


def transactions_of(args):
    """Normalizes the produce arguments to a list of transactions (end "none" = plain)."""
    if "transactions" in args:
        txns = args["transactions"]
    elif "generate" in args:
        n, parts = args["generate"]["count"], args["generate"]["partitions"]
        txns = [{"records": [{"partition": i % parts, "key": "k%d" % (i % parts), "value": "v%d" % i}
                             for i in range(n)],
                 "end": args.get("end", "commit")}]
    else:
        txns = [{"records": args.get("records", []), "end": args.get("end", "commit"),
                 "offsets": args.get("offsets")}]
    topic = args.get("topic")
    out = []
    for t in txns:
        recs = []
        for r in t.get("records", []):
            r = dict(r)
            r.setdefault("topic", topic)
            if r["topic"] is None:
                raise SystemExit("record without topic: %r" % (r,))
            recs.append(r)
        out.append({"records": recs, "end": t.get("end", "commit"), "offsets": t.get("offsets")})
    return out


def enc(s):
    return None if s is None else s.encode("utf-8")


def dec(b):
    if b is None:
        return None
    if isinstance(b, str):
        return b
    return b.decode("utf-8", errors="replace")


def transform(topic, partition, offset, value):
    """The pipeline's output value: names its input record so the test can check each
    input appears exactly once."""
    return json.dumps({"src": [topic, partition, offset], "v": value}, separators=(",", ":"))


class StdinCommands:
    """Reads stdin lines in a thread; ``get(timeout)`` returns the next line or None."""

    def __init__(self):
        self._lines = []
        self._cond = threading.Condition()
        self.eof = False
        t = threading.Thread(target=self._run, daemon=True)
        t.start()

    def _run(self):
        for line in sys.stdin:
            with self._cond:
                self._lines.append(line.strip())
                self._cond.notify_all()
        with self._cond:
            self.eof = True
            self._cond.notify_all()

    def get(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._lines and not self.eof:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if self._lines:
                return self._lines.pop(0)
            return None

    def peek_stop(self):
        with self._cond:
            return "stop" in self._lines or self.eof


class Stopper:
    """Stop conditions of the consume operation."""

    def __init__(self, args):
        self.expect = args.get("expect")
        self.sentinels = {tuple(x) for x in args.get("until_sentinels") or []}
        self.idle_ms = args.get("idle_ms")
        self.max_ms = args.get("max_ms", 30000)
        self.start = time.monotonic()
        self.last = None  # time of the last record, or of the assignment
        self.count = 0
        self.total = 0
        if self.expect is None and not self.sentinels and self.idle_ms is None:
            self.idle_ms = 3000

    def assigned(self):
        if self.last is None:
            self.last = time.monotonic()

    def record(self, topic, partition, offset, key, value, **extra):
        sentinel = value is not None and value.startswith(SENTINEL)
        emit("record", topic=topic, partition=partition, offset=offset, key=key, value=value,
             sentinel=sentinel, **extra)
        self.last = time.monotonic()
        self.total += 1
        if sentinel:
            self.sentinels.discard((topic, partition))
        else:
            self.count += 1

    def reason(self):
        """None to go on, or why to stop."""
        now = time.monotonic()
        if self.expect is not None and self.count >= self.expect and not self.sentinels:
            return "expect"
        if self.expect is None and self.sentinels == set() and self._had_sentinels():
            return "sentinels"
        if self.idle_ms is not None and self.last is not None \
                and (now - self.last) * 1000 >= self.idle_ms \
                and (self.expect is None or self.count >= self.expect) and not self.sentinels:
            return "idle"
        if (now - self.start) * 1000 >= self.max_ms:
            return "max_ms"
        return None

    def _had_sentinels(self):
        return self._sentinels_given

    def given(self, args):
        self._sentinels_given = bool(args.get("until_sentinels"))
        return self

    def done(self, reason):
        emit("done", count=self.count, total=self.total, reason=reason,
             timed_out=(reason == "max_ms"))


def make_stopper(args):
    return Stopper(args).given(args)


def debug_enabled():
    return os.environ.get("EOSLOG_CLIENT_DEBUG", "") not in ("", "0")


def watchdog(fn, what, limit=45.0):
    """Runs fn; if it has not returned after `limit` seconds, reports a `client_hang` error
    (with every thread's stack in the log) and exits 3. Some clients block forever in a
    transactional call that lost its request to a broker restart (kafka-python 3.0.12 drops an
    AddOffsetsToTxn whose connection failed): the test restarts such a member, as an operator
    would, instead of waiting for it."""
    done = threading.Event()

    def bark():
        if not done.wait(limit):
            emit("error", kind="client_hang", code=None, name=what, fatal=True, during=what,
                 message="%s did not return within %.0f s" % (what, limit))
            faulthandler.dump_traceback(all_threads=True)
            sys.stdout.flush()
            os._exit(3)
    threading.Thread(target=bark, daemon=True).start()
    try:
        return fn()
    finally:
        done.set()



def run_main(ops, call=lambda op, args: op(args)):
    """Parses the JSON arguments, runs the named op with `call` and exits with its status.
    The exit skips interpreter teardown: a client's destructors can block on an unreachable
    broker once the work is done."""
    args = parse_args()
    op = ops.get(args["op"])
    if op is None:
        emit("error", kind="unsupported", code=None, name="op", message="unsupported op " + args["op"],
             fatal=True, during="args")
        rc = 2
    else:
        rc = call(op, args)
    sys.stdout.flush()
    os._exit(rc)
