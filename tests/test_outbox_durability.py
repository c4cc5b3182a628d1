"""The outbox across the daemon's death: ``callflowd run`` as a real process, killed or stopped.

Each call runs a flow of ten webhook nodes, so 50 calls make 500 webhooks. The
receiver records every request before it answers, so a request that arrived
just before a kill counts as received: after the restart it may come again,
but only with the same ``X-Callflowd-Delivery`` id.
"""

import logging
import signal
import sqlite3
import subprocess
import sys
import time

import gevent
import pytest

from callflowd.simulator import Scenario
from callflowd.webhooks.store import FILENAME
from tests.harness import FRONT_DESK, Daemon, front_desk_flow, write_config

pytestmark = pytest.mark.timeout(120)

CALLS = 50
NODES = 10
WEBHOOKS = CALLS * NODES


def ten_webhooks_flow(uri):
    node = None
    for index in reversed(range(NODES)):
        step = {"module": "webhook", "data": {"uri": uri, "custom_data": {"node": index}}}
        if node is not None:
            step["children"] = {"_": node}
        node = step
    return {"numbers": [FRONT_DESK], "flow": node}


class DaemonProcess:
    """``python -m callflowd run``, logging to a file (a pipe nobody reads would block it)."""

    def __init__(self, config, log_path):
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.process = subprocess.Popen([sys.executable, "-m", "callflowd", "run", "-c", str(config)],
                                        stdout=subprocess.DEVNULL, stderr=self._log)

    def wait(self, timeout=60):
        status = self.process.wait(timeout=timeout)  # gevent's subprocess: the hub keeps running
        self._log.close()
        return status

    def kill9(self):
        self.process.send_signal(signal.SIGKILL)
        return self.wait()

    def terminate(self, timeout=60):
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def terminate_twice(self, first_line, timeout=60):
        """SIGTERM, then once ``first_line`` is in the log, SIGTERM again: stop at once."""
        self.process.send_signal(signal.SIGTERM)
        self.wait_for(first_line, timeout)
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def log(self):
        return self.log_path.read_text()

    def wait_for(self, line, timeout=30):
        deadline = time.monotonic() + timeout
        while line not in self.log_path.read_text():
            assert time.monotonic() < deadline, "no %r in the log" % line
            gevent.sleep(0.05)  # the log is a file: nothing to wait on but its growth

    def cleanup(self):
        if self.process.poll() is None:
            self.process.kill()
            self.wait()


@pytest.fixture
def daemons():
    started = []

    def start(config, log_path):
        daemon = DaemonProcess(config, log_path)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.cleanup()


def outbox_rows(state_dir):
    try:
        with sqlite3.connect(str(state_dir / FILENAME), timeout=5) as db:
            return db.execute("SELECT count(*) FROM outbox").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def wait_for_rows(state_dir, count, timeout=60):
    """The daemon is another process: its outbox file is what we can observe, so poll it."""
    deadline = time.monotonic() + timeout
    while outbox_rows(state_dir) < count:
        if time.monotonic() > deadline:
            raise TimeoutError("outbox holds %d rows, not %d" % (outbox_rows(state_dir), count))
        gevent.sleep(0.05)


def place_calls(switch):
    calls = [switch.place_call(FRONT_DESK, caller_id_number="+1555000%04d" % n, scenario=Scenario())
             for n in range(CALLS)]
    for call in calls:
        call.wait_ended(60)
    return calls


def check_every_webhook_arrived_once_by_id(requests):
    by_id = {}
    for request in requests:
        key = (request.fields["call_id"][0], request.fields["node"][0])
        by_id.setdefault(request.header("X-Callflowd-Delivery"), set()).add(key)
    assert all(len(keys) == 1 for keys in by_id.values())  # a repeated id is the same webhook
    delivered = {key for keys in by_id.values() for key in keys}
    assert len(delivered) == WEBHOOKS == len(by_id)  # every one, each with one id


def wait_for_distinct_ids(receiver, count, timeout=60):
    deadline = time.monotonic() + timeout
    while len({r.header("X-Callflowd-Delivery") for r in receiver.requests}) < count:
        receiver.wait_for(len(receiver.requests) + 1, timeout=max(0.1, deadline - time.monotonic()))


def test_a_daemon_killed_with_500_webhooks_pending_delivers_every_one_after_restart(
        tmp_path, switch, receiver, daemons):
    receiver.hold()  # requests arrive and hang: the outbox fills
    config = write_config(tmp_path, switch, {"ten": ten_webhooks_flow(receiver.url("/hook"))},
                          webhooks={"timeout": 30, "concurrency_per_endpoint": 8})
    first = daemons(config, tmp_path / "first.log")
    switch.wait_for_clients(1, timeout=15)
    place_calls(switch)
    wait_for_rows(tmp_path / "state", WEBHOOKS)
    receiver.wait_for(8)  # eight in flight, never answered
    first.kill9()

    receiver.release()
    second = daemons(config, tmp_path / "second.log")
    receiver.wait_for(WEBHOOKS + 8, timeout=60)
    assert second.terminate() == 0
    log = second.log()
    assert "resuming %d undelivered webhooks" % WEBHOOKS in log
    assert "the outbox is empty" in log
    assert len(receiver.requests) == WEBHOOKS + 8
    check_every_webhook_arrived_once_by_id(receiver.requests)


def test_sigterm_with_500_webhooks_pending_to_a_slow_receiver_loses_none_across_the_restart(
        tmp_path, switch, receiver, daemons):
    receiver.delay(2.0)  # every answer takes 2 s; 4 at a time, so most are still waiting at SIGTERM
    config = write_config(tmp_path, switch, {"ten": ten_webhooks_flow(receiver.url("/hook"))},
                          webhooks={"concurrency_per_endpoint": 4, "timeout": 5})
    first = daemons(config, tmp_path / "first.log")
    switch.wait_for_clients(1, timeout=15)
    place_calls(switch)
    assert first.terminate() == 0
    log = first.log()
    assert "undelivered webhooks stay in the outbox" in log
    left = outbox_rows(tmp_path / "state")
    assert 0 < left < WEBHOOKS

    receiver.delay(0)
    second = daemons(config, tmp_path / "second.log")
    wait_for_distinct_ids(receiver, WEBHOOKS)
    assert second.terminate() == 0
    assert "resuming %d undelivered webhooks" % left in second.log()
    check_every_webhook_arrived_once_by_id(receiver.requests)


def test_a_second_sigterm_stops_at_once_and_still_loses_no_accepted_webhook(
        tmp_path, switch, receiver, daemons):
    receiver.delay(2.0)
    config = write_config(tmp_path, switch, {"ten": ten_webhooks_flow(receiver.url("/hook"))},
                          webhooks={"concurrency_per_endpoint": 4, "timeout": 5})
    first = daemons(config, tmp_path / "first.log")
    switch.wait_for_clients(1, timeout=15)
    place_calls(switch)
    started = time.monotonic()
    assert first.terminate_twice("service stopping") == 0
    assert time.monotonic() - started < 10  # no 10 s webhook drain
    assert "undelivered webhooks stay in the outbox" in first.log()
    left = outbox_rows(tmp_path / "state")
    assert left > 0

    receiver.delay(0)
    second = daemons(config, tmp_path / "second.log")
    wait_for_distinct_ids(receiver, WEBHOOKS)
    assert second.terminate() == 0
    check_every_webhook_arrived_once_by_id(receiver.requests)


def test_secrets_in_webhook_uris_never_reach_the_log_of_a_run(tmp_path, switch, receiver, daemons):
    good = receiver.url("/hook?token=tok-good-123").replace("http://", "http://hookuser:hunter2@")
    refused = "http://127.0.0.1:9/dead?api_key=key-refused-456"  # discard port: nothing listens
    receiver.fail_next(1, status=503)
    flow = front_desk_flow({"uri": good, "http_verb": "get"})
    flow["flow"]["children"]["_"]["children"]["_"] = {
        "module": "webhook", "data": {"uri": refused, "retries": 1},
        "children": {"_": {"module": "voicemail", "data": {"id": "front_desk_voicemail_box_id"}}}}
    config = write_config(tmp_path, switch, {"front-desk": flow}, log_level="debug",
                          webhooks={"backoff_factor": 0.05, "max_age": 0.5})
    daemon = daemons(config, tmp_path / "run.log")
    switch.wait_for_clients(1, timeout=15)
    call = switch.place_call(FRONT_DESK, scenario=Scenario(device="busy"))
    call.wait_ended(30)
    receiver.wait_for(2, timeout=15)  # the 503, then the retry
    daemon.wait_for("webhook dropped: its receiver was not available")  # refused until max_age
    assert daemon.terminate() == 0
    log = daemon.log()
    assert "webhook delivered" in log
    for secret in ("hunter2", "hookuser", "tok-good-123", "key-refused-456"):
        assert secret not in log
    assert "GET http://***@127.0.0.1:%d/hook?token=***" % receiver.port in log


def test_a_full_outbox_does_not_disturb_calls(tmp_path, switch, receiver, logs):
    # Nothing is answered until every call has ended: a call path that waited for room in the
    # outbox would hang there, and the flows below would not finish.
    receiver.hold()
    config = write_config(tmp_path, switch, {"front-desk": front_desk_flow({"uri": receiver.url("/m")})},
                          webhooks={"outbox": {"max": 5}, "timeout": 30},
                          freeswitch={"command_timeout": 10})  # a busy machine's slow reply is no warning
    daemon = Daemon(config).start()
    try:
        calls = [switch.place_call(FRONT_DESK, scenario=Scenario(device="busy")) for _ in range(20)]
        for call in calls:
            daemon.wait_finished(call.uuid, timeout=30)
            call.wait_ended(15)
        held = receiver.wait_for(5, timeout=30)  # the 5 the outbox took are in flight, unanswered
        receiver.release()
        logs.wait_until(lambda: daemon.service.webhooks.stats.delivered == 5, timeout=30,
                        what="the 5 accepted delivered")
        later = switch.place_call(FRONT_DESK, scenario=Scenario(device="busy"))  # room again
        daemon.wait_finished(later.uuid, timeout=30)
        receiver.wait_for(6, timeout=30)
    finally:
        receiver.release()
        daemon.stop()

    # every call ran the same flow, sent the switch the same commands and ended the same way,
    # whether the outbox took its webhook or not
    def path(call):
        return ([(step.module, step.outcome) for step in daemon.finished[call.uuid].history],
                [app for app, _ in call.applications], call.hangup_cause)

    assert all(path(call) == path(calls[0]) for call in calls + [later])
    assert [app for app, _ in calls[0].applications][-1] == "voicemail"
    # 15 dropped, each logged once with its call; nothing else went wrong
    dropped = {line.split(":")[0][len("call "):] for line in logs.matching("webhook dropped (outbox full")}
    assert len(logs.matching("webhook dropped (outbox full")) == len(dropped) == 15
    assert daemon.service.webhooks.stats.dropped == 15
    assert [r.getMessage() for r in logs.records
            if r.levelno >= logging.WARNING and "webhook dropped" not in r.getMessage()] == []
    # the accepted ones were delivered, once each; a dropped one never is
    accepted = {call.uuid for call in calls} - dropped
    sent = [request.fields["call_id"][0] for request in receiver.requests]
    assert sorted(sent) == sorted(accepted | {later.uuid})
    assert {request.fields["call_id"][0] for request in held} == accepted


# -- with delivery in a process of its own (webhooks.process) -----------------------------


def test_with_a_delivery_process_every_webhook_arrives_and_sigterm_stops_both(
        tmp_path, switch, receiver, daemons):
    config = write_config(tmp_path, switch, {"ten": ten_webhooks_flow(receiver.url("/hook"))},
                          webhooks={"process": True})
    daemon = daemons(config, tmp_path / "run.log")
    switch.wait_for_clients(1, timeout=15)
    place_calls(switch)
    wait_for_distinct_ids(receiver, WEBHOOKS)
    assert daemon.terminate() == 0
    log = daemon.log()
    assert "webhook delivery process" in log and "started" in log
    assert "the outbox is empty" in log
    check_every_webhook_arrived_once_by_id(receiver.requests)
    assert len(receiver.requests) == WEBHOOKS


def test_with_a_delivery_process_a_daemon_killed_with_500_pending_delivers_every_one_after_restart(
        tmp_path, switch, receiver, daemons):
    receiver.hold()
    config = write_config(tmp_path, switch, {"ten": ten_webhooks_flow(receiver.url("/hook"))},
                          webhooks={"process": True, "timeout": 30, "concurrency_per_endpoint": 8})
    first = daemons(config, tmp_path / "first.log")
    switch.wait_for_clients(1, timeout=15)
    place_calls(switch)
    wait_for_rows(tmp_path / "state", WEBHOOKS)
    receiver.wait_for(8)
    first.kill9()  # the delivery process sees its stdin end and exits at once

    receiver.release()
    second = daemons(config, tmp_path / "second.log")
    wait_for_distinct_ids(receiver, WEBHOOKS)
    assert second.terminate() == 0
    assert "the daemon is gone (end of stdin); stopping at once" in first.log()
    check_every_webhook_arrived_once_by_id(receiver.requests)
