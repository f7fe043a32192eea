"""The harness itself, without the broker: installed client versions, driver start-up, the
raw ApiVersions codec, the exactly-once checker and the broker fixture's process handling
(against a stand-in process that follows the broker's start/stop contract).

Invariant: the suite's own machinery is sound, so a broker test fails only because of the
broker (or a client), never because the harness checks nothing.
"""

import json
import os
import socket
import struct
import subprocess
import sys
import textwrap

import pytest

import harness
import kafka_wire as wire


# ----- the installed clients ---------------------------------------------------------------

def pins():
    out = {}
    for line in (harness.HERE / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            out[name] = version
    return out


def test_python_clients_are_the_pinned_versions():
    import aiokafka
    import confluent_kafka
    import kafka
    p = pins()
    assert confluent_kafka.__version__ == p["confluent-kafka"]
    assert confluent_kafka.libversion()[0].startswith("2.16."), confluent_kafka.libversion()
    assert kafka.__version__ == p["kafka-python"]
    assert aiokafka.__version__ == p["aiokafka"]
    assert pytest.__version__ == p["pytest"]


def test_python_codecs_available():
    """Scenario 8 needs every codec in the pure-Python clients."""
    from aiokafka import codec as aio_codec
    from kafka import codec as kp_codec
    for has in ("has_gzip", "has_snappy", "has_lz4", "has_zstd"):
        assert getattr(kp_codec, has)(), "kafka-python " + has
        assert getattr(aio_codec, has)(), "aiokafka " + has


def test_kafkajs_is_the_locked_version():
    ok, why = harness.node_status()
    if not ok:
        pytest.skip(why)
    lock = json.loads((harness.NODE_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/kafkajs"]["version"] == "2.2.4"
    installed = json.loads((harness.NODE_DIR / "node_modules" / "kafkajs" / "package.json").read_text())
    assert installed["version"] == "2.2.4"


def test_kcat_runs():
    ok, why = harness.kcat_status()
    if not ok:
        pytest.skip(why)
    out = subprocess.run(["kcat", "-V"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and "kcat" in out.stdout + out.stderr


@pytest.mark.parametrize("client", harness.CLIENTS)
def test_driver_starts_and_rejects_unknown_op(client, tmp_path):
    """Each driver imports its client and answers an unknown operation with an error event."""
    if client == "kjs":
        ok, why = harness.node_status()
        if not ok:
            pytest.skip(why)
    d = harness.Driver(client, "no_such_op", {"op": "no_such_op", "bootstrap": "127.0.0.1:1"},
                       tmp_path / "driver.log")
    assert d.wait(60) == 2, d.describe()
    err = d.error()
    assert err and err["kind"] == "unsupported", d.describe()


# ----- the raw protocol codec --------------------------------------------------------------

def test_api_versions_request_bytes():
    frame = wire.api_versions_request(0, 5, client_id="ab")
    assert frame == struct.pack(">ihhih", 12, 18, 0, 5, 2) + b"ab"
    frame = wire.api_versions_request(99, 6, client_id="c", software=("n", "1"))
    body = struct.pack(">hhih", 18, 99, 6, 1) + b"c" + b"\x00" + b"\x02n" + b"\x021" + b"\x00"
    assert frame == struct.pack(">i", len(body)) + body


def test_uvarint_roundtrip():
    for n in (0, 1, 127, 128, 300, 16383, 16384, 2 ** 31 - 1):
        enc = wire.uvarint(n)
        assert wire.read_uvarint(enc, 0) == (n, len(enc))
    assert wire.uvarint(300) == b"\xac\x02"


def test_parse_v0_error_reply():
    frame = struct.pack(">ihi", 9, 35, 1) + struct.pack(">hhh", 18, 0, 4)
    assert wire.parse_api_versions_v0(frame) == (9, 35, {18: (0, 4)})
    with pytest.raises(ValueError):
        wire.parse_api_versions_v0(frame + b"\x00")  # not a v0 body


def test_parse_v3_reply():
    entries = [(0, 3, 9), (18, 0, 4)]
    body = struct.pack(">ih", 4, 0) + wire.uvarint(len(entries) + 1)
    for k, lo, hi in entries:
        body += struct.pack(">hhh", k, lo, hi) + b"\x00"
    body += struct.pack(">i", 0)
    body += wire.uvarint(1) + wire.uvarint(0) + wire.uvarint(2) + b"\x01\x00"  # one tagged field
    assert wire.parse_api_versions_v3(body) == (4, 0, {0: (3, 9), 18: (0, 4)}, 0)


# ----- the checks --------------------------------------------------------------------------

def test_exactly_once_report_finds_every_violation():
    inputs = {("in", 0, 0), ("in", 0, 1), ("in", 1, 0)}
    assert harness.exactly_once_report(inputs, [("in", 0, 0), ("in", 0, 1), ("in", 1, 0)]) == ([], [], [])
    missing, dup, foreign = harness.exactly_once_report(
        inputs, [("in", 0, 0), ("in", 0, 0), ("in", 1, 0), ("in", 2, 0)])
    assert missing == [("in", 0, 1)]
    assert dup == [("in", 0, 0)]
    assert foreign == [("in", 2, 0)]


def test_offsets_must_increase():
    recs = [{"topic": "t", "partition": 0, "offset": o} for o in (0, 2, 1)]
    with pytest.raises(AssertionError):
        harness.assert_offsets_increase(recs)
    harness.assert_offsets_increase([{"topic": "t", "partition": 0, "offset": o} for o in (0, 2, 5)])


def test_source_of_pipeline_output():
    sys.path.insert(0, str(harness.DRIVERS))
    from common import transform
    v = transform("in", 2, 17, "x")
    assert harness.source_of({"value": v}) == ("in", 2, 17)


def test_stopper_waits_for_sentinels(monkeypatch, capsys):
    sys.path.insert(0, str(harness.DRIVERS))
    import common
    s = common.make_stopper({"until_sentinels": [["t", 0], ["t", 1]], "max_ms": 60000})
    s.record("t", 0, 0, None, "a")
    s.record("t", 0, 1, None, common.SENTINEL + "0")
    assert s.reason() is None
    s.record("t", 1, 0, None, common.SENTINEL + "0")
    assert s.reason() == "sentinels"
    assert s.count == 1 and s.total == 3
    capsys.readouterr()


# ----- the broker fixture's process handling ------------------------------------------------

FAKE = textwrap.dedent("""\
    import os, signal, socket, sys, time
    args = sys.argv[1:]
    data = args[args.index("--data-dir") + 1]
    host, port = args[args.index("--listen") + 1].rsplit(":", 1)
    mode = os.environ.get("FAKE_MODE", "ok")
    os.makedirs(data, exist_ok=True)
    with open(os.path.join(data, "starts"), "a") as f:
        f.write(" ".join(args) + "\\n")
    if mode == "no_listen":
        time.sleep(60)
    if mode == "exit_early":
        sys.stderr.write("fake: cannot open store\\n")
        sys.exit(3)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen()
    def term(*_):
        sys.exit(0 if mode == "ok" else 1)
    signal.signal(signal.SIGTERM, term)
    # Before the `listening` line: the harness may SIGTERM the moment it reads that line.
    sys.stderr.write("fake: serving\\n")
    sys.stderr.flush()
    print("listening on %s:%d" % (host, s.getsockname()[1]), flush=True)
    while True:
        time.sleep(1)
""")


@pytest.fixture
def fake_broker(tmp_path, monkeypatch):
    script = tmp_path / "fake-broker"
    script.write_text("#!%s\n%s" % (sys.executable, FAKE))
    script.chmod(0o755)
    monkeypatch.setenv("EOSLOG_BROKER_BIN", str(script))

    def make(mode="ok", timeout=30.0):
        monkeypatch.setenv("FAKE_MODE", mode)
        return harness.Broker(tmp_path / "data", tmp_path / "broker.log", {"num.partitions": 2},
                              start_timeout=timeout)
    return make


def test_fixture_start_kill_restart_stop(fake_broker, tmp_path):
    b = fake_broker()
    b.start()
    assert b.port and b.alive()
    socket.create_connection((b.host, b.port), timeout=5).close()
    starts = (tmp_path / "data" / "starts").read_text().splitlines()
    assert "--config num.partitions=2" in starts[0]
    assert "--config transaction.abort.timed.out.transaction.cleanup.interval.ms=200" in starts[0]
    assert "--config group.initial.rebalance.delay.ms=0" in starts[0]
    old = b.port
    b.kill9()
    assert not b.alive()
    assert b.restart(same_port=True) is True and b.port == old
    assert "listen 127.0.0.1:%d" % old in (tmp_path / "data" / "starts").read_text().splitlines()[1]
    b.stop()
    assert "fake: serving" in (tmp_path / "broker.log").read_text()


def test_fixture_restart_falls_back_to_a_free_port(fake_broker):
    b = fake_broker()
    b.start()
    b.kill9()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", b.port))  # no SO_REUSEADDR: the old port is taken
    blocker.listen()
    try:
        old = b.port
        assert b.restart(same_port=True) is False
        assert b.port != old
    finally:
        blocker.close()
        b.stop()


def test_fixture_unclean_sigterm_fails(fake_broker):
    b = fake_broker(mode="exit1_on_term")
    b.start()
    with pytest.raises(harness.BrokerError, match="status 1 on SIGTERM"):
        b.stop()


def test_fixture_reports_unexpected_death(fake_broker):
    b = fake_broker()
    b.start()
    os.kill(b.pid, 9)  # not through kill9(): the test did not expect it
    b.proc.wait(10)
    with pytest.raises(harness.BrokerError, match="died during the test"):
        b.stop()


def test_fixture_reports_exit_before_listening(fake_broker):
    b = fake_broker(mode="exit_early")
    with pytest.raises(harness.BrokerError, match="exited with 3 before listening") as e:
        b.start()
    assert "cannot open store" in str(e.value)


def test_fixture_times_out_without_listening_line(fake_broker):
    b = fake_broker(mode="no_listen", timeout=1.0)
    with pytest.raises(harness.BrokerError, match="no `listening on` line"):
        b.start()
    assert not b.alive()


def test_fixture_missing_binary_says_how_to_build(tmp_path, monkeypatch):
    monkeypatch.setenv("EOSLOG_BROKER_BIN", str(tmp_path / "nope"))
    b = harness.Broker(tmp_path / "data", tmp_path / "broker.log")
    with pytest.raises(harness.BrokerError, match="cargo build --release -p eoslog-broker"):
        b.start()


def test_repo_paths():
    assert (harness.REPO / "Cargo.toml").exists(), harness.REPO
    if not os.environ.get("EOSLOG_BROKER_BIN"):
        assert harness.broker_bin() == harness.REPO / "target" / "release" / "eoslog-broker"
