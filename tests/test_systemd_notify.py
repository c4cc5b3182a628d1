"""The sd_notify protocol over a real AF_UNIX datagram socket set as NOTIFY_SOCKET: the
messages themselves, the watchdog, and the states the Service reports around start, reload
and stop."""

import json
import logging
import os
import time

import gevent.monkey
import pytest
import yaml

from callflowd import systemd
from callflowd.flow.load import load_config
from callflowd.service import Service
from callflowd.simulator import Scenario
from tests.doubles.notify import NotifySocket
from tests.harness import FRONT_DESK, Daemon, front_desk_flow, write_config

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def notify_socket(monkeypatch):
    sock = NotifySocket()
    monkeypatch.setenv("NOTIFY_SOCKET", sock.address)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield sock
    sock.close()


def test_notify_sends_one_datagram_with_every_line(notify_socket):
    assert systemd.notify("READY=1", "STATUS=running")
    assert notify_socket.next() == {"READY": "1", "STATUS": "running"}


def test_notify_reaches_an_abstract_namespace_socket(monkeypatch):
    sock = NotifySocket(abstract=True)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", sock.address)
        assert sock.address.startswith("@")
        assert systemd.notify("STOPPING=1")
        assert sock.next() == {"STOPPING": "1"}
    finally:
        sock.close()


def test_notify_does_nothing_without_notify_socket(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False


def test_a_vanished_notify_socket_is_logged_not_raised(monkeypatch, tmp_path, logs):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert systemd.notify("READY=1") is False
    assert logs.matching("could not notify systemd (READY=1)")


def test_reloading_carries_the_monotonic_clock_in_microseconds(notify_socket):
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    systemd.reloading("STATUS=reloading")
    message = notify_socket.next()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert message["RELOADING"] == "1" and message["STATUS"] == "reloading"
    assert before <= int(message["MONOTONIC_USEC"]) <= after


def test_the_watchdog_period_comes_from_watchdog_usec_for_this_process_only(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert systemd.watchdog_period() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_period() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert systemd.watchdog_period() is None
    monkeypatch.delenv("WATCHDOG_USEC")
    assert systemd.watchdog_period() is None


def test_the_watchdog_pings_only_when_the_loop_is_on_time(logs):
    sent = []
    watchdog = systemd.Watchdog(period=8.0, send=sent.append)
    assert watchdog.interval == 2.0 and watchdog.max_lag == 2.0
    assert watchdog.tick(lag=0.01) is True
    assert watchdog.tick(lag=3.5) is False
    assert watchdog.tick(lag=0.2) is True
    assert sent == ["WATCHDOG=1", "WATCHDOG=1"]
    assert logs.matching("event loop stalled 3.5s; not pinging the systemd watchdog")


def test_a_blocked_event_loop_skips_the_watchdog_ping(notify_socket, logs):
    """The real greenlet and socket: pings while the loop turns, none for a late tick."""
    watchdog = systemd.Watchdog(period=2.0).start()  # a tick every 0.5 s, 0.5 s late at most
    try:
        assert notify_socket.next(timeout=5) == {"WATCHDOG": "1"}
        # The unpatched sleep blocks the whole loop, as a stuck handler or regex would.
        gevent.monkey.get_original("time", "sleep")(1.2)
        logs.wait_for("not pinging the systemd watchdog")
        # Once the loop turns on time again, so do the pings.
        assert notify_socket.next(timeout=5) == {"WATCHDOG": "1"}
    finally:
        watchdog.stop()


def test_the_service_reports_each_state_to_systemd(tmp_path, switch, receiver, notify_socket, logs):
    config = write_config(tmp_path, switch, {"front-desk": front_desk_flow({"uri": receiver.url("/m")})})
    daemon = Daemon(config)
    daemon.start()
    try:
        message = notify_socket.next()
        while "READY" not in message:  # starting; freeswitch down (not started), then connecting
            assert message["STATUS"].startswith("starting; freeswitch ")
            message = notify_socket.next()
        assert message == {"READY": "1", "STATUS": "running; freeswitch up"}

        assert daemon.service.reload() is True
        reloading = notify_socket.next()
        assert reloading["RELOADING"] == "1" and int(reloading["MONOTONIC_USEC"]) > 0
        assert reloading["STATUS"] == "reloading; freeswitch up"
        assert notify_socket.next() == {"READY": "1", "STATUS": "running; freeswitch up; config reloaded: 1 callflows"}

        (tmp_path / "callflows.d" / "front-desk.json").write_text("{not json")
        assert daemon.service.reload() is False
        assert notify_socket.next()["RELOADING"] == "1"
        refused = notify_socket.next()
        assert refused["READY"] == "1"
        assert refused["STATUS"].startswith("running; freeswitch up; reload refused, previous config kept: ")
        assert "front-desk.json: invalid JSON at line 1" in refused["STATUS"]

        call = switch.place_call(FRONT_DESK, scenario=Scenario(device="busy"))
        daemon.wait_finished(call.uuid)
        assert [step.module for step in daemon.finished[call.uuid].history] == [
            "device", "webhook", "voicemail"]
    finally:
        daemon.stop()
    assert notify_socket.next() == {"STOPPING": "1", "STATUS": "stopping; freeswitch up"}
    message = notify_socket.next()
    while not message["STATUS"].startswith("stopped"):  # the link's own stop comes first
        assert message == {"STATUS": "stopping; freeswitch stopped (callflowd is stopping)"}
        message = notify_socket.next()
    assert message == {"STATUS": "stopped; freeswitch stopped (callflowd is stopping)"}
    assert json.dumps(notify_socket.received)  # every message was text


@pytest.mark.parametrize("pinned", [False, True])
def test_a_reload_applies_log_level_and_shutdown_grace_unless_the_level_is_pinned(
        tmp_path, switch, receiver, pinned):
    config = write_config(tmp_path, switch, {"front-desk": front_desk_flow({"uri": receiver.url("/m")})})
    root = logging.getLogger()
    saved = root.level
    root.setLevel(logging.INFO)
    service = Service(load_config(str(config)), pin_log_level=pinned)  # pinned: `run --log-level`
    service.start()
    try:
        assert service.wait_ready(10) and service.stop_grace == 30.0
        document = yaml.safe_load(config.read_text())
        document.update(log_level="warning", shutdown_grace=5)
        config.write_text(yaml.safe_dump(document))
        assert service.reload() is True
        assert service.stop_grace == 5.0
        assert root.level == (logging.INFO if pinned else logging.WARNING)
    finally:
        root.setLevel(saved)
        service.stop(grace=1)
