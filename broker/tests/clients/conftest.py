"""Fixtures of the real-client suite.

``broker``  a fresh eoslog-broker on a temporary data dir and a free loopback port, with tight
            timeouts; ``.bootstrap``, ``.kill9()``, ``.restart()``, ``.stop()``, ``.data_dir``.
            Extra settings per test: ``@pytest.mark.broker_config({"key": "value"})``.
            Teardown stops it with SIGTERM and fails the test unless it exits 0, or if it died.
``clients`` starts client drivers against it (harness.Clients) and kills leftovers.
``names``   unique topic/group/transactional-id names for the test.

Logs: each test writes the broker's stdout and stderr and every driver's stderr into
``$EOSLOG_CLIENTS_LOGDIR/<test>/`` (default ``<repo>/target/clients-logs``); a failing test's
report shows their tails. Each test has a time limit (``@pytest.mark.timeout(s)``, default
240 s) enforced with SIGALRM so a hung client cannot hang the suite.
"""

import shutil
import signal

import pytest

import harness

DEFAULT_TIMEOUT = 240


@pytest.fixture(autouse=True)
def _time_limit(request):
    m = request.node.get_closest_marker("timeout")
    seconds = int(m.args[0]) if m else DEFAULT_TIMEOUT

    def on_alarm(signum, frame):
        raise TimeoutError("test exceeded its time limit of %d s" % seconds)
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture
def logdir(request):
    d = harness.LOG_ROOT / harness.sanitize(request.node.nodeid.split("::", 1)[-1], 120)
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True, exist_ok=True)
    request.node._eoslog_logdir = d
    return d


@pytest.fixture
def names(request):
    return harness.Names(request.node.name)


@pytest.fixture
def broker(request, tmp_path, logdir):
    config = {}
    for m in reversed(list(request.node.iter_markers("broker_config"))):
        config.update({k: str(v) for k, v in m.args[0].items()})
    b = harness.Broker(tmp_path / "data", logdir / "broker.log", config)
    request.node._eoslog_broker = b
    try:
        b.start()
    except BaseException:
        b.force_kill()
        raise
    yield b
    try:
        b.stop()
    finally:
        b.force_kill()


@pytest.fixture
def clients(broker, logdir):
    c = harness.Clients(broker, logdir)
    yield c
    c.cleanup()


@pytest.fixture
def kcat():
    ok, why = harness.kcat_status()
    if not ok:
        pytest.skip(why)
    return shutil.which("kcat")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    logdir = getattr(item, "_eoslog_logdir", None)
    if logdir is None:
        return
    b = getattr(item, "_eoslog_broker", None)
    if b is not None:
        rep.sections.append(("broker log (%s)" % b.log_path, harness.tail(b.log_path, 80)))
    for p in sorted(logdir.glob("[0-9]*.log"))[-6:]:
        rep.sections.append(("driver log %s" % p.name, harness.tail(p, 25)))
