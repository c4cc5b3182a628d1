"""Metrics and health, scraped over HTTP from the real daemon after calls on the simulator.

Counters live for the whole test process, so each test reads them before and
after its call and checks the difference; labels name this test's own switch
(the simulator's port) and callflow.
"""

import time
import types

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from callflowd import metrics
from callflowd.calls.call import Step
from callflowd.config.model import WebhookSettings
from callflowd.errors import ConfigError, NotConnected
from callflowd.flow.load import load_config
from callflowd.retry import Retry
from callflowd.service import Service
from callflowd.simulator import Scenario
from callflowd.webhooks.dispatcher import WebhookDispatcher
from callflowd.webhooks.request import WebhookRequest
from tests.harness import FRONT_DESK, WAIT, Daemon, front_desk_flow, write_config

pytestmark = pytest.mark.timeout(30)


def scrape(daemon):
    """Every sample of ``/metrics``, as {(name, ((label, value), ...)): number}."""
    response = requests.get(url(daemon, "/metrics"), timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def url(daemon, path):
    listener = daemon.service.metrics_listener
    return "http://%s:%d%s" % (listener.host, listener.port, path)


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def daemon(tmp_path, switch, receiver):
    path = write_config(tmp_path, switch, {"front-desk": front_desk_flow({"uri": receiver.url("/missed")})})
    with open(path, "a") as stream:
        stream.write("metrics: {port: 0}\n")
    daemon = Daemon(path).start()
    yield daemon
    daemon.stop()


def test_a_busy_call_shows_in_calls_events_commands_and_webhooks(switch, receiver, daemon):
    where = "freeswitch"  # the switch's name in the config
    before = scrape(daemon)

    sim_call = switch.place_call(FRONT_DESK, scenario=Scenario(device="busy"))
    daemon.wait_finished(sim_call.uuid)
    receiver.wait_for(1, WAIT)
    daemon.service.webhooks.stop(timeout=WAIT)  # the delivery is counted once the worker is done
    after = scrape(daemon)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("callflowd_calls_finished_total", callflow="front-desk", outcome="completed") == 1
    assert value(after, "callflowd_calls_active", callflow="front-desk") == 0
    assert grew("callflowd_events_received_total", switch=where) >= 10
    assert value(after, "callflowd_switch_connected", switch=where) == 1
    for app in ("set", "bridge", "answer", "voicemail"):
        assert grew("callflowd_commands_sent_total", switch=where, command=app, result="ok") == 1
    assert grew("callflowd_command_seconds_count", switch=where) == 4
    assert grew("callflowd_webhook_deliveries_total", result="delivered") == 1
    assert grew("callflowd_webhook_delivery_seconds_count") == 1
    assert value(after, "callflowd_outbox_depth") == 0
    assert ("process_cpu_seconds_total", ()) in after


def test_a_call_in_progress_counts_as_active(switch, daemon, logs):
    sim_call = switch.place_call(FRONT_DESK, scenario=Scenario(device="answer", talk_seconds=1000))
    logs.wait_for("matches callflow front-desk", timeout=WAIT)

    assert value(scrape(daemon), "callflowd_calls_active", callflow="front-desk") == 1

    sim_call.hangup(origin="remote")  # the caller hangs up
    daemon.wait_finished(sim_call.uuid)
    assert value(scrape(daemon), "callflowd_calls_active", callflow="front-desk") == 0


def test_healthz_is_200_while_the_switch_is_connected(switch, daemon):
    response = requests.get(url(daemon, "/healthz"), timeout=5)

    assert response.status_code == 200
    details = response.json()
    cluster = details.pop("cluster")  # claims are on by default (calls/ownership.py)
    assert details == {"status": "ok", "switches": {"freeswitch": "connected"},
                       "loop_lag_seconds": details["loop_lag_seconds"], "loop_turning": True}
    assert cluster["leases_held"] == 1 and cluster["calls_owned"] == 0 and cluster["peers"] == []


def test_healthz_is_503_once_the_switch_is_gone(switch, daemon, logs):
    switch.stop()
    logs.wait_for("lost the event socket", timeout=WAIT)

    response = requests.get(url(daemon, "/healthz"), timeout=5)

    assert response.status_code == 503
    assert response.json()["switches"] == {"freeswitch": "disconnected"}
    assert value(scrape(daemon), "callflowd_switch_connected", switch="freeswitch") == 0


def test_healthz_is_503_when_the_loop_was_held_up(daemon, monkeypatch):
    monkeypatch.setattr(metrics, "LAG_LIMIT", 0.2)
    held_until = time.monotonic() + 2 * metrics.TICK
    while time.monotonic() < held_until:  # a blocking call: no greenlet runs meanwhile
        pass

    response = requests.get(url(daemon, "/healthz"), timeout=5)

    assert response.status_code == 503
    assert response.json()["loop_turning"] is False


def test_other_paths_are_404_and_other_methods_405(daemon):
    assert requests.get(url(daemon, "/"), timeout=5).status_code == 404
    assert requests.post(url(daemon, "/metrics"), timeout=5).status_code == 405


def test_a_dropped_webhook_is_counted(switch, tmp_path):
    dispatcher = WebhookDispatcher(WebhookSettings(), str(tmp_path))  # never started: submit() drops
    before = metrics.WEBHOOKS_DROPPED._value.get()

    accepted = dispatcher.submit(WebhookRequest("uuid", "http://127.0.0.1:9/x", "post", (), Retry(total=0)))

    assert accepted is False
    assert metrics.WEBHOOKS_DROPPED._value.get() - before == 1


def test_how_a_flow_ended_is_named_from_its_last_step():
    assert metrics.call_outcome([Step("device", "USER_BUSY", "flow")], crashed=True) == "error"
    assert metrics.call_outcome([Step("device", "call ended", "flow")]) == "caller_hung_up"
    assert metrics.call_outcome([Step("device", "stop", "flow")]) == "stopped"
    assert metrics.call_outcome([Step("voicemail", "_", "flow.children._")]) == "completed"
    assert metrics.call_outcome([]) == "no_action"


# -- config ---------------------------------------------------------------------------------------


def test_there_is_no_listener_unless_the_config_asks_for_one(tmp_path, switch):
    daemon = Daemon(write_config(tmp_path, switch, {"front-desk": front_desk_flow({"uri": "http://x/y"})})).start()
    try:
        assert daemon.service.metrics_listener is None
    finally:
        daemon.stop()


def test_the_listener_is_on_loopback_unless_told_otherwise(tmp_path, switch):
    path = write_config(tmp_path, switch, {"front-desk": front_desk_flow({"uri": "http://x/y"})})
    with open(path, "a") as stream:
        stream.write("metrics: {port: 9464}\n")

    settings = load_config(path).metrics

    assert (settings.host, settings.port) == ("127.0.0.1", 9464)


def test_a_metrics_section_without_a_port_is_refused(tmp_path, switch):
    path = write_config(tmp_path, switch, {"front-desk": front_desk_flow({"uri": "http://x/y"})})
    with open(path, "a") as stream:
        stream.write("metrics: {host: 127.0.0.1}\n")

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    assert str(raised.value) == "%s: metrics.port: is required" % path


def test_healthz_is_503_while_the_switch_has_never_answered(tmp_path, receiver):
    dead_port = int(receiver.url("/").rsplit(":", 1)[1].strip("/"))  # an HTTP server: no event socket there
    no_switch = types.SimpleNamespace(host="127.0.0.1", port=dead_port)
    path = write_config(tmp_path, no_switch, {"front-desk": front_desk_flow({"uri": "http://x/y"})})
    with open(path, "a") as stream:
        stream.write("metrics: {port: 0}\n")
    service = Service(load_config(path), stop_grace=1)
    service.start()
    try:
        listener = service.metrics_listener
        response = requests.get("http://%s:%d/healthz" % (listener.host, listener.port), timeout=5)

        assert response.status_code == 503
        assert response.json()["switches"] == {"freeswitch": "disconnected"}
    finally:
        service.stop(grace=1)


def test_a_failed_command_is_counted_by_its_error_and_still_timed():
    before = metrics.COMMANDS.labels("test-switch", "bridge", "NotConnected")._value.get()

    with pytest.raises(NotConnected), metrics.command("test-switch", "bridge"):
        raise NotConnected("not connected to FreeSWITCH")

    assert metrics.COMMANDS.labels("test-switch", "bridge", "NotConnected")._value.get() - before == 1


def test_the_outbox_gauges_read_the_outbox_at_each_scrape(daemon):
    waiting = [3, 42.5]
    metrics.watch_outbox(lambda: waiting[0], lambda: waiting[1])

    first = scrape(daemon)
    waiting[:] = [0, 0.0]
    second = scrape(daemon)

    assert (value(first, "callflowd_outbox_depth"), value(first, "callflowd_outbox_oldest_age_seconds")) == (3, 42.5)
    assert (value(second, "callflowd_outbox_depth"), value(second, "callflowd_outbox_oldest_age_seconds")) == (0, 0)
