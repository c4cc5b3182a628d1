"""``callflowd run`` as systemd drives it: SIGHUP reloads, SIGTERM drains, a second one halts.

A real process, a real notify socket, the simulator as the switch. Calls are kept in
progress by a phone that rings for a long (simulated) while; each test waits on the
daemon's own log lines and notify messages, never on sleeps.
"""

import json
import signal

import pytest
import yaml

from callflowd.simulator import Scenario
from tests.doubles.notify import NotifySocket
from tests.doubles.process import DaemonProcess
from tests.harness import FRONT_DESK, front_desk_flow, write_config

pytestmark = pytest.mark.timeout(90)

# At the switch fixture's 100x speed: the phone rings 8 real seconds, far longer than any step
# below needs, and the call is then busy, so its flow goes on to the webhook.
LONG_RING = Scenario(device="busy", ring_seconds=800)


@pytest.fixture
def notify_socket():
    sock = NotifySocket()
    yield sock
    sock.close()


@pytest.fixture
def configure(tmp_path, switch, receiver):
    """Write the config: the front-desk flow posting to ``/<tag>``, phones ringing long enough."""
    def write(tag="old", **top):
        path = write_config(tmp_path, switch, {"front-desk": front_desk_flow({"uri": receiver.url("/" + tag)})})
        config = yaml.safe_load(path.read_text())
        config["devices"]["front_desk_device_id"]["timeout"] = 3600
        config.update(top)
        path.write_text(yaml.safe_dump(config))
        return path
    return write


@pytest.fixture
def start_daemon(notify_socket):
    started = []

    def start(config):
        daemon = DaemonProcess(config, "--log-level", "debug", env={"NOTIFY_SOCKET": notify_socket.address})
        started.append(daemon)
        notify_socket.wait_for("READY", "1", timeout=20)
        return daemon
    yield start
    for daemon in started:
        daemon.kill()


def flow_document(tmp_path, tag, receiver):
    return json.dumps(front_desk_flow({"uri": receiver.url("/" + tag)}))


def ringing(daemon, switch):
    """Place a call and wait until the daemon is bridging it to the long-ringing phone."""
    call = switch.place_call(FRONT_DESK, scenario=LONG_RING)
    daemon.wait_for("call %s: executing bridge" % call.uuid)
    return call


def webhook_paths(receiver):
    return sorted(request.path for request in receiver.requests)


def test_sighup_with_a_good_config_gives_new_calls_the_new_flow_and_lets_live_ones_finish_theirs(
        tmp_path, switch, receiver, configure, start_daemon, notify_socket):
    daemon = start_daemon(configure("old"))
    first = ringing(daemon, switch)

    (tmp_path / "callflows.d" / "front-desk.json").write_text(flow_document(tmp_path, "new", receiver))
    daemon.signal(signal.SIGHUP)
    reloading = notify_socket.wait_for("RELOADING", "1")
    assert int(reloading["MONOTONIC_USEC"]) > 0
    assert notify_socket.wait_for("READY", "1")["STATUS"] == "running; freeswitch up; config reloaded: 1 callflows"
    assert not first.ended, "the first call must still be in progress during the reload"
    assert daemon.wait_for("reload done: 1 callflows (was 1); 1 calls in progress keep their callflow")

    second = switch.place_call(FRONT_DESK, scenario=Scenario(device="busy"))
    second.wait_ended(15)
    first.wait_ended(30)
    receiver.wait_for(2, 15)
    by_call = {(request.query.get("call_id") or request.fields["call_id"])[0]: request.path
               for request in receiver.requests}
    assert by_call == {first.uuid: "/old", second.uuid: "/new"}

    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    assert "Traceback" not in daemon.log


def test_sighup_with_a_bad_config_keeps_the_old_flow_and_says_why(
        tmp_path, switch, receiver, configure, start_daemon, notify_socket):
    daemon = start_daemon(configure("old"))
    first = ringing(daemon, switch)

    (tmp_path / "callflows.d" / "front-desk.json").write_text(
        '{"numbers": ["+10005559999"], "flow": {"module": "device", "data": {"id": "nope"}}}')
    daemon.signal(signal.SIGHUP)
    notify_socket.wait_for("RELOADING", "1")
    status = notify_socket.wait_for("READY", "1")["STATUS"]
    assert status.startswith("running; freeswitch up; reload refused, previous config kept: ")
    assert "front-desk.json" in status and "nope" in status
    line = daemon.wait_for("reload refused, still running the previous config: ")
    assert "ERROR" in line and "front-desk.json" in line

    second = switch.place_call(FRONT_DESK, scenario=Scenario(device="busy"))
    second.wait_ended(15)
    first.wait_ended(30)
    receiver.wait_for(2, 15)
    assert webhook_paths(receiver) == ["/old", "/old"]

    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0


def test_sigterm_lets_the_call_in_progress_finish_and_refuses_new_ones(
        switch, receiver, configure, start_daemon, notify_socket):
    daemon = start_daemon(configure("old", shutdown_grace=60))
    first = ringing(daemon, switch)

    daemon.signal(signal.SIGTERM)
    assert notify_socket.wait_for("STOPPING", "1")["STATUS"] .startswith("stopping; freeswitch ")
    daemon.wait_for("waiting up to 60s for 1 calls in progress to finish")
    late = switch.place_call(FRONT_DESK, scenario=Scenario(device="busy"))
    daemon.wait_for("call %s: not taking new calls (stopping); leaving it parked" % late.uuid)

    assert daemon.wait_exit(timeout=40) == 0
    assert first.ended and first.applications[-1][0] == "voicemail"
    assert receiver.wait_for(1, 5) and webhook_paths(receiver) == ["/old"]
    assert not late.ended and late.applications == []  # untouched, for whoever picks it up
    assert daemon.matching("all calls in progress finished")
    assert daemon.matching("service stopped")


def test_sigterm_leaves_calls_still_running_after_the_grace_parked_not_hung_up(
        switch, configure, start_daemon):
    daemon = start_daemon(configure("old", shutdown_grace=0.5))
    first = ringing(daemon, switch)

    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(timeout=20) == 0
    assert daemon.matching("call %s: still in callflow front-desk after 0.5s; leaving it parked "
                           "in FreeSWITCH for recovery (not hung up)" % first.uuid)
    assert daemon.matching("1 calls left parked in FreeSWITCH after 0.5s")
    assert not first.ended
    assert not [command for command in switch.received if "uuid_kill" in str(command) or "hangup" in str(command)]


def test_a_second_sigterm_stops_at_once(switch, configure, start_daemon):
    daemon = start_daemon(configure("old", shutdown_grace=600))
    first = ringing(daemon, switch)

    daemon.signal(signal.SIGTERM)
    daemon.wait_for("waiting up to 600s for 1 calls in progress to finish")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(timeout=15) == 0
    assert daemon.matching("call %s: still in callflow front-desk at a second stop request" % first.uuid)
    assert not first.ended


def test_sigint_after_sigterm_also_stops_at_once(switch, configure, start_daemon):
    daemon = start_daemon(configure("old", shutdown_grace=600))
    ringing(daemon, switch)

    daemon.signal(signal.SIGTERM)
    daemon.wait_for("waiting up to 600s")
    daemon.signal(signal.SIGINT)
    assert daemon.wait_exit(timeout=15) == 0
    assert daemon.matching("1 calls left parked in FreeSWITCH at a second stop request")


def test_the_watchdog_pings_systemd_while_the_daemon_runs(configure, notify_socket):
    daemon = DaemonProcess(configure(), env={"NOTIFY_SOCKET": notify_socket.address,
                                             "WATCHDOG_USEC": "2000000"})
    try:
        notify_socket.wait_for("READY", "1", timeout=20)
        assert notify_socket.wait_for("WATCHDOG", "1") == {"WATCHDOG": "1"}
        assert notify_socket.wait_for("WATCHDOG", "1") == {"WATCHDOG": "1"}
        daemon.signal(signal.SIGTERM)
        assert daemon.wait_exit() == 0
    finally:
        daemon.kill()
