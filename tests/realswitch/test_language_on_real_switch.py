"""Kazoo's callflow language on a real FreeSWITCH 1.10.12: a menu driven by keys the caller
"presses", play, response, ring groups with two real SIP phones, and a jump between callflows.

The caller's keys are injected as the switch would receive them from the phone, with
``api uuid_recv_dtmf <uuid> 1#`` on the test's own event-socket connection (the observer).
Phones 1000 and 1001 register from sipp on ports 5070 and 5072.
"""

import pytest

from tests.realswitch.daemon import FRONT_DESK

pytestmark = pytest.mark.timeout(120)

SHARED = "+10005550101"  # parked by the test switch too: a second callflow's number
TONE = "tone_stream://%(300,0,440)"
PHONE_1000 = {"dial_string": "user/1000@127.0.0.1", "timeout": 20}
PHONE_1001 = {"dial_string": "user/1001@127.0.0.1", "timeout": 20}
SECOND_PHONE_PORT = 5072


def document(flow, number=FRONT_DESK, **more):
    return dict({"numbers": [number], "flow": flow}, **more)


def mark(name):
    """A node whose only effect is a variable the switch shows: proof the flow passed here."""
    return {"module": "set_variables", "data": {"variables": {"reached": name}}}


def set_value(switch, uuid, value, timeout=15):
    return switch.wait_for("CHANNEL_EXECUTE_COMPLETE", uuid, Application="set",
                           Application__Data="reached=%s" % value, timeout=timeout)


def test_a_menu_takes_the_branch_of_the_key_the_caller_presses(switch, sipp, start_daemon):
    menu = {"module": "menu", "data": {"greeting": TONE, "timeout": 20000},
            "children": {"1": mark("one"), "2": mark("two")}}
    daemon = start_daemon({"ivr": document(menu)})
    caller = sipp.call(FRONT_DESK)

    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    switch.wait_for("CHANNEL_EXECUTE", uuid, Application="play_and_get_digits")
    assert switch.api("uuid_recv_dtmf %s 1#" % uuid).startswith("+OK")

    collected = switch.wait_for("CHANNEL_EXECUTE_COMPLETE", uuid, Application="play_and_get_digits")
    assert collected["variable_callflowd_menu_digits"] == "1"
    assert collected["variable_read_result"] == "success"
    assert switch.find("DTMF", uuid, DTMF__Digit="1")
    set_value(switch, uuid, "one")
    daemon.wait_flow_finished(uuid)
    assert sipp.finish(caller) == 0, sipp.output(caller)  # hung up by the flow's end: a BYE
    assert any("menu: caller pressed 1" in line for line in daemon.call_lines(uuid))


def test_a_menu_with_no_key_pressed_takes_its_timeout_branch(switch, sipp, start_daemon):
    menu = {"module": "menu", "data": {"greeting": TONE, "timeout": 1000},
            "children": {"1": mark("one"), "timeout": mark("nothing")}}
    daemon = start_daemon({"ivr": document(menu)})
    caller = sipp.call(FRONT_DESK)

    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    collected = switch.wait_for("CHANNEL_EXECUTE_COMPLETE", uuid, Application="play_and_get_digits")
    assert not collected.get("variable_callflowd_menu_digits")
    set_value(switch, uuid, "nothing")
    daemon.wait_flow_finished(uuid)
    assert sipp.finish(caller) == 0, sipp.output(caller)


def test_a_wrong_key_is_asked_again_and_the_second_answer_counts(switch, sipp, start_daemon):
    menu = {"module": "menu", "data": {"greeting": TONE, "timeout": 20000, "invalid_media": TONE},
            "children": {"1": mark("one"), "2": mark("two")}}
    daemon = start_daemon({"ivr": document(menu)})
    caller = sipp.call(FRONT_DESK)

    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    switch.wait_for("CHANNEL_EXECUTE", uuid, Application="play_and_get_digits")
    switch.api("uuid_recv_dtmf %s 9#" % uuid)
    invalid = switch.wait_for("CHANNEL_EXECUTE_COMPLETE", uuid, Application="playback", Application__Data=TONE)
    switch.wait_for("CHANNEL_EXECUTE", uuid, Application="play_and_get_digits",
                    since=switch.events.index(invalid))  # asked again
    switch.api("uuid_recv_dtmf %s 2#" % uuid)
    set_value(switch, uuid, "two")
    daemon.wait_flow_finished(uuid)
    assert sipp.finish(caller) == 0, sipp.output(caller)
    assert any("menu: 9 is not an option" in line for line in daemon.call_lines(uuid))


def test_play_answers_and_plays_the_tone_to_the_end(switch, sipp, start_daemon):
    daemon = start_daemon({"play": document({"module": "play", "data": {"id": TONE}})})
    caller = sipp.call(FRONT_DESK)

    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    switch.wait_for("CHANNEL_ANSWER", uuid)
    played = switch.wait_for("CHANNEL_EXECUTE_COMPLETE", uuid, Application="playback")
    assert played["Application-Data"] == TONE
    assert played["Application-Response"] == "FILE PLAYED"
    assert played["variable_playback_terminators"] == "1234567890*#"
    daemon.wait_flow_finished(uuid)
    assert sipp.finish(caller) == 0, sipp.output(caller)


def test_response_gives_the_caller_the_default_486_as_its_final_answer(switch, sipp, start_daemon):
    daemon = start_daemon({"busy": document({"module": "response"})})
    caller = sipp.call(FRONT_DESK, scenario="uac_rejected_486.xml")

    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    switch.wait_for("CHANNEL_EXECUTE", uuid, Application="respond", Application__Data="486")
    switch.wait_for("CHANNEL_HANGUP", uuid)
    daemon.wait_flow_finished(uuid)
    assert sipp.finish(caller) == 0, sipp.output(caller)  # the scenario accepts only a 486
    assert not switch.find("CHANNEL_ANSWER", uuid)


def test_response_plays_its_media_early_then_sends_its_code_and_message(switch, sipp, start_daemon):
    response = {"module": "response", "data": {"code": "404", "message": "Nobody Here", "media": TONE}}
    daemon = start_daemon({"gone": document(response)})
    caller = sipp.call(FRONT_DESK, scenario="uac_rejected_404.xml")

    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    switch.wait_for("CHANNEL_PROGRESS_MEDIA", uuid)
    switch.wait_for("CHANNEL_EXECUTE_COMPLETE", uuid, Application="playback")
    switch.wait_for("CHANNEL_EXECUTE", uuid, Application="respond", Application__Data="404 Nobody Here")
    daemon.wait_flow_finished(uuid)
    assert sipp.finish(caller) == 0, sipp.output(caller)  # the scenario accepts only a 404
    assert not switch.find("CHANNEL_ANSWER", uuid)


@pytest.mark.parametrize("strategy", ["simultaneous", "single"])
def test_a_ring_group_with_one_busy_phone_reaches_the_one_that_answers(
        switch, sipp, start_daemon, strategy):
    group = {"module": "ring_group", "data": {
        "strategy": strategy, "endpoints": [{"id": "phone_1000"}, {"id": "phone_1001"}]},
        "children": {"_": mark("missed")}}
    daemon = start_daemon({"group": document(group)}, devices={"phone_1000": PHONE_1000, "phone_1001": PHONE_1001})
    sipp.register("1000")
    sipp.register("1001", port=SECOND_PHONE_PORT)
    busy = sipp.phone("uas_busy.xml")
    answers = sipp.phone("uas_answer.xml", port=SECOND_PHONE_PORT)
    caller = sipp.call(FRONT_DESK, scenario="uac_talk_bye.xml")

    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    bridge = switch.wait_for("CHANNEL_EXECUTE", uuid, Application="bridge")
    separator = "," if strategy == "simultaneous" else "|"
    assert separator.join(["user/1000@127.0.0.1", "[leg_timeout=20]user/1001@127.0.0.1"]) \
        in bridge["Application-Data"]
    switch.wait_for("CHANNEL_BRIDGE", uuid, timeout=30)
    done = switch.wait_for("CHANNEL_EXECUTE_COMPLETE", uuid, Application="bridge", timeout=60)
    assert done["variable_originate_disposition"] == "SUCCESS"
    daemon.wait_flow_finished(uuid)
    assert sipp.finish(busy) == 0, sipp.output(busy)  # 1000 was rung and said 486
    assert sipp.finish(answers) == 0, sipp.output(answers)
    assert sipp.finish(caller) == 0, sipp.output(caller)
    assert not switch.find("CHANNEL_EXECUTE_COMPLETE", uuid, Application="set", Application__Data="reached=missed")
    assert any("ring group answered" in line for line in daemon.call_lines(uuid))


def test_a_callflow_jump_runs_the_other_callflow_then_comes_back(switch, sipp, start_daemon):
    main = document({"module": "callflow", "data": {"id": "shared"}, "children": {"_": mark("back")}}, id="main")
    shared = document({"module": "play", "data": {"id": TONE}}, number=SHARED, id="shared")
    daemon = start_daemon({"main": main, "shared": shared})
    caller = sipp.call(FRONT_DESK)

    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    played = switch.wait_for("CHANNEL_EXECUTE", uuid, Application="playback")
    # the recovery mark names the callflow the node belongs to (calls/marker.py)
    assert played["variable_callflowd_callflow"] == "shared"
    back = set_value(switch, uuid, "back")
    assert back["variable_callflowd_callflow"] == "main"
    assert back["variable_callflowd_node"] == "flow.children._"
    daemon.wait_flow_finished(uuid)
    assert sipp.finish(caller) == 0, sipp.output(caller)
    lines = daemon.call_lines(uuid)
    assert any("jumping to callflow shared" in line for line in lines)
    assert any("back in callflow main at flow.children._" in line for line in lines)


def test_a_daemon_killed_inside_a_jumped_to_menu_takes_the_call_back_there_and_still_comes_back(
        switch, sipp, start_daemon):
    main = document({"module": "callflow", "data": {"id": "shared"}, "children": {"_": mark("back")}}, id="main")
    menu = {"module": "menu", "data": {"greeting": TONE, "timeout": 30000}, "children": {"1": mark("one")}}
    shared = document(menu, number=SHARED, id="shared")
    daemon = start_daemon({"main": main, "shared": shared})
    caller = sipp.call(FRONT_DESK)

    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    collecting = switch.wait_for("CHANNEL_EXECUTE", uuid, Application="play_and_get_digits")
    assert collecting["variable_callflowd_callflow"] == "shared"  # the switch's record of where it is
    assert collecting["variable_callflowd_returns"] == "main:flow.children._"
    daemon.kill()

    again = start_daemon({"main": main, "shared": shared})
    again.wait_for_line(r"call %s: taking the call back .* at flow of callflow shared" % uuid, timeout=15)
    again.wait_for_line(r"call %s: resuming: waiting for play_and_get_digits, still running" % uuid)
    switch.api("uuid_recv_dtmf %s 1#" % uuid)
    set_value(switch, uuid, "one")
    # the way back was on the channel too (callflowd_returns): main's _ child runs after shared ends
    back = set_value(switch, uuid, "back")
    assert back["variable_callflowd_callflow"] == "main"
    again.wait_flow_finished(uuid)
    assert sipp.finish(caller) == 0, sipp.output(caller)
