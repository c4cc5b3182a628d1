"""The spec's webhook as Kazoo 4.3 sends it, on a real FreeSWITCH: the spec's own flow (no
``http_verb``) reaches the receiver as a GET with Kazoo's fields, taken from the real channel.
"""

import pytest

from tests.realswitch.daemon import FRONT_DESK, front_desk_flow

pytestmark = pytest.mark.timeout(120)


def test_the_spec_flow_without_a_verb_reaches_the_receiver_as_kazoos_get(switch, sipp, receiver, start_daemon):
    daemon = start_daemon({"front-desk": front_desk_flow(receiver.url("/missed"), http_verb=None, custom_data=None)},
                          switch_nodename="freeswitch@test-switch")
    sipp.register("1000")
    phone = sipp.phone("uas_busy.xml")
    caller = sipp.call(FRONT_DESK, scenario="uac_wait_bye_x_headers.xml")

    parked = switch.parked_call(FRONT_DESK, since=switch.test_start)
    uuid = parked.uuid
    switch.wait_for("CHANNEL_EXECUTE", uuid, Application="voicemail", timeout=60)
    (request,) = receiver.wait_for(1, timeout=10)

    assert request.method == "GET" and request.path == "/missed" and request.body == b""
    fields = {name: values for name, values in request.query.items()}
    assert all(len(values) == 1 for values in fields.values()), fields  # each field once
    fields = {name: values[0] for name, values in fields.items()}
    assert all(value != "" for value in fields.values()), fields  # nothing sent empty
    # what the switch says about the caller's channel, under Kazoo's names
    assert fields["call_id"] == uuid == parked["Unique-ID"]
    assert fields["caller_id_number"] == parked["Caller-Caller-ID-Number"] == "+15551230000"
    assert fields["from_user"] == parked["variable_sip_from_user"] == "+15551230000"
    assert fields["to_user"] == parked["variable_sip_to_user"] == FRONT_DESK
    assert fields["request_user"] == parked["variable_sip_req_user"] == FRONT_DESK
    assert fields["from"] == "+15551230000@127.0.0.1"  # user@realm, no port
    assert fields["to"] == fields["request"] == FRONT_DESK + "@127.0.0.1"
    assert fields["inception"] == fields["request"]  # a call from outside (profile external)
    assert fields["call_direction"] == "inbound"
    assert fields["switch_hostname"] == parked["FreeSWITCH-Hostname"]
    assert fields["switch_nodename"] == "freeswitch@test-switch"  # from the config
    assert fields["switch_url"] == parked["variable_sofia_profile_url"]
    # the caller's X- headers, as Kazoo keeps them (ecallmgr_util:custom_sip_headers/1)
    assert fields["custom_sip_headers[x_account_id]"] == "ACME 42"
    assert fields["custom_sip_headers[x_ticket]"] == "t-7"
    # the device the flow rang, and the flags of kapps_call
    assert (fields["authorizing_id"], fields["authorizing_type"]) == ("front_desk_device_id", "device")
    assert (fields["call_bridged"], fields["is_recording"], fields["message_left"]) == ("false",) * 3
    # ours, after Kazoo's
    assert (fields["callflow_id"], fields["previous_action"], fields["previous_outcome"]) == (
        "front-desk", "device", "USER_BUSY")
    assert request.header("X-Callflowd-Delivery")
    assert request.header("X-Hook-ID").isdigit()  # Kazoo's header: the hook's gregorian-seconds _id

    switch.api("uuid_kill %s" % uuid)
    switch.wait_for("CHANNEL_DESTROY", uuid, timeout=10)
    daemon.wait_flow_finished(uuid)
    assert sipp.finish(caller) == 0, sipp.output(caller)
    assert sipp.finish(phone) == 0, sipp.output(phone)
