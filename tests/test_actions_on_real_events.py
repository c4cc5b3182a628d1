"""The actions' reading of FreeSWITCH, checked on real events from the captures.

The simulator is our double; these captures are what a real FreeSWITCH 1.10
sent, so the device action's branch and the call facts are checked on them.
"""

import logging
from types import MappingProxyType

import pytest

from callflowd.actions import device, voicemail
from callflowd.actions.outcome import STOP
from callflowd.calls.routes import RouteTable
from callflowd.config.model import Device, VoicemailBox
from callflowd.esl import protocol
from callflowd.flow.model import Callflow, Node
from tests.doubles.replay_switch import load_capture

pytestmark = pytest.mark.timeout(20)


def caller_events(capture, name):
    """The capture's events named ``name`` for the inbound (caller) leg, in order."""
    events = [protocol.parse_frame(headers, body) for headers, body, _ in protocol.iter_frames(load_capture(capture))]
    events = [e for e in events if e.name]
    caller = next(e.uuid for e in events if e.name == "CHANNEL_PARK")
    return [e for e in events if e.name == name and e.uuid == caller]


def bridge_completion(capture):
    return next(e for e in caller_events(capture, "CHANNEL_EXECUTE_COMPLETE") if e.get("Application") == "bridge")


class CallReplayingCapture:
    """A call double whose ``execute`` answers with a real EXECUTE_COMPLETE from a capture."""

    uuid = "736a8acb-9a16-4501-8911-d11dcb9bf9cd"

    def __init__(self, completion):
        self.completion = completion
        self.executed = []
        self.facts = {}
        self.log = logging.LoggerAdapter(logging.getLogger("test"), {})

    def set_variable(self, name, value, ahead=False):
        self.executed.append(("set", "%s=%s" % (name, value)))

    def answer(self, ahead=False):
        self.executed.append(("answer", None))

    def execute(self, app, arg=None, timeout=None):
        self.executed.append((app, arg))
        return self.completion


FRONT_DESK = Device(id="front_desk", dial_string="user/1000@127.0.0.1", timeout=5)


@pytest.mark.parametrize("capture, expected", [
    ("b_device_busy_voicemail.plain.txt", ("USER_BUSY", "sip:486", "_")),
    ("b4_device_busy_voicemail_with_caller_audio.plain.txt", ("USER_BUSY", "sip:486", "_")),
    ("c2_device_no_answer_originate_timeout.plain.txt", ("NO_ANSWER", "_")),
    ("c3_device_no_answer_call_timeout_chanvar.plain.txt", ("NO_ANSWER", "_")),
    ("a_device_answers.plain.txt", STOP),
    ("a_device_answers.json.txt", STOP),
])
def test_the_device_branch_follows_what_freeswitch_reported(capture, expected):
    call = CallReplayingCapture(bridge_completion(capture))
    outcome = device.handle(call, device.Data(device=FRONT_DESK, timeout=5))
    assert outcome == expected
    assert call.executed == [("set", "continue_on_fail=true"),
                             ("bridge", "{originate_timeout=5}user/1000@127.0.0.1")]


def test_voicemail_answers_before_running_the_box():
    call = CallReplayingCapture(caller_events("b_device_busy_voicemail.plain.txt", "CHANNEL_EXECUTE_COMPLETE")[-1])
    box = VoicemailBox(id="box", profile="default", domain="127.0.0.1", mailbox="1000")
    assert voicemail.handle(call, voicemail.Data(box=box)) == "_"
    assert call.executed == [("answer", None), ("voicemail", "default 127.0.0.1 1000")]


def test_a_real_park_event_routes_by_its_destination_number():
    [park] = caller_events("b_device_busy_voicemail.plain.txt", "CHANNEL_PARK")
    flow = Callflow(id="short", numbers=("5559999",), patterns=(),
                    flow=Node(module="voicemail", data=None, children=MappingProxyType({})))
    other = Callflow(id="e164", numbers=("+10005559999",), patterns=(),
                     flow=Node(module="voicemail", data=None, children=MappingProxyType({})))
    assert RouteTable([other, flow]).lookup(park.get("Caller-Destination-Number")) is flow
    assert RouteTable([other]).lookup(park.get("Caller-Destination-Number")) is None
