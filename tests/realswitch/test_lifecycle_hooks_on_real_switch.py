"""Lifecycle hooks on a real FreeSWITCH: a caller talks to the front desk; the hooks report the
channel's life, and the durations they give match the switch's own clock and the sipp script.
"""

import json

import pytest

from tests.realswitch.daemon import FRONT_DESK, front_desk_flow

pytestmark = pytest.mark.timeout(120)

ANSWER_AFTER = 1.5  # uas_answer.xml answers 1.5 s after the INVITE
TALK = 4.0  # uac_talk_bye.xml hangs up 4 s after the answer


def test_an_answered_call_reports_its_life_with_durations_that_match_the_switch(
        switch, sipp, receiver, start_daemon):
    daemon = start_daemon({"front-desk": front_desk_flow(receiver.url("/missed"))}, hooks=[
        {"events": ["channel_create", "channel_answer", "channel_bridge", "channel_destroy"],
         "uri": receiver.url("/calls"), "format": "json", "callflow_ids": ["front-desk"]},
        {"events": ["channel_create"], "uri": receiver.url("/phones"), "direction": "outbound"},
    ])
    sipp.register("1000")
    phone = sipp.phone("uas_answer.xml")
    caller = sipp.call(FRONT_DESK, scenario="uac_talk_bye.xml")

    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    destroyed = switch.wait_for("CHANNEL_DESTROY", uuid, timeout=30)
    daemon.wait_flow_finished(uuid)
    daemon.wait_for_line(r"call %s: webhook delivered: POST \S+/calls .*" % uuid)
    receiver.wait_for(5, timeout=15)  # four for the caller's channel, one for the phone's

    assert sipp.finish(caller) == 0, sipp.output(caller)
    assert sipp.finish(phone) == 0, sipp.output(phone)
    # Hooks go out concurrently, so they may arrive out of order (an answer and its bridge come
    # a millisecond apart): the order is the switch's, in each hook's own timestamp.
    hooks = sorted((json.loads(r.body) for r in receiver.requests if r.path == "/calls"),
                   key=lambda hook: float(hook["timestamp"]))
    assert [h["event"] for h in hooks] == ["channel_create", "channel_answer", "channel_bridge",
                                           "channel_destroy"]
    assert {h["call_id"] for h in hooks} == {uuid}
    destroy = hooks[-1]
    assert destroy["callflow_id"] == "front-desk"
    assert destroy["hangup_cause"] == destroyed["Hangup-Cause"] == "NORMAL_CLEARING"
    assert destroy["hangup_code"] == "16"
    assert [step["module"] for step in json.loads(destroy["flow_path"])] == ["device"]

    # The switch's clock, from the test's own event socket.
    created = int(destroyed["Caller-Channel-Created-Time"]) / 1e6
    answered = int(destroyed["Caller-Channel-Answered-Time"]) / 1e6
    hung_up = int(destroyed["Caller-Channel-Hangup-Time"]) / 1e6
    duration, ringing, billing = (float(destroy[k]) for k in
                                  ("duration_seconds", "ringing_seconds", "billing_seconds"))
    assert duration == pytest.approx(hung_up - created, abs=0.002)
    assert billing == pytest.approx(hung_up - answered, abs=0.002)
    assert ringing == pytest.approx(answered - created, abs=0.002)
    # ...and what the sipp scripts did: the phone answered after 1.5 s, the caller talked 4 s.
    assert ANSWER_AFTER - 0.5 <= ringing <= ANSWER_AFTER + 2.0, ringing
    assert TALK - 0.5 <= billing <= TALK + 2.0, billing

    [phone_create] = [r for r in receiver.requests if r.path == "/phones"]
    assert phone_create.fields["call_direction"] == ["outbound"]
    assert phone_create.fields["call_id"] != [uuid]
