"""The built-in FreeSWITCH simulator's calls, held against the real captures in tests/fixtures/.

A raw TCP client (``tests/doubles/esl_client.py``: the team's frame reader, no greenswitch)
drives the simulator with the same commands the capture's client sent, and the frames that come
back are compared with the capture's: event names in order per leg, header names in order,
percent-encoding. Waits are on frames arriving, never on sleeps. The captures go by what they
show (``callflowd/simulator/captures.py`` maps them to their files).

Events the simulator deliberately never sends, so they are taken out of the captures before
comparing: PRIVATE_COMMAND (FreeSWITCH sends it for some queued sendmsg commands and not others),
RECORD_START/RECORD_STOP, CUSTOM filestring::*, the voicemail's codec switches while recording
and all but its first PLAYBACK_START/STOP pair, RE_SCHEDULE. HEARTBEAT and other system events
have no Unique-ID and are not part of a leg's sequence.
"""

import gzip
import time
from urllib.parse import unquote

import pytest

from callflowd.esl import protocol
from callflowd.simulator import Scenario, templates
from tests.doubles.esl_client import (  # noqa: F401 (sim and client are fixtures)
    CAPTURES, UUID_RE, WAIT, RawClient, captured_events, client, event_names, header_names, is_event,
    json_pairs, leg_events, sendmsg, sim, without_voicemail_noise)

pytestmark = pytest.mark.timeout(30)


def run_busy_then_voicemail(sim, client, scenario=None):
    """The busy-then-voicemail capture's commands: set continue_on_fail, bridge (busy), answer, voicemail, hangup."""
    call = sim.place_call(destination="5559999", scenario=scenario or Scenario(
        device="busy", ring_seconds=0, voicemail_seconds=1000))
    client.send(sendmsg(call.uuid, "set", "continue_on_fail=true"))
    client.send(sendmsg(call.uuid, "bridge", "{call_timeout=5}user/1000@127.0.0.1"))
    client.send(sendmsg(call.uuid, "answer"))
    client.send(sendmsg(call.uuid, "voicemail", "default 127.0.0.1 1000"))
    client.wait_for(is_event("CHANNEL_EXECUTE", "voicemail"))
    client.send("sendmsg %s\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING" % call.uuid)
    call.wait_ended(WAIT)
    client.wait_for(is_event("CHANNEL_STATE", uuid=call.uuid), start=client.wait_for(
        is_event("CHANNEL_DESTROY", uuid=call.uuid)))
    return call


# -- fidelity to the captures ------------------------------------------------------------------

def test_the_encoder_reproduces_every_captured_event_byte_for_byte():
    count = 0
    for path in sorted(CAPTURES.glob("*.txt*")):
        if ".sent." in path.name or "timeline" in path.name or "api_replies" in path.name:
            continue
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        for headers, body, raw in protocol.iter_frames(data):
            if headers.get("Content-Type") == "text/event-plain":
                pairs, inner = protocol.plain_event_pairs(body)
                assert protocol.encode_plain_event(pairs, inner) == raw, path.name
                count += 1
            elif headers.get("Content-Type") == "text/event-json":
                pairs = json_pairs(body)
                inner = dict(pairs).get("_body")
                pairs = [(k, v) for k, v in pairs
                         if k != "_body" and not (inner is not None and k == "Content-Length")]
                assert protocol.encode_json_event(pairs, inner) == raw, path.name
                count += 1
    assert count > 5000


def test_every_template_frame_is_cut_byte_for_byte_from_its_capture():
    for path in templates.TEMPLATE_DIR.glob("*.txt"):
        data = path.read_bytes()
        for chunk in data.split(b"##### ")[1:]:
            marker, _, frame = chunk.partition(b"\n")
            capture = marker.rsplit(b" of ", 1)[1].rstrip(b")").decode()
            assert frame in (CAPTURES / capture).read_bytes(), marker


def test_a_busy_call_gives_the_caller_the_events_of_the_busy_then_voicemail_capture_in_order(sim, client):
    call = run_busy_then_voicemail(sim, client)
    simulated = leg_events(client.events(), "caller")
    captured = without_voicemail_noise(leg_events(captured_events("b_device_busy_voicemail.plain.txt"), "caller"))
    assert event_names(simulated) == event_names(captured)
    assert {dict(p)["Unique-ID"] for p in simulated} == {call.uuid}


def test_a_busy_call_gives_the_phone_leg_the_events_of_the_busy_then_voicemail_capture_in_order(sim, client):
    run_busy_then_voicemail(sim, client)
    simulated = leg_events(client.events(), "bleg")
    captured = leg_events(captured_events("b_device_busy_voicemail.plain.txt"), "bleg")
    assert event_names(simulated) == event_names(captured)


def test_channel_park_and_the_bridge_execute_complete_have_the_captured_header_names_in_order(sim, client):
    run_busy_then_voicemail(sim, client)
    simulated = leg_events(client.events(), "caller")
    captured = without_voicemail_noise(leg_events(captured_events("b_device_busy_voicemail.plain.txt"), "caller"))

    def pick(events, name, application=None):
        return next(p for p in events if dict(p)["Event-Name"] == name
                    and (application is None or dict(p).get("Application") == application))

    assert header_names(pick(simulated, "CHANNEL_PARK")) == header_names(pick(captured, "CHANNEL_PARK"))
    sim_complete = pick(simulated, "CHANNEL_EXECUTE_COMPLETE", "bridge")
    cap_complete = pick(captured, "CHANNEL_EXECUTE_COMPLETE", "bridge")
    assert header_names(sim_complete) == header_names(cap_complete)
    result = dict(sim_complete)
    assert result["variable_originate_disposition"] == "USER_BUSY"
    assert result["variable_DIALSTATUS"] == "BUSY"
    assert result["variable_last_bridge_proto_specific_hangup_cause"] == "sip:486"
    assert result["Application-Response"] == "_none_"


def test_every_caller_event_of_the_busy_call_has_the_captured_header_names_in_order(sim, client):
    run_busy_then_voicemail(sim, client)
    simulated = leg_events(client.events(), "caller")
    captured = without_voicemail_noise(leg_events(captured_events("b_device_busy_voicemail.plain.txt"), "caller"))
    for ours, theirs in zip(simulated, captured):
        assert header_names(ours) == header_names(theirs), dict(ours)["Event-Name"]


def test_values_shared_with_the_capture_are_percent_encoded_identically(sim, client):
    run_busy_then_voicemail(sim, client)

    def encoded_lines(body):
        head = body.partition(b"\n\n")[0].decode()
        for line in head.split("\n"):
            name, _, encoded = line.partition(": ")
            yield name, encoded, unquote(encoded)

    data = (CAPTURES / "b_device_busy_voicemail.plain.txt").read_bytes()
    captured = {}
    for headers, body, _ in protocol.iter_frames(data):
        if headers.get("Content-Type") == "text/event-plain":
            for name, encoded, decoded in encoded_lines(body):
                captured.setdefault((name, decoded), encoded)
    ours = client.plain_events_raw()
    compared = 0
    for body in ours:
        for name, encoded, decoded in encoded_lines(body):
            if (name, decoded) in captured:
                assert encoded == captured[(name, decoded)], name
                compared += 1
    assert compared > 1000
    park = next(b for b in ours if b"Event-Name: CHANNEL_PARK\n" in b)
    assert b"Caller-Caller-ID-Number: %2B15551230000\n" in park
    assert b"Channel-Name: sofia/external/%2B15551230000%40127.0.0.1%3A5070\n" in park
    assert b"variable_sip_full_to: %3Csip%3A5559999%40127.0.0.1%3A5080%3E\n" in park


def test_events_put_content_length_before_content_type_and_replies_the_other_way(sim, client):
    run_busy_then_voicemail(sim, client)
    client.send("api status")
    index = client.wait_for(lambda h, b: h.get("Content-Type") == "api/response")
    for headers, _, raw in client.frames:
        if headers.get("Content-Type", "").startswith("text/event-"):
            assert raw.startswith(b"Content-Length: ")
    assert client.frames[index][2].startswith(b"Content-Type: api/response\nContent-Length: ")


def test_without_continue_on_fail_a_busy_phone_makes_the_bridge_hang_up_the_caller_as_captured(sim, client):
    call = sim.place_call(scenario=Scenario(device="busy", ring_seconds=0))
    client.send(sendmsg(call.uuid, "bridge", "{call_timeout=5}user/1000@127.0.0.1"))
    call.wait_ended(WAIT)
    client.wait_for(is_event("CHANNEL_DESTROY", uuid=call.uuid))
    simulated = leg_events(client.events(), "caller")
    captured = leg_events(captured_events("b2_device_busy_without_continue_on_fail.plain.txt"), "caller")
    assert event_names(simulated) == event_names(captured)
    for ours, theirs in zip(simulated, captured):
        assert header_names(ours) == header_names(theirs), dict(ours)["Event-Name"]
    assert call.hangup_cause == "USER_BUSY"


def test_an_answered_call_is_bridged_and_torn_down_as_captured(sim, client):
    call = sim.place_call(scenario=Scenario(device="answer", ring_seconds=1.5, talk_seconds=4.0))
    client.send(sendmsg(call.uuid, "bridge", "{call_timeout=5}user/1000@127.0.0.1"))
    call.wait_ended(WAIT)
    client.wait_for(is_event("CHANNEL_DESTROY", uuid=call.uuid))
    events = client.events()
    for role in ("caller", "bleg"):
        simulated = leg_events(events, role)
        captured = leg_events(captured_events("a_device_answers.plain.txt"), role)
        assert event_names(simulated) == event_names(captured), role
        for ours, theirs in zip(simulated, captured):
            assert header_names(ours) == header_names(theirs), (role, dict(ours)["Event-Name"])
    complete = dict(next(p for p in leg_events(events, "caller")
                         if dict(p).get("Application") == "bridge" and dict(p)["Event-Name"].endswith("COMPLETE")))
    assert complete["variable_originate_disposition"] == "SUCCESS"
    assert complete["variable_DIALSTATUS"] == "SUCCESS"
    assert call.hangup_cause == "NORMAL_CLEARING"


# -- the simulated behaviour ------------------------------------------------------------------

def test_place_call_sends_the_inbound_leg_up_to_channel_park_in_context_public(sim, client):
    call = sim.place_call(destination="+10005559999", caller_id_number="+15550001111", caller_id_name="Ann Example")
    client.wait_for(is_event("CHANNEL_PARK", uuid=call.uuid))
    park = dict(leg_events(client.events(), "caller")[-1])
    assert park["Event-Name"] == "CHANNEL_PARK"
    assert park["Caller-Context"] == "public"
    assert park["Caller-Destination-Number"] == "+10005559999"
    assert park["Caller-Caller-ID-Number"] == "+15550001111"
    assert park["Caller-Caller-ID-Name"] == "Ann Example"
    assert park["variable_sip_from_user_stripped"] == "15550001111"
    assert park["Unique-ID"] == call.uuid
    assert not call.ended


def test_event_uuid_comes_back_as_application_uuid(sim, client):
    call = sim.place_call()
    client.send(sendmsg(call.uuid, "set", "foo=bar", event_uuid="11111111-2222-3333-4444-555555555555"))
    client.send(sendmsg(call.uuid, "set", "baz=qux"))
    done = client.wait_for(is_event("CHANNEL_EXECUTE_COMPLETE", "set", call.uuid))
    client.wait_for(is_event("CHANNEL_EXECUTE_COMPLETE", "set", call.uuid), start=done + 1)
    executes = [dict(p) for p in client.events() if dict(p).get("Application") == "set"
                and dict(p)["Event-Name"].startswith("CHANNEL_EXECUTE")][-4:]
    assert [e["Application-UUID"] for e in executes[:2]] == ["11111111-2222-3333-4444-555555555555"] * 2
    assert executes[2]["Application-UUID"] == executes[3]["Application-UUID"]
    assert UUID_RE.fullmatch(executes[2]["Application-UUID"])
    assert executes[1]["variable_foo"] == "bar"
    assert call.variables["baz"] == "qux"
    assert call.applications == [("set", "foo=bar"), ("set", "baz=qux")]


def test_sendmsg_is_answered_ok_before_the_application_runs(sim, client):
    call = sim.place_call()
    start = len(client.frames)
    client.send(sendmsg(call.uuid, "answer"))
    reply = client.wait_for(lambda h, b: h.get("Content-Type") == "command/reply", start=start)
    execute = client.wait_for(is_event("CHANNEL_EXECUTE", "answer"))
    assert client.frames[reply][0]["Reply-Text"] == "+OK"
    assert reply < execute


def test_a_json_subscription_gets_json_events_with_the_plain_header_order(sim):
    plain, js = RawClient(sim), RawClient(sim)
    plain.login("plain ALL")
    js.login("json ALL")
    sim.wait_for_clients(2)
    call = sim.place_call()
    for raw in (plain, js):
        raw.wait_for(lambda h, b: h.get("Content-Type") in ("text/event-plain", "text/event-json")
                     and b"CHANNEL_PARK" in b)
    assert js.replies()[2][0]["Reply-Text"] == "+OK event listener enabled json"
    kinds = {h.get("Content-Type") for h, b, _ in js.frames if h.get("Content-Type", "").startswith("text/event")}
    assert kinds == {"text/event-json"}
    assert all(not raw.endswith(b"\n") for h, b, raw in js.frames if h.get("Content-Type") == "text/event-json")
    ours = [p for p in js.events() if "Unique-ID" in dict(p)]
    theirs = [p for p in plain.events() if "Unique-ID" in dict(p)]
    assert [header_names(p) for p in ours] == [header_names(p) for p in theirs]
    assert [dict(p)["Unique-ID"] for p in ours] == [call.uuid] * len(ours)
    plain.close()
    js.close()


def test_the_last_format_named_switches_the_whole_connection(sim):
    raw = RawClient(sim)
    raw.login("plain CHANNEL_PARK")
    raw.send("event json CHANNEL_CREATE")
    raw.wait_replies(4)
    sim.place_call()
    raw.wait_for(lambda h, b: b is not None and b"CHANNEL_PARK" in b)
    kinds = [h["Content-Type"] for h, b, _ in raw.frames if h.get("Content-Type", "").startswith("text/event")]
    assert kinds == ["text/event-json", "text/event-json"]
    assert [dict(p)["Event-Name"] for p in raw.events()] == ["CHANNEL_CREATE", "CHANNEL_PARK"]
    raw.close()


def test_only_subscribed_events_are_sent_and_noevents_stops_them(sim):
    raw = RawClient(sim)
    raw.login("plain CHANNEL_PARK CHANNEL_HANGUP_COMPLETE")
    sim.wait_for_clients(1)
    call = sim.place_call()
    raw.wait_for(is_event("CHANNEL_PARK"))
    raw.send("noevents")
    raw.wait_replies(4)
    raw.send("sendmsg %s\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING" % call.uuid)
    call.wait_ended(WAIT)
    raw.send("api status")
    raw.wait_for(lambda h, b: h.get("Content-Type") == "api/response")
    assert [dict(p)["Event-Name"] for p in raw.events()] == ["CHANNEL_PARK"]
    assert raw.replies()[3][0]["Reply-Text"] == "+OK no longer listening for events"
    raw.close()


def test_no_answer_ends_with_no_answer_at_originate_timeout_and_the_caller_stays_up(sim, client):
    call = sim.place_call(scenario=Scenario(device="no_answer"))
    client.send(sendmsg(call.uuid, "bridge", "{originate_timeout=5}user/1000@127.0.0.1"))
    start = client.wait_for(is_event("CHANNEL_EXECUTE", "bridge"))
    began = time.monotonic()
    done = client.wait_for(is_event("CHANNEL_EXECUTE_COMPLETE", "bridge"), start=start)
    elapsed = time.monotonic() - began
    result = dict(protocol.plain_event_pairs(client.frames[done][1])[0])
    assert result["variable_originate_disposition"] == "NO_ANSWER"
    assert result["variable_DIALSTATUS"] == "NOANSWER"
    assert result["variable_originate_failed_cause"] == "NO_ANSWER"
    assert 0.04 <= elapsed < 0.5  # 5 simulated seconds at time_scale 0.01
    assert not call.ended
    simulated = leg_events(client.events(), "caller")
    captured = leg_events(captured_events("c2_device_no_answer_originate_timeout.plain.txt"), "caller")
    assert event_names(simulated) == event_names(captured)[:len(simulated)]


def test_call_timeout_in_the_dial_string_braces_does_not_limit_ringing(sim, client):
    call = sim.place_call(scenario=Scenario(device="no_answer"))
    client.send(sendmsg(call.uuid, "bridge", "{call_timeout=5}user/1000@127.0.0.1"))
    start = client.wait_for(is_event("CHANNEL_EXECUTE", "bridge"))
    began = time.monotonic()
    client.wait_for(is_event("CHANNEL_EXECUTE_COMPLETE", "bridge"), start=start)
    # the default 60 simulated seconds, as c_device_no_answer_call_timeout_in_braces shows
    assert time.monotonic() - began >= 0.55


def test_call_timeout_set_on_the_caller_limits_ringing(sim, client):
    call = sim.place_call(scenario=Scenario(device="no_answer"))
    client.send(sendmsg(call.uuid, "set", "call_timeout=5"))
    client.send(sendmsg(call.uuid, "bridge", "user/1000@127.0.0.1"))
    start = client.wait_for(is_event("CHANNEL_EXECUTE", "bridge"))
    began = time.monotonic()
    client.wait_for(is_event("CHANNEL_EXECUTE_COMPLETE", "bridge"), start=start)
    assert time.monotonic() - began < 0.5  # as c3_device_no_answer_call_timeout_chanvar


def test_bridging_an_answered_caller_sends_no_second_answer(sim, client):
    call = sim.place_call(scenario=Scenario(device="answer", ring_seconds=0.5, talk_seconds=0.5))
    client.send(sendmsg(call.uuid, "answer"))
    client.send(sendmsg(call.uuid, "bridge", "user/1000@127.0.0.1"))
    call.wait_ended(WAIT)
    client.wait_for(is_event("CHANNEL_DESTROY", uuid=call.uuid))
    sequence = event_names(leg_events(client.events(), "caller"))
    assert sequence.count("CHANNEL_ANSWER ") == 1
    assert sequence.count("CHANNEL_PROGRESS ") == 0
    assert sequence.index("CHANNEL_BRIDGE ") < sequence.index("CHANNEL_HANGUP ") < sequence.index(
        "CHANNEL_UNBRIDGE ") < sequence.index("CHANNEL_EXECUTE_COMPLETE bridge")


def test_playback_answers_file_played_and_pre_answers_first_as_captured(sim, client):
    call = sim.place_call()
    client.send(sendmsg(call.uuid, "playback", "tone_stream://%(500,500,440);loops=2",
                        event_uuid="11111111-2222-3333-4444-555555555555"))
    done = client.wait_for(is_event("CHANNEL_EXECUTE_COMPLETE", "playback"))
    result = dict(protocol.plain_event_pairs(client.frames[done][1])[0])
    assert result["Application-Response"] == "FILE PLAYED"
    assert result["Application-Data"] == "tone_stream://%(500,500,440);loops=2"
    assert result["Application-UUID"] == "11111111-2222-3333-4444-555555555555"
    sequence = event_names(leg_events(client.events(), "caller"))
    tail = sequence[sequence.index("CHANNEL_PARK "):]
    assert tail == ["CHANNEL_PARK ", "CODEC ", "CODEC ", "CHANNEL_PROGRESS_MEDIA ", "CHANNEL_CALLSTATE ",
                    "CHANNEL_EXECUTE playback", "PLAYBACK_START ", "PLAYBACK_STOP ",
                    "CHANNEL_EXECUTE_COMPLETE playback"]
    raw = next(b for b in client.plain_events_raw() if b"Event-Name: CHANNEL_EXECUTE_COMPLETE\n" in b
               and b"Application: playback\n" in b)
    assert b"Application-Data: tone_stream%3A//%25(500,500,440)%3Bloops%3D2\n" in raw


def test_an_unregistered_phone_fails_at_once_without_a_phone_leg(sim, client):
    call = sim.place_call(scenario=Scenario(device="unregistered"))
    client.send(sendmsg(call.uuid, "set", "continue_on_fail=true"))
    client.send(sendmsg(call.uuid, "bridge", "user/1000@127.0.0.1"))
    done = client.wait_for(is_event("CHANNEL_EXECUTE_COMPLETE", "bridge"))
    result = dict(protocol.plain_event_pairs(client.frames[done][1])[0])
    assert result["variable_originate_disposition"] == "USER_NOT_REGISTERED"
    assert result["variable_DIALSTATUS"] == "USER_NOT_REGISTERED"
    assert leg_events(client.events(), "bleg") == []
    assert not call.ended


def test_a_ringing_phone_is_cancelled_when_the_caller_hangs_up(sim, client):
    call = sim.place_call(scenario=Scenario(device="no_answer", caller_hangup_after=2.0))
    client.send(sendmsg(call.uuid, "bridge", "user/1000@127.0.0.1"))
    call.wait_ended(WAIT)
    client.wait_for(is_event("CHANNEL_DESTROY", uuid=call.uuid))
    caller = [dict(p) for p in leg_events(client.events(), "caller")]
    sequence = event_names(leg_events(client.events(), "caller"))
    assert sequence.index("CHANNEL_HANGUP ") < sequence.index("CHANNEL_EXECUTE_COMPLETE bridge")
    complete = next(e for e in caller if e.get("Application") == "bridge" and e["Event-Name"].endswith("COMPLETE"))
    assert complete["variable_originate_disposition"] == "ORIGINATOR_CANCEL"
    assert complete["variable_DIALSTATUS"] == "CANCEL"
    phone = [dict(p) for p in leg_events(client.events(), "bleg")]
    assert any(e.get("Hangup-Cause") == "ORIGINATOR_CANCEL" for e in phone)
    assert call.hangup_cause == "ORIGINATOR_CANCEL"


def test_voicemail_runs_until_the_caller_hangs_up_and_then_completes(sim, client):
    call = sim.place_call(scenario=Scenario(device="busy", ring_seconds=0, voicemail_seconds=3))
    client.send(sendmsg(call.uuid, "answer"))
    client.send(sendmsg(call.uuid, "voicemail", "default example.com 1000"))
    call.wait_ended(WAIT)
    client.wait_for(is_event("CHANNEL_DESTROY", uuid=call.uuid))
    sequence = event_names(leg_events(client.events(), "caller"))
    assert sequence.index("CHANNEL_HANGUP ") < sequence.index("CHANNEL_EXECUTE_COMPLETE voicemail")
    final = next(dict(p) for p in leg_events(client.events(), "caller")
                 if dict(p)["Event-Name"] == "CHANNEL_HANGUP_COMPLETE")
    assert final["variable_sip_hangup_disposition"] == "recv_bye"
    assert final["variable_last_app"] == "voicemail"
    assert call.hangup_cause == "NORMAL_CLEARING"


def test_voicemail_on_an_unanswered_call_sends_early_media_not_an_answer(sim, client):
    call = sim.place_call()
    client.send(sendmsg(call.uuid, "voicemail", "default example.com 1000"))
    client.wait_for(is_event("PLAYBACK_START", uuid=call.uuid))
    sequence = event_names(leg_events(client.events(), "caller"))
    assert "CHANNEL_PROGRESS_MEDIA " in sequence
    assert "CHANNEL_ANSWER " not in sequence
    assert sequence.index("CHANNEL_PROGRESS_MEDIA ") < sequence.index("CHANNEL_EXECUTE voicemail")


def test_an_unknown_application_hangs_the_caller_up_without_running(sim, client):
    call = sim.place_call()
    client.send(sendmsg(call.uuid, "no_such_app", "x"))
    call.wait_ended(WAIT)
    assert call.hangup_cause == "DESTINATION_OUT_OF_ORDER"
    assert "CHANNEL_EXECUTE no_such_app" not in event_names(leg_events(client.events(), "caller"))


def test_hangup_during_an_application_completes_it_then_unparks_and_ends_as_captured(sim, client):
    call = sim.place_call()
    client.send(sendmsg(call.uuid, "park"))
    client.wait_for(is_event("CHANNEL_EXECUTE", "park", call.uuid), start=0)
    client.send("sendmsg %s\ncall-command: hangup\nhangup-cause: USER_BUSY" % call.uuid)
    call.wait_ended(WAIT)
    client.wait_for(is_event("CHANNEL_DESTROY", uuid=call.uuid))
    sequence = event_names(leg_events(client.events(), "caller"))
    tail = sequence[sequence.index("CHANNEL_HANGUP "):]
    assert tail == ["CHANNEL_HANGUP ", "CHANNEL_EXECUTE_COMPLETE park", "CHANNEL_UNPARK ",
                    "CHANNEL_EXECUTE_COMPLETE park", "CHANNEL_STATE ", "CHANNEL_CALLSTATE ",
                    "CHANNEL_STATE ", "CHANNEL_HANGUP_COMPLETE ", "CHANNEL_DESTROY ", "CHANNEL_STATE "]
    assert call.hangup_cause == "USER_BUSY"


def test_scenario_rejects_an_unknown_device():
    with pytest.raises(ValueError, match="device"):
        Scenario(device="fax")
