"""no_match only for callers the switch authenticated (Kazoo 4.3's allow_no_match), on a real
FreeSWITCH 1.10.12.

A caller on the unauthenticated ``external`` profile (5080) dialling a number only the
``no_match`` callflow answers is left alone: no application runs on its channel, and the
daemon says why. User 1000 calling the same number on the ``internal`` profile (5060),
answering the switch's digest challenge, is taken by no_match. The two CHANNEL_PARKs differ
in what the daemon reads (``variable_sip_authorized``) and in what the simulator copies for
``Scenario(authenticated_as=...)`` (simulator/channel.py, ``authenticated``).
"""

import pytest

from tests.realswitch.daemon import UNROUTED

pytestmark = pytest.mark.timeout(120)

CATCH_ALL = {"id": "no-match", "numbers": ["no_match"],
             "flow": {"module": "set_variables", "data": {"custom_application_vars": {"reached": "no_match"}},
                      "children": {"_": {"module": "hangup", "data": {}, "children": {}}}}}
DIGITS = UNROUTED.lstrip("+")  # the 5060 caller dials it without the plus


def test_a_caller_from_outside_to_an_unknown_number_is_not_taken_by_no_match(switch, sipp, start_daemon):
    daemon = start_daemon({"no-match": CATCH_ALL})
    caller = sipp.call(UNROUTED)

    parked = switch.parked_call(UNROUTED, since=switch.test_start)
    assert parked["variable_sofia_profile_name"] == "external"
    assert parked.get("variable_sip_authorized") is None
    line = daemon.wait_for_line(r"call %s: .* no_match is for authenticated callers" % parked.uuid)
    assert "leaving the call alone" in line
    assert switch.applications(parked.uuid) == []  # nothing ran: still parked
    assert not daemon.matching(r"call %s: .*matches callflow" % parked.uuid)
    switch.api("uuid_kill %s" % parked.uuid)
    sipp.finish(caller)


def test_user_1000_authenticated_on_the_internal_profile_is_taken_by_no_match(switch, sipp, start_daemon):
    daemon = start_daemon({"no-match": CATCH_ALL})
    caller = sipp.call_internal(DIGITS, "uac_1000_auth_wait_bye.xml")

    parked = switch.parked_call(DIGITS, since=switch.test_start)
    assert (parked["variable_sofia_profile_name"], parked["Caller-Context"]) == ("internal", "default")
    assert (parked["variable_sip_authorized"], parked["variable_sip_auth_username"]) == ("true", "1000")
    daemon.wait_flow_finished(parked.uuid)
    assert any("matches callflow no-match (by no_match)" in line for line in daemon.call_lines(parked.uuid))
    switch.wait_for("CHANNEL_EXECUTE_COMPLETE", parked.uuid, Application="set",
                    Application__Data="cav_reached=no_match")
    sipp.finish(caller)
