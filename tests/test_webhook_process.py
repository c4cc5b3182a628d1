"""The delivery process (``webhooks.process: true``) as the daemon sees it: its metrics, its logs,
its priority. The child is the real ``python -m callflowd.webhooks``, fed by a real outbox; the
receiver is a real HTTP server."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import types

import gevent

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from callflowd import metrics
from callflowd.flow.load import load_config
from callflowd.retry import Retry
from callflowd.simulator import Scenario
from callflowd.webhooks.process import OutboxFeeder
from callflowd.webhooks.request import WebhookRequest
from tests.harness import FRONT_DESK, front_desk_flow, write_config

pytestmark = pytest.mark.timeout(60)

CONFIG = """
freeswitch: {password: ClueCon}
log_level: warning
state_dir: %(state_dir)s
webhooks: {timeout: 5, process: true}
callflows:
  - numbers: ["1"]
    flow: {module: webhook, data: {uri: "http://127.0.0.1:9/"}}
"""


def scrape(listener):
    """The daemon's /metrics, as {(name, labels): value}."""
    text = requests.get("http://127.0.0.1:%d/metrics" % listener.port, timeout=5).text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def delta(before, after, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.fixture
def feeder(tmp_path):
    config = tmp_path / "callflowd.yaml"
    config.write_text(CONFIG % {"state_dir": tmp_path / "state"})
    made = OutboxFeeder(load_config(str(config)).directory.webhooks, str(tmp_path / "state"), str(config),
                        log_level="WARNING")
    yield made
    made.stop(timeout=1)


def webhook(uri, n):
    return WebhookRequest(call_id="call-%d" % n, uri=uri, method="post", fields=(("n", str(n)),),
                          retry=Retry(total=2, backoff_factor=0.05))


def test_a_webhook_the_delivery_process_sends_shows_in_the_daemons_metrics(feeder, receiver):
    listener = metrics.Listener("127.0.0.1", 0).start()
    try:
        before = scrape(listener)
        feeder.start()
        receiver.fail_next(1, 503)  # one attempt answered "not now", then three delivered
        for n in range(3):
            assert feeder.submit(webhook(receiver.url("/hook"), n))
        receiver.wait_for(4, timeout=15)
        while feeder.stats.delivered < 3:  # reported within a second, while the child runs
            assert feeder.reported.wait(5), "no report from the delivery process"
            feeder.reported.clear()
        during = scrape(listener)
        assert feeder.stop(timeout=5) == 0
        after = scrape(listener)
    finally:
        listener.stop()

    assert delta(before, during, "callflowd_webhook_deliveries_total", result="delivered") == 3
    assert delta(before, after, "callflowd_webhook_deliveries_total", result="delivered") == 3
    assert delta(before, after, "callflowd_webhook_deliveries_total", result="no_answer") == 1
    assert delta(before, after, "callflowd_webhook_delivery_seconds_count") == 4
    assert delta(before, after, "callflowd_webhook_delivery_seconds_bucket", le="+Inf") == 4
    assert 0 < delta(before, after, "callflowd_webhook_delivery_seconds_sum") < 4 * 5
    stats = feeder.stats
    assert (stats.accepted, stats.delivered, stats.failed, stats.retried) == (3, 3, 0, 1)


def test_the_delivery_process_runs_at_a_lower_cpu_priority_than_the_daemon(feeder, receiver):
    feeder.start()
    assert feeder.submit(webhook(receiver.url("/hook"), 1))
    receiver.wait_for(1, timeout=15)  # the child is up and delivering
    child = feeder._child.pid
    # nice +10 from the daemon's, at most 19 (the kernel's cap, when the daemon itself is niced)
    assert os.getpriority(os.PRIO_PROCESS, child) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)


def one_call_through_a_daemon(config, log_path, switch, receiver, *options):
    """``callflowd run --log-format json`` for one call and its webhook, then SIGTERM; its log lines."""
    with open(log_path, "w") as log_file:
        daemon = subprocess.Popen([sys.executable, "-m", "callflowd", "run", "-c", str(config),
                                   "--log-format", "json", *options], stdout=subprocess.DEVNULL, stderr=log_file)
        try:
            switch.wait_for_clients(1, timeout=15)
            call = switch.place_call(FRONT_DESK, caller_id_number="+15550001234", scenario=Scenario())
            call.wait_ended(30)
            receiver.wait_for(1, timeout=15)
            daemon.send_signal(15)
            assert daemon.wait(timeout=30) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    return [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]


def test_with_json_logs_the_delivery_process_logs_json_lines_with_the_same_fields(tmp_path, switch, receiver):
    flow = {"numbers": [FRONT_DESK], "flow": {"module": "webhook", "data": {"uri": receiver.url("/hook")}}}
    config = write_config(tmp_path, switch, {"one": flow}, webhooks={"process": True}, log_level="info")
    entries = one_call_through_a_daemon(config, tmp_path / "run.log", switch, receiver)  # all JSON
    [delivered] = [e for e in entries if "webhook delivered" in e["message"]]
    assert delivered["logger"] == "callflowd.webhooks.dispatcher"  # written by the child...
    assert delivered["level"] == "INFO" and "time" in delivered
    assert delivered["call_uuid"] == receiver.requests[0].fields["call_id"][0]  # ...with the call's field
    assert any(e["logger"] == "callflowd.webhooks.process" and "started" in e["message"] for e in entries)
    assert set(delivered) <= {"time", "level", "logger", "message", "call_uuid", "switch", "exception"}


def test_systemctl_stop_lets_the_delivery_process_deliver_the_webhooks_of_calls_still_finishing(
        tmp_path, switch, receiver):
    # systemd's KillMode=control-group: SIGTERM reaches the daemon and its delivery process at
    # once. The call still ringing ends during the daemon's grace and fires its webhook after it.
    config = write_config(tmp_path, switch, {"desk": front_desk_flow({"uri": receiver.url("/hook")}, False)},
                          webhooks={"process": True}, log_level="info")
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log_file:
        daemon = subprocess.Popen([sys.executable, "-m", "callflowd", "run", "-c", str(config)],
                                  stdout=subprocess.DEVNULL, stderr=log_file, start_new_session=True)
        try:
            switch.wait_for_clients(1, timeout=15)
            wait_for_line(log_path, "webhook dispatcher started")  # the child is up
            call = switch.place_call(FRONT_DESK, scenario=Scenario(device="busy", ring_seconds=150))
            wait_for_line(log_path, "moving to action device")
            os.killpg(daemon.pid, signal.SIGTERM)  # the whole unit, as systemctl stop does
            call.wait_ended(30)
            assert daemon.wait(timeout=40) == 0
        finally:
            if daemon.poll() is None:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait()

    [got] = receiver.requests  # the call ended after the SIGTERM; its webhook was delivered
    assert got.fields["call_id"][0] == call.uuid
    log = log_path.read_text()
    assert "SIGTERM: delivering until the daemon" in log
    assert "exited with" not in log  # the child was not stopped early, nor restarted
    assert "the outbox is empty" in log


def wait_for_line(path, text, timeout=15):
    deadline = time.monotonic() + timeout
    while text not in path.read_text():
        assert time.monotonic() < deadline, "no %r in the log" % text
        gevent.sleep(0.05)  # the log is a file: nothing to wait on but its growth


def test_a_delivery_process_started_while_the_config_file_holds_a_refused_edit_still_delivers(
        tmp_path, feeder, receiver):
    # The daemon runs the config it loaded; the file may since hold an edit a reload refused.
    # The child gets the daemon's settings, not the file's: a broken file can't stop delivery.
    (tmp_path / "callflowd.yaml").write_text("freeswitch: [this is not a config\n")
    feeder.start()
    assert feeder.submit(webhook(receiver.url("/hook"), 1))
    [got] = receiver.wait_for(1, timeout=15)
    assert got.form["n"] == ["1"]
    assert feeder.stop(timeout=5) == 0
    assert feeder.stats.delivered == 1


def test_the_delivery_process_signs_with_the_daemons_secret_and_never_logs_it(tmp_path, receiver):
    # The signing secret reaches the child through its stdin; it signs with it and never logs it.
    config = tmp_path / "callflowd.yaml"
    config.write_text(CONFIG % {"state_dir": tmp_path / "state"})
    settings = dataclasses.replace(load_config(str(config)).directory.webhooks,
                                   secrets=types.MappingProxyType({"": "whsec-child-777"}))
    log_path = tmp_path / "child.log"
    with open(log_path, "w") as log_file:
        feeder = OutboxFeeder(settings, str(tmp_path / "state"), str(config), log_level="INFO")
        saved = os.dup(2)
        os.dup2(log_file.fileno(), 2)  # the child inherits the daemon's stderr
        try:
            feeder.start()
            receiver.respond_with(404)
            assert feeder.submit(WebhookRequest(call_id="c0ffee", uri=receiver.url("/hook"), method="post",
                                                fields=(("n", "1"),), retry=Retry(total=0)))
            [got] = receiver.wait_for(1, timeout=15)
            assert feeder.stop(timeout=5) == 0
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    assert got.header("X-Callflowd-Signature")  # signed in the child with the daemon's secret
    text = log_path.read_text()
    assert "call c0ffee: webhook failed" in text
    assert "whsec-child-777" not in text


def test_log_level_on_the_command_line_holds_for_the_delivery_process_too(tmp_path, switch, receiver):
    flow = {"numbers": [FRONT_DESK], "flow": {"module": "webhook", "data": {"uri": receiver.url("/hook")}}}
    config = write_config(tmp_path, switch, {"one": flow}, webhooks={"process": True}, log_level="info")
    entries = one_call_through_a_daemon(config, tmp_path / "run.log", switch, receiver, "--log-level", "warning")
    # the config says info, the command line warning: neither process writes an info line
    assert [e["message"] for e in entries if e["level"] in ("DEBUG", "INFO")] == []
