"""Lifecycle hooks through the real Service, the simulator's captured events and a real receiver."""

import json

import pytest

from callflowd.calls.routes import RouteTable
from callflowd.config.model import Hook
from callflowd.esl.event import Event
from callflowd.hooks import lifecycle
from callflowd.simulator import Scenario
from tests.harness import FRONT_DESK, Daemon, front_desk_flow, write_config

pytestmark = pytest.mark.timeout(30)


def start_daemon(tmp_path, switch, receiver, hooks):
    config = write_config(tmp_path, switch, {"front-desk": front_desk_flow({"uri": receiver.url("/flow")})},
                          hooks=hooks)
    return Daemon(config).start()


def hook_requests(receiver, path):
    return [json.loads(r.body) if r.body.startswith(b"{") else {k: v[0] for k, v in r.form.items()}
            for r in receiver.requests if r.path == path]


def test_an_answered_call_reports_create_answer_and_destroy_with_its_durations_and_path(
        tmp_path, switch, receiver, logs):
    daemon = start_daemon(tmp_path, switch, receiver, [
        {"events": ["channel_create", "channel_answer", "channel_destroy"], "uri": receiver.url("/hooks"),
         "format": "json", "callflow_ids": ["front-desk"], "direction": "inbound"},
        {"events": ["channel_destroy"], "uri": receiver.url("/elsewhere"), "callflow_ids": ["another-flow"]},
    ])
    try:
        call = switch.place_call(FRONT_DESK, scenario=Scenario(device="answer"))
        daemon.wait_finished(call.uuid)
        call.wait_ended(15)
        logs.wait_until(lambda: any(h["event"] == "channel_destroy" for h in hook_requests(receiver, "/hooks")),
                        what="the destroy hook")
    finally:
        daemon.stop()

    hooks = hook_requests(receiver, "/hooks")
    assert [h["event"] for h in hooks if h["call_id"] == call.uuid] == [
        "channel_create", "channel_answer", "channel_destroy"]
    destroy = hooks[-1]
    assert destroy["callflow_id"] == "front-desk"
    assert destroy["call_direction"] == "inbound"
    assert destroy["hangup_cause"] == "NORMAL_CLEARING"
    assert destroy["hangup_code"] == "16"
    duration, ringing, billing = (float(destroy[k]) for k in
                                  ("duration_seconds", "ringing_seconds", "billing_seconds"))
    assert duration > 0 and billing > 0
    assert duration == pytest.approx(ringing + billing, abs=0.002)
    assert [step["module"] for step in json.loads(destroy["flow_path"])] == ["device"]
    assert hook_requests(receiver, "/elsewhere") == []  # filtered out by callflow id


def test_a_caller_who_hangs_up_while_ringing_has_no_billing_and_rang_for_the_whole_call(tmp_path, switch, receiver, logs):
    daemon = start_daemon(tmp_path, switch, receiver, [
        {"events": ["channel_destroy"], "uri": receiver.url("/hooks"), "numbers": [FRONT_DESK]},
        {"events": ["channel_destroy"], "uri": receiver.url("/outbound-only"), "direction": "outbound"},
    ])
    try:
        call = switch.place_call(FRONT_DESK, scenario=Scenario(device="busy", caller_hangup_after=0.5))
        daemon.wait_finished(call.uuid)
        call.wait_ended(15)
        logs.wait_until(lambda: hook_requests(receiver, "/hooks"), what="the destroy hook")
    finally:
        daemon.stop()

    [destroy] = hook_requests(receiver, "/hooks")  # form-encoded, the default
    assert destroy["event"] == "channel_destroy"
    assert destroy["hangup_cause"] == "ORIGINATOR_CANCEL"
    assert destroy["hangup_code"] == "487"
    assert destroy["billing_seconds"] == "0"
    assert float(destroy["duration_seconds"]) > 0
    assert float(destroy["ringing_seconds"]) == pytest.approx(float(destroy["duration_seconds"]), abs=0.002)
    assert json.loads(destroy["flow_path"]) == [{"module": "device", "outcome": "call ended"}]
    assert hook_requests(receiver, "/outbound-only") == []


def test_a_hook_without_channel_destroy_still_forgets_each_channel_at_its_end(tmp_path, switch, receiver, logs):
    """Each channel is watched from its first event; without CHANNEL_DESTROY on the socket none
    was ever let go, and at 100,000 every new call logged a destroy hook "not sent" it never had."""
    config = write_config(tmp_path, switch, {"front-desk": front_desk_flow({"uri": receiver.url("/flow")})},
                          hooks=[{"events": ["channel_answer"], "uri": receiver.url("/hooks")}],
                          cluster={"claims": False})  # one daemon, no claims: no cluster subscriptions
    daemon = Daemon(config).start()
    watched = daemon.service.router._hooks._channels
    try:
        calls = [switch.place_call(FRONT_DESK, scenario=Scenario(device="answer")) for _ in range(3)]
        for call in calls:
            daemon.wait_finished(call.uuid)
            call.wait_ended(15)
        logs.wait_until(lambda: not watched, what="every channel forgotten at its CHANNEL_DESTROY")
    finally:
        daemon.stop()
    assert {h["call_id"] for h in hook_requests(receiver, "/hooks")} >= {call.uuid for call in calls}


def test_channels_whose_destroy_never_comes_are_forgotten_oldest_first(monkeypatch, logs):
    class Router:
        routes = RouteTable(())

    class RecordingOutbox:
        def __init__(self):
            self.sent = []

        def submit(self, request):
            self.sent.append(request)
            return True

    monkeypatch.setattr(lifecycle, "MAX_CHANNELS", 2)
    outbox = RecordingOutbox()
    hooks = lifecycle.LifecycleHooks([Hook(events=frozenset({"channel_create"}), uri="http://h/")],
                                     Router(), outbox)
    for uuid in ("a", "b", "c"):
        hooks.observe(Event({"Event-Name": "CHANNEL_CREATE", "Unique-ID": uuid}))

    assert logs.matching("call a: forgotten by the lifecycle hooks (2 channels watched)")
    assert [r.call_id for r in outbox.sent] == ["a", "b", "c"]
