"""The per-call object: completion by Application-UUID, hangups, timeouts, a vanished channel."""

import gevent
import pytest

from callflowd.calls.call import Call
from callflowd.errors import ActionTimeout, CallEnded, EslError, NotConnected
from callflowd.esl.event import Event

pytestmark = pytest.mark.timeout(10)

UUID = "736a8acb-9a16-4501-8911-d11dcb9bf9cd"


class Commands:
    """Stands in for the event socket; ``on_execute`` plays the switch's answer."""

    def __init__(self, on_execute=None, error=None):
        self.sent = []
        self.api_calls = []
        self.on_execute = on_execute
        self.error = error

    def execute(self, uuid, app, arg=None, event_uuid=None):
        self.sent.append((uuid, app, arg, event_uuid))
        if self.error:
            raise self.error
        if self.on_execute:
            gevent.spawn(self.on_execute, app, event_uuid)

    def hangup(self, uuid, cause="NORMAL_CLEARING"):
        self.sent.append((uuid, "hangup", cause, None))

    def api(self, command):
        self.api_calls.append(command)
        return "+OK"


def event(name, **headers):
    """An event; ``Hangup_Cause`` is the header ``Hangup-Cause``, ``variable_x`` stays as it is."""
    def header(key):
        return key if key.startswith("variable_") else key.replace("_", "-")
    return Event(dict({"Event-Name": name, "Unique-ID": UUID}, **{header(k): v for k, v in headers.items()}))


def complete(app, app_uuid, **headers):
    return event("CHANNEL_EXECUTE_COMPLETE", Application=app, Application_UUID=app_uuid, **headers)


def make_call(commands):
    return Call(UUID, {"call_id": UUID}, "flow", commands, webhooks=None, command_timeout=1)


def test_execute_returns_the_completion_carrying_its_own_event_uuid():
    def switch(app, app_uuid):
        call.deliver(complete("bridge", "someone-elses-uuid"))   # another app's end is ignored
        call.deliver(event("CHANNEL_ANSWER"))
        call.deliver(complete("bridge", app_uuid, variable_originate_disposition="USER_BUSY"))
    call = make_call(Commands(switch))
    result = call.execute("bridge", "user/1000", timeout=2)
    assert result.get("variable_originate_disposition") == "USER_BUSY"


def test_the_completion_that_follows_a_hangup_is_still_returned():
    # capture a: the answered bridge's EXECUTE_COMPLETE (SUCCESS) comes after CHANNEL_HANGUP
    def switch(app, app_uuid):
        call.deliver(event("CHANNEL_HANGUP", Hangup_Cause="NORMAL_CLEARING"))
        call.deliver(complete("bridge", app_uuid, variable_originate_disposition="SUCCESS"))
    call = make_call(Commands(switch))
    assert call.execute("bridge", "user/1000", timeout=2).get("variable_originate_disposition") == "SUCCESS"
    assert call.ended and call.hangup_cause == "NORMAL_CLEARING"
    with pytest.raises(CallEnded):
        call.execute("answer")


def test_hangup_complete_without_the_completion_ends_the_call():
    def switch(app, app_uuid):
        call.deliver(event("CHANNEL_HANGUP", Hangup_Cause="ORIGINATOR_CANCEL"))
        call.deliver(event("CHANNEL_HANGUP_COMPLETE", Hangup_Cause="ORIGINATOR_CANCEL"))
    call = make_call(Commands(switch))
    with pytest.raises(CallEnded, match="ORIGINATOR_CANCEL"):
        call.execute("answer", timeout=2)


def test_an_app_that_never_completes_times_out():
    call = make_call(Commands())
    with pytest.raises(ActionTimeout):
        call.execute("playback", "x.wav", timeout=0.05)


def test_a_hangup_that_arrived_between_two_commands_is_noticed_before_sending():
    commands = Commands()
    call = make_call(commands)
    call.deliver(event("CHANNEL_HANGUP_COMPLETE", Hangup_Cause="NORMAL_CLEARING"))
    with pytest.raises(CallEnded):
        call.execute("answer")
    assert commands.sent == []
    call.hangup()
    assert commands.sent == []  # nothing to hang up


def test_a_channel_freeswitch_no_longer_has_ends_the_call():
    call = make_call(Commands(error=EslError("execute answer on %s: -ERR invalid session id [%s]" % (UUID, UUID))))
    with pytest.raises(CallEnded, match="channel is gone"):
        call.execute("answer")
    assert call.ended


def test_a_lost_event_socket_ends_the_flow():
    call = make_call(Commands(on_execute=lambda app, app_uuid: call.connection_lost()))
    with pytest.raises(CallEnded, match="lost the event socket"):
        call.execute("answer", timeout=2)
    with pytest.raises(NotConnected):
        make_call(Commands(error=NotConnected("down"))).execute("answer")
