"""aiokafka driver. See common.py for the protocol.

aiokafka uses v0 of every transactional API, so a fenced producer sees
INVALID_PRODUCER_EPOCH (47), which aiokafka raises as ProducerFenced.
"""

import asyncio
import logging
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (StdinCommands, dec, debug_enabled, emit, enc, make_stopper, parse_args, run_main,  # noqa: E402
                    transactions_of, transform)

import aiokafka  # noqa: E402
import aiokafka.errors as Errors  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition  # noqa: E402
from aiokafka.structs import OffsetAndMetadata  # noqa: E402

TIMEOUT = 30

logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if debug_enabled() else logging.WARNING,
                    format="%(asctime)s %(name)s %(levelname)s %(message)s")


def error_event(exc, during):
    if isinstance(exc, (Errors.ProducerFenced, Errors.InvalidProducerEpoch)):
        kind = "fenced"
        # aiokafka knows no PRODUCER_FENCED (90): its ProducerFenced stands for code 47
        code = 47
    elif isinstance(exc, Errors.InvalidTransactionTimeout):
        kind, code = "invalid_txn_timeout", 50
    elif isinstance(exc, (Errors.KafkaTimeoutError, asyncio.TimeoutError)):
        kind, code = "timeout", None
    else:
        kind, code = "other", getattr(exc, "errno", None)
    emit("error", kind=kind, code=code, name=type(exc).__name__, message=str(exc),
         fatal=kind == "fenced", during=during)


def make_producer(args):
    conf = {"bootstrap_servers": args["bootstrap"], "acks": "all", "enable_idempotence": True,
            "linger_ms": 5, "metadata_max_age_ms": 1000, "request_timeout_ms": 15000,
            "retry_backoff_ms": 100}
    comp = args.get("compression", "none")
    if comp != "none":
        conf["compression_type"] = comp
    if args.get("transactional_id"):
        conf["transactional_id"] = args["transactional_id"]
        conf["transaction_timeout_ms"] = args.get("txn_timeout_ms", 10000)
    conf.update(args.get("conf", {}))
    return AIOKafkaProducer(**conf)


async def send_records(producer, records):
    """Sends and waits for every ack, printing the delivered events."""
    futs = []
    for r in records:
        futs.append((r, await producer.send(r["topic"], key=enc(r.get("key")),
                                            value=enc(r.get("value")),
                                            partition=r.get("partition"),
                                            timestamp_ms=r.get("timestamp"))))
    n = 0
    for r, f in futs:
        md = await f
        emit("delivered", topic=md.topic, partition=md.partition, offset=md.offset,
             key=r.get("key"), value=r.get("value"))
        n += 1
    return n


def offsets_arg(offsets):
    return {TopicPartition(t, p): OffsetAndMetadata(o, "") for t, p, o in offsets}


async def op_produce(args):
    txns = transactions_of(args)
    transactional = bool(args.get("transactional_id"))
    producer = make_producer(args)
    during = "start"
    delivered = 0
    try:
        await producer.start()  # finds the coordinator and runs InitProducerId
        emit("ready")
        for i, t in enumerate(txns):
            if transactional and t["end"] != "none":
                during = "begin_transaction"
                await producer.begin_transaction()
                emit("txn_begun", i=i)
            during = "send"
            delivered += await send_records(producer, t["records"])
            if t.get("offsets"):
                during = "send_offsets_to_transaction"
                await producer.send_offsets_to_transaction(offsets_arg(t["offsets"]["offsets"]),
                                                           t["offsets"]["group"])
            if transactional and t["end"] == "commit":
                during = "commit_transaction"
                await producer.commit_transaction()
            elif transactional and t["end"] == "abort":
                during = "abort_transaction"
                await producer.abort_transaction()
            emit("txn_end", i=i, end=t["end"])
    except Exception as e:  # noqa: BLE001
        error_event(e, during)
        return 1
    finally:
        try:
            await asyncio.wait_for(producer.stop(), 5)
        except Exception:  # noqa: BLE001 - a fenced producer may fail to stop cleanly
            pass
    emit("done", delivered=delivered)
    return 0


async def op_txn_open_and_hang(args):
    cmds = StdinCommands()
    producer = make_producer(args)
    during = "start"
    try:
        await producer.start()
        during = "begin_transaction"
        await producer.begin_transaction()
        during = "send"
        n = await send_records(producer, transactions_of(args)[0]["records"])
        if args.get("offsets"):
            during = "send_offsets_to_transaction"
            await producer.send_offsets_to_transaction(offsets_arg(args["offsets"]["offsets"]),
                                                       args["offsets"]["group"])
        emit("open", delivered=n)
    except Exception as e:  # noqa: BLE001
        error_event(e, during)
        return 1
    cmd = await asyncio.get_running_loop().run_in_executor(None, cmds.get)
    if cmd is None:
        os._exit(0)
    during = cmd
    try:
        after = [dict(r, topic=r.get("topic", args.get("topic"))) for r in args.get("records_after", [])]
        if cmd in ("produce_commit", "produce"):
            await asyncio.wait_for(send_records(producer, after), TIMEOUT)
        if cmd in ("commit", "produce_commit"):
            await asyncio.wait_for(producer.commit_transaction(), TIMEOUT)
        elif cmd == "abort":
            await asyncio.wait_for(producer.abort_transaction(), TIMEOUT)
        emit("result", cmd=cmd, ok=True)
    except Exception as e:  # noqa: BLE001
        error_event(e, during)
        return 1
    return 0


def make_consumer(args, group, isolation, **extra):
    conf = {"bootstrap_servers": args["bootstrap"], "group_id": group,
            "isolation_level": isolation, "enable_auto_commit": False,
            "auto_offset_reset": args.get("offset_reset", "earliest"),
            "session_timeout_ms": 6000, "heartbeat_interval_ms": 500,
            "max_poll_interval_ms": 10000, "fetch_max_wait_ms": 100,
            "metadata_max_age_ms": 1000, "request_timeout_ms": 15000,
            "retry_backoff_ms": 100}
    conf.update(extra)
    conf.update(args.get("consumer_conf", {}))
    return AIOKafkaConsumer(**conf)


async def op_consume(args):
    iso = args.get("isolation", "read_committed")
    stop = make_stopper(args)
    if args.get("assign"):
        c = make_consumer(args, args.get("group"), iso)
        await c.start()
        c.assign([TopicPartition(t, p) for t, p in args["assign"]])
        emit("assigned", partitions=args["assign"])
        stop.assigned()
    else:
        group = args.get("group") or "aio-consume-%s" % uuid.uuid4().hex[:8]
        c = make_consumer(args, group, iso)

        class L(ConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked):
                pass

            async def on_partitions_assigned(self, assigned):
                emit("assigned", partitions=[[tp.topic, tp.partition] for tp in assigned])
                stop.assigned()
        await c.start()
        c.subscribe(args["topics"], listener=L())
    reason = None
    try:
        while reason is None:
            batch = await c.getmany(timeout_ms=200)
            for tp, msgs in batch.items():
                for m in msgs:
                    stop.record(m.topic, m.partition, m.offset, dec(m.key), dec(m.value))
            reason = stop.reason()
        if args.get("commit") and not args.get("assign"):
            await c.commit()
    finally:
        await c.stop()
    stop.done(reason)
    return 0


async def op_member(args):
    """A group member that only tracks what it owns (ck.py's `member`): `owns` after every
    change, and on the stdin line `stop` a close (LeaveGroup) and `done`."""
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    assignor = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor}[args["strategy"]]
    c = make_consumer(args, args["group"], "read_committed", partition_assignment_strategy=(assignor,))
    cmds = StdinCommands()

    class L(ConsumerRebalanceListener):
        async def on_partitions_revoked(self, revoked):
            emit("owns", partitions=[])

        async def on_partitions_assigned(self, assigned):
            emit("owns", partitions=sorted([tp.topic, tp.partition] for tp in assigned))
    await c.start()
    c.subscribe(args["topics"], listener=L())
    emit("subscribed")
    try:
        while not cmds.peek_stop():
            await c.getmany(timeout_ms=100)
    finally:
        await c.stop()
    emit("done")
    return 0


class Pipeline:
    def __init__(self, args):
        self.args = args
        self.k = args.get("commit_every", 10)
        self.in_txn = False
        self.pending = 0
        self.committed_records = 0
        self.producer = make_producer(args)
        self.consumer = make_consumer(args, args["group"], "read_committed")
        # aiokafka runs the rebalance listener in its coordinator task, concurrently with the
        # main loop: the lock keeps a revoke's abort out of a batch's processing and commit,
        # and `epoch` (bumped on every revoke and assignment) drops batches fetched before one
        self.lock = asyncio.Lock()
        self.epoch = 0

    async def abort(self, reason, rewind=True):
        await self.producer.abort_transaction()
        emit("aborted", reason=reason, records=self.pending)
        self.in_txn = False
        self.pending = 0
        if rewind:
            await self.rewind()

    async def rewind(self):
        """Seeks every assigned partition back to the group's committed offset."""
        for tp in self.consumer.assignment():
            off = await self.consumer.committed(tp)
            if off is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, off)

    async def commit(self):
        offsets = {}
        for tp in self.consumer.assignment():
            offsets[tp] = await self.consumer.position(tp)
        try:
            await self.producer.send_offsets_to_transaction(offsets, self.args["group"])
            await self.producer.commit_transaction()
        except (Errors.ProducerFenced, Errors.InvalidProducerEpoch):
            raise
        except Errors.KafkaError as e:
            emit("abortable", name=type(e).__name__, message=str(e))
            await self.abort("abortable: " + type(e).__name__)
            return
        self.committed_records += self.pending
        emit("committed", records=self.pending,
             offsets=[[tp.topic, tp.partition, o] for tp, o in offsets.items()])
        self.in_txn = False
        self.pending = 0

    async def run(self):
        a = self.args
        cmds = StdinCommands()
        await self.producer.start()
        pipe = self

        class L(ConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked):
                async with pipe.lock:
                    pipe.epoch += 1
                    emit("revoked", partitions=[[tp.topic, tp.partition] for tp in revoked])
                    if pipe.in_txn:
                        await pipe.abort("revoked", rewind=False)

            async def on_partitions_assigned(self, assigned):
                async with pipe.lock:
                    pipe.epoch += 1
                    emit("assigned", partitions=[[tp.topic, tp.partition] for tp in assigned])
        await self.consumer.start()
        self.consumer.subscribe(a["input_topics"], listener=L())
        start = last = time.monotonic()
        while True:
            if cmds.peek_stop():
                break
            if a.get("max_ms") and (time.monotonic() - start) * 1000 > a["max_ms"]:
                break
            epoch = self.epoch
            batch = await self.consumer.getmany(timeout_ms=200, max_records=max(1, self.k - self.pending))
            got = False
            async with self.lock:
                if self.epoch != epoch and batch:
                    # fetched under an assignment that has changed since; getmany moved the
                    # positions past these records, so go back to the committed offsets
                    batch = {}
                    await self.rewind()
                    emit("rewound", reason="batch from a previous assignment")
                for tp, msgs in batch.items():
                    for m in msgs:
                        if not self.in_txn:
                            await self.producer.begin_transaction()
                            self.in_txn = True
                        await self.producer.send(a["output_topic"], key=m.key, partition=m.partition,
                                                 value=transform(m.topic, m.partition, m.offset,
                                                                 dec(m.value)).encode())
                        self.pending += 1
                        got = True
                        last = time.monotonic()
                        if a.get("record_delay_ms"):
                            await asyncio.sleep(a["record_delay_ms"] / 1000)
                if self.in_txn and self.pending and (self.pending >= self.k or not got):
                    await self.commit()
            if a.get("idle_ms") and not self.in_txn and (time.monotonic() - last) * 1000 > a["idle_ms"]:
                break
        async with self.lock:
            if self.in_txn:
                if self.pending:
                    await self.commit()
                else:
                    await self.abort("stop", rewind=False)
        await self.consumer.stop()
        await self.producer.stop()
        emit("done", committed_records=self.committed_records)
        return 0


async def op_pipeline(args):
    try:
        return await Pipeline(args).run()
    except Exception as e:  # noqa: BLE001
        error_event(e, "pipeline")
        return 1


async def op_info(args):
    p = AIOKafkaProducer(bootstrap_servers=args["bootstrap"])
    await p.start()
    emit("info", client="aiokafka", version=aiokafka.__version__,
         api_version=list(p.client.api_version) if hasattr(p.client, "api_version") else None)
    await p.stop()
    emit("done")
    return 0


OPS = {
    "produce": op_produce,
    "consume": op_consume,
    "member": op_member,
    "txn_open_and_hang": op_txn_open_and_hang,
    "pipeline": op_pipeline,
    "info": op_info,
}


if __name__ == "__main__":
    run_main(OPS, lambda op, args: asyncio.run(op(args)))
