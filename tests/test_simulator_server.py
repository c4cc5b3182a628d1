"""The simulator as an event socket: auth, subscriptions, api and bgapi, exit, shutdown, two
clients at once; held to the protocol captures (misc_protocol, misc_bad_auth) byte for byte
where they exist. Tests ``simulator/server.py``, ``connection.py`` and ``api.py``.
"""

import json

import pytest

from callflowd.esl import protocol
from callflowd.simulator import FreeswitchSimulator, Scenario
from tests.doubles.esl_client import (  # noqa: F401 (sim and client are fixtures)
    CAPTURES, UUID_RE, WAIT, RawClient, captured_events, client, header_names, is_event, sendmsg, sim)

pytestmark = pytest.mark.timeout(30)


# -- the protocol -----------------------------------------------------------------------------

def test_a_wrong_password_gets_exactly_the_bytes_of_misc_bad_auth(sim):
    raw = RawClient(sim)
    raw.send("auth WrongPassword")
    assert raw.closed.wait(WAIT)
    assert bytes(raw.raw) == (CAPTURES / "misc_bad_auth.txt").read_bytes()
    assert sim.received == ["auth WrongPassword"]


def test_the_commands_of_misc_protocol_get_the_replies_of_misc_protocol(sim):
    raw = RawClient(sim)
    sent = (CAPTURES / "misc_protocol.plain.sent.txt").read_text().split("\n\n")
    commands = [c for c in sent if c.strip()]
    for command in commands:
        raw.send(command)
    assert raw.closed.wait(WAIT)
    data = (CAPTURES / "misc_protocol.plain.txt").read_bytes()
    expected = [(h, b) for h, b, _ in protocol.iter_frames(data) if not h.get("Content-Type", "").startswith("text/event")]
    got = [(h, b) for h, b, _ in raw.frames if not h.get("Content-Type", "").startswith("text/event")]

    def masked(frames):
        out = []
        for headers, body in frames:
            text = body.decode() if body else ""
            if text.startswith("UP "):
                text = "<status>"
            out.append((UUID_RE.sub("<uuid>", json.dumps(headers)), UUID_RE.sub("<uuid>", text)))
        return out

    assert masked(got) == masked(expected)
    job = [p for p in raw.events() if dict(p)["Event-Name"] == "BACKGROUND_JOB"]
    captured_job = [p for p in captured_events("misc_protocol.plain.txt") if dict(p)["Event-Name"] == "BACKGROUND_JOB"]
    assert [header_names(p) for p in job] == [header_names(p) for p in captured_job]
    assert sim.received == commands
    raw.close()


def test_api_commands_answer_from_the_calls_it_has(sim, client):
    call = sim.place_call(caller_id_number="+15550002222")
    client.wait_for(is_event("CHANNEL_PARK"))
    client.send("api show calls as json")
    client.send("api show channels as json")
    client.send("api uuid_kill 00000000-0000-0000-0000-000000000000")
    client.send("api uuid_kill %s" % call.uuid)
    replies = client.wait_replies(7)
    calls = json.loads(replies[3][1])
    assert calls["row_count"] == 1 and calls["rows"][0]["uuid"] == call.uuid
    assert calls["rows"][0]["cid_num"] == "+15550002222"
    channels = json.loads(replies[4][1])
    assert channels["rows"][0]["application"] == "park"
    assert replies[5][1] == b"-ERR No such channel!\n"
    assert replies[6][1] == b"+OK\n"
    call.wait_ended(WAIT)
    client.send("api show calls as json")
    assert client.wait_replies(8)[7][1] == b'{"row_count": 0}\n'


def test_bgapi_replies_with_a_job_uuid_then_sends_the_background_job(sim, client):
    client.send("bgapi status")
    reply = client.wait_for(lambda h, b: h.get("Reply-Text", "").startswith("+OK Job-UUID: "))
    job_uuid = client.frames[reply][0]["Job-UUID"]
    assert client.frames[reply][0]["Reply-Text"] == "+OK Job-UUID: " + job_uuid
    index = client.wait_for(is_event("BACKGROUND_JOB"), start=reply)
    pairs, body = protocol.plain_event_pairs(client.frames[index][1])
    assert dict(pairs)["Job-UUID"] == job_uuid
    assert dict(pairs)["Job-Command"] == "status"
    assert body.startswith("UP 0 years, ") and "is ready" in body


def test_exit_says_bye_then_the_goodbye_notice_then_closes(sim, client):
    client.send("exit")
    assert client.closed.wait(WAIT)
    last = client.replies()[-2:]
    assert last[0][0]["Reply-Text"] == "+OK bye"
    assert last[1][0]["Content-Type"] == "text/disconnect-notice"
    assert last[1][1] == protocol.GOODBYE.encode()


def test_disconnect_clients_is_a_switch_shutdown(sim, client):
    sim.disconnect_clients()
    assert client.closed.wait(WAIT)
    assert [dict(p)["Event-Name"] for p in client.events()][-1] == "SHUTDOWN"
    headers, body, raw = client.frames[-1]
    assert raw == b"Content-Type: text/disconnect-notice\nContent-Length: 31\n\nThe system is being shut down.\n"


def test_wait_for_clients_times_out_when_nobody_subscribes(sim):
    raw = RawClient(sim)
    raw.send("auth ClueCon")
    raw.wait_replies(2)
    with pytest.raises(TimeoutError):
        sim.wait_for_clients(1, timeout=0.2)
    raw.send("event plain CHANNEL_PARK")
    sim.wait_for_clients(1, timeout=WAIT)
    raw.close()


def test_received_records_every_command_without_its_blank_line(sim, client):
    call = sim.place_call()
    client.send(sendmsg(call.uuid, "answer"))
    client.wait_for(is_event("CHANNEL_EXECUTE_COMPLETE", "answer"))
    assert sim.received == ["auth ClueCon", "event plain ALL",
                            "sendmsg %s\ncall-command: execute\nexecute-app-name: answer" % call.uuid]


# -- concurrency and lifecycle ----------------------------------------------------------------

def test_two_clients_get_the_same_whole_frames_in_the_same_order_from_concurrent_calls(sim):
    first, second = RawClient(sim), RawClient(sim)
    first.login()
    second.login()
    sim.wait_for_clients(2)
    calls = [sim.place_call(scenario=Scenario(device=device, ring_seconds=0.5, talk_seconds=1.0,
                                              voicemail_seconds=1.0))
             for device in ("answer", "busy", "no_answer", "unregistered", "answer")]
    for call in calls:
        first.send(sendmsg(call.uuid, "set", "continue_on_fail=true"))
        first.send(sendmsg(call.uuid, "bridge", "{originate_timeout=2}user/1000@127.0.0.1"))
        second.send("sendmsg %s\ncall-command: execute\nexecute-app-name: voicemail\nexecute-app-arg: default x 1"
                    % call.uuid)
    for call in calls:
        call.wait_ended(WAIT)
    for raw in (first, second):
        for call in calls:
            raw.wait_for(is_event("CHANNEL_STATE", uuid=call.uuid),
                         start=raw.wait_for(is_event("CHANNEL_DESTROY", uuid=call.uuid)))
    ours = [raw for h, b, raw in first.frames if h.get("Content-Type") == "text/event-plain"]
    theirs = [raw for h, b, raw in second.frames if h.get("Content-Type") == "text/event-plain"]
    assert ours == theirs
    sequences = [int(dict(p)["Event-Sequence"]) for p in first.events()]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    for call in calls:
        destroys = [p for p in first.events() if dict(p).get("Unique-ID") == call.uuid
                    and dict(p)["Event-Name"] == "CHANNEL_DESTROY"]
        assert len(destroys) == 1
    first.close()
    second.close()


def test_stop_disconnects_clients_and_leaves_no_greenlet_behind():
    simulator = FreeswitchSimulator(time_scale=0.01)
    simulator.start()
    raw = RawClient(simulator)
    raw.login()
    simulator.wait_for_clients(1)
    simulator.place_call(scenario=Scenario(device="no_answer"))
    simulator.stop()
    assert raw.closed.wait(WAIT)
    assert raw.frames[-1][2].endswith(b"The system is being shut down.\n")
    assert len(simulator._group) == 0
    raw.close()
