"""The per-call object: completion by Application-UUID, hangups, timeouts, a vanished channel."""

import gevent
import gevent.event
import pytest

from callflowd.actions import LONG_APPLICATIONS
from callflowd.calls.call import Call
from callflowd.calls.routes import Route, RouteTable
from callflowd.errors import ActionTimeout, CallEnded, CommandTimeout, EslError, NotConnected
from callflowd.esl.event import Event
from callflowd.flow.executor import Position

pytestmark = pytest.mark.timeout(10)

UUID = "736a8acb-9a16-4501-8911-d11dcb9bf9cd"


class Commands:
    """Stands in for a switch link; ``on_execute`` plays the switch's answer.

    ``errors`` are raised by the next commands, one each; ``up`` is the link's state.
    """

    name = "fs-test"

    def __init__(self, on_execute=None, error=None, errors=()):
        self.sent = []
        self.api_calls = []
        self.later = []
        self.on_execute = on_execute
        self.errors = list(errors) or ([error] * 100 if error else [])
        self.up = gevent.event.Event()
        self.up.set()
        self.hung_up = gevent.event.Event()

    @property
    def connected(self):
        return self.up.is_set()

    def wait_up(self, timeout=None):
        return self.up.wait(timeout)

    def execute(self, uuid, app, arg=None, event_uuid=None, before=()):
        self.sent.append((uuid, app, arg, event_uuid))
        if self.errors:
            raise self.errors.pop(0)
        self.api_calls.extend(before)
        if self.on_execute:
            gevent.spawn(self.on_execute, app, event_uuid)
        return ["+OK"] * len(before)

    def hangup(self, uuid, cause="NORMAL_CLEARING"):
        self.sent.append((uuid, "hangup", cause, None))
        self.hung_up.set()
        if self.errors:
            raise self.errors.pop(0)

    def hangup_later(self, uuid, cause="NORMAL_CLEARING"):
        self.later.append((uuid, cause))

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


def make_call(commands, outage_limit=5):
    return Call(UUID, {"call_id": UUID}, "flow", commands, webhooks=None, command_timeout=1,
                outage_limit=outage_limit, long_applications=LONG_APPLICATIONS)


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


def test_a_lost_event_socket_does_not_end_the_wait_for_an_app_still_running():
    def switch(app, app_uuid):
        call.connection_lost()
        call.deliver(complete(app, app_uuid))  # after the reconnect, the completion still comes
    call = make_call(Commands(on_execute=switch))
    assert call.execute("answer", timeout=2).get("Application") == "answer"


def test_a_command_never_sent_is_sent_again_once_the_switch_is_back():
    commands = Commands(errors=[NotConnected("down")])
    commands.on_execute = lambda app, app_uuid: call.deliver(complete(app, app_uuid))
    commands.up.clear()
    call = make_call(commands)
    gevent.spawn_later(0.05, commands.up.set)
    call.execute("answer", timeout=2)
    assert [app for _, app, _, _ in commands.sent] == ["answer", "answer"]
    assert commands.sent[0][3] == commands.sent[1][3]  # the same Event-UUID


def test_a_command_sent_without_reply_is_not_sent_again_and_its_completion_still_counts():
    late = gevent.event.AsyncResult()
    commands = Commands(errors=[CommandTimeout("no reply within 1s", late_reply=late)])
    call = make_call(commands)
    gevent.spawn_later(0.05, lambda: call.deliver(complete("bridge", commands.sent[0][3])))
    assert call.execute("bridge", timeout=2).get("Application") == "bridge"
    assert len(commands.sent) == 1


def test_a_late_refusal_of_a_timed_out_command_ends_the_call_at_once():
    late = gevent.event.AsyncResult()
    call = make_call(Commands(errors=[CommandTimeout("no reply within 1s", late_reply=late)]))
    reply = Event({"Reply-Text": "-ERR invalid session id [%s]" % UUID}, content_type="command/reply")
    gevent.spawn_later(0.05, late.set, reply)
    with gevent.Timeout(1):
        with pytest.raises(CallEnded, match="channel is gone"):
            call.execute("bridge", timeout=30)


def test_a_switch_down_past_the_outage_limit_ends_the_flow_with_a_hangup_queued():
    commands = Commands()
    commands.up.clear()
    call = make_call(commands, outage_limit=0.05)
    with pytest.raises(CallEnded, match="down for"):
        call.execute("answer")
    assert commands.later == [(UUID, "NORMAL_TEMPORARY_FAILURE")]
    assert commands.sent == []


def test_a_hangup_that_cannot_be_sent_is_handed_to_the_link_to_send_again():
    commands = Commands(errors=[NotConnected("down")])
    make_call(commands).hangup("NORMAL_CLEARING")
    assert commands.later == [(UUID, "NORMAL_CLEARING")]


def test_a_hangup_of_a_channel_already_gone_is_not_retried():
    commands = Commands(errors=[EslError("hangup: -ERR invalid session id [%s]" % UUID)])
    call = make_call(commands)
    call.hangup()
    assert commands.later == [] and call.ended


def test_a_call_whose_greenlet_dies_of_a_bug_is_hung_up(monkeypatch):
    from callflowd.calls.router import CallRouter

    def broken(call, callflow, *rest):
        raise RuntimeError("a bug in the executor")

    class Flow:
        id = "flow"

    class Routes:
        by_id = {}
        max_callflow_jumps = 50

        def route(self, number):
            return RouteTable([]).route(number) or Route(Flow(), number)

        def refuses(self, route, channel):
            return False

    link = Commands()
    link.settings = type("Settings", (), {"command_timeout": 1})()
    router = CallRouter(Routes(), webhooks=None, run_flow=broken)
    router.route(event("CHANNEL_PARK", Call_Direction="inbound", Caller_Destination_Number="100"), link)
    assert link.hung_up.wait(2)
    assert link.sent == [(UUID, "hangup", "NORMAL_TEMPORARY_FAILURE", None)]


def test_the_recovery_mark_names_the_callflow_being_run_not_only_the_routed_one():
    commands = Commands()
    call = make_call(commands)
    call.mark_step(Position("flow", "flow"))
    call.mark_step(Position("jumped-to", "flow.children._"))
    assert "callflowd_callflow=flow;" in commands.api_calls[0]
    assert "callflowd_callflow=jumped-to;callflowd_node=flow.children._;" in commands.api_calls[1]


def test_a_second_hangup_is_not_sent_once_one_was_confirmed():
    commands = Commands()
    call = make_call(commands)
    call.hangup()
    call.hangup()
    assert [item[1] for item in commands.sent] == ["hangup"]


def test_a_steps_mark_rides_ahead_of_its_first_application_and_is_sent_again_with_it_after_a_cut():
    commands = Commands(errors=[NotConnected("cut")])
    call = make_call(commands)
    call.mark_step(Position("flow", "flow"), with_first_command=True)
    assert commands.api_calls == []  # nothing written yet: it goes with the first application
    call.set_variable("continue_on_fail", "true", ahead=True)
    assert [item[1] for item in commands.sent] == []
    with pytest.raises(ActionTimeout):
        call.execute("bridge", "user/1000", timeout=0.05)
    # sent twice (the first write never left), each time with the mark, the set and the
    # bridge's own waiting mark ahead of it, in that order
    assert [item[1] for item in commands.sent] == ["bridge", "bridge"]
    marks = [item for item in commands.api_calls if isinstance(item, str)]
    assert len(marks) == 2 and "callflowd_node=flow;" in marks[0] and "callflowd_waiting=bridge/" in marks[1]
    assert [item[:2] for item in commands.api_calls if isinstance(item, tuple)] == [("set", "continue_on_fail=true")]


def test_a_mark_without_a_command_after_it_is_written_on_its_own():
    commands = Commands()
    call = make_call(commands)
    call.mark_step(Position("flow", "flow"))  # not a command first: written at once
    assert len(commands.api_calls) == 1
    call.mark_step(Position("flow", "flow.children._"), with_first_command=True)
    call.answer(ahead=True)
    call.write_marks()  # the executor's, after an action that sent nothing more
    assert len(commands.api_calls) == 2 and "callflowd_node=flow.children._;" in commands.api_calls[1]
    assert [item[1] for item in commands.sent] == ["answer"]
