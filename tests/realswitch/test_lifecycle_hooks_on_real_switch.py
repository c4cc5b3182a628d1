"""Lifecycle hooks on a real FreeSWITCH: a caller talks to the front desk; the hooks report the
channel's life, and the durations they give match the switch's own clock and the sipp script.
Two daemons on the switch send each of those hooks once between them, as one daemon does.
"""

import collections
import json

import gevent
import pytest

from tests.realswitch.daemon import FRONT_DESK, UNROUTED, front_desk_flow
from tests.realswitch.test_cluster_on_real_switch import (  # noqa: F401 (daemons is a fixture)
    CALLER, LEASE, all_over, daemons, parked_calls, wait_until)

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
    # a millisecond apart): the order is the switch's, in each hook's own timestamp. That is in
    # milliseconds, and the answer and the bridge often share one: a tie is no order at all, so
    # a tie counts as in order; a bridge stamped strictly before its answer would not.
    life = ["channel_create", "channel_answer", "channel_bridge", "channel_destroy"]
    hooks = sorted((json.loads(r.body) for r in receiver.requests if r.path == "/calls"),
                   key=lambda hook: (float(hook["timestamp"]), life.index(hook["event"])))
    assert [h["event"] for h in hooks] == life
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


HOOKED = {"CHANNEL_CREATE": "channel_create", "CHANNEL_ANSWER": "channel_answer",
          "CHANNEL_BRIDGE": "channel_bridge", "CHANNEL_DESTROY": "channel_destroy"}


def test_two_daemons_send_each_hook_of_10_busy_calls_and_their_phones_once(switch, sipp, receiver, daemons):
    hooks = [{"events": sorted(HOOKED.values()), "uri": receiver.url("/hooks"), "format": "json"}]
    first, second = daemons("cf-a", hooks=hooks), daemons("cf-b", hooks=hooks)
    gevent.sleep(LEASE)  # each has read the other's lease (one renewal, LEASE / 4, is enough)
    since = len(switch.events)
    sipp.register("1000")
    phone = sipp.phone("uas_busy.xml", calls=10)
    callers = sipp.callers(FRONT_DESK, CALLER, calls=10, rate=10, limit=10)
    sipp.finish(callers, timeout=60)
    wait_until(all_over(switch, receiver, since, 10), 60, "the 10 calls to end with their webhooks")
    sipp.finish(phone, timeout=10)
    sipp.call(UNROUTED)  # and a call no flow takes: parked until the switch hangs it up
    unrouted = switch.parked_call(UNROUTED, since=since).uuid
    switch.api("uuid_kill %s" % unrouted)
    switch.wait_for("CHANNEL_DESTROY", unrouted, timeout=10)

    saw = [(event.uuid, HOOKED[event.name]) for event in switch.events[since:] if event.name in HOOKED]
    hooks_at = lambda: [json.loads(r.body) for r in receiver.requests if r.path == "/hooks"]  # noqa: E731
    wait_until(lambda: len(hooks_at()) >= len(saw), 30, "a hook for each of the %d channel events" % len(saw))
    gevent.sleep(1.0)  # a duplicate would have come by now
    got = [(hook["call_id"], hook["event"]) for hook in hooks_at()]
    doubled = sorted(key for key, count in collections.Counter(got).items() if count > 1)
    assert not doubled, "%d of %d hooks sent twice: %s" % (len(doubled), len(got), doubled[:5])
    assert sorted(got) == sorted(saw)

    callers_legs = set(parked_calls(switch, since))
    phones_legs = {uuid for uuid, _ in saw} - callers_legs - {unrouted}
    assert len(callers_legs) == 10 and len(phones_legs) == 10  # A-legs and B-legs, each hooked
    destroys = {hook["call_id"]: hook for hook in hooks_at() if hook["event"] == "channel_destroy"}
    for uuid in callers_legs:  # from the daemon that drove it, with the path it took
        assert [step["module"] for step in json.loads(destroys[uuid]["flow_path"])] == [
            "device", "webhook", "voicemail"], destroys[uuid]
    assert json.loads(destroys[unrouted]["flow_path"]) == []
    drove = {daemon: {uuid for uuid in callers_legs if daemon.matching(r"call %s: callflow \S+ finished after [1-9]" % uuid)}
             for daemon in (first, second)}
    print("calls driven: cf-a %d, cf-b %d; hooks %d for %d channel events"
          % (len(drove[first]), len(drove[second]), len(got), len(saw)))
