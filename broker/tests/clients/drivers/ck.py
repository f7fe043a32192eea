"""confluent-kafka (librdkafka) driver. See common.py for the protocol.

Besides the common operations it has the admin and inspection operations the tests use:
create_topics, offsets (watermarks and ListOffsets per isolation level), committed
(OffsetFetch), wait_committed and commit_offsets.
"""

import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (StdinCommands, dec, debug_enabled, emit, enc, make_stopper, parse_args, run_main,  # noqa: E402
                    transactions_of, transform, watchdog)

from confluent_kafka import (Consumer, KafkaError, KafkaException, Producer,  # noqa: E402
                             TopicPartition, IsolationLevel, OFFSET_BEGINNING, OFFSET_INVALID)
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec  # noqa: E402

TIMEOUT = 30.0

FENCED_CODES = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}


def base_conf(args):
    conf = {
        "bootstrap.servers": args["bootstrap"],
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "topic.metadata.refresh.interval.ms": 1000,
        "socket.connection.setup.timeout.ms": 5000,
        "broker.address.family": "v4",
        # librdkafka 2.16's re-bootstrap (KIP-899) decommissions the only broker while it
        # restarts, and a send_offsets_to_transaction in flight then never returns, not even at
        # its timeout (seen in test_pipeline's broker kill): a client bug, kept out of the way
        "metadata.recovery.strategy": "none",
    }
    if debug_enabled():
        conf["debug"] = "eos,protocol,cgrp,broker,topic,msg"
    conf.update(args.get("conf", {}))
    return conf


def error_event(exc, during):
    """Prints the error event for a KafkaException (or any exception) and returns it."""
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args \
        and isinstance(exc.args[0], KafkaError) else None
    if err is None:
        emit("error", kind="other", code=None, name=type(exc).__name__, message=str(exc),
             fatal=False, during=during)
        return
    code = err.code()
    if code in FENCED_CODES:
        kind = "fenced"
    elif code == KafkaError.INVALID_TRANSACTION_TIMEOUT:
        kind = "invalid_txn_timeout"
    elif err.txn_requires_abort():
        kind = "abortable"
    elif code == KafkaError._TIMED_OUT:
        kind = "timeout"
    else:
        kind = "other"
    emit("error", kind=kind, code=code, name=err.name(), message=err.str(), fatal=err.fatal(),
         retriable=err.retriable(), txn_requires_abort=err.txn_requires_abort(), during=during)


def make_producer(args, delivered):
    conf = base_conf(args)
    conf.update({"acks": "all", "enable.idempotence": True, "linger.ms": 5,
                 "compression.type": args.get("compression", "none")})
    conf.update(args.get("producer_conf", {}))
    if args.get("transactional_id"):
        conf["transactional.id"] = args["transactional_id"]
        conf["transaction.timeout.ms"] = args.get("txn_timeout_ms", 10000)

    def on_delivery(err, msg):
        if err is not None:
            emit("delivery_error", code=err.code(), name=err.name(), message=err.str(),
                 topic=msg.topic(), partition=msg.partition(), key=dec(msg.key()))
        else:
            delivered.append(msg)
            emit("delivered", topic=msg.topic(), partition=msg.partition(), offset=msg.offset(),
                 key=dec(msg.key()), value=dec(msg.value()))
    conf["on_delivery"] = on_delivery
    return Producer(conf)


def flush(producer, timeout=TIMEOUT):
    """producer.flush(); a fatal error raised while delivery callbacks run surfaces from the
    binding as a SystemError caused by the KafkaException: re-raise that."""
    try:
        return producer.flush(timeout)
    except SystemError as e:
        if isinstance(e.__cause__, KafkaException):
            raise e.__cause__
        raise


def produce_records(producer, records):
    for r in records:
        kw = {"key": enc(r.get("key")), "value": enc(r.get("value"))}
        if r.get("partition") is not None:
            kw["partition"] = r["partition"]
        if r.get("timestamp") is not None:
            kw["timestamp"] = r["timestamp"]
        while True:
            try:
                producer.produce(r["topic"], **kw)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)


def group_metadata(args, group):
    c = Consumer({**base_conf(args), "group.id": group, "enable.auto.commit": False})
    md = c.consumer_group_metadata()
    return c, md


def tps(offsets):
    return [TopicPartition(t, p, o) for t, p, o in offsets]


def op_produce(args):
    delivered = []
    txns = transactions_of(args)
    producer = make_producer(args, delivered)
    transactional = bool(args.get("transactional_id"))
    during = "init_transactions"
    try:
        if transactional:
            producer.init_transactions(TIMEOUT)
        emit("ready")
        for i, t in enumerate(txns):
            if transactional and t["end"] != "none":
                during = "begin_transaction"
                producer.begin_transaction()
                emit("txn_begun", i=i)
            during = "produce"
            produce_records(producer, t["records"])
            if t.get("offsets"):
                during = "send_offsets_to_transaction"
                c, md = group_metadata(args, t["offsets"]["group"])
                producer.send_offsets_to_transaction(tps(t["offsets"]["offsets"]), md, TIMEOUT)
                c.close()
            if transactional and t["end"] == "commit":
                during = "commit_transaction"
                producer.commit_transaction(TIMEOUT)
            elif transactional and t["end"] == "abort":
                during = "abort_transaction"
                flush(producer)  # the records reach the log before the abort
                producer.abort_transaction(TIMEOUT)
            else:
                during = "flush"
                left = flush(producer)
                if left:
                    emit("error", kind="timeout", code=None, name="flush",
                         message="%d messages not delivered" % left, fatal=False, during=during)
                    return 1
            emit("txn_end", i=i, end=t["end"])
            if args.get("pause_ms"):
                time.sleep(args["pause_ms"] / 1000)
    except KafkaException as e:
        error_event(e, during)
        return 1
    emit("done", delivered=len(delivered))
    return 0


def op_txn_open_and_hang(args):
    delivered = []
    producer = make_producer(args, delivered)
    cmds = StdinCommands()
    during = "init_transactions"
    try:
        producer.init_transactions(TIMEOUT)
        during = "begin_transaction"
        producer.begin_transaction()
        during = "produce"
        records = transactions_of(args)[0]["records"]
        produce_records(producer, records)
        flush(producer)
        if len(delivered) != len(records):
            emit("error", kind="other", code=None, name="flush",
                 message="%d of %d delivered" % (len(delivered), len(records)), fatal=False,
                 during=during)
            return 1
        if args.get("offsets"):
            during = "send_offsets_to_transaction"
            c, md = group_metadata(args, args["offsets"]["group"])
            producer.send_offsets_to_transaction(tps(args["offsets"]["offsets"]), md, TIMEOUT)
            c.close()
        emit("open", delivered=len(delivered))
    except KafkaException as e:
        error_event(e, during)
        return 1
    cmd = cmds.get()
    if cmd is None:
        os._exit(0)  # leave the transaction open, as a crash would
    during = cmd
    try:
        after = [dict(r, topic=r.get("topic", args.get("topic"))) for r in args.get("records_after", [])]
        if cmd in ("produce_commit", "produce"):
            produce_records(producer, after)
            left = flush(producer)
            if left:
                # a fenced producer's records fail; the fatal error is raised by the next call
                producer.poll(1.0)
        if cmd in ("commit", "produce_commit"):
            producer.commit_transaction(TIMEOUT)
        elif cmd == "abort":
            producer.abort_transaction(TIMEOUT)
        emit("result", cmd=cmd, ok=True, delivered=len(delivered))
    except KafkaException as e:
        error_event(e, during)
        return 1
    return 0


def make_consumer(args, group, isolation):
    conf = base_conf(args)
    conf.update({
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": args.get("offset_reset", "earliest"),
        "isolation.level": isolation,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "max.poll.interval.ms": 10000,
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 100,
    })
    if args.get("strategy"):
        conf["partition.assignment.strategy"] = args["strategy"]
    conf.update(args.get("consumer_conf", {}))
    return Consumer(conf)


def op_consume(args):
    iso = args.get("isolation", "read_committed")
    group = args.get("group") or "ck-consume-%s" % uuid.uuid4().hex[:8]
    c = make_consumer(args, group, iso)
    stop = make_stopper(args)

    def on_assign(consumer, parts):
        emit("assigned", partitions=[[p.topic, p.partition] for p in parts],
             member_id=None if args.get("assign") else consumer.memberid())
        stop.assigned()

    if args.get("assign"):
        parts = [TopicPartition(t, p, OFFSET_BEGINNING if args.get("offset_reset", "earliest") == "earliest" else -1)
                 for t, p in args["assign"]]
        c.assign(parts)
        on_assign(c, parts)
    else:
        c.subscribe(args["topics"], on_assign=on_assign)
    reason = None
    while reason is None:
        for m in c.consume(num_messages=100, timeout=0.2):
            if m.error():
                emit("consume_error", code=m.error().code(), name=m.error().name(),
                     message=m.error().str())
                continue
            stop.record(m.topic(), m.partition(), m.offset(), dec(m.key()), dec(m.value()))
        reason = stop.reason()
    if args.get("commit") and not args.get("assign"):
        try:
            c.commit(asynchronous=False)
        except KafkaException as e:
            error_event(e, "commit")
    c.close()
    stop.done(reason)
    return 0


class Pipeline:
    """Consume-transform-produce with send_offsets_to_transaction every K records."""

    def __init__(self, args):
        self.args = args
        self.k = args.get("commit_every", 10)
        self.out = args["output_topic"]
        self.in_txn = False
        self.pending = 0
        self.committed_records = 0
        self.transactions = 0
        self.delivered = []
        self.fatal = False
        # a commit may block while the broker restarts: allow for it between polls
        self.consumer = make_consumer(dict(args, consumer_conf={"max.poll.interval.ms": 30000,
                                                                **args.get("consumer_conf", {})}),
                                      args["group"], "read_committed")
        self.producer = make_producer(dict(args, compression=args.get("compression", "none")),
                                      self.delivered)

    # rebalance callbacks run inside consume()
    def on_assign(self, c, parts):
        emit("assigned", partitions=[[p.topic, p.partition] for p in parts])

    def on_revoke(self, c, parts):
        emit("revoked", partitions=[[p.topic, p.partition] for p in parts])
        if self.in_txn:
            self.abort("revoked", rewind=False)

    def abort(self, reason, rewind=True):
        self.retrying(lambda: self.producer.abort_transaction(TIMEOUT), "abort_transaction")
        emit("aborted", reason=reason, records=self.pending)
        self.in_txn = False
        self.pending = 0
        if rewind:
            self.rewind()

    def rewind(self):
        parts = self.consumer.assignment()
        if not parts:
            return
        committed = self.retrying(lambda: self.consumer.committed(parts, timeout=TIMEOUT), "committed")
        for tp in committed:
            off = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, off))
        emit("rewound", offsets=[[tp.topic, tp.partition, tp.offset] for tp in committed])

    def retrying(self, fn, during):
        """Runs fn, retrying retriable errors (a broker that is down or restarting)."""
        deadline = time.monotonic() + 120
        while True:
            try:
                if self.args.get("trace"):
                    emit("call", fn=during)
                # every call has a 30 s timeout: one that blocks far longer is a client hang
                return watchdog(fn, during, limit=90)
            except KafkaException as e:
                err = e.args[0]
                if err.retriable() and not err.fatal() and time.monotonic() < deadline:
                    emit("retry", during=during, name=err.name(), message=err.str())
                    time.sleep(0.2)
                    continue
                raise

    def commit(self):
        self.transactions += 1
        every = self.args.get("abort_every")
        if every and self.transactions % every == 0:
            # scenario 20: a deliberate abort, then back to the committed offsets
            self.abort("deliberate")
            return
        positions = [tp for tp in self.consumer.position(self.consumer.assignment())
                     if tp.offset >= 0]
        try:
            md = self.consumer.consumer_group_metadata()
            self.retrying(lambda: self.producer.send_offsets_to_transaction(positions, md, TIMEOUT),
                          "send_offsets_to_transaction")
            self.retrying(lambda: self.producer.commit_transaction(TIMEOUT), "commit_transaction")
        except KafkaException as e:
            err = e.args[0]
            if err.txn_requires_abort():
                emit("abortable", name=err.name(), message=err.str())
                self.abort("abortable: " + err.name())
                return
            raise
        self.committed_records += self.pending
        emit("committed", records=self.pending,
             offsets=[[tp.topic, tp.partition, tp.offset] for tp in positions])
        self.in_txn = False
        self.pending = 0

    def run(self):
        a = self.args
        cmds = StdinCommands()
        self.retrying(lambda: self.producer.init_transactions(TIMEOUT), "init_transactions")
        self.consumer.subscribe(a["input_topics"], on_assign=self.on_assign,
                                on_revoke=self.on_revoke, on_lost=self.on_revoke)
        start = time.monotonic()
        last = time.monotonic()
        while True:
            if cmds.peek_stop():
                break
            if a.get("max_ms") and (time.monotonic() - start) * 1000 > a["max_ms"]:
                break
            msgs = self.consumer.consume(num_messages=max(1, self.k - self.pending), timeout=0.2)
            for m in msgs:
                if m.error():
                    emit("consume_error", code=m.error().code(), name=m.error().name(),
                         message=m.error().str())
                    continue
                if not self.in_txn:
                    self.producer.begin_transaction()
                    self.in_txn = True
                self.producer.produce(self.out, key=m.key(), partition=m.partition(),
                                      value=transform(m.topic(), m.partition(), m.offset(),
                                                      dec(m.value())).encode())
                self.producer.poll(0)
                self.pending += 1
                last = time.monotonic()
                if a.get("record_delay_ms"):
                    time.sleep(a["record_delay_ms"] / 1000)
            if self.in_txn and self.pending and (self.pending >= self.k or not msgs):
                self.commit()
            if a.get("idle_ms") and not self.in_txn \
                    and (time.monotonic() - last) * 1000 > a["idle_ms"]:
                break
        if self.in_txn:
            if self.pending:
                self.commit()
            else:
                self.abort("stop", rewind=False)
        self.consumer.close()
        emit("done", committed_records=self.committed_records)
        return 0


def op_pipeline(args):
    p = Pipeline(args)
    try:
        return p.run()
    except KafkaException as e:
        error_event(e, "pipeline")
        return 1


# ----- admin and inspection operations ---------------------------------------------------

def op_create_topics(args):
    admin = AdminClient(base_conf(args))
    new = [NewTopic(t["name"], num_partitions=t.get("partitions", 1), replication_factor=1,
                    config=t.get("config", {}))
           for t in args["topics"]]
    futs = admin.create_topics(new, operation_timeout=10, request_timeout=15)
    for name, f in futs.items():
        try:
            f.result()
        except KafkaException as e:
            error_event(e, "create_topics " + name)
            return 1
    # wait until the metadata shows every partition
    deadline = time.monotonic() + 15
    want = {t["name"]: t.get("partitions", 1) for t in args["topics"]}
    while True:
        md = admin.list_topics(timeout=5)
        ok = all(n in md.topics and md.topics[n].error is None and len(md.topics[n].partitions) == k
                 for n, k in want.items())
        if ok:
            break
        if time.monotonic() > deadline:
            emit("error", kind="other", code=None, name="metadata",
                 message="topics not in metadata: %r" % ({n: (md.topics.get(n) and len(md.topics[n].partitions)) for n in want}),
                 fatal=False, during="create_topics")
            return 1
        time.sleep(0.1)
    emit("done", topics=sorted(want))
    return 0


def op_offsets(args):
    """Watermarks (ListOffsets) per isolation level, through both the consumer and the
    admin API."""
    parts = [tuple(x) for x in args["partitions"]]
    res = {}
    for iso in ("read_committed", "read_uncommitted"):
        c = make_consumer(args, "ck-offsets-%s" % uuid.uuid4().hex[:8], iso)
        for t, p in parts:
            lo, hi = c.get_watermark_offsets(TopicPartition(t, p), timeout=10, cached=False)
            r = res.setdefault((t, p), {"topic": t, "partition": p})
            r["low"] = lo
            r["high_" + iso] = hi
        c.close()
    admin = AdminClient(base_conf(args))
    for iso, name in ((IsolationLevel.READ_COMMITTED, "read_committed"),
                      (IsolationLevel.READ_UNCOMMITTED, "read_uncommitted")):
        req = {TopicPartition(t, p): OffsetSpec.latest() for t, p in parts}
        futs = admin.list_offsets(req, isolation_level=iso, request_timeout=10)
        for tp, f in futs.items():
            res[(tp.topic, tp.partition)]["admin_latest_" + name] = f.result().offset
    req = {TopicPartition(t, p): OffsetSpec.earliest() for t, p in parts}
    for tp, f in admin.list_offsets(req, request_timeout=10).items():
        res[(tp.topic, tp.partition)]["admin_earliest"] = f.result().offset
    emit("offsets", results=[res[k] for k in parts])
    emit("done")
    return 0


def op_committed(args):
    c = make_consumer(args, args["group"], args.get("isolation", "read_uncommitted"))
    parts = [TopicPartition(t, p) for t, p in args["partitions"]]
    try:
        got = c.committed(parts, timeout=args.get("timeout_ms", 10000) / 1000)
    except KafkaException as e:
        error_event(e, "committed")
        return 1
    emit("committed", offsets=[{"topic": tp.topic, "partition": tp.partition, "offset": tp.offset,
                                "metadata": tp.metadata, "leader_epoch": tp.leader_epoch,
                                "error": tp.error.name() if tp.error else None} for tp in got])
    c.close()
    emit("done")
    return 0


def op_wait_committed(args):
    """Polls the group's committed offsets (OffsetFetch without require_stable) until each
    reaches its target, or max_ms."""
    c = make_consumer(args, args["group"], "read_uncommitted")
    targets = {(t, p): o for t, p, o in args["targets"]}
    parts = [TopicPartition(t, p) for t, p in targets]
    deadline = time.monotonic() + args.get("max_ms", 60000) / 1000
    last = None
    while True:
        try:
            got = c.committed(parts, timeout=5)
            last = {(tp.topic, tp.partition): tp.offset for tp in got}
            if all(last[k] >= v for k, v in targets.items()):
                break
        except KafkaException as e:
            emit("retry", during="committed", message=str(e))
        if time.monotonic() > deadline:
            break
        time.sleep(0.3)
    ok = last is not None and all(last[k] >= v for k, v in targets.items())
    emit("done", ok=ok, offsets=[[t, p, o] for (t, p), o in (last or {}).items()])
    return 0


def op_commit_offsets(args):
    """A simple-consumer commit (generation -1, no member) of explicit offsets."""
    c = make_consumer(args, args["group"], "read_uncommitted")
    parts = []
    for x in args["offsets"]:
        # [topic, partition, offset, metadata?, leader_epoch?]
        kw = {}
        if len(x) > 3:
            kw["metadata"] = x[3]
        if len(x) > 4:
            kw["leader_epoch"] = x[4]
        parts.append(TopicPartition(x[0], x[1], x[2], **kw))
    try:
        c.commit(offsets=parts, asynchronous=False)
    except KafkaException as e:
        error_event(e, "commit")
        return 1
    c.close()
    emit("done")
    return 0


def poll_until(consumers, cond, what, timeout=TIMEOUT):
    """Polls every consumer (they must all poll to take part in a rebalance) until cond()."""
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise RuntimeError("timed out waiting for " + what)
        for c in consumers:
            c.poll(0.1)


def op_stale_metadata(args):
    """KIP-447: a transaction sends offsets with consumer group metadata taken before the
    group moved on (a rebalance, or a static member replaced by a newer instance). Emits
    `stale` with the error send_offsets_to_transaction (or the commit) raised, aborts, then
    sends the same offsets with fresh metadata and commits them (`fresh`)."""
    group, src, out = args["group"], args["topic"], args["out"]
    offsets = [TopicPartition(src, 0, args.get("offset", 1))]
    assigned = {}

    def consumer(name, instance=None):
        extra = {"group.instance.id": instance} if instance else {}
        c = make_consumer({**args, "consumer_conf": extra}, group,
                          "read_committed")
        assigned[name] = None
        c.subscribe([src], on_assign=lambda _c, parts: assigned.__setitem__(name, len(parts)))
        return c

    c1 = consumer("c1", args.get("instance"))
    poll_until([c1], lambda: assigned["c1"] is not None, "the first member's assignment")
    stale = c1.consumer_group_metadata()
    if args["how"] == "rebalance":
        assigned["c1"] = None
        c2 = consumer("c2")
        # Both must poll through the rebalance; c1 is assigned again in the new generation.
        poll_until([c1, c2], lambda: assigned["c1"] is not None and assigned["c2"] is not None,
                   "the rebalance")
        fresh_owner = c1
    else:
        # A static member's close sends no LeaveGroup; a new instance with the same
        # group.instance.id takes its place under a new member id.
        c1.close()
        c2 = consumer("c2", args["instance"])
        poll_until([c2], lambda: assigned["c2"] is not None, "the new instance's assignment")
        fresh_owner = c2
    emit("rebalanced")
    p = Producer({**base_conf(args), "transactional.id": args["transactional_id"],
                  "transaction.timeout.ms": 30000, "acks": "all", "enable.idempotence": True})
    p.init_transactions(TIMEOUT)
    p.begin_transaction()
    produce_records(p, [{"topic": out, "partition": 0, "key": "stale", "value": "stale"}])
    failed = None
    try:
        p.send_offsets_to_transaction(offsets, stale, TIMEOUT)
        p.commit_transaction(TIMEOUT)
    except KafkaException as e:
        err = e.args[0]
        failed = err
        emit("stale", code=err.code(), name=err.name(), fatal=err.fatal(),
             txn_requires_abort=err.txn_requires_abort(), retriable=err.retriable())
    if failed is None:
        emit("stale", code=None, name="committed")
        return 1
    if failed.fatal():
        return 0
    p.abort_transaction(TIMEOUT)
    p.begin_transaction()
    produce_records(p, [{"topic": out, "partition": 0, "key": "fresh", "value": "fresh"}])
    fresh = fresh_owner.consumer_group_metadata()
    p.send_offsets_to_transaction(offsets, fresh, TIMEOUT)
    p.commit_transaction(TIMEOUT)
    emit("fresh")
    emit("done")
    return 0


def op_abort_without_data(args):
    """Scenario 5: a transaction registers partitions (its records wait in librdkafka's queue
    long enough for AddPartitionsToTxn to go out) and aborts with the records unsent, so the
    partitions get an ABORT marker and no data; the next transaction commits records to
    the same partitions. Emits `registered` and the committed records' deliveries."""
    conf = {**base_conf(args), "transactional.id": args["transactional_id"], "acks": "all",
            "enable.idempotence": True, "transaction.timeout.ms": 30000, "linger.ms": 20000}
    p = Producer(conf)
    p.init_transactions(TIMEOUT)
    p.begin_transaction()
    for part in args["partitions"]:
        p.produce(args["topic"], key=b"purged", value=b"purged", partition=part)
    # AddPartitionsToTxn is sent at once; the records wait for linger.ms.
    deadline = time.time() + 2
    while time.time() < deadline:
        p.poll(0.1)
    emit("registered")
    # The abort purges the queued records (librdkafka then restarts the partitions'
    # sequences; an application purge() before it would leave a gap in them).
    p.abort_transaction(TIMEOUT)
    emit("aborted")
    p.begin_transaction()
    for part in args["partitions"]:
        for i in range(args.get("n", 3)):
            while True:
                try:
                    p.produce(args["topic"], key=b"k", value=("c%d" % i).encode(), partition=part,
                              on_delivery=lambda err, msg: emit(
                                  "delivered", topic=msg.topic(), partition=msg.partition(),
                                  offset=msg.offset(), value=dec(msg.value()),
                                  error=err.name() if err else None))
                    break
                except BufferError:
                    p.poll(0.1)
    p.commit_transaction(TIMEOUT)
    p.poll(0)
    emit("done")
    return 0


def op_epoch_bump(args):
    """Scenario 15 (KIP-360): records time out in flight, the transaction becomes abortable,
    and abort_transaction bumps the epoch (InitProducerId with the current producer id and
    epoch) so that the same producer goes on. Produces `records` in a transaction and waits
    for their acks (`open`); on the stdin line `stall` (the broker is stopped) produces
    `records_after` and waits until each has failed by message.timeout.ms (`stalled`); on
    `resume` tries to commit (`commit_failed` with the error), aborts (`aborted`) and commits
    `records_final` in a new transaction (`committed`)."""
    delivered = []
    conf_args = dict(args, producer_conf={"message.timeout.ms": args.get("message_timeout_ms", 3000),
                                          **args.get("producer_conf", {})})
    producer = make_producer(conf_args, delivered)
    cmds = StdinCommands()
    topic = args.get("topic")

    def records(key):
        return [dict(r, topic=r.get("topic", topic)) for r in args.get(key, [])]

    during = "init_transactions"
    try:
        producer.init_transactions(TIMEOUT)
        producer.begin_transaction()
        during = "produce"
        produce_records(producer, records("records"))
        flush(producer)
        emit("open", delivered=len(delivered))
        if cmds.get(TIMEOUT) != "stall":
            return 1
        before = len(delivered)
        produce_records(producer, records("records_after"))
        flush(producer)
        emit("stalled", delivered=len(delivered) - before)
        if cmds.get(TIMEOUT) != "resume":
            return 1
        during = "commit_transaction"
        try:
            producer.commit_transaction(TIMEOUT)
            emit("commit_failed", code=None, name="committed")
            return 1
        except KafkaException as e:
            err = e.args[0]
            emit("commit_failed", code=err.code(), name=err.name(), fatal=err.fatal(),
                 txn_requires_abort=err.txn_requires_abort())
            if not err.txn_requires_abort():
                return 1
        during = "abort_transaction"
        producer.abort_transaction(TIMEOUT)
        emit("aborted")
        during = "begin_transaction"
        producer.begin_transaction()
        during = "produce"
        produce_records(producer, records("records_final"))
        during = "commit_transaction"
        producer.commit_transaction(TIMEOUT)
        emit("committed", delivered=len(delivered))
    except KafkaException as e:
        error_event(e, during)
        return 1
    emit("done")
    return 0


def op_member(args):
    """A consumer-group member that only tracks what it owns: subscribes with
    `strategy`, emits `owns` with its whole assignment after every change (eager strategies
    replace it, cooperative-sticky adds and revokes increments), and on the stdin line
    `stop` closes (LeaveGroup) and emits `done`."""
    c = make_consumer(args, args["group"], "read_committed")
    cmds = StdinCommands()
    owned = set()
    cooperative = args["strategy"] == "cooperative-sticky"

    def on_assign(consumer, parts):
        nonlocal owned
        got = {(p.topic, p.partition) for p in parts}
        owned = owned | got if cooperative else got
        emit("owns", partitions=sorted([t, p] for t, p in owned), member_id=consumer.memberid())

    def on_revoke(consumer, parts):
        nonlocal owned
        gone = {(p.topic, p.partition) for p in parts}
        owned = owned - gone if cooperative else set()
        emit("owns", partitions=sorted([t, p] for t, p in owned), member_id=consumer.memberid())

    c.subscribe(args["topics"], on_assign=on_assign, on_revoke=on_revoke)
    emit("subscribed")
    while not cmds.peek_stop():
        c.poll(0.1)
    c.close()
    emit("done")
    return 0


def op_delete_groups(args):
    """AdminClient.delete_consumer_groups (DeleteGroups): one `deleted` event per group with
    its error name (None on success)."""
    admin = AdminClient(base_conf(args))
    futs = admin.delete_consumer_groups(args["groups"], request_timeout=15)
    for group, f in futs.items():
        try:
            f.result()
            emit("deleted", group=group, error=None)
        except KafkaException as e:
            err = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
            emit("deleted", group=group, error=err.name() if err else str(e))
    emit("done")
    return 0


def op_describe_cluster(args):
    """AdminClient.describe_cluster (librdkafka 2.16 sends Metadata v10): one `cluster` event with the cluster
    id, the controller's id, each node's (id, host, port) and the authorized operations'
    names."""
    admin = AdminClient(base_conf(args))
    d = admin.describe_cluster(include_authorized_operations=True, request_timeout=15).result()
    emit("cluster", cluster_id=d.cluster_id, controller=d.controller.id if d.controller else None,
         nodes=[[n.id, n.host, n.port] for n in d.nodes],
         authorized_operations=sorted(op.name for op in (d.authorized_operations or [])))
    emit("done")
    return 0


def op_acls(args):
    """AdminClient.create_acls, describe_acls and delete_acls of a READ allow ACL for
    `principal` on `topic`: one `acl` event per call ({"call", "error": the error's name or
    None, "acls": how many ACLs the call returned})."""
    from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                       ResourcePatternType, ResourceType)
    admin = AdminClient(base_conf(args))
    binding = AclBinding(ResourceType.TOPIC, args["topic"], ResourcePatternType.LITERAL, args["principal"], "*",
                         AclOperation.READ, AclPermissionType.ALLOW)
    match_all = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                 AclOperation.ANY, AclPermissionType.ANY)
    calls = [
        ("create", lambda: admin.create_acls([binding], request_timeout=15)[binding]),
        ("describe", lambda: admin.describe_acls(match_all, request_timeout=15)),
        ("delete", lambda: admin.delete_acls([match_all], request_timeout=15)[match_all]),
    ]
    for name, call in calls:
        try:
            got = call().result()
            emit("acl", call=name, error=None, acls=len(got) if isinstance(got, list) else 0)
        except KafkaException as e:
            err = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
            emit("acl", call=name, error=err.name() if err else str(e), acls=0)
    emit("done")
    return 0


def op_describe_configs(args):
    """AdminClient.describe_configs (DescribeConfigs): one `configs` event per resource
    ({"type": "topic"|"broker", "name": ...}) with each config's value, source name and
    read-only flag, or the resource's error name."""
    from confluent_kafka.admin import ConfigResource, ConfigSource
    admin = AdminClient(base_conf(args))
    for r in args["resources"]:
        # One call per resource: librdkafka refuses (_CONFLICT) a call with more than one
        # broker resource, since each must go to its own broker.
        res = ConfigResource(r["type"], r["name"])
        try:
            entries = admin.describe_configs([res], request_timeout=15)[res].result()
        except KafkaException as e:
            err = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
            emit("configs", type=r["type"], name=r["name"], error=err.name() if err else str(e), configs={})
            continue
        emit("configs", type=r["type"], name=r["name"], error=None,
             configs={k: {"value": e.value, "source": ConfigSource(e.source).name,
                          "read_only": e.is_read_only,
                          "synonyms": [[sn, se.value] for sn, se in sorted((e.synonyms or {}).items())]}
                      for k, e in entries.items()})
    emit("done")
    return 0


def op_alter_configs(args):
    """AdminClient.incremental_alter_configs (IncrementalAlterConfigs), or alter_configs
    (AlterConfigs) when `incremental` is false: one `altered` event per resource
    ({"type", "name", "ops": [[op, key, value], ...]}) with its error name (None on success).
    The legacy call takes SET ops only, and replaces the resource's configs with them."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
    admin = AdminClient(base_conf(args))
    incremental = args.get("incremental", True)
    for r in args["resources"]:
        if incremental:
            entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType[op]) for op, k, v in r["ops"]]
            res = ConfigResource(r["type"], r["name"], incremental_configs=entries)
            call = admin.incremental_alter_configs
        else:
            res = ConfigResource(r["type"], r["name"], set_config={k: v for _, k, v in r["ops"]})
            call = admin.alter_configs
        try:
            call([res], request_timeout=15, validate_only=args.get("validate_only", False))[res].result()
            emit("altered", type=r["type"], name=r["name"], error=None)
        except KafkaException as e:
            err = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
            emit("altered", type=r["type"], name=r["name"], error=err.name() if err else str(e),
                 message=err.str() if err else str(e))
    emit("done")
    return 0


def op_info(args):
    import confluent_kafka
    admin = AdminClient(base_conf(args))
    md = admin.list_topics(timeout=10)
    emit("info", client="confluent-kafka", version=confluent_kafka.__version__,
         librdkafka=confluent_kafka.libversion()[0],
         brokers=[[b.id, b.host, b.port] for b in md.brokers.values()])
    emit("done")
    return 0


OPS = {
    "produce": op_produce,
    "consume": op_consume,
    "txn_open_and_hang": op_txn_open_and_hang,
    "pipeline": op_pipeline,
    "create_topics": op_create_topics,
    "offsets": op_offsets,
    "committed": op_committed,
    "wait_committed": op_wait_committed,
    "commit_offsets": op_commit_offsets,
    "info": op_info,
    "stale_metadata": op_stale_metadata,
    "abort_without_data": op_abort_without_data,
    "member": op_member,
    "epoch_bump": op_epoch_bump,
    "delete_groups": op_delete_groups,
    "describe_configs": op_describe_configs,
    "describe_cluster": op_describe_cluster,
    "acls": op_acls,
    "alter_configs": op_alter_configs,
}


if __name__ == "__main__":
    run_main(OPS)
