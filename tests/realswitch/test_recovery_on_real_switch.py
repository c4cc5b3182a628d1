"""Bad days on a real FreeSWITCH: the event socket cut, the daemon killed, the switch restarted.

The caller must end exactly as on a good day: one webhook, then voicemail. The daemon
takes its calls back from the switch's own record (channel variables it wrote before
each step), not from memory.
"""

import gevent
import pytest

from tests.realswitch.daemon import FRONT_DESK, front_desk_flow
from tests.realswitch.proxy import EslProxy

pytestmark = pytest.mark.timeout(150)


def flows(uri):
    return {"front-desk": front_desk_flow(uri)}


def ends_like_a_good_day(switch, daemon, receiver, uuid, disposition="NO_ANSWER"):
    """The bridge ran out, one webhook arrived, then voicemail ran; clean up the call."""
    bridge_done = switch.wait_for("CHANNEL_EXECUTE_COMPLETE", uuid, Application="bridge", timeout=60)
    assert bridge_done["variable_originate_disposition"] == disposition
    voicemail = switch.wait_for("CHANNEL_EXECUTE", uuid, Application="voicemail", timeout=20)
    (request,) = receiver.wait_for(1, timeout=10)
    assert request.form["call_id"] == [uuid]
    assert voicemail.switch_time >= bridge_done.switch_time
    assert switch.applications(uuid).count("bridge") == 1  # the phone was rung once, not twice
    switch.api("uuid_kill %s" % uuid)
    switch.wait_for("CHANNEL_DESTROY", uuid, timeout=10)
    daemon.wait_flow_finished(uuid)
    assert len(receiver.requests) == 1


def test_a_socket_cut_while_the_front_desk_rings_ends_the_call_as_without_the_cut(
        switch, sipp, receiver, start_daemon, esl):
    host, port, password = esl
    proxy = EslProxy((host, port)).start()
    try:
        daemon = start_daemon(flows(receiver.url("/missed")), via=("127.0.0.1", proxy.port, password),
                              ring_timeout=8)
        sipp.register("1000")
        sipp.phone("uas_ring_cancel.xml")
        sipp.call(FRONT_DESK)
        uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
        switch.wait_for("CHANNEL_EXECUTE", uuid, Application="bridge")

        proxy.cut()
        daemon.wait_for_line(r"lost the event socket")
        gevent.sleep(3)  # the outage itself: the scenario is "restored after 3 s"
        proxy.restore()
        daemon.wait_for_line(r"call %s: taking the call back at flow of callflow front-desk" % uuid, timeout=15)

        ends_like_a_good_day(switch, daemon, receiver, uuid)
    finally:
        proxy.stop()


def test_a_daemon_killed_while_the_front_desk_rings_takes_the_call_back_when_started_again(
        switch, sipp, receiver, start_daemon, esl, tmp_path):
    daemon = start_daemon(flows(receiver.url("/missed")), ring_timeout=8)
    sipp.register("1000")
    sipp.phone("uas_ring_cancel.xml")
    sipp.call(FRONT_DESK)
    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    switch.wait_for("CHANNEL_EXECUTE", uuid, Application="bridge")

    daemon.kill()  # SIGKILL: no goodbye, nothing flushed
    again = start_daemon(flows(receiver.url("/missed")), ring_timeout=8)
    again.wait_for_line(r"call %s: resuming: waiting for bridge, still running" % uuid, timeout=15)

    ends_like_a_good_day(switch, again, receiver, uuid)


def test_a_bridge_that_ended_while_the_daemon_was_dead_takes_its_branch_on_restart(
        switch, sipp, receiver, start_daemon):
    daemon = start_daemon(flows(receiver.url("/missed")), ring_timeout=3)
    sipp.register("1000")
    sipp.phone("uas_busy.xml")
    sipp.call(FRONT_DESK)
    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    switch.wait_for("CHANNEL_EXECUTE", uuid, Application="bridge")
    daemon.kill()
    switch.wait_for("CHANNEL_EXECUTE_COMPLETE", uuid, Application="bridge", timeout=20)

    again = start_daemon(flows(receiver.url("/missed")), ring_timeout=3)
    again.wait_for_line(r"call %s: resuming: bridge ended while we were away" % uuid, timeout=15)

    ends_like_a_good_day(switch, again, receiver, uuid, disposition="USER_BUSY")
