"""Every real FreeSWITCH 1.10 capture in tests/fixtures/ goes through the seam.

First through the parser alone (every frame, values as FreeSWITCH meant them),
then over TCP: ReplaySwitch plays a capture back to a real EslConnection that
sends the capture's own commands.
"""

import re

import gevent
import gevent.event
import pytest

from callflowd.errors import AuthenticationFailed
from callflowd.esl import names, protocol
from callflowd.esl.connection import EslConnection
from tests.doubles.replay_switch import (
    ReplaySwitch, Script, capture_names, load_capture, sent_commands, timeline_frame_lengths,
)

pytestmark = pytest.mark.timeout(30)

CAPTURES = capture_names()
CALLER = "+15551230000"
EVENT_UUID = "11111111-2222-3333-4444-555555555555"  # sent in g_event_uuid_playback_bgapi


def frames(name):
    return list(protocol.iter_frames(load_capture(name)))


def parsed(name):
    return [protocol.parse_frame(headers, body) for headers, body, _ in frames(name)]


def events(name):
    return [e for e in parsed(name) if e.content_type in (names.EVENT_PLAIN, names.EVENT_JSON)]


def first(name, event_name, **headers):
    """The first event of ``name`` called ``event_name`` whose headers match (``_`` for ``-``)."""
    wanted = {key.replace("_", "-"): value for key, value in headers.items()}
    for event in events(name):
        if event.name == event_name and all(event.get(k) == v for k, v in wanted.items()):
            return event
    raise AssertionError("no %s %s in %s" % (event_name, wanted, name))


def caller_execute_complete(name, app):
    return first(name, names.CHANNEL_EXECUTE_COMPLETE, Application=app, Call_Direction="inbound")


# ------------------------------------------------------------------ the parser alone


def test_every_capture_is_in_the_fixtures():
    assert len(CAPTURES) == 16
    assert "load_200_calls.plain.txt.gz" in CAPTURES


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", CAPTURES)
def test_every_frame_of_a_capture_parses(name):
    found = frames(name)
    lengths = timeline_frame_lengths(name)
    if lengths is not None:
        # the recorder's timeline lists each received frame with its length
        assert [len(raw) for _, _, raw in found] == lengths
    if name != "api_replies_during_call.txt":  # the annotator added a newline after each frame
        assert b"".join(raw for _, _, raw in found) == load_capture(name)
    for event in parsed(name):
        assert event.content_type
        if event.content_type in (names.EVENT_PLAIN, names.EVENT_JSON):
            assert event.name and event[names.CORE_UUID]
            assert all(isinstance(value, str) for value in event.headers.values())


def test_captures_without_timeline_have_the_frames_their_readme_describes():
    kinds = [e.content_type for e in parsed("api_replies_during_call.txt")]
    assert kinds == [names.API_RESPONSE] * 5  # one per ##### annotation
    kinds = [e.content_type for e in parsed("misc_bad_auth.txt")]
    assert kinds == [names.AUTH_REQUEST, names.COMMAND_REPLY, names.DISCONNECT_NOTICE]
    load = parsed("load_200_calls.plain.txt.gz")
    assert sum(e.content_type == names.EVENT_PLAIN for e in load) == 5000
    assert sum(e.content_type == names.API_RESPONSE for e in load) == 200


def test_caller_values_decode_as_freeswitch_meant_them():
    for name in ("a_device_answers.plain.txt", "a_device_answers.json.txt"):
        park = first(name, names.CHANNEL_PARK)
        assert park[names.CALLER_CALLER_ID_NUMBER] == CALLER
        assert park[names.CALLER_CALLER_ID_NAME] == "sipp caller"
        assert park[names.CALLER_DESTINATION_NUMBER] == "5559999"
        assert park[names.CALLER_CONTEXT] == "public"
        assert re.fullmatch(r'"sipp caller" <sip:\+15551230000@127\.0\.0\.1:5070>;tag=\w+',
                            park["variable_sip_full_from"])


@pytest.mark.parametrize("name", [n for n in CAPTURES if ".plain" in n or ".json" in n])
def test_freeswitch_ipv6_address_decodes_in_every_event(name):
    assert {e["FreeSWITCH-IPv6"] for e in events(name)} == {"fd00::2"}


def test_a_plain_background_job_carries_its_inner_body():
    job = first("misc_protocol.plain.txt", names.BACKGROUND_JOB)
    assert job[names.JOB_UUID] == "c8f7cf93-9823-4553-9990-cd460639d00e"
    assert job["Job-Command"] == "status"
    assert job.body.startswith("UP 0 years, 0 days, 0 hours, 2 minutes")
    assert job.body.endswith("Current Stack Size/Max 240K/8192K\n")
    assert len(job.body.encode()) == 371
    assert "Content-Length" not in job


def test_a_json_background_job_carries_its_body():
    job = first("g_event_uuid_playback_bgapi.json.txt", names.BACKGROUND_JOB)
    assert job[names.JOB_UUID] == "5ad00c65-25c5-4747-afc0-edc73c77a62c"
    assert job.body == "+OK\n"
    assert "Content-Length" not in job and "_body" not in job


def test_the_event_uuid_sent_with_sendmsg_comes_back_as_application_uuid():
    name = "g_event_uuid_playback_bgapi.json.txt"
    assert b"Event-UUID: %s\n" % EVENT_UUID.encode() in sent_commands(name)[2]
    started = first(name, names.CHANNEL_EXECUTE, Application="playback")
    done = first(name, names.CHANNEL_EXECUTE_COMPLETE, Application="playback")
    assert started[names.APPLICATION_UUID] == done[names.APPLICATION_UUID] == EVENT_UUID
    assert done[names.APPLICATION_DATA] == "tone_stream://%(500,500,440);loops=2"
    assert done[names.APPLICATION_RESPONSE] == "FILE PLAYED"


def test_a_busy_device_shows_in_the_bridge_execute_complete():
    bridge = caller_execute_complete("b_device_busy_voicemail.plain.txt", "bridge")
    assert bridge[names.APPLICATION_RESPONSE] == "_none_"
    assert bridge[names.VAR_ORIGINATE_DISPOSITION] == "USER_BUSY"
    assert bridge[names.VAR_DIALSTATUS] == "BUSY"
    assert bridge[names.VAR_LAST_BRIDGE_PROTO_CAUSE] == "sip:486"


@pytest.mark.parametrize("name, disposition", [
    ("a_device_answers.plain.txt", "SUCCESS"),
    ("a_device_answers.json.txt", "SUCCESS"),
    ("c_device_no_answer_call_timeout_in_braces.plain.txt", "NO_ANSWER"),
    ("c2_device_no_answer_originate_timeout.plain.txt", "NO_ANSWER"),
    ("c3_device_no_answer_call_timeout_chanvar.plain.txt", "NO_ANSWER"),
])
def test_bridge_outcomes_are_in_originate_disposition(name, disposition):
    bridge = caller_execute_complete(name, "bridge")
    assert bridge[names.VAR_ORIGINATE_DISPOSITION] == disposition


def test_collected_digits_come_back_in_the_execute_complete():
    name = "f_dtmf_play_and_get_digits.plain.txt"
    assert [e[names.DTMF_DIGIT] for e in events(name) if e.name == names.DTMF] == list("123#")
    assert caller_execute_complete(name, "play_and_get_digits")["variable_esl_digits"] == "123"


def test_shutdown_ends_with_a_disconnect_notice():
    frames_ = parsed("shutdown_sigterm.plain.txt")
    assert any(e.name == names.SHUTDOWN for e in frames_)
    assert frames_[-1].content_type == names.DISCONNECT_NOTICE
    assert frames_[-1].body == "The system is being shut down.\n"


_RUN_SPECIFIC = re.compile(  # uuids, SIP tags and branches, then any number
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|(?<=tag=)\w+|(?<=branch=)[\w-]+|\d+")


def test_plain_and_json_captures_of_the_same_call_decode_to_the_same_headers():
    plain = events("a_device_answers.plain.txt")
    json_ = events("a_device_answers.json.txt")
    # two runs of one scenario: the same first 41 events, then the legs interleave differently
    aligned = list(zip(plain[:41], json_[:41]))
    assert [p.name for p, _ in aligned] == [j.name for _, j in aligned]
    for p, j in aligned:
        assert p.headers.keys() == j.headers.keys(), p.name
        for key, value in p.headers.items():
            if not key.endswith("_tag"):  # SIP tags, uuids, times and counters differ per run
                assert _RUN_SPECIFIC.sub("#", value) == _RUN_SPECIFIC.sub("#", j[key]), key
    bridge = first("a_device_answers.json.txt", names.CHANNEL_BRIDGE)
    assert bridge["variable_originated_legs"].startswith("ARRAY::")


# ------------------------------------------------------------------ over TCP


class Recorder:
    """on_event/on_disconnect targets a test can wait on."""

    def __init__(self):
        self.events = []
        self.lost = []
        self._changed = gevent.event.Event()

    def on_event(self, event):
        self.events.append(event)
        self._changed.set()

    def on_disconnect(self, reason):
        self.lost.append(reason)
        self._changed.set()

    def wait(self, probe, timeout=10.0):
        with gevent.Timeout(timeout, AssertionError("timed out waiting")):
            while not probe():
                self._changed.clear()
                self._changed.wait()


def hangs_up(name):
    """FreeSWITCH closes after a disconnect notice (shutdown, exit, bad password)."""
    return frames(name)[-1][0][names.CONTENT_TYPE] == names.DISCONNECT_NOTICE


def replay(name, **kwargs):
    script = Script.from_capture(load_capture(name), hang_up=hangs_up(name))
    return ReplaySwitch(script=script, **kwargs)


def connect(switch, recorder, password="ClueCon"):
    host, port = switch.address
    conn = EslConnection(host, port, password, connect_timeout=5, command_timeout=5,
                         on_event=recorder.on_event, on_disconnect=recorder.on_disconnect)
    conn.connect()
    return conn


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", [n for n in CAPTURES if sent_commands(n)])
def test_a_capture_replays_through_a_real_connection(name):
    commands = sent_commands(name)
    expected_events = [e.headers for e in events(name)]
    expected_replies = [e for e in parsed(name)[2:]
                        if e.content_type in (names.COMMAND_REPLY, names.API_RESPONSE)]
    recorder = Recorder()
    with replay(name) as switch:
        conn = connect(switch, recorder)
        replies = [conn.send(block[:-2].decode()) for block in commands[1:]]
        recorder.wait(lambda: len(recorder.events) >= len(expected_events))
        if hangs_up(name):
            recorder.wait(lambda: recorder.lost)
            assert conn.join(timeout=5)
        conn.close()
        assert switch.received[:len(commands)] == commands
    assert [e.headers for e in recorder.events] == expected_events
    assert [(r.headers, r.body) for r in replies] == [(r.headers, r.body) for r in expected_replies]
    assert len(recorder.lost) == (1 if hangs_up(name) else 0)


def test_a_plain_capture_replays_through_the_connection_api_byte_for_byte():
    name = "a_device_answers.plain.txt"
    uuid = "a15aa9fc-ed7f-477e-aa75-2621733b252f"
    recorder = Recorder()
    with replay(name) as switch:
        conn = connect(switch, recorder)
        conn.subscribe(["ALL"])
        conn.execute(uuid, "bridge", "{call_timeout=5}user/1000@127.0.0.1")
        status = conn.api("status")
        channels = conn.api("show channels as json")
        for command in ("show calls as json", "show channels as json", "show calls as json"):
            conn.api(command)
        recorder.wait(lambda: len(recorder.events) == 67)
        assert switch.received == sent_commands(name)
        conn.close()
    assert status.startswith("UP 0 years")
    assert '"cid_num":"+15551230000"' in channels
    park = next(e for e in recorder.events if e.name == names.CHANNEL_PARK)
    assert park.uuid == uuid and park[names.CALLER_CALLER_ID_NUMBER] == CALLER
    bridge = next(e for e in recorder.events if e.name == names.CHANNEL_EXECUTE_COMPLETE
                  and e.get(names.APPLICATION) == "bridge" and e.uuid == uuid)
    assert bridge[names.VAR_ORIGINATE_DISPOSITION] == "SUCCESS"
    assert recorder.lost == []


def test_a_json_capture_replays_through_the_connection_api_byte_for_byte():
    name = "g_event_uuid_playback_bgapi.json.txt"
    uuid = "811fed91-6a3d-4dc2-99eb-654109c215fe"
    recorder = Recorder()
    with replay(name) as switch:
        conn = connect(switch, recorder)
        conn.subscribe("ALL", fmt="json")
        conn.execute(uuid, "playback", "tone_stream://%(500,500,440);loops=2",
                     event_uuid=EVENT_UUID)
        job = conn.bgapi("uuid_kill " + uuid)
        recorder.wait(lambda: len(recorder.events) == 34)
        assert switch.received == sent_commands(name)
        conn.close()
    assert job == "5ad00c65-25c5-4747-afc0-edc73c77a62c"
    done = next(e for e in recorder.events if e.name == names.CHANNEL_EXECUTE_COMPLETE
                and e.get(names.APPLICATION_UUID) == EVENT_UUID)
    assert done[names.APPLICATION_RESPONSE] == "FILE PLAYED"
    background = next(e for e in recorder.events if e.name == names.BACKGROUND_JOB)
    assert background[names.JOB_UUID] == job and background.body == "+OK\n"


def test_a_switch_shutting_down_is_reported_once_after_its_last_events():
    recorder = Recorder()
    with replay("shutdown_sigterm.plain.txt") as switch:
        conn = connect(switch, recorder)
        conn.subscribe(["ALL"])
        recorder.wait(lambda: recorder.lost)
        assert conn.join(timeout=5)
        assert not conn.connected
    assert recorder.lost == ["disconnect notice: The system is being shut down."]
    assert recorder.events[-1].name == "MODULE_UNLOAD"
    assert sum(e.name == names.SHUTDOWN for e in recorder.events) == 1


def test_the_recorded_wrong_password_exchange_raises_authentication_failed():
    recorder = Recorder()
    with replay("misc_bad_auth.txt") as switch:
        host, port = switch.address
        conn = EslConnection(host, port, "WrongPassword", connect_timeout=5,
                             on_disconnect=recorder.on_disconnect)
        with pytest.raises(AuthenticationFailed, match="-ERR invalid"):
            conn.connect()
        assert switch.received == [b"auth WrongPassword\n\n"]
    assert not conn.connected
    assert recorder.lost == []
