"""Bad days on a real FreeSWITCH: the event socket cut, the daemon killed, the switch restarted.

The caller must end exactly as on a good day: one webhook, then voicemail. The daemon
takes its calls back from the switch's own record (channel variables it wrote before
each step), not from memory.
"""

import os
import subprocess
import time

import gevent
import pytest

from tests.realswitch.daemon import FRONT_DESK, front_desk_flow
from tests.realswitch.proxy import EslProxy

pytestmark = pytest.mark.timeout(150)

# The test switch's own scripts, for the restart test (CI runs with shared/ beside the clone).
SHARED_FREESWITCH = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "freeswitch")


def flows(uri):
    return {"front-desk": front_desk_flow(uri)}


def ring_the_front_desk(switch, sipp, phone="uas_ring_cancel.xml"):
    """Phone 1000 registered and behaving as ``phone``; a caller on the test number; returns
    the caller's uuid once the daemon's bridge to the phone has started."""
    sipp.register("1000")
    sipp.phone(phone)
    sipp.call(FRONT_DESK)
    uuid = switch.parked_call(FRONT_DESK, since=switch.test_start).uuid
    switch.wait_for("CHANNEL_EXECUTE", uuid, Application="bridge")
    return uuid


def ends_like_a_good_day(switch, daemon, receiver, uuid, disposition="NO_ANSWER"):
    """The bridge ran out, one webhook arrived, then voicemail ran; clean up the call."""
    bridge_done = switch.wait_for("CHANNEL_EXECUTE_COMPLETE", uuid, Application="bridge", timeout=60)
    assert bridge_done["variable_originate_disposition"] == disposition
    voicemail = switch.wait_for("CHANNEL_EXECUTE", uuid, Application="voicemail", timeout=20)
    (request,) = receiver.wait_for(1, timeout=10)
    assert request.fields["call_id"] == [uuid]
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
        uuid = ring_the_front_desk(switch, sipp)

        proxy.cut()
        daemon.wait_for_line(r"lost the event socket")
        gevent.sleep(3)  # the outage itself: the scenario is "restored after 3 s"
        proxy.restore()
        daemon.wait_for_line(r"switch freeswitch: link up", timeout=15)

        ends_like_a_good_day(switch, daemon, receiver, uuid)
    finally:
        proxy.stop()


def test_a_daemon_killed_while_the_front_desk_rings_takes_the_call_back_when_started_again(
        switch, sipp, receiver, start_daemon, esl, tmp_path):
    daemon = start_daemon(flows(receiver.url("/missed")), ring_timeout=8)
    uuid = ring_the_front_desk(switch, sipp)

    daemon.kill()  # SIGKILL: no goodbye, nothing flushed
    again = start_daemon(flows(receiver.url("/missed")), ring_timeout=8)
    again.wait_for_line(r"call %s: resuming: waiting for bridge, still running" % uuid, timeout=15)

    ends_like_a_good_day(switch, again, receiver, uuid)


def test_a_bridge_that_ended_while_the_daemon_was_dead_takes_its_branch_on_restart(
        switch, sipp, receiver, start_daemon):
    daemon = start_daemon(flows(receiver.url("/missed")), ring_timeout=3)
    # busy after 1.5 s of ringing: killed while it rings (a phone busy at once was sometimes
    # answered, and the flow gone on to voicemail, before the kill landed on a busy machine)
    uuid = ring_the_front_desk(switch, sipp, "uas_ring_then_busy.xml")
    daemon.kill()
    switch.wait_for("CHANNEL_EXECUTE_COMPLETE", uuid, Application="bridge", timeout=20)

    again = start_daemon(flows(receiver.url("/missed")), ring_timeout=3)
    again.wait_for_line(r"call %s: resuming: bridge ended while we were away" % uuid, timeout=15)

    ends_like_a_good_day(switch, again, receiver, uuid, disposition="USER_BUSY")


def test_a_bridge_that_ended_during_a_socket_cut_takes_its_branch_once_the_socket_is_back(
        switch, sipp, receiver, start_daemon, esl):
    host, port, password = esl
    proxy = EslProxy((host, port)).start()
    try:
        daemon = start_daemon(flows(receiver.url("/missed")), via=("127.0.0.1", proxy.port, password),
                              ring_timeout=3)
        uuid = ring_the_front_desk(switch, sipp)

        proxy.cut()
        switch.wait_for("CHANNEL_EXECUTE_COMPLETE", uuid, Application="bridge", timeout=20)  # missed by the daemon
        proxy.restore()
        daemon.wait_for_line(r"call %s: bridge ended while the switch was unreachable" % uuid, timeout=15)

        ends_like_a_good_day(switch, daemon, receiver, uuid)
    finally:
        proxy.stop()


def test_a_half_open_socket_is_noticed_and_the_call_still_ends_as_on_a_good_day(
        switch, sipp, receiver, start_daemon, esl, tmp_path):
    host, port, password = esl
    proxy = EslProxy((host, port)).start()
    try:
        daemon = start_daemon(flows(receiver.url("/missed")), via=("127.0.0.1", proxy.port, password),
                              ring_timeout=6, idle_timeout=2)
        uuid = ring_the_front_desk(switch, sipp)

        proxy.freeze()  # no FIN, no data: only silence tells
        daemon.wait_for_line(r"switch freeswitch: lost the event socket", timeout=15)
        proxy.thaw()
        daemon.wait_for_line(r"switch freeswitch: link up", timeout=15)

        ends_like_a_good_day(switch, daemon, receiver, uuid)
    finally:
        proxy.stop()


def test_a_restarted_freeswitch_is_reconnected_within_5s_and_the_next_call_works(
        switch, sipp, receiver, start_daemon):
    if not os.path.exists(os.path.join(SHARED_FREESWITCH, "start.sh")):
        pytest.skip("restarting the switch needs %s/start.sh and stop.sh" % SHARED_FREESWITCH)
    daemon = start_daemon(flows(receiver.url("/missed")), default_reconnect=True)
    ups = len(daemon.matching(r"switch freeswitch: link up"))
    subprocess.run([os.path.join(SHARED_FREESWITCH, "stop.sh")], check=True, timeout=60)
    daemon.wait_for_line(r"switch freeswitch: lost the event socket", timeout=15)
    subprocess.run([os.path.join(SHARED_FREESWITCH, "start.sh")], check=True, timeout=60)
    answered_at = time.monotonic()  # start.sh returns once the event socket answers
    daemon.wait_for_count(r"switch freeswitch: link up", ups + 1, timeout=10)
    assert time.monotonic() - answered_at < 5

    switch.reconnect()
    switch.api("fsctl sps 200")
    mark = len(switch.events)
    sipp.register("1000")
    sipp.phone("uas_busy.xml")
    sipp.call(FRONT_DESK)
    uuid = switch.parked_call(FRONT_DESK, since=mark).uuid
    ends_like_a_good_day(switch, daemon, receiver, uuid, disposition="USER_BUSY")
