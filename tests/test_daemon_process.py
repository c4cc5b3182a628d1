"""``callflowd run`` as systemd runs it: a real process, SIGTERM, a switch that restarts."""

import signal
import subprocess
import sys

import pytest

from callflowd.simulator import Scenario
from tests.harness import FRONT_DESK, front_desk_flow, write_config

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def daemon(tmp_path, switch, receiver):
    config = write_config(tmp_path, switch, {"front-desk": front_desk_flow({"uri": receiver.url("/m")})})
    process = subprocess.Popen([sys.executable, "-m", "callflowd", "run", "-c", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield process
    if process.poll() is None:
        process.kill()
        process.communicate(timeout=10)


def stop(process):
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)
    return process.returncode, stderr


def test_the_daemon_runs_a_call_and_stops_cleanly_on_sigterm(switch, receiver, daemon):
    switch.wait_for_clients(1, timeout=15)
    call = switch.place_call(FRONT_DESK, scenario=Scenario(device="busy"))
    call.wait_ended(15)
    receiver.wait_for(1, 15)
    status, log = stop(daemon)
    assert status == 0, log
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if call.uuid in line]
    assert any("matches callflow front-desk" in line for line in lines)
    assert any("bridge failed: USER_BUSY (sip:486)" in line for line in lines)
    assert any("moving to action voicemail" in line for line in lines)
    assert any("webhook delivered" in line for line in lines)
    assert "service stopped" in log


def test_the_daemon_reconnects_after_the_switch_drops_it(switch, receiver, daemon):
    switch.wait_for_clients(1, timeout=15)
    switch.disconnect_clients()
    switch.wait_for_clients(1, timeout=15)  # a new connection, authenticated and subscribed
    call = switch.place_call(FRONT_DESK, scenario=Scenario(device="busy"))
    call.wait_ended(15)
    assert call.applications[-1][0] == "voicemail"
    status, log = stop(daemon)
    assert status == 0
    assert "lost the event socket" in log and "reconnecting to" in log
