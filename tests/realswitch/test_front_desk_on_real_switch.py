"""The spec's example flow on a real FreeSWITCH: ring the front desk; when that fails, a
webhook, then voicemail. Real SIP phones and callers (sipp), the real daemon process,
a real HTTP receiver, and the test's own view of the switch through its event socket.
"""

import pytest

from callflowd.demo.receiver import free_port
from tests.realswitch.daemon import CUSTOM_DATA, FRONT_DESK, UNREGISTERED_PHONE, UNROUTED, front_desk_flow

pytestmark = pytest.mark.timeout(120)

KAZOO_FIELDS = ("call_id", "caller_id_name", "caller_id_number", "callee_id_number", "call_direction",
                "from", "from_user", "to", "to_user", "request", "request_user", "inception")


def flows(uri, http_verb="post"):
    return {"front-desk": front_desk_flow(uri, http_verb)}


def ring_seconds(switch, uuid):
    """How long the caller's bridge ran, by the switch's own clock."""
    started = switch.wait_for("CHANNEL_EXECUTE", uuid, Application="bridge")
    ended = switch.wait_for("CHANNEL_EXECUTE_COMPLETE", uuid, Application="bridge", timeout=60)
    return ended.switch_time - started.switch_time, ended


def assert_reaches_voicemail_after_the_failed_bridge(switch, uuid):
    bridge_done = switch.wait_for("CHANNEL_EXECUTE_COMPLETE", uuid, Application="bridge", timeout=60)
    voicemail = switch.wait_for("CHANNEL_EXECUTE", uuid, Application="voicemail", timeout=15)
    assert voicemail.switch_time >= bridge_done.switch_time
    return bridge_done, voicemail


def hang_up(switch, uuid):
    switch.api("uuid_kill %s" % uuid)
    switch.wait_for("CHANNEL_DESTROY", uuid, timeout=10)


def test_a_busy_front_desk_sends_one_webhook_then_voicemail(switch, sipp, receiver, start_daemon):
    daemon = start_daemon(flows(receiver.url("/missed")))
    sipp.register("1000")
    phone = sipp.phone("uas_busy.xml")
    caller = sipp.call(FRONT_DESK)

    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    bridge_done, _ = assert_reaches_voicemail_after_the_failed_bridge(switch, uuid)
    assert bridge_done["variable_originate_disposition"] == "USER_BUSY"
    assert bridge_done["variable_last_bridge_proto_specific_hangup_cause"] == "sip:486"
    switch.wait_for("CHANNEL_ANSWER", uuid)  # voicemail answered: the caller got its 200

    (request,) = receiver.wait_for(1, timeout=10)
    assert request.method == "POST" and request.path == "/missed"
    assert request.header("content-type").startswith("application/x-www-form-urlencoded")
    fields = {name: values[0] for name, values in request.fields.items()}
    assert fields["call_id"] == uuid
    assert fields["caller_id_number"] == "+15551230000"
    assert fields["to"].startswith(FRONT_DESK)
    for name in KAZOO_FIELDS:
        assert name in fields, name
    for name, value in CUSTOM_DATA.items():
        assert fields[name] == value

    hang_up(switch, uuid)
    daemon.wait_flow_finished(uuid)
    assert sipp.finish(caller) == 0, sipp.output(caller)
    assert sipp.finish(phone) == 0, sipp.output(phone)
    assert len(receiver.requests) == 1
    assert any("bridge failed: USER_BUSY (sip:486)" in line for line in daemon.call_lines(uuid))


def test_a_front_desk_that_rings_out_is_given_up_after_its_timeout_then_webhook_and_voicemail(
        switch, sipp, receiver, start_daemon):
    daemon = start_daemon(flows(receiver.url("/missed")), ring_timeout=5)
    sipp.register("1000")
    phone = sipp.phone("uas_ring_cancel.xml")
    sipp.call(FRONT_DESK)

    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    rang, bridge_done = ring_seconds(switch, uuid)
    assert 5 - 3 <= rang <= 5 + 3, rang
    assert bridge_done["variable_originate_disposition"] == "NO_ANSWER"
    assert_reaches_voicemail_after_the_failed_bridge(switch, uuid)
    (request,) = receiver.wait_for(1, timeout=10)
    assert request.fields["call_id"] == [uuid]

    hang_up(switch, uuid)
    daemon.wait_flow_finished(uuid)
    assert sipp.finish(phone) == 0, sipp.output(phone)  # the phone saw the switch's CANCEL
    assert any("bridge failed: NO_ANSWER" in line for line in daemon.call_lines(uuid))


def test_an_unregistered_front_desk_goes_to_webhook_and_voicemail(switch, sipp, receiver, start_daemon):
    daemon = start_daemon(flows(receiver.url("/missed")), dial_string=UNREGISTERED_PHONE)
    caller = sipp.call(FRONT_DESK)

    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    bridge_done, _ = assert_reaches_voicemail_after_the_failed_bridge(switch, uuid)
    assert bridge_done["variable_originate_disposition"] == "USER_NOT_REGISTERED"
    (request,) = receiver.wait_for(1, timeout=10)
    assert request.fields["call_id"] == [uuid]

    hang_up(switch, uuid)
    daemon.wait_flow_finished(uuid)
    assert sipp.finish(caller) == 0, sipp.output(caller)
    assert any("bridge failed: USER_NOT_REGISTERED" in line for line in daemon.call_lines(uuid))


def test_an_answering_front_desk_is_bridged_and_sends_no_webhook_and_no_voicemail(
        switch, sipp, receiver, start_daemon):
    daemon = start_daemon(flows(receiver.url("/missed")))
    sipp.register("1000")
    phone = sipp.phone("uas_answer.xml")
    caller = sipp.call(FRONT_DESK, scenario="uac_talk_bye.xml")

    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    switch.wait_for("CHANNEL_BRIDGE", uuid)
    switch.wait_for("CHANNEL_HANGUP", uuid, timeout=30)  # the caller hung up after talking
    daemon.wait_flow_finished(uuid)

    assert sipp.finish(caller) == 0, sipp.output(caller)
    assert sipp.finish(phone) == 0, sipp.output(phone)
    assert switch.applications(uuid) == ["set", "bridge"]
    assert receiver.requests == []
    assert any("answered; bridge ended" in line for line in daemon.call_lines(uuid))


def test_a_caller_who_hangs_up_while_the_front_desk_rings_gets_no_webhook_and_no_voicemail(
        switch, sipp, receiver, start_daemon):
    daemon = start_daemon(flows(receiver.url("/missed")))
    sipp.register("1000")
    phone = sipp.phone("uas_ring_cancel.xml")
    caller = sipp.call(FRONT_DESK, scenario="uac_cancel.xml")

    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    switch.wait_for("CHANNEL_DESTROY", uuid, timeout=30)
    daemon.wait_flow_finished(uuid)

    assert sipp.finish(caller) == 0, sipp.output(caller)
    assert sipp.finish(phone) == 0, sipp.output(phone)
    assert "voicemail" not in switch.applications(uuid)
    assert receiver.requests == []
    assert switch.wait_no_channels() == 0  # nothing left parked


def test_a_parked_call_to_a_number_no_callflow_has_is_left_alone_and_logged(
        switch, sipp, receiver, start_daemon):
    daemon = start_daemon(flows(receiver.url("/missed")))
    sipp.call(UNROUTED)

    uuid = switch.parked_call(UNROUTED, since=switch.test_start).uuid
    daemon.wait_for_line(r"call %s: no callflow for number \%s on switch freeswitch; leaving the call alone"
                         % (uuid, UNROUTED))
    # The daemon sent nothing: still parked, no application ran on it.
    assert switch.applications(uuid) == []
    assert "park" in switch.api("uuid_getvar %s current_application" % uuid)
    hang_up(switch, uuid)
    assert receiver.requests == []


def test_a_get_webhook_sends_the_fields_as_a_query_string(switch, sipp, receiver, start_daemon):
    daemon = start_daemon(flows(receiver.url("/missed"), http_verb="get"))
    sipp.register("1000")
    sipp.phone("uas_busy.xml")
    sipp.call(FRONT_DESK)

    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    assert_reaches_voicemail_after_the_failed_bridge(switch, uuid)
    (request,) = receiver.wait_for(1, timeout=10)
    assert request.method == "GET" and request.body == b""
    assert request.query["call_id"] == [uuid]
    assert request.query["team"] == [CUSTOM_DATA["team"]]

    hang_up(switch, uuid)
    daemon.wait_flow_finished(uuid)


def test_a_dead_webhook_receiver_does_not_delay_voicemail_and_the_failure_is_logged(
        switch, sipp, start_daemon):
    dead = "http://127.0.0.1:%d/missed" % free_port()
    daemon = start_daemon(flows(dead), webhooks={"max_age": 2})
    sipp.register("1000")
    sipp.phone("uas_busy.xml")
    sipp.call(FRONT_DESK)

    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    bridge_done, voicemail = assert_reaches_voicemail_after_the_failed_bridge(switch, uuid)
    assert voicemail.switch_time - bridge_done.switch_time < 1.0
    # refused: no attempt spent; it waits in the outbox up to webhooks.max_age, then is dropped
    daemon.wait_for_line(r"call %s: webhook dropped: its receiver was not available for 2s" % uuid, timeout=20)

    hang_up(switch, uuid)
    daemon.wait_flow_finished(uuid)
