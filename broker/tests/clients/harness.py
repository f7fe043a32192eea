"""The harness of the real-client tests: the broker process, the client driver processes and
the checks the tests share. conftest.py turns these into fixtures.

Every client runs in its own subprocess (drivers/*.py, node/kjs.js) that takes a JSON
argument and prints JSON event lines, so a test can kill -9 or SIGSTOP it, and no client's
threads live in the pytest process.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
DRIVERS = HERE / "drivers"
NODE_DIR = HERE / "node"
LOG_ROOT = Path(os.environ.get("EOSLOG_CLIENTS_LOGDIR", REPO / "target" / "clients-logs"))

CLIENTS = ("ck", "kp", "aio", "kjs")
CLIENT_NAMES = {"ck": "confluent-kafka", "kp": "kafka-python", "aio": "aiokafka", "kjs": "kafkajs"}
SENTINEL = "__sentinel__"

# Broker settings every test gets unless it overrides them (see the broker_config marker).
DEFAULT_BROKER_CONFIG = {
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "200",
    "group.initial.rebalance.delay.ms": "0",
    "transaction.max.timeout.ms": "30000",
    "group.min.session.timeout.ms": "1000",
}

LISTENING = re.compile(r"^listening on (\S+):(\d+)\s*$")


def _die_with_parent():
    """preexec_fn: the child gets SIGKILL when pytest dies, so a killed run leaves no broker
    or client behind (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


def broker_bin():
    return Path(os.environ.get("EOSLOG_BROKER_BIN") or REPO / "target" / "release" / "eoslog-broker")


def eoslog_bin():
    return Path(os.environ.get("EOSLOG_BIN") or REPO / "target" / "release" / "eoslog")


def node_status():
    """(available, reason) for the kafkajs driver."""
    node = shutil.which("node")
    if node is None:
        return False, "node is not installed (install.sh skipped kafkajs)"
    if not (NODE_DIR / "node_modules" / "kafkajs" / "package.json").exists():
        return False, "kafkajs is not installed in %s (run install.sh)" % NODE_DIR
    return True, ""


def usable(names=CLIENTS):
    """The clients that can run here: kafkajs drops out when node or kafkajs is missing (its
    own parametrized cases skip with the reason; other cases go on with the rest)."""
    return [c for c in names if c != "kjs" or node_status()[0]]


def kcat_status():
    if shutil.which("kcat") is None:
        return False, "kcat is not installed (install.sh could not apt-get it)"
    return True, ""


def tail(path, lines=60):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", errors="replace")
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    return "\n".join(data.splitlines()[-lines:])


def sanitize(name, limit=80):
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")
    return s[:limit] or "x"


class Names:
    """Unique topic, group and transactional id names for one test."""

    def __init__(self, test_name):
        self.base = sanitize(test_name.replace("test_", ""), 40)
        self.run = uuid.uuid4().hex[:6]

    def __call__(self, kind):
        return "%s-%s-%s" % (self.base, kind, self.run)


# ----- the broker ------------------------------------------------------------------------

class BrokerError(AssertionError):
    pass


class Broker:
    """One eoslog-broker process over one data directory; it can be killed and restarted."""

    def __init__(self, data_dir, log_path, config=None, start_timeout=30.0):
        self.bin = broker_bin()
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.config = dict(DEFAULT_BROKER_CONFIG)
        self.config.update(config or {})
        self.start_timeout = start_timeout
        self.proc = None
        self.host = "127.0.0.1"
        self.port = None
        self.starts = 0
        self.expected_exit = False
        self._stdout_thread = None

    @property
    def bootstrap(self):
        assert self.port is not None, "broker not started"
        return "%s:%d" % (self.host, self.port)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _log(self, msg):
        with open(self.log_path, "a") as f:
            f.write("=== harness %s: %s\n" % (time.strftime("%H:%M:%S"), msg))

    def start(self, port=0):
        if not self.bin.exists():
            raise BrokerError("broker binary %s does not exist: build it with "
                              "`cargo build --release -p eoslog-broker` or set EOSLOG_BROKER_BIN"
                              % self.bin)
        assert not self.alive(), "broker already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(self.bin), "--data-dir", str(self.data_dir), "--listen", "127.0.0.1:%d" % port]
        for k, v in sorted(self.config.items()):
            cmd += ["--config", "%s=%s" % (k, v)]
        self._log("start #%d: %s" % (self.starts + 1, " ".join(cmd)))
        logf = open(self.log_path, "ab")
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=logf, env=env, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        logf.close()
        self.expected_exit = False
        self.starts += 1
        listening = threading.Event()
        found = {}

        def read_stdout(proc=self.proc):
            with open(self.log_path, "a") as out:
                for raw in proc.stdout:
                    line = raw.decode("utf-8", errors="replace").rstrip("\n")
                    m = LISTENING.match(line)
                    if m and not listening.is_set():
                        found["addr"] = (m.group(1), int(m.group(2)))
                        listening.set()
                    out.write("[stdout] %s\n" % line)
                    out.flush()
            listening.set()
        self._stdout_thread = threading.Thread(target=read_stdout, daemon=True)
        self._stdout_thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not listening.wait(0.05):
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise BrokerError("broker printed no `listening on` line within %.0f s\n%s"
                                  % (self.start_timeout, tail(self.log_path)))
        if "addr" not in found:
            rc = self.proc.wait(5)
            raise BrokerError("broker exited with %s before listening\n%s" % (rc, tail(self.log_path)))
        self.host, self.port = found["addr"]
        self._log("listening on %s" % self.bootstrap)
        return self.bootstrap

    def kill9(self):
        """SIGKILL, as a crash or power cut of the process."""
        assert self.alive(), "broker is not running:\n" + tail(self.log_path)
        self._log("SIGKILL pid %d" % self.proc.pid)
        self.expected_exit = True
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def pause(self):
        """SIGSTOP: the broker answers nothing (its sockets stay open) until ``resume``."""
        assert self.alive(), "broker is not running:\n" + tail(self.log_path)
        self._log("SIGSTOP pid %d" % self.proc.pid)
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        self._log("SIGCONT pid %d" % self.proc.pid)
        os.kill(self.proc.pid, signal.SIGCONT)

    def restart(self, same_port=True):
        """Starts again on the same data dir. Tries the previous port first (so running clients
        can reconnect); if that fails, any free port. Returns True when the port is the same;
        clients must be (re)created with the new ``bootstrap`` otherwise."""
        assert not self.alive(), "stop or kill the broker before restarting it"
        old = self.port
        if same_port and old:
            try:
                self.start(port=old)
                return True
            except BrokerError as e:
                self._log("restart on port %d failed (%s); trying a free port" % (old, str(e).splitlines()[0]))
        self.start(port=0)
        return self.port == old

    def stop(self, timeout=20):
        """SIGTERM, a clean shutdown: the broker must exit 0."""
        if self.proc is None:
            return
        if not self.alive():
            rc = self.proc.returncode
            if self.expected_exit:
                return
            raise BrokerError("broker died during the test with exit status %s\n%s"
                              % (rc, tail(self.log_path)))
        self._log("SIGTERM pid %d" % self.proc.pid)
        self.expected_exit = True
        os.kill(self.proc.pid, signal.SIGCONT)  # a paused broker would never see the SIGTERM
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
            raise BrokerError("broker did not exit within %d s of SIGTERM\n%s" % (timeout, tail(self.log_path)))
        if self._stdout_thread:
            self._stdout_thread.join(5)
        if rc != 0:
            raise BrokerError("broker exited with status %s on SIGTERM (expected 0)\n%s"
                              % (rc, tail(self.log_path)))

    def force_kill(self):
        if self.alive():
            self.expected_exit = True
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def partition_dirs(self, topic, partition):
        """The data directories named <topic>-<partition> (the store's Kafka layout)."""
        return sorted(p for p in self.data_dir.rglob("%s-%d" % (topic, partition)) if p.is_dir())


# ----- client drivers --------------------------------------------------------------------

class DriverError(AssertionError):
    pass


class Driver:
    """One client driver process; its stdout events are collected by a reader thread."""

    def __init__(self, client, op, args, log_path):
        self.client = client
        self.op = op
        self.args = args
        self.log_path = Path(log_path)
        payload = json.dumps(args)
        if client == "kjs":
            cmd = [shutil.which("node") or "node", str(NODE_DIR / "kjs.js"), payload]
        else:
            cmd = [sys.executable, str(DRIVERS / ("%s.py" % client)), payload]
        with open(self.log_path, "ab") as logf:
            logf.write(("=== %s %s\n=== args %s\n" % (client, op, payload)).encode())
            logf.flush()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=logf, start_new_session=True,
                                         preexec_fn=_die_with_parent)
        self.events = []
        self.eof = False
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        out = open(self.log_path, "a")
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", errors="replace").strip()
            if not line:
                continue
            out.write("[event] %s\n" % line)
            out.flush()
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"event": "garbage", "line": line}
            ev["_t"] = time.monotonic()
            with self._cond:
                self.events.append(ev)
                self._cond.notify_all()
        out.close()
        with self._cond:
            self.eof = True
            self._cond.notify_all()

    # --- inspection
    @property
    def pid(self):
        return self.proc.pid

    @property
    def returncode(self):
        return self.proc.poll()

    def of(self, name):
        with self._cond:
            return [e for e in self.events if e["event"] == name]

    @property
    def records(self):
        return self.of("record")

    @property
    def data_records(self):
        """Records that are not sentinels."""
        return [r for r in self.records if not r.get("sentinel")]

    @property
    def errors(self):
        return self.of("error")

    def error(self):
        errs = self.errors
        return errs[0] if errs else None

    def describe(self, n=15):
        with self._cond:
            evs = self.events[-n:]
        return ("%s %s (pid %d, rc %s); last events:\n  %s\nstderr (%s):\n%s"
                % (self.client, self.op, self.proc.pid, self.proc.poll(),
                   "\n  ".join(json.dumps({k: v for k, v in e.items() if k != "_t"}) for e in evs),
                   self.log_path, tail(self.log_path, 30)))

    # --- waiting
    def wait_for(self, name, timeout=30.0, pred=None, fail_on_error=True):
        """Waits for an event called `name` (matching pred); returns it. Raises if the driver
        reports an error first, exits without it, or the timeout passes."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if e["event"] == name and (pred is None or pred(e)):
                        return e
                    if fail_on_error and e["event"] == "error" and name != "error":
                        raise DriverError("%s reported an error while waiting for %r: %s\n%s"
                                          % (self.client, name, e, self.describe()))
                if self.eof:
                    raise DriverError("%s exited without a %r event\n%s" % (self.client, name, self.describe()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DriverError("no %r event from %s within %.0f s\n%s"
                                      % (name, self.client, timeout, self.describe()))
                self._cond.wait(min(left, 0.5))

    def wait(self, timeout=60.0):
        """Waits for exit; kills the driver and raises on timeout. Returns the exit status."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.dump_stacks()
            self.kill9()
            raise DriverError("%s %s did not finish within %.0f s\n%s"
                              % (self.client, self.op, timeout, self.describe()))
        self._reader.join(10)
        return rc

    def dump_stacks(self):
        """A Python driver still running writes its threads' stacks into its log (for a
        failure's report: where a client is stuck)."""
        if self.client == "kjs" or self.proc.poll() is not None:
            return
        try:
            os.kill(self.proc.pid, signal.SIGUSR1)
            time.sleep(1)
        except ProcessLookupError:
            pass

    def ok(self, timeout=60.0):
        """Waits for a clean exit: status 0, no error event, a done event."""
        rc = self.wait(timeout)
        if rc != 0 or self.errors or not self.of("done"):
            raise DriverError("%s %s failed (rc %s)\n%s" % (self.client, self.op, rc, self.describe()))
        return self

    def failed(self, timeout=60.0):
        """Waits for the driver to exit with an error event; returns the error event."""
        rc = self.wait(timeout)
        err = self.error()
        if rc == 0 or err is None:
            raise DriverError("%s %s was expected to fail (rc %s)\n%s"
                              % (self.client, self.op, rc, self.describe()))
        return err

    # --- control
    def send(self, line):
        try:
            self.proc.stdin.write((line + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            self.wait(10)
            raise DriverError("cannot send %r: %s %s has exited\n%s" % (line, self.client, self.op, self.describe()))

    def close_stdin(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def kill9(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)

    def sigstop(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def sigcont(self):
        os.kill(self.proc.pid, signal.SIGCONT)


class Clients:
    """Starts client drivers against the test's broker and cleans them up."""

    def __init__(self, broker, logdir):
        self.broker = broker
        self.logdir = Path(logdir)
        self.drivers = []
        self.seq = 0

    def log_path(self, label):
        self.seq += 1
        return self.logdir / ("%02d-%s.log" % (self.seq, sanitize(label, 60)))

    def start(self, client, op, **args):
        import pytest
        if client == "kjs":
            ok, why = node_status()
            if not ok:
                pytest.skip(why)
        if "bootstrap" not in args:
            args["bootstrap"] = self.broker.bootstrap
        args["op"] = op
        d = Driver(client, op, args, self.log_path("%s-%s" % (client, op)))
        self.drivers.append(d)
        return d

    def run(self, client, op, timeout=60.0, **args):
        """Runs a driver to a clean finish and returns it."""
        return self.start(client, op, **args).ok(timeout)

    def cleanup(self):
        for d in self.drivers:
            try:
                d.kill9()
            except Exception as e:  # noqa: BLE001 - go on killing the others
                print("could not kill driver %d: %s" % (d.pid, e))

    # --- common steps (librdkafka serves the admin and inspection operations)
    def create_topic(self, name, partitions=1, config=None):
        self.run("ck", "create_topics", topics=[{"name": name, "partitions": partitions,
                                                 "config": config or {}}])
        return name

    def produce(self, client, topic=None, records=(), txid=None, end="commit", timeout=60.0, **kw):
        args = dict(kw, records=list(records), end=end if txid else "none")
        if topic is not None:
            args["topic"] = topic
        if txid:
            args["transactional_id"] = txid
        return self.run(client, "produce", timeout=timeout, **args)

    def sentinel(self, topic, partition, n=0, client="ck"):
        """Writes a non-transactional sentinel record; consumers stop when they see it."""
        d = self.produce(client, topic, [{"partition": partition, "key": "s",
                                          "value": "%s%d" % (SENTINEL, n)}])
        ev = d.of("delivered")
        return ev[0]["offset"] if ev else None

    def sentinels(self, partitions, n=0, client="ck"):
        """One sentinel record on each (topic, partition); returns {(topic, partition): offset}."""
        recs = [{"topic": t, "partition": p, "key": "s", "value": "%s%d" % (SENTINEL, n)}
                for t, p in partitions]
        d = self.produce(client, None, recs)
        return {(e["topic"], e["partition"]): e["offset"] for e in d.of("delivered")}

    def read(self, client, partitions, isolation, group=None, max_ms=45000, **kw):
        """Starts a consumer of the partitions that stops at their sentinels (assignment,
        or for kafkajs a subscription filtered to them; with group= a subscription)."""
        args = dict(kw, isolation=isolation, max_ms=max_ms,
                    until_sentinels=[list(p) for p in partitions])
        if group:
            args["topics"] = sorted({t for t, _ in partitions})
            args["group"] = group
        else:
            args["assign"] = [list(p) for p in partitions]
        return self.start(client, "consume", **args)

    def offsets(self, partitions):
        d = self.run("ck", "offsets", partitions=[list(p) for p in partitions])
        return {(r["topic"], r["partition"]): r for r in d.of("offsets")[0]["results"]}

    def committed(self, group, partitions, isolation="read_uncommitted", timeout_ms=10000):
        d = self.run("ck", "committed", group=group, partitions=[list(p) for p in partitions],
                     isolation=isolation, timeout_ms=timeout_ms, timeout=timeout_ms / 1000 + 30)
        return {(o["topic"], o["partition"]): o for o in d.of("committed")[0]["offsets"]}


# ----- checks ----------------------------------------------------------------------------

def by_partition(records):
    out = {}
    for r in records:
        out.setdefault((r["topic"], r["partition"]), []).append(r)
    return out


def assert_offsets_increase(records, who=""):
    for tp, recs in by_partition(records).items():
        offs = [r["offset"] for r in recs]
        assert all(a < b for a, b in zip(offs, offs[1:])), \
            "%s: offsets of %s-%d do not increase: %s" % (who, tp[0], tp[1], offs)


def values_by_partition(records):
    return {tp: [r["value"] for r in recs] for tp, recs in by_partition(records).items()}


def expected_by_partition(records, default_topic=None):
    out = {}
    for r in records:
        out.setdefault((r.get("topic", default_topic), r["partition"]), []).append(r["value"])
    return out


def exactly_once_report(inputs, outputs):
    """inputs: {(topic, partition, offset)}; outputs: iterable of (topic, partition, offset)
    source triples from the pipeline's output values. Returns (missing, duplicated, foreign)."""
    seen = {}
    for src in outputs:
        seen[src] = seen.get(src, 0) + 1
    missing = sorted(set(inputs) - set(seen))
    duplicated = sorted(k for k, n in seen.items() if n > 1)
    foreign = sorted(set(seen) - set(inputs))
    return missing, duplicated, foreign


def source_of(record):
    """The (topic, partition, offset) an output record of the pipeline names."""
    v = json.loads(record["value"])
    t, p, o = v["src"]
    return (t, p, o)


def records_for(topic, partitions, n, prefix="v", key_prefix="k"):
    """n records spread round-robin over the partitions, with distinct values."""
    return [{"topic": topic, "partition": i % partitions, "key": "%s%d" % (key_prefix, i),
             "value": "%s%d" % (prefix, i)} for i in range(n)]


def owned(member):
    """What a `member` driver owns now (its latest `owns` event)."""
    ev = member.of("owns")
    return {tuple(p) for p in ev[-1]["partitions"]} if ev else set()


def settle(members, want, timeout):
    """Waits until the `member` drivers' assignments split `want` exactly (no partition
    twice, none left out, no member empty); returns how long that took."""
    start = time.monotonic()
    while True:
        owns = [owned(m) for m in members]
        if set().union(*owns) == want and sum(map(len, owns)) == len(want) and all(owns):
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            for m in members:
                m.dump_stacks()
            raise AssertionError("assignments did not settle within %.0f s: %s\n%s" % (
                timeout, owns, "\n".join(m.describe(6) for m in members)))
        time.sleep(0.05)


def check_view(d, expected, who=None, timeout=90.0):
    """Waits for a consume driver that stops at its sentinels and checks what it delivered.

    expected: {(topic, partition): [values in order]}. The driver must reach every sentinel
    (not time out), deliver exactly the expected values per partition in order (nothing else,
    so no aborted record and no control record), with increasing offsets."""
    d.ok(timeout)
    who = who or "%s (%s)" % (CLIENT_NAMES.get(d.client, d.client), d.args.get("isolation"))
    done = d.of("done")[0]
    assert not done["timed_out"], "%s did not reach its sentinels within %s ms\n%s" % (
        who, d.args.get("max_ms"), d.describe())
    got = values_by_partition(d.data_records)
    exp = {k: v for k, v in expected.items() if v}
    if got != exp:
        lines = []
        for tp in sorted(set(got) | set(exp)):
            g, e = got.get(tp, []), exp.get(tp, [])
            if g != e:
                extra = [v for v in g if v not in e]
                missing = [v for v in e if v not in g]
                lines.append("  %s-%d: got %d, expected %d; unexpected %s; missing %s"
                             % (tp[0], tp[1], len(g), len(e), extra[:10], missing[:10]))
        raise AssertionError("%s delivered the wrong records:\n%s\n%s" % (who, "\n".join(lines), d.describe(5)))
    assert_offsets_increase(d.records, who)
    return d
