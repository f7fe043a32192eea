"""kafka-python driver. See common.py for the protocol."""

import logging
import os
import re
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (StdinCommands, dec, debug_enabled, emit, enc, make_stopper, parse_args, run_main,  # noqa: E402
                    transactions_of, transform, watchdog)

import kafka  # noqa: E402
import kafka.errors as Errors  # noqa: E402
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.consumer.subscription_state import ConsumerRebalanceListener  # noqa: E402
from kafka.structs import OffsetAndMetadata  # noqa: E402

TIMEOUT = 30

logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                    format="%(asctime)s %(name)s %(levelname)s %(message)s")
if debug_enabled():
    logging.getLogger("kafka.producer.transaction_manager").setLevel(logging.DEBUG)
    logging.getLogger("kafka.coordinator").setLevel(logging.DEBUG)


def error_event(exc, during):
    code = getattr(exc, "errno", None)
    if code is None:
        # kafka-python wraps some broker errors in a plain KafkaError whose message names
        # them ("Unexpected error in InitProducerIdResponse: [Error 50] ..."); recover the code
        m = re.search(r"\[Error (\d+)\]", str(exc))
        if m:
            code = int(m.group(1))
    if isinstance(exc, (Errors.ProducerFencedError, Errors.InvalidProducerEpochError)) or code in (47, 90):
        kind = "fenced"
    elif isinstance(exc, Errors.InvalidTransactionTimeoutError) or code == 50:
        kind = "invalid_txn_timeout"
    elif isinstance(exc, Errors.KafkaTimeoutError):
        kind = "timeout"
    else:
        kind = "other"
    emit("error", kind=kind, code=code, name=type(exc).__name__, message=str(exc),
         fatal=kind == "fenced", during=during)


def make_producer(args):
    conf = {"bootstrap_servers": args["bootstrap"], "acks": "all", "enable_idempotence": True,
            "linger_ms": 5, "reconnect_backoff_max_ms": 500, "metadata_max_age_ms": 1000,
            "max_block_ms": TIMEOUT * 1000, "request_timeout_ms": 10000}
    comp = args.get("compression", "none")
    if comp != "none":
        conf["compression_type"] = comp
    if args.get("transactional_id"):
        conf["transactional_id"] = args["transactional_id"]
        conf["transaction_timeout_ms"] = args.get("txn_timeout_ms", 10000)
    conf.update(args.get("conf", {}))
    return KafkaProducer(**conf)


def send_records(producer, records):
    futs = []
    for r in records:
        f = producer.send(r["topic"], key=enc(r.get("key")), value=enc(r.get("value")),
                          partition=r.get("partition"), timestamp_ms=r.get("timestamp"))
        futs.append((r, f))
    return futs


def report(futs):
    n = 0
    for r, f in futs:
        if f.is_done and f.succeeded():
            md = f.value
            emit("delivered", topic=md.topic, partition=md.partition, offset=md.offset,
                 key=r.get("key"), value=r.get("value"))
            n += 1
        elif f.is_done:
            emit("delivery_error", name=type(f.exception).__name__, message=str(f.exception),
                 topic=r["topic"], key=r.get("key"))
    return n


def offsets_arg(offsets):
    return {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for t, p, o in offsets}


def op_produce(args):
    txns = transactions_of(args)
    transactional = bool(args.get("transactional_id"))
    during = "KafkaProducer"
    delivered = 0
    try:
        producer = make_producer(args)
        during = "init_transactions"
        if transactional:
            producer.init_transactions()
        emit("ready")
        for i, t in enumerate(txns):
            if transactional and t["end"] != "none":
                during = "begin_transaction"
                producer.begin_transaction()
                emit("txn_begun", i=i)
            during = "send"
            futs = send_records(producer, t["records"])
            if t.get("offsets"):
                during = "send_offsets_to_transaction"
                producer.send_offsets_to_transaction(offsets_arg(t["offsets"]["offsets"]),
                                                     t["offsets"]["group"])
            during = "flush"
            producer.flush(timeout=TIMEOUT)
            delivered += report(futs)
            if transactional and t["end"] == "commit":
                during = "commit_transaction"
                producer.commit_transaction()
            elif transactional and t["end"] == "abort":
                during = "abort_transaction"
                producer.abort_transaction()
            emit("txn_end", i=i, end=t["end"])
        producer.close(timeout=5)
    except Exception as e:  # noqa: BLE001 - every client error is reported as an event
        error_event(e, during)
        return 1
    emit("done", delivered=delivered)
    return 0


def op_txn_open_and_hang(args):
    cmds = StdinCommands()
    during = "KafkaProducer"
    try:
        producer = make_producer(args)
        during = "init_transactions"
        producer.init_transactions()
        during = "begin_transaction"
        producer.begin_transaction()
        during = "send"
        futs = send_records(producer, transactions_of(args)[0]["records"])
        producer.flush(timeout=TIMEOUT)
        n = report(futs)
        if n != len(futs):
            emit("error", kind="other", code=None, name="flush", message="%d of %d delivered" % (n, len(futs)),
                 fatal=False, during=during)
            return 1
        if args.get("offsets"):
            during = "send_offsets_to_transaction"
            producer.send_offsets_to_transaction(offsets_arg(args["offsets"]["offsets"]),
                                                 args["offsets"]["group"])
        emit("open", delivered=n)
    except Exception as e:  # noqa: BLE001
        error_event(e, during)
        return 1
    cmd = cmds.get()
    if cmd is None:
        os._exit(0)
    during = cmd
    try:
        after = [dict(r, topic=r.get("topic", args.get("topic"))) for r in args.get("records_after", [])]
        if cmd == "recover":
            return recover(producer, after, [dict(r, topic=r.get("topic", args.get("topic")))
                                             for r in args.get("records_final", [])])
        if cmd in ("produce_commit", "produce"):
            futs = send_records(producer, after)
            producer.flush(timeout=TIMEOUT)
            for r, f in futs:
                if f.is_done and not f.succeeded():
                    raise f.exception
        if cmd in ("commit", "produce_commit"):
            producer.commit_transaction()
        elif cmd == "abort":
            producer.abort_transaction()
        emit("result", cmd=cmd, ok=True)
    except Exception as e:  # noqa: BLE001
        error_event(e, during)
        return 1
    return 0


def recover(producer, after, final):
    """After the broker aborted the transaction by its timeout: `after` is sent in the expired
    transaction and refused (the partition's producer epoch moved on), which kafka-python
    answers with a KIP-360 epoch bump (InitProducerId v3 with its producer id and epoch);
    then `final` is sent and committed in a new transaction. Emits `refused` with the send
    errors, then `result`, or the error that stopped it."""
    during = "send"
    try:
        futs = send_records(producer, after)
        try:
            producer.flush(timeout=TIMEOUT)
        except Exception as e:  # noqa: BLE001 - reported with the refused sends
            emit("flush_error", name=type(e).__name__, message=str(e))
        names = [type(f.exception).__name__ for _, f in futs if f.is_done and not f.succeeded()]
        emit("refused", names=names, delivered=sum(1 for _, f in futs if f.is_done and f.succeeded()))
        during = "begin_transaction"
        deadline = time.monotonic() + TIMEOUT
        while True:
            # The epoch bump runs in the background; until it lands the producer is not ready.
            try:
                producer.begin_transaction()
                break
            except (Errors.IllegalStateError, Errors.KafkaError) as e:
                if isinstance(e, (Errors.ProducerFencedError, Errors.InvalidProducerEpochError)) \
                        or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        during = "send"
        futs = send_records(producer, final)
        producer.flush(timeout=TIMEOUT)
        n = report(futs)
        during = "commit_transaction"
        producer.commit_transaction()
        emit("result", cmd="recover", ok=True, delivered=n)
    except Exception as e:  # noqa: BLE001
        error_event(e, during)
        return 1
    return 0


def make_consumer(args, group, isolation, listener=None):
    conf = {"bootstrap_servers": args["bootstrap"], "group_id": group,
            "isolation_level": isolation, "enable_auto_commit": False,
            "auto_offset_reset": args.get("offset_reset", "earliest"),
            "session_timeout_ms": 6000, "heartbeat_interval_ms": 500,
            "max_poll_interval_ms": 10000, "reconnect_backoff_max_ms": 500,
            "fetch_max_wait_ms": 100, "metadata_max_age_ms": 1000,
            "request_timeout_ms": 15000}
    conf.update(args.get("consumer_conf", {}))
    return KafkaConsumer(**conf)


def op_consume(args):
    iso = args.get("isolation", "read_committed")
    stop = make_stopper(args)
    if args.get("assign"):
        c = make_consumer(args, args.get("group"), iso)
        parts = [TopicPartition(t, p) for t, p in args["assign"]]
        c.assign(parts)
        emit("assigned", partitions=[[t, p] for t, p in args["assign"]])
        stop.assigned()
    else:
        group = args.get("group") or "kp-consume-%s" % uuid.uuid4().hex[:8]
        c = make_consumer(args, group, iso)

        class L(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                pass

            def on_partitions_assigned(self, assigned):
                emit("assigned", partitions=[[tp.topic, tp.partition] for tp in assigned])
                stop.assigned()
        c.subscribe(args["topics"], listener=L())
    reason = None
    while reason is None:
        batch = c.poll(timeout_ms=200)
        for tp, msgs in batch.items():
            for m in msgs:
                stop.record(m.topic, m.partition, m.offset, dec(m.key), dec(m.value))
        reason = stop.reason()
    if args.get("commit") and not args.get("assign"):
        c.commit()
    c.close(autocommit=False)
    stop.done(reason)
    return 0


def op_member(args):
    """A group member that only tracks what it owns (ck.py's `member`): `owns` after every
    change, and on the stdin line `stop` a close (LeaveGroup) and `done`."""
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    assignor = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor}[args["strategy"]]
    c = make_consumer({**args, "consumer_conf": {"partition_assignment_strategy": [assignor]}},
                      args["group"], "read_committed")
    cmds = StdinCommands()

    class L(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            emit("owns", partitions=[])

        def on_partitions_assigned(self, assigned):
            emit("owns", partitions=sorted([tp.topic, tp.partition] for tp in assigned))
    c.subscribe(args["topics"], listener=L())
    emit("subscribed")
    while not cmds.peek_stop():
        c.poll(timeout_ms=100)
    c.close(autocommit=False)
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

    def abort(self, reason, rewind=True):
        watchdog(self.producer.abort_transaction, "abort_transaction")
        # kafka-python 3.0.12 keeps the offsets of a TxnOffsetCommit that failed with
        # ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID in its pending set, never clears that set on
        # abort, and sends those stale offsets again with the next transaction's
        # (TxnOffsetCommitHandler.handle_response): a client bug that commits offsets nobody
        # processed. Clear them, as the Java client does on abort.
        tm = getattr(self.producer, "_transaction_manager", None)
        stale = getattr(tm, "_pending_txn_offset_commits", None)
        if stale:
            emit("workaround", what="cleared stale pending transactional offsets",
                 offsets=[[tp.topic, tp.partition, om.offset] for tp, om in stale.items()])
            stale.clear()
        emit("aborted", reason=reason, records=self.pending)
        self.in_txn = False
        self.pending = 0
        if rewind:
            for tp in self.consumer.assignment():
                off = self.consumer.committed(tp)
                if off is None:
                    self.consumer.seek_to_beginning(tp)
                else:
                    self.consumer.seek(tp, off)

    def commit(self):
        offsets = {tp: OffsetAndMetadata(self.consumer.position(tp), "", -1)
                   for tp in self.consumer.assignment()}
        md = self.consumer.group_metadata()
        if md.generation_id < 0 or not md.member_id:
            # kafka-python's heartbeat thread resets the generation to -1 and the member id to
            # "" when the coordinator forgets the member; a TxnOffsetCommit carrying those is
            # accepted unfenced (as by Kafka, for pre-KIP-447 producers), so this member, which
            # may no longer own its partitions, must not commit: abort and rewind instead
            emit("abortable", name="NoGeneration", message="group membership lost: %s" % (md,))
            self.abort("no generation")
            return
        try:
            watchdog(lambda: self.producer.send_offsets_to_transaction(offsets, md),
                     "send_offsets_to_transaction")
            watchdog(self.producer.commit_transaction, "commit_transaction")
        except (Errors.ProducerFencedError, Errors.InvalidProducerEpochError):
            raise
        except Errors.KafkaError as e:
            emit("abortable", name=type(e).__name__, message=str(e))
            self.abort("abortable: " + type(e).__name__)
            return
        self.committed_records += self.pending
        emit("committed", records=self.pending,
             offsets=[[tp.topic, tp.partition, om.offset] for tp, om in offsets.items()])
        self.in_txn = False
        self.pending = 0

    def run(self):
        a = self.args
        cmds = StdinCommands()
        self.producer.init_transactions()
        pipe = self

        class L(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                emit("revoked", partitions=[[tp.topic, tp.partition] for tp in revoked])
                if pipe.in_txn:
                    pipe.abort("revoked", rewind=False)

            def on_partitions_assigned(self, assigned):
                emit("assigned", partitions=[[tp.topic, tp.partition] for tp in assigned])
        self.consumer.subscribe(a["input_topics"], listener=L())
        start = last = time.monotonic()
        while True:
            if cmds.peek_stop():
                break
            if a.get("max_ms") and (time.monotonic() - start) * 1000 > a["max_ms"]:
                break
            batch = self.consumer.poll(timeout_ms=200, max_records=max(1, self.k - self.pending))
            got = False
            for tp, msgs in batch.items():
                for m in msgs:
                    if not self.in_txn:
                        self.producer.begin_transaction()
                        self.in_txn = True
                    self.producer.send(a["output_topic"], key=m.key, partition=m.partition,
                                       value=transform(m.topic, m.partition, m.offset,
                                                       dec(m.value)).encode())
                    self.pending += 1
                    got = True
                    last = time.monotonic()
                    if a.get("record_delay_ms"):
                        time.sleep(a["record_delay_ms"] / 1000)
            if self.in_txn and self.pending and (self.pending >= self.k or not got):
                self.commit()
            if a.get("idle_ms") and not self.in_txn and (time.monotonic() - last) * 1000 > a["idle_ms"]:
                break
        if self.in_txn:
            if self.pending:
                self.commit()
            else:
                self.abort("stop", rewind=False)
        self.consumer.close(autocommit=False)
        self.producer.close(timeout=5)
        emit("done", committed_records=self.committed_records)
        return 0


def op_pipeline(args):
    try:
        return Pipeline(args).run()
    except Exception as e:  # noqa: BLE001
        error_event(e, "pipeline")
        return 1


def error_name(cls):
    """Kafka's name of a kafka-python error class (None for NoError)."""
    return None if cls is Errors.NoError else cls.message


def op_delete_groups(args):
    """KafkaAdminClient.delete_groups (DeleteGroups): one `deleted` event per group."""
    admin = kafka.KafkaAdminClient(bootstrap_servers=args["bootstrap"], request_timeout_ms=15000)
    # kafka-python answers 'OK' or the error class's name.
    for group, res in sorted(admin.delete_groups(args["groups"]).items()):
        emit("deleted", group=group, error=None if res == "OK" else getattr(Errors, res).message)
    admin.close()
    emit("done")
    return 0


def op_delete_group_offsets(args):
    """KafkaAdminClient.delete_group_offsets (OffsetDelete): a `deleted_offsets` event with
    each partition's error name, or the request's error."""
    admin = kafka.KafkaAdminClient(bootstrap_servers=args["bootstrap"], request_timeout_ms=15000)
    parts = [TopicPartition(t, p) for t, p in args["partitions"]]
    try:
        got = admin.delete_group_offsets(args["group"], parts)
    except Errors.KafkaError as e:
        emit("deleted_offsets", error=getattr(e, "message", type(e).__name__), partitions=[])
    else:
        emit("deleted_offsets", error=None,
             partitions=sorted([tp.topic, tp.partition, error_name(err)] for tp, err in got.items()))
    admin.close()
    emit("done")
    return 0


def op_describe_configs(args):
    """KafkaAdminClient.describe_configs (DescribeConfigs, every config with synonyms): one
    `configs` event per resource with each config's value, source name, read-only flag and
    synonyms. kafka-python reports no per-resource error: a refused resource has no configs."""
    from kafka.admin import ConfigResource
    admin = kafka.KafkaAdminClient(bootstrap_servers=args["bootstrap"], request_timeout_ms=15000)
    resources = [ConfigResource(r["type"].upper(), r["name"]) for r in args["resources"]]
    got = admin.describe_configs(resources, include_synonyms=True, config_filter="all")
    for r in args["resources"]:
        configs = got.get(r["type"], {}).get(r["name"], {})
        emit("configs", type=r["type"], name=r["name"], error=None,
             configs={k: {"value": c["value"], "source": c["config_source"], "read_only": c["read_only"],
                          "synonyms": [[sy["name"], sy["value"], sy["source"]] for sy in c.get("synonyms", [])]}
                      for k, c in configs.items()})
    admin.close()
    emit("done")
    return 0


def op_alter_configs(args):
    """KafkaAdminClient.alter_configs, with IncrementalAlterConfigs or AlterConfigs as
    `incremental` says: one `altered` event per resource ({"type", "name", "ops": [[op, key,
    value], ...]}) with kafka-python's text of its error (None on success). With AlterConfigs
    kafka-python first reads the resource's configs and sends those set for it (the topic's
    own) along, since the request replaces them all."""
    from kafka.admin import ConfigResource
    admin = kafka.KafkaAdminClient(bootstrap_servers=args["bootstrap"], request_timeout_ms=15000)
    incremental = args.get("incremental", True)
    resources = [ConfigResource(r["type"].upper(), r["name"],
                                configs={k: (op, v) if incremental else v for op, k, v in r["ops"]})
                 for r in args["resources"]]
    got = admin.alter_configs(resources, validate_only=args.get("validate_only", False),
                              raise_on_unknown=False, incremental=incremental)
    for r in args["resources"]:
        result = got.get(r["type"], {}).get(r["name"], "no result for the resource")
        emit("altered", type=r["type"], name=r["name"], error=None if result == "OK" else result)
    admin.close()
    emit("done")
    return 0


def op_acls(args):
    """KafkaAdminClient.create_acls, describe_acls and delete_acls of a READ allow ACL for
    `principal` on `topic`: one `acl` event per call ({"call", "error": the error class's
    name or None, "acls": how many ACLs the call returned})."""
    from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             ResourcePattern, ResourcePatternFilter, ResourceType)
    admin = kafka.KafkaAdminClient(bootstrap_servers=args["bootstrap"], request_timeout_ms=15000)
    acl = ACL(args["principal"], "*", ACLOperation.READ, ACLPermissionType.ALLOW,
              ResourcePattern(ResourceType.TOPIC, args["topic"], ACLResourcePatternType.LITERAL))
    match_all = ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                          ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))
    created = admin.create_acls([acl])
    failed = created["failed"]
    emit("acl", call="create", error=failed[0].__name__ if failed else None, acls=len(created["succeeded"]))
    try:
        found, _ = admin.describe_acls(match_all)
        emit("acl", call="describe", error=None, acls=len(found))
    except Errors.KafkaError as e:
        emit("acl", call="describe", error=type(e).__name__, acls=0)
    ((_, matched, error),) = admin.delete_acls([match_all])
    emit("acl", call="delete", error=None if error is Errors.NoError else error.__name__, acls=len(matched))
    admin.close()
    emit("done")
    return 0


def op_info(args):
    p = KafkaProducer(bootstrap_servers=args["bootstrap"])
    c = KafkaConsumer(bootstrap_servers=args["bootstrap"])
    topics = sorted(c.topics())
    emit("info", client="kafka-python", version=kafka.__version__,
         producer_api_version=list(p.config["api_version"]),
         consumer_api_version=list(c.config["api_version"]) if c.config.get("api_version") else None,
         topics=len(topics))
    p.close(timeout=5)
    c.close()
    emit("done")
    return 0


OPS = {
    "acls": op_acls,
    "produce": op_produce,
    "consume": op_consume,
    "member": op_member,
    "txn_open_and_hang": op_txn_open_and_hang,
    "pipeline": op_pipeline,
    "delete_groups": op_delete_groups,
    "delete_group_offsets": op_delete_group_offsets,
    "describe_configs": op_describe_configs,
    "alter_configs": op_alter_configs,
    "info": op_info,
}


if __name__ == "__main__":
    run_main(OPS)
