"""Kazoo 4.3 exports on a real FreeSWITCH 1.10.12 (issue 15): Kazoo's documents pasted as the API
gives them, run by the modules that point at them.

A user whose two devices (Kazoo device documents, registered from sipp on 5070 and 5072) both
ring and one answers; a call out through two carriers (resource documents whose gateways are
sipp on loopback: the first refuses with 503, the second answers); a menu document (a wrong key,
then the right one); ``voicemail`` ``action: check`` reaching the box's menu (the PIN accepted);
``record_call`` leaving a non-empty file. The shared switch has no gateway: a resource's gateway
is dialled as ``sofia/external/<number>@127.0.0.1:<port>``, what its ``server`` and ``port`` say.
"""

import pytest

from tests.realswitch.daemon import FRONT_DESK, UNROUTED
from tests.realswitch.observer import SwitchObserver

pytestmark = pytest.mark.timeout(120)

TONE = "tone_stream://%(300,0,440)"
LONG_TONE = "tone_stream://%(2000,0,440)"
SECOND_PHONE_PORT = 5072
CARRIER_A_PORT = 5094  # refuses (503)
CARRIER_B_PORT = 5096  # answers
ACCOUNT = {"data": {"id": "4fbd9ad1f5d7c9f0f3b5e1ea8c0d2a61", "name": "Test Co", "realm": "127.0.0.1",
                    "timezone": "Europe/Paris",
                    "caller_id": {"external": {"number": "+14155550100", "name": "Test Co"}}}}
ANN = "7c1f0e2d3b4a59687a6b5c4d3e2f1a0b"


def exported(document):
    """As ``GET /v2/accounts/{id}/<kind>/{id}`` answers: the document inside the API's envelope."""
    return {"data": document, "revision": "2-8c1f", "request_id": "e2e", "status": "success",
            "auth_token": "undefined"}


def callflow(doc_id, flow, numbers=(FRONT_DESK,)):
    return exported({"id": doc_id, "name": doc_id, "numbers": list(numbers), "patterns": [], "flow": flow,
                     "metadata": {}, "ui_metadata": {"origin": "callflows"}})


def mark(name):
    return {"module": "set_variables", "data": {"custom_application_vars": {"reached": name}}, "children": {}}


def test_a_user_rings_both_of_its_registered_devices_and_one_answers(switch, sipp, start_daemon):
    devices = [
        exported({"id": "d1000", "name": "Ann desk", "owner_id": ANN, "enabled": True, "device_type": "sip_device",
                  "sip": {"username": "1000", "password": "1234", "invite_format": "username"}}),
        exported({"id": "d1001", "name": "Ann soft", "owner_id": ANN, "enabled": True, "device_type": "softphone",
                  "sip": {"username": "1001", "password": "1234", "invite_format": "username"}}),
    ]
    flow = {"module": "user", "data": {"id": ANN, "timeout": 20, "can_call_self": False, "delay": 0,
                                       "strategy": "simultaneous"},
            "children": {"_": mark("missed")}}
    daemon = start_daemon({"ann": callflow("ann", flow)}, settings={
        "account": ACCOUNT, "users": [exported({"id": ANN, "first_name": "Ann", "last_name": "Lee"})],
        "devices": {"d1000": devices[0], "d1001": devices[1]}})
    sipp.register("1000")
    sipp.register("1001", port=SECOND_PHONE_PORT)
    rings = sipp.phone("uas_ring_cancel.xml")  # 1000 rings, and is cancelled when 1001 answers
    answers = sipp.phone("uas_answer.xml", port=SECOND_PHONE_PORT)
    caller = sipp.call(FRONT_DESK, scenario="uac_talk_bye.xml")

    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    bridge = switch.wait_for("CHANNEL_EXECUTE", uuid, Application="bridge")
    assert bridge["Application-Data"] == (
        "{originate_timeout=20}[leg_timeout=20]user/1000@127.0.0.1,[leg_timeout=20]user/1001@127.0.0.1")
    done = switch.wait_for("CHANNEL_EXECUTE_COMPLETE", uuid, Application="bridge", timeout=60)
    assert done["variable_originate_disposition"] == "SUCCESS"
    daemon.wait_flow_finished(uuid)
    assert sipp.finish(rings) == 0, sipp.output(rings)  # INVITEd, then CANCELled: it rang
    assert sipp.finish(answers) == 0, sipp.output(answers)
    assert sipp.finish(caller) == 0, sipp.output(caller)
    assert any("ringing 2 devices of user %s" % ANN in line for line in daemon.call_lines(uuid))


def test_a_call_out_fails_over_from_a_refusing_carrier_to_the_next_one(switch, sipp, start_daemon):
    resources = [
        exported({"id": "carrier-b", "name": "Carrier B", "enabled": True, "weight_cost": "20",
                  "rules": ["^\\+1(000555\\d{4})$"], "flags": [], "caller_id_options": {"type": "external"},
                  "gateways": [{"server": "127.0.0.1", "port": CARRIER_B_PORT, "prefix": "1", "enabled": True,
                                "realm": "carrier-b.example", "username": "test-co", "password": "s3cret"}]}),
        exported({"id": "carrier-a", "name": "Carrier A", "enabled": True, "weight_cost": 10,
                  "rules": ["^\\+1(000555\\d{4})$"],
                  "gateways": [{"server": "127.0.0.1", "port": CARRIER_A_PORT, "prefix": "1", "enabled": True}]}),
    ]
    no_match = callflow("no-match", {"module": "offnet", "data": {}, "children": {}}, numbers=["no_match"])
    # the caller comes from outside (5080): no_match is refused it unless the operator says so
    daemon = start_daemon({"no-match": no_match}, settings={"account": ACCOUNT, "resources": resources,
                                                            "routing": {"no_match_from_outside": True}})
    refuses = sipp.phone("uas_503.xml", port=CARRIER_A_PORT)
    answers = sipp.phone("uas_answer.xml", port=CARRIER_B_PORT)
    caller = sipp.call(UNROUTED, scenario="uac_talk_bye.xml")

    uuid = switch.parked_call(UNROUTED, since=switch.test_start).uuid
    bridge = switch.wait_for("CHANNEL_EXECUTE", uuid, Application="bridge")
    assert bridge["Application-Data"] == (
        "[origination_caller_id_number=+14155550100,origination_caller_id_name=Test Co]"
        "sofia/external/10005550100@127.0.0.1:%d|"
        "[sip_auth_username=test-co,sip_auth_password=s3cret,origination_caller_id_number=+14155550100,"
        "origination_caller_id_name=Test Co]sofia/external/10005550100@127.0.0.1:%d"
        % (CARRIER_A_PORT, CARRIER_B_PORT))
    done = switch.wait_for("CHANNEL_EXECUTE_COMPLETE", uuid, Application="bridge", timeout=60)
    assert done["variable_originate_disposition"] == "SUCCESS"
    daemon.wait_flow_finished(uuid)
    assert sipp.finish(refuses) == 0, sipp.output(refuses)  # carrier A was tried first and said 503
    assert sipp.finish(answers) == 0, sipp.output(answers)
    assert sipp.finish(caller) == 0, sipp.output(caller)
    assert any("through 2 carrier legs (carrier-a, carrier-b)" in line for line in daemon.call_lines(uuid))


def test_a_menu_document_asks_again_after_a_wrong_key_and_takes_the_right_one(switch, sipp, start_daemon):
    menu = exported({"id": "m1", "name": "Main", "retries": 3, "timeout": "20000", "max_extension_length": 1,
                     "hunt": False, "media": {"greeting": "greeting-id", "invalid_media": "oops-id",
                                              "exit_media": False}})
    media = {"greeting-id": TONE, "oops-id": LONG_TONE}
    flow = {"module": "menu", "data": {"id": "m1"}, "children": {"1": mark("one"), "2": mark("two")}}
    daemon = start_daemon({"ivr": callflow("ivr", flow)}, settings={"menus": [menu], "media": media})
    caller = sipp.call(FRONT_DESK)

    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    asked = switch.wait_for("CHANNEL_EXECUTE", uuid, Application="play_and_get_digits")
    assert asked["Application-Data"].split()[5] == TONE  # the greeting the media document names
    switch.api("uuid_recv_dtmf %s 9" % uuid)
    invalid = switch.wait_for("CHANNEL_EXECUTE", uuid, Application="playback", Application__Data=LONG_TONE)
    switch.wait_for("CHANNEL_EXECUTE", uuid, Application="play_and_get_digits", since=switch.events.index(invalid))
    switch.api("uuid_recv_dtmf %s 2" % uuid)
    switch.wait_for("CHANNEL_EXECUTE_COMPLETE", uuid, Application="set", Application__Data="cav_reached=two")
    daemon.wait_flow_finished(uuid)
    assert sipp.finish(caller) == 0, sipp.output(caller)
    assert any("menu: 9 is not an option" in line for line in daemon.call_lines(uuid))


def test_voicemail_check_reaches_the_boxs_menu(switch, sipp, start_daemon, esl):
    vmbox = exported({"id": "vm1000", "name": "Ann", "mailbox": "1000", "pin": "1000", "owner_id": ANN})
    flow = {"module": "voicemail", "data": {"id": "vm1000", "action": "check"}, "children": {}}
    host, port, password = esl
    voicemail = SwitchObserver(host, port, password, events="PLAYBACK_START CUSTOM vm::maintenance").connect()
    try:
        daemon = start_daemon({"vm": callflow("vm", flow)}, settings={"account": ACCOUNT, "vmboxes": [vmbox]})
        caller = sipp.call(FRONT_DESK)

        uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
        checking = switch.wait_for("CHANNEL_EXECUTE", uuid, Application="voicemail")
        assert checking["Application-Data"] == "check default 127.0.0.1 1000"
        voicemail.wait_for("PLAYBACK_START", uuid)  # asking for the PIN
        switch.api("uuid_recv_dtmf %s 1000#" % uuid)
        login = voicemail.wait_for("CUSTOM", VM__Action="authentication", timeout=20)
        assert login["VM-Auth-Result"] == "success"
        assert login["VM-User"] == "1000"
        switch.api("uuid_kill %s" % uuid)  # the caller leaves the box's menu
        daemon.wait_flow_finished(uuid)
        sipp.finish(caller)
    finally:
        voicemail.close()


def test_record_call_leaves_a_non_empty_file(switch, sipp, start_daemon, tmp_path):
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    flow = {"module": "answer", "data": {}, "children": {"_": {
        "module": "record_call", "data": {"action": "start", "format": "wav", "media_name": "kazoo-e2e",
                                          "time_limit": 60, "label": "e2e"},
        "children": {"_": {"module": "play", "data": {"id": LONG_TONE}, "children": {"_": {
            "module": "record_call", "data": {"action": "stop"}, "children": {}}}}}}}}
    daemon = start_daemon({"rec": callflow("rec", flow)}, settings={"recordings_dir": str(recordings)})
    caller = sipp.call(FRONT_DESK)

    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    started = switch.wait_for("CHANNEL_EXECUTE_COMPLETE", uuid, Application="record_session")
    assert started["Application-Data"] == "%s/kazoo-e2e.wav +60" % recordings
    switch.wait_for("CHANNEL_EXECUTE_COMPLETE", uuid, Application="stop_record_session")
    daemon.wait_flow_finished(uuid)
    assert sipp.finish(caller) == 0, sipp.output(caller)
    switch.wait_for("CHANNEL_DESTROY", uuid)
    recorded = recordings / "kazoo-e2e.wav"
    assert recorded.exists() and recorded.stat().st_size > 44  # more than a WAV header
