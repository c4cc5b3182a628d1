"""EslConnection against a fake FreeSWITCH over real TCP: handshake, commands, events, endings."""

import logging
import socket

import gevent
import gevent.event
import pytest

from callflowd.errors import AuthenticationFailed, CommandTimeout, EslError, NotConnected, ReplyLost
from callflowd.esl import names, protocol
from callflowd.esl.connection import EslConnection
from tests.doubles.replay_switch import ReplaySwitch, Script, sent_commands

pytestmark = pytest.mark.timeout(20)

LOGGER = "callflowd.esl.connection"
UUID = "811fed91-6a3d-4dc2-99eb-654109c215fe"


class Recorder:
    """on_event/on_disconnect targets a test can wait on."""

    def __init__(self, fail_on=()):
        self.events = []
        self.lost = []
        self.fail_on = set(fail_on)
        self._changed = gevent.event.Event()

    def on_event(self, event):
        self.events.append(event)
        self._changed.set()
        if event.get("Event-Sequence") in self.fail_on:
            raise RuntimeError("handler bug on %s" % event.get("Event-Sequence"))

    def on_disconnect(self, reason):
        self.lost.append(reason)
        self._changed.set()

    def wait(self, probe, timeout=5.0):
        with gevent.Timeout(timeout, AssertionError("timed out waiting")):
            while not probe():
                self._changed.clear()
                self._changed.wait()


@pytest.fixture
def switch():
    with ReplaySwitch() as fake:
        yield fake


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def conn(switch, recorder):
    connection = make_connection(switch, recorder)
    connection.connect()
    yield connection
    connection.close()


def make_connection(switch, recorder=None, password="ClueCon", **kwargs):
    host, port = switch.address
    kwargs.setdefault("connect_timeout", 2.0)
    kwargs.setdefault("command_timeout", 2.0)
    if recorder:
        kwargs.update(on_event=recorder.on_event, on_disconnect=recorder.on_disconnect)
    return EslConnection(host, port, password, **kwargs)


def dtmf(sequence, digit="1"):
    return protocol.encode_plain_event([
        ("Event-Name", names.DTMF), ("Unique-ID", UUID),
        ("Event-Sequence", str(sequence)), ("DTMF-Digit", digit),
    ])


def unused_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ------------------------------------------------------------------ handshake


def test_connect_authenticates_with_the_password(conn, switch):
    assert conn.connected
    assert switch.received == [b"auth ClueCon\n\n"]


def test_a_wrong_password_raises_authentication_failed_without_hanging(switch, recorder):
    conn = make_connection(switch, recorder, password="WrongPassword", connect_timeout=10)
    with gevent.Timeout(2):
        with pytest.raises(AuthenticationFailed, match="-ERR invalid"):
            conn.connect()
    assert not conn.connected
    assert recorder.lost == []


def test_a_refused_connection_raises_not_connected():
    conn = EslConnection("127.0.0.1", unused_port(), "ClueCon", connect_timeout=2)
    with pytest.raises(NotConnected, match="cannot connect"):
        conn.connect()
    assert not conn.connected


def test_a_switch_that_never_greets_times_out_as_not_connected():
    with ReplaySwitch(greet=False) as silent:
        conn = make_connection(silent, connect_timeout=0.3)
        with pytest.raises(NotConnected, match="within 0.3s"):
            conn.connect()


def test_a_switch_closing_before_auth_request_raises_not_connected():
    with ReplaySwitch(greet=False) as silent:
        conn = make_connection(silent)
        attempt = gevent.spawn(conn.connect)
        silent.wait_connected()
        silent.drop()
        with pytest.raises(NotConnected, match="closed the connection"):
            attempt.get(timeout=2)


def test_a_rude_rejection_raises_not_connected():
    rejection = Script(protocol.encode_rude_rejection(), [], b"", hang_up=True)
    with ReplaySwitch(script=rejection) as acl:
        with pytest.raises(NotConnected, match="Access Denied"):
            make_connection(acl).connect()


def test_a_connection_connects_once(conn):
    with pytest.raises(EslError):
        conn.connect()


# ------------------------------------------------------------------ commands


def test_api_returns_the_response_body(conn, switch):
    switch.api_replies["status"] = "UP 0 years\n"
    assert conn.api("status") == "UP 0 years\n"
    assert conn.api("no_such_command") == "-ERR no_such_command Command not found!\n"
    assert switch.received[-2:] == [b"api status\n\n", b"api no_such_command\n\n"]


def test_bgapi_returns_the_job_uuid(conn, switch, recorder):
    conn.subscribe([names.BACKGROUND_JOB])
    job = conn.bgapi("status")
    recorder.wait(lambda: recorder.events)
    assert recorder.events[0][names.JOB_UUID] == job


def test_subscribe_sends_the_format_and_names(conn, switch):
    conn.subscribe([names.CHANNEL_PARK, names.DTMF])
    conn.subscribe("ALL", fmt="json")
    assert switch.received[-2:] == [b"event plain CHANNEL_PARK DTMF\n\n", b"event json ALL\n\n"]
    with pytest.raises(ValueError):
        conn.subscribe("ALL", fmt="xml")


def test_execute_sends_exactly_the_recorded_sendmsg(conn, switch):
    conn.execute(UUID, "playback", "tone_stream://%(500,500,440);loops=2",
                 event_uuid="11111111-2222-3333-4444-555555555555")
    assert switch.received[-1] == sent_commands("g_event_uuid_playback_bgapi.json.txt")[2]


def test_execute_without_argument_and_hangup_match_the_recorded_sendmsgs(conn, switch):
    recorded = sent_commands("b_device_busy_voicemail.plain.txt")
    uuid = "736a8acb-9a16-4501-8911-d11dcb9bf9cd"
    conn.execute(uuid, "answer")
    conn.hangup(uuid)
    assert switch.received[-2:] == [recorded[4], recorded[6]]


def test_commands_ahead_of_an_execute_share_its_write_keep_their_order_and_return_their_replies(
        conn, switch, monkeypatch):
    writes = []
    write = conn._write
    monkeypatch.setattr(conn, "_write", lambda raw, what, deadline: (writes.append(raw), write(raw, what, deadline)))
    switch.api_replies["uuid_setvar_multi %s a=1" % UUID] = "+OK\n"
    replies = conn.execute(UUID, "bridge", "user/1000", event_uuid="e-bridge", before=(
        "uuid_setvar_multi %s a=1" % UUID, ("set", "continue_on_fail=true", "e-set"), "no_such_command"))
    assert replies == ["+OK\n", "+OK", "-ERR no_such_command Command not found!\n"]
    assert len(writes) == 1  # one write, one wait
    sent = switch.received[-4:]
    assert sent[0] == ("api uuid_setvar_multi %s a=1\n\n" % UUID).encode()
    assert b"execute-app-name: set\nexecute-app-arg: continue_on_fail=true\nEvent-UUID: e-set\n" in sent[1]
    assert sent[2] == b"api no_such_command\n\n"
    assert b"execute-app-name: bridge\n" in sent[3] and b"Event-UUID: e-bridge\n" in sent[3]


def test_a_refused_execute_raises_even_when_what_went_ahead_of_it_was_taken(conn, switch):
    switch.unknown_uuids.add(UUID)
    with pytest.raises(EslError, match="invalid session id"):
        conn.execute(UUID, "answer", before=("status",))
    assert conn.api("status").startswith("-ERR")  # the replies after it stay matched


def test_execute_on_an_unknown_channel_raises(conn, switch):
    switch.unknown_uuids.add(UUID)
    with pytest.raises(EslError, match="invalid session id"):
        conn.execute(UUID, "answer")
    with pytest.raises(EslError, match="invalid session id"):
        conn.hangup(UUID)


@pytest.mark.parametrize("call", [
    lambda c: c.execute(UUID + "\nexit", "answer"),
    lambda c: c.execute(UUID, "answer\r"),
    lambda c: c.execute(UUID, "playback", "a.wav\n\napi uuid_kill " + UUID),
    lambda c: c.execute(UUID, "playback", "a.wav", event_uuid="x\ny"),
    lambda c: c.hangup(UUID, "NORMAL_CLEARING\n\nexit"),
    lambda c: c.api("status\n\nexit"),
    lambda c: c.bgapi("status\rexit"),
    lambda c: c.send("api status\n\nexit"),
])
def test_line_breaks_that_would_inject_commands_are_refused(conn, switch, call):
    with pytest.raises(EslError):
        call(conn)
    assert switch.received == [b"auth ClueCon\n\n"]
    assert conn.connected


def test_a_command_without_reply_times_out_and_later_replies_stay_matched(conn, switch, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    switch.api_replies.update({"slow": "late\n", "status": "UP\n"})
    switch.hold("api slow")
    with pytest.raises(CommandTimeout):
        conn.api("slow", timeout=0.2)
    assert conn.connected
    # sent while FreeSWITCH still owes the late reply: must not get it
    waiting = gevent.spawn(conn.api, "status")
    switch.wait_for_command("api status")
    switch.release("api slow")
    assert waiting.get(timeout=2) == "UP\n"
    assert conn.api("status") == "UP\n"
    assert any("late reply" in r.getMessage() for r in caplog.records if r.name == LOGGER)


def test_concurrent_commands_each_get_their_own_reply(conn, switch):
    switch.api_replies.update({"echo %d" % i: "%d\n" % i for i in range(50)})
    calls = [gevent.spawn(conn.api, "echo %d" % i) for i in range(50)]
    assert [call.get(timeout=5) for call in calls] == ["%d\n" % i for i in range(50)]


# ------------------------------------------------------------------ events


def test_events_reach_on_event_in_arrival_order_between_replies(conn, switch, recorder):
    switch.api_replies["status"] = "UP\n"
    switch.push(b"".join(dtmf(n) for n in range(100)))
    assert conn.api("status") == "UP\n"
    switch.push(b"".join(dtmf(n) for n in range(100, 300)))
    recorder.wait(lambda: len(recorder.events) == 300)
    assert [int(e["Event-Sequence"]) for e in recorder.events] == list(range(300))


def test_json_events_are_delivered_too(conn, switch, recorder):
    switch.push(protocol.encode_json_event([("Event-Name", names.DTMF), ("DTMF-Digit", "#")]))
    recorder.wait(lambda: recorder.events)
    assert recorder.events[0][names.DTMF_DIGIT] == "#"
    assert recorder.events[0].content_type == names.EVENT_JSON


def test_a_raising_handler_is_logged_and_delivery_goes_on(switch, caplog):
    recorder = Recorder(fail_on={"1", "3"})
    conn = make_connection(switch, recorder)
    conn.connect()
    switch.push(b"".join(dtmf(n) for n in range(5)))
    recorder.wait(lambda: len(recorder.events) == 5)
    conn.close()
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 2
    assert all(r.name == LOGGER and r.exc_info for r in failures)
    assert "DTMF" in failures[0].getMessage() and UUID in failures[0].getMessage()


def test_an_undecodable_event_is_dropped_and_the_next_one_delivered(conn, switch, recorder):
    broken = b"Content-Length: 5\nContent-Type: text/event-json\n\n{nope"
    switch.push(broken + dtmf(7))
    recorder.wait(lambda: recorder.events)
    assert [e["Event-Sequence"] for e in recorder.events] == ["7"]
    assert conn.connected


def test_a_flood_of_events_does_not_starve_other_greenlets(conn, switch, recorder):
    total = 3000
    seen_by_ticker = []

    def ticker():
        while len(recorder.events) < total:
            seen_by_ticker.append(len(recorder.events))
            gevent.sleep(0)

    tick = gevent.spawn(ticker)
    switch.push(b"".join(dtmf(n) for n in range(total)))
    recorder.wait(lambda: len(recorder.events) == total, timeout=15)
    tick.get(timeout=2)
    assert any(0 < n < total for n in seen_by_ticker)


# ------------------------------------------------------------------ endings


def test_a_disconnect_notice_fails_pending_commands_and_is_reported_once(conn, switch, recorder):
    switch.hold("api slow")
    pending = gevent.spawn(conn.api, "slow")
    switch.wait_for_command("api slow")
    switch.push(dtmf(1) + protocol.encode_disconnect_notice("The system is being shut down.\n"))
    recorder.wait(lambda: recorder.lost)
    with pytest.raises(ReplyLost):  # sent, never answered: it may have run
        pending.get(timeout=2)
    switch.drop()
    assert conn.join(timeout=2)
    assert recorder.lost == ["disconnect notice: The system is being shut down."]
    assert [e["Event-Sequence"] for e in recorder.events] == ["1"]
    assert not conn.connected
    with pytest.raises(NotConnected):
        conn.api("status")


def test_eof_fails_pending_commands_and_is_reported_once(conn, switch, recorder):
    switch.hold("api slow")
    pending = gevent.spawn(conn.api, "slow")
    switch.wait_for_command("api slow")
    switch.drop()
    with pytest.raises(ReplyLost):
        pending.get(timeout=2)
    recorder.wait(lambda: recorder.lost)
    assert conn.join(timeout=2)
    assert recorder.lost == ["connection closed by FreeSWITCH"]


def test_a_connection_lost_inside_a_frame_is_reported(conn, switch, recorder):
    switch.push(dtmf(1)[:40])
    switch.drop()
    recorder.wait(lambda: recorder.lost)
    assert recorder.lost[0].startswith("connection broken")


def test_a_lingering_disconnect_notice_keeps_the_connection(conn, switch, recorder):
    switch.api_replies["status"] = "UP\n"
    switch.push(protocol.encode_disconnect_notice(
        "Lingering\n", [("Content-Disposition", "linger")]))
    assert conn.api("status") == "UP\n"
    assert conn.connected and recorder.lost == []


def test_close_says_exit_is_idempotent_and_reports_nothing(switch, recorder):
    conn = make_connection(switch, recorder)
    conn.connect()
    conn.close()
    conn.close()
    assert switch.received[-1] == b"exit\n\n"
    assert not conn.connected
    assert conn.join(timeout=1)
    assert recorder.lost == []
    with pytest.raises(NotConnected):
        conn.api("status")


def test_a_with_block_connects_and_closes_with_exit_even_when_its_body_fails(switch, recorder):
    with pytest.raises(RuntimeError):
        with make_connection(switch, recorder) as conn:
            assert conn.connected
            raise RuntimeError("the body failed")
    assert switch.received[-1] == b"exit\n\n"
    assert not conn.connected and conn.join(timeout=1)
    assert recorder.lost == []


def test_close_from_inside_on_event_works(switch):
    closed = gevent.event.Event()
    conn = None

    def on_event(event):
        conn.close()
        closed.set()

    conn = make_connection(switch, on_event=on_event)
    conn.connect()
    switch.push(dtmf(1))
    assert closed.wait(timeout=2)
    assert conn.join(timeout=2)
    assert not conn.connected


def test_close_without_an_answer_to_exit_still_closes(conn, switch):
    switch.hold("exit")
    with gevent.Timeout(3):
        conn.close()
    assert not conn.connected


def test_a_bug_in_the_reader_drops_the_connection_and_is_reported(conn, switch, recorder, caplog):
    def broken(headers, body):
        raise KeyError("bug")

    conn._handle_frame = broken
    switch.push(dtmf(1))
    recorder.wait(lambda: recorder.lost)
    assert recorder.lost == ["internal error: KeyError('bug')"]
    assert any(r.name == LOGGER and r.exc_info for r in caplog.records if "crashed" in r.getMessage())


def test_close_during_connect_makes_connect_fail(switch):
    switch.hold("auth")
    conn = make_connection(switch)
    attempt = gevent.spawn(conn.connect)
    switch.wait_for_command("auth")
    conn.close()
    with pytest.raises(NotConnected):
        attempt.get(timeout=2)
    assert not conn.connected
