"""A bad day on the event socket (issue 6): each fault, and the caller never left in dead air.

The whole daemon runs against the simulator, behind a scripted proxy
(tests/doubles/fault_proxy.py) that makes the event socket fail the way
switches were seen to. The caller rings the front desk, which does not
answer; the fault lands while it rings; the caller must still get a next step
(the webhook, then voicemail) or a hangup -- never silence.
"""

import gevent
import pytest
import yaml

from callflowd.esl import protocol
from callflowd.simulator import FreeswitchSimulator, Scenario
from tests.doubles.fault_proxy import FaultProxy
from tests.harness import FRONT_DESK, Daemon, front_desk_flow, write_config

pytestmark = pytest.mark.timeout(60)

WAIT = 20
RINGING = "execute-app-name: bridge"
OTHER_CHANNEL = "0b8a3f4e-1a2b-4c3d-9e8f-000000000000"


@pytest.fixture
def sim():
    # Time runs at 1/10: the desk rings 2 s; a HEARTBEAT every 0.1 s keeps a healthy link alive.
    simulator = FreeswitchSimulator(time_scale=0.1, heartbeat_seconds=1.0)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def proxy(sim):
    with FaultProxy((sim.host, sim.port)) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def start_daemon(tmp_path, proxy, receiver):
    daemons = []

    def start(**freeswitch):
        host, port = proxy.address
        path = write_config(tmp_path, _At(host, port), {"front-desk": front_desk_flow({"uri": receiver.url("/m")})})
        config = yaml.safe_load(path.read_text())
        config["freeswitch"].update({"command_timeout": 1, "idle_timeout": 0.5}, **freeswitch)
        path.write_text(yaml.safe_dump(config))
        daemons.append(Daemon(path).start())
        return daemons[-1]

    yield start
    for daemon in daemons:
        daemon.stop()


class _At:
    def __init__(self, host, port):
        self.host, self.port = host, port


def ring_the_desk(sim, daemon):
    """A caller rings the front desk, which does not answer (2 s); returns the simulated call."""
    return sim.place_call(FRONT_DESK, scenario=Scenario(device="no_answer", voicemail_seconds=2))


def apps(sim_call):
    return [app for app, _ in sim_call.applications]


def assert_reached_voicemail(daemon, sim_call, receiver):
    daemon.wait_finished(sim_call.uuid, WAIT)
    sim_call.wait_ended(WAIT)
    assert apps(sim_call)[-1] == "voicemail", apps(sim_call)
    assert len(receiver.wait_for(1, WAIT)) == 1


def test_a_silent_switch_is_declared_dead_and_the_ringing_caller_still_reaches_voicemail(
        sim, proxy, start_daemon, receiver, logs):
    daemon = start_daemon()
    sim_call = ring_the_desk(sim, daemon)
    proxy.wait_for_command(RINGING)
    proxy.go_silent()  # half-open: no FIN, no HEARTBEAT, nothing
    assert "no HEARTBEAT either" in logs.wait_for("no frame from FreeSWITCH for")
    proxy.wait_for_sessions(2)
    assert_reached_voicemail(daemon, sim_call, receiver)
    assert apps(sim_call).count("bridge") == 1


def test_a_switch_that_stops_reading_is_declared_dead_and_the_caller_gets_the_next_step(
        sim, proxy, start_daemon, receiver, logs):
    daemon = start_daemon()
    proxy.swallow_commands(starting_with=RINGING)
    sim_call = ring_the_desk(sim, daemon)
    logs.wait_for("FreeSWITCH is not answering", WAIT)
    assert_reached_voicemail(daemon, sim_call, receiver)
    assert "bridge" not in apps(sim_call)  # it never reached the switch
    assert logs.matching("showed no sign of running it")


def test_a_sendmsg_reply_later_than_command_timeout_lets_the_call_go_on_without_a_second_ring(
        sim, proxy, start_daemon, receiver, logs):
    daemon = start_daemon(idle_timeout=3)  # a reply 1.5 s late is slow, not stalled
    proxy.delay_reply_to(RINGING, 1.5)
    sim_call = ring_the_desk(sim, daemon)
    logs.wait_for("no reply within 1.0s", WAIT)
    logs.wait_for("late reply to 'sendmsg", WAIT)
    assert_reached_voicemail(daemon, sim_call, receiver)
    assert apps(sim_call).count("bridge") == 1
    assert len(proxy.sessions) == 1


def test_a_gigabyte_content_length_is_refused_and_the_connection_re_established(
        sim, proxy, start_daemon, receiver, logs):
    daemon = start_daemon()
    sim_call = ring_the_desk(sim, daemon)
    proxy.wait_for_command(RINGING)
    proxy.inject(b"Content-Length: 1000000000\nContent-Type: text/event-plain\n\n")
    assert "over the 1048576-byte limit" in logs.wait_for("refused a frame: Content-Length 1000000000")
    proxy.wait_for_sessions(2)
    assert_reached_voicemail(daemon, sim_call, receiver)


def test_a_64_mb_header_line_is_refused_at_the_line_limit_with_a_short_excerpt(
        sim, proxy, start_daemon, receiver, logs):
    daemon = start_daemon()
    sim_call = ring_the_desk(sim, daemon)
    proxy.wait_for_command(RINGING)
    flood = gevent.spawn(proxy.inject, b"Content-Type: " + b"\x01" * (64 << 20) + b"\n\n")
    line = logs.wait_for("refused a frame: header line longer than 65536 bytes")
    assert "'Content-Type: \\x01\\x01" in line and len(line) < 400
    proxy.wait_for_sessions(2)
    assert_reached_voicemail(daemon, sim_call, receiver)
    flood.kill()


@pytest.mark.parametrize("body", [
    b'{"Event-Name": "CHANNEL_EXECUTE_COMPLETE", "Unique-ID": ',  # cut short
    b"[" * 100000 + b"]" * 100000,                                 # nested past the recursion limit
    b'["not", "an", "object"]',
], ids=["truncated", "deeply-nested", "not-an-object"])
def test_a_malformed_json_event_costs_that_event_not_the_connection(
        sim, proxy, start_daemon, receiver, logs, body):
    daemon = start_daemon()
    sim_call = ring_the_desk(sim, daemon)
    proxy.wait_for_command(RINGING)
    proxy.inject(b"Content-Length: %d\nContent-Type: text/event-json\n\n%s" % (len(body), body))
    logs.wait_for("dropping an undecodable text/event-json event")
    assert_reached_voicemail(daemon, sim_call, receiver)
    assert len(proxy.sessions) == 1


def test_an_unsolicited_reply_is_dropped_and_never_answers_another_callers_command(
        sim, proxy, start_daemon, receiver, logs):
    daemon = start_daemon(idle_timeout=3)
    proxy.inject(protocol.encode_command_reply("+OK"))  # nothing is waiting
    logs.wait_for("dropping a reply nobody asked for (no command is waiting)")
    proxy.delay_reply_to(RINGING, 0.5)
    sim_call = ring_the_desk(sim, daemon)
    proxy.wait_for_command(RINGING)
    # the bridge's recovery mark is written ahead of it, in the same write: once its reply
    # is through, the sendmsg is the command waiting
    proxy.wait_for_reply_to("callflowd_waiting=bridge")
    proxy.inject(protocol.encode_command_reply("-ERR invalid session id [%s]" % OTHER_CHANNEL))
    assert "it names channel %s" % OTHER_CHANNEL in logs.wait_for("dropping a reply nobody asked for (it names")
    assert_reached_voicemail(daemon, sim_call, receiver)
    assert apps(sim_call).count("bridge") == 1
    assert len(proxy.sessions) == 1
