"""The simulator's play_and_get_digits, respond and multi-endpoint bridges, against the
digits-entered capture (f_dtmf_play_and_get_digits) and FreeSWITCH's documented behaviour,
through a raw event-socket client."""

import pytest

from callflowd.esl import protocol
from callflowd.simulator import Scenario
from tests.doubles.esl_client import captured_events, client, is_event, sendmsg, sim  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(20)

DIGITS_CAPTURE = "f_dtmf_play_and_get_digits.plain.txt"
# the digits-entered capture's arguments
PAGD = "1 4 1 8000 # silence_stream://500 silence_stream://250 esl_digits \\d+ 3000"


def event_at(client, index):
    return protocol.plain_event_pairs(client.frames[index][1])[0]


def test_keys_pressed_come_as_dtmf_events_laid_out_like_the_digits_capture(sim, client):
    call = sim.place_call(destination="5559999", scenario=Scenario(digits=["123#"]))
    client.send(sendmsg(call.uuid, "answer"))
    client.send(sendmsg(call.uuid, "play_and_get_digits", PAGD))
    done = client.wait_for(is_event("CHANNEL_EXECUTE_COMPLETE", "play_and_get_digits"))
    dtmf = [dict(pairs) for pairs in client.events() if dict(pairs)["Event-Name"] == "DTMF"]
    assert [event["DTMF-Digit"] for event in dtmf] == ["1", "2", "3", "#"]
    captured = [pairs for pairs in captured_events(DIGITS_CAPTURE) if dict(pairs)["Event-Name"] == "DTMF"][0]
    ours = [pairs for pairs in client.events() if dict(pairs)["Event-Name"] == "DTMF"][0]
    assert [name for name, _ in ours] == [name for name, _ in captured]
    assert dict(ours)["Event-Calling-Function"] == "switch_channel_dequeue_dtmf"
    result = dict(event_at(client, done))
    assert result["variable_esl_digits"] == "123"
    assert result["variable_read_result"] == "success"
    assert result["Application-Response"] == "_none_"


def test_no_key_pressed_times_out_with_the_variable_unset(sim, client):
    call = sim.place_call(destination="5559999", scenario=Scenario(digits=[""]))
    client.send(sendmsg(call.uuid, "play_and_get_digits", PAGD))
    result = dict(event_at(client, client.wait_for(is_event("CHANNEL_EXECUTE_COMPLETE", "play_and_get_digits"))))
    assert "variable_esl_digits" not in result
    assert result["variable_read_result"] == "timeout"


def test_keys_that_fail_the_regexp_go_to_the_invalid_variable(sim, client):
    call = sim.place_call(destination="5559999", scenario=Scenario(digits=["**"]))
    client.send(sendmsg(call.uuid, "play_and_get_digits", PAGD))
    result = dict(event_at(client, client.wait_for(is_event("CHANNEL_EXECUTE_COMPLETE", "play_and_get_digits"))))
    assert "variable_esl_digits" not in result
    assert result["variable_esl_digits_invalid"] == "**"


def test_respond_with_a_final_code_ends_an_unanswered_call_with_sofias_cause(sim, client):
    call = sim.place_call(destination="5559999")
    client.send(sendmsg(call.uuid, "respond", "404 Nobody Here"))
    call.wait_ended(5)
    assert call.responded == (404, "Nobody Here")
    assert call.hangup_cause == "UNALLOCATED_NUMBER"


@pytest.mark.parametrize("dial, phones, disposition", [
    ("user/1000@x,user/1001@x", {"1000": "busy", "1001": "answer"}, "SUCCESS"),
    ("user/1000@x|user/1001@x", {"1000": "busy", "1001": "answer"}, "SUCCESS"),
    ("user/1000@x,user/1001@x", {"1000": "busy", "1001": "busy"}, "USER_BUSY"),
    ("{originate_timeout=2}user/1000@x,user/1001@x", {"1000": "busy", "1001": "no_answer"}, "NO_ANSWER"),
    ("user/1000@x|user/1001@x", {"1000": "answer", "1001": "unregistered"}, "SUCCESS"),
    ("[leg_timeout=1]user/1000@x|user/1001@x", {"1000": "answer", "1001": "unregistered"},
     "USER_NOT_REGISTERED"),
])
def test_a_bridge_to_several_phones_ends_as_the_phones_decide(sim, client, dial, phones, disposition):
    call = sim.place_call(destination="5559999", scenario=Scenario(phones=phones, ring_seconds=1.5,
                                                                   talk_seconds=0.5))
    client.send(sendmsg(call.uuid, "set", "continue_on_fail=true"))
    client.send(sendmsg(call.uuid, "bridge", dial))
    done = client.wait_for(is_event("CHANNEL_EXECUTE_COMPLETE", "bridge"))
    assert dict(event_at(client, done))["variable_originate_disposition"] == disposition
