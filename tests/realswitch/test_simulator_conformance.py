"""The simulator is held to the real switch: the same calls, the same view for the daemon.

Each scenario (busy, no answer, answered, caller cancel) runs twice through the real
``Service``: once on the real FreeSWITCH with sipp phones and callers, once on the
built-in simulator with the matching ``Scenario``. The daemon's connection is tapped, and
for the caller's channel we compare the sequence of events the daemon received and, for
each, the headers it reads: which are present, and the value of those that decide a branch.
Uuids and times differ by nature and are compared only as "present" or "ours".
"""

import time

import pytest
from gevent.event import Event

from callflowd.esl import names
from callflowd.esl.connection import EslConnection
from callflowd.flow.load import load_config
from callflowd.service import Service
from callflowd.simulator import FreeswitchSimulator, Scenario
from tests.realswitch.daemon import FRONT_DESK, DaemonProcess, front_desk_flow

pytestmark = pytest.mark.timeout(120)

RING_TIMEOUT = 5
# Headers whose values decide what the daemon does: compared as values.
DECIDING = (names.APPLICATION, names.CALL_DIRECTION, names.HANGUP_CAUSE, "Answer-State",
            names.VAR_ORIGINATE_DISPOSITION, names.VAR_LAST_BRIDGE_PROTO_CAUSE, "variable_outside_call",
            "variable_continue_on_fail")
# Headers the daemon reads whose values are ids, times or names: compared as present or not.
PRESENT = (names.UNIQUE_ID, names.CORE_UUID, names.HOSTNAME, names.CALLER_DESTINATION_NUMBER,
           names.CALLER_CALLER_ID_NAME, names.CALLER_CALLER_ID_NUMBER, names.CALLER_CALLEE_ID_NAME,
           names.CALLER_CALLEE_ID_NUMBER, names.CALLER_CONTEXT, names.VAR_SIP_FROM_URI,
           names.VAR_SIP_TO_URI, names.VAR_SIP_REQ_URI, names.VAR_SIP_CALL_ID)

# scenario: (sipp phone, sipp caller, the simulator's Scenario for the same people)
SCENARIOS = {
    "busy": ("uas_busy.xml", "uac_talk_bye.xml", Scenario(device="busy", ring_seconds=0, voicemail_seconds=4)),
    "no_answer": ("uas_ring_cancel.xml", "uac_talk_bye.xml",
                  Scenario(device="no_answer", voicemail_seconds=4)),
    "answer": ("uas_answer.xml", "uac_talk_bye.xml", Scenario(device="answer", ring_seconds=1.5, talk_seconds=4)),
    "caller_cancel": ("uas_ring_cancel.xml", "uac_cancel.xml",
                      Scenario(device="no_answer", caller_hangup_after=2.5)),
}


class TappedDaemon:
    """The real Service, in this process, with every event it receives recorded."""

    def __init__(self, config_path):
        self.received = []
        self.sent_event_uuids = set()
        self._finished = {}
        self._changed = Event()
        self.service = Service(load_config(str(config_path)), connection_factory=self._connection,
                               on_call_finished=[self._on_finished], stop_grace=2)

    def _connection(self, *args, on_event, **kwargs):
        daemon = self

        class Tapped(EslConnection):
            def execute(self, uuid, app, arg=None, event_uuid=None, **kwargs):
                daemon.sent_event_uuids.add(event_uuid)
                return super().execute(uuid, app, arg, event_uuid=event_uuid, **kwargs)

        def tap(event):
            self.received.append(event)
            self._changed.set()
            on_event(event)

        return Tapped(*args, on_event=tap, **kwargs)

    def _on_finished(self, call):
        self._finished[call.uuid] = call
        self._changed.set()

    def __enter__(self):
        self.service.start()
        assert self.service.wait_ready(10), "the daemon did not connect"
        return self

    def __exit__(self, *exc):
        self.service.stop(grace=2)

    def wait(self, condition, timeout=60):
        deadline = time.monotonic() + timeout
        while not condition():
            self._changed.clear()
            if not self._changed.wait(max(0, deadline - time.monotonic())):
                raise TimeoutError("condition not met within %ss" % timeout)

    def caller_uuid(self):
        for event in self.received:
            if event.name == names.CHANNEL_PARK and event.get(names.CALLER_DESTINATION_NUMBER) == FRONT_DESK:
                return event.uuid
        return None

    def finished_and_gone(self):
        uuid = self.caller_uuid()
        return uuid in self._finished and any(
            event.uuid == uuid and event.name == names.CHANNEL_HANGUP_COMPLETE for event in self.received)

    def view(self):
        """What the daemon saw of the caller's channel, with ids and times folded away."""
        uuid = self.caller_uuid()
        seen = []
        for event in self.received:
            if event.uuid != uuid:
                continue
            application_uuid = event.get(names.APPLICATION_UUID)
            seen.append({
                "event": event.name,
                "deciding": {name: event.get(name) for name in DECIDING if event.get(name) is not None},
                "present": sorted(name for name in PRESENT if event.get(name)),
                "Application-UUID": (None if application_uuid is None else
                                     "ours" if application_uuid in self.sent_event_uuids else "other"),
            })
        return seen


def on_the_real_switch(scenario, tmp_path, esl, switch, sipp):
    phone_scenario, caller_scenario, _ = SCENARIOS[scenario]
    config = DaemonProcess(tmp_path, esl, {"front-desk": front_desk_flow("http://127.0.0.1:9/x")},
                           ring_timeout=RING_TIMEOUT).config_path
    with TappedDaemon(config) as daemon:
        sipp.register("1000")
        phone = sipp.phone(phone_scenario)
        caller = sipp.call(FRONT_DESK, scenario=caller_scenario)
        daemon.wait(daemon.finished_and_gone)
        assert sipp.finish(caller) == 0, sipp.output(caller)
        assert sipp.finish(phone) == 0, sipp.output(phone)
    return daemon.view()


def on_the_simulator(scenario, tmp_path, sipp_scenarios=SCENARIOS):
    _, _, simulated = sipp_scenarios[scenario]
    simulator = FreeswitchSimulator(time_scale=0.05).start()
    try:
        config = DaemonProcess(tmp_path, (simulator.host, simulator.port, "ClueCon"),
                               {"front-desk": front_desk_flow("http://127.0.0.1:9/x")},
                               ring_timeout=RING_TIMEOUT).config_path
        with TappedDaemon(config) as daemon:
            simulator.place_call(FRONT_DESK, scenario=simulated)
            daemon.wait(daemon.finished_and_gone)
        return daemon.view()
    finally:
        simulator.stop()


def describe(view):
    return "\n".join("%-26s %s %s" % (step["event"], step["Application-UUID"] or "", step["deciding"])
                     for step in view)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_simulator_shows_the_daemon_what_the_real_switch_shows_it(scenario, tmp_path, esl, switch, sipp):
    (tmp_path / "real").mkdir()
    (tmp_path / "sim").mkdir()
    real = on_the_real_switch(scenario, tmp_path / "real", esl, switch, sipp)
    simulated = on_the_simulator(scenario, tmp_path / "sim")
    assert [step["event"] for step in simulated] == [step["event"] for step in real], (
        "event sequences differ\n--- real switch:\n%s\n--- simulator:\n%s" % (describe(real), describe(simulated)))
    for index, (want, got) in enumerate(zip(real, simulated)):
        assert got == want, "event %d (%s) differs\n--- real switch:\n%s\n--- simulator:\n%s" % (
            index, want["event"], describe(real), describe(simulated))
