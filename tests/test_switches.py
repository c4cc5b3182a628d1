"""Several switches: one link each, each call driven where it lives, one down spares the others."""

import gevent
import gevent.event
import gevent.socket
import pytest
import copy

import yaml

from callflowd.config.model import FreeswitchSettings
from callflowd.esl.link import SwitchLink
from callflowd.retry import Retry
from callflowd.simulator import FreeswitchSimulator, Scenario
from tests.doubles.replay_switch import ReplaySwitch
from tests.harness import FRONT_DESK, Daemon, front_desk_flow, write_config

pytestmark = pytest.mark.timeout(60)

WAIT = 20
FAST = Retry(total=None, backoff_factor=0.05, backoff_max=0.2)


@pytest.fixture
def two_switches():
    sims = [FreeswitchSimulator(time_scale=0.1, heartbeat_seconds=1.0, hostname=name) for name in ("a", "b")]
    for sim in sims:
        sim.start()
    yield sims
    for sim in sims:
        sim.stop()


def two_switch_daemon(tmp_path, sims, receiver):
    path = write_config(tmp_path, sims[0], {"front-desk": front_desk_flow({"uri": receiver.url("/m")})})
    config = yaml.safe_load(path.read_text())
    single = config.pop("freeswitch")
    config["switches"] = [dict(copy.deepcopy(single), name="fs-%s" % sim.hostname, port=sim.port,
                               idle_timeout=0.5)  # copies: a shared dict would be dumped as an alias
                          for sim in sims]
    path.write_text(yaml.safe_dump(config))
    return Daemon(path)


def sent_to(sim, uuid):
    return [raw for raw in sim.received if uuid in str(raw)]


def test_each_call_is_driven_on_the_switch_it_lives_on_and_one_switch_down_spares_the_other(
        two_switches, tmp_path, receiver, logs):
    sim_a, sim_b = two_switches
    daemon = two_switch_daemon(tmp_path, two_switches, receiver)
    states = []
    daemon.service.on_connection_state.append(lambda name, state, reason: states.append((name, state)))
    daemon.start()
    try:
        sim_a.wait_for_clients(1)
        sim_b.wait_for_clients(1)
        call_a = sim_a.place_call(FRONT_DESK, scenario=Scenario(device="no_answer", voicemail_seconds=2))
        call_b = sim_b.place_call(FRONT_DESK, scenario=Scenario(device="no_answer", voicemail_seconds=2))
        logs.wait_for("call %s: executing bridge" % call_b.uuid)
        sim_b.stop()  # switch b goes away while both desks ring
        logs.wait_for("switch fs-b: lost the event socket")
        daemon.wait_finished(call_a.uuid, WAIT)
        call_a.wait_ended(WAIT)
        assert [app for app, _ in call_a.applications][-1] == "voicemail"
        assert sent_to(sim_a, call_a.uuid) and not sent_to(sim_a, call_b.uuid)
        assert sent_to(sim_b, call_b.uuid) and not sent_to(sim_b, call_a.uuid)
        assert call_b.uuid in daemon.service.router.calls  # waiting for its switch, not ended
        status = daemon.service.status_text()
        assert status.startswith("running; fs-a up, fs-b ") and "fs-b up" not in status
        assert ("fs-a", "up") in states and ("fs-b", "up") in states
    finally:
        daemon.stop()


def test_on_connected_hooks_run_on_every_connect_and_can_ask_the_switch(tmp_path, receiver, logs):
    with FreeswitchSimulator(time_scale=0.01) as sim:
        path = write_config(tmp_path, sim, {"front-desk": front_desk_flow({"uri": receiver.url("/m")})})
        daemon = Daemon(path)
        seen = []
        daemon.service.on_connected.append(lambda link: seen.append((link.name, link.api("hostname"))))
        daemon.start()
        try:
            sim.disconnect_clients("The system is being shut down.")
            logs.wait_for("switch freeswitch: reconnecting")
            with gevent.Timeout(WAIT):
                while len(seen) < 2:
                    logs.wait_for("switch freeswitch: link up")
                    logs.records.clear()
            assert seen == [("freeswitch", "sim"), ("freeswitch", "sim")]
        finally:
            daemon.stop()


def test_a_hangup_queued_while_the_switch_is_down_is_sent_once_connected():
    uuid = "736a8acb-9a16-4501-8911-d11dcb9bf9cd"
    with ReplaySwitch() as switch:
        host, port = switch.address
        link = SwitchLink(FreeswitchSettings(name="fs", host=host, port=port, reconnect=FAST),
                          on_event=lambda event, link: None)
        link.hangup_later(uuid, "NORMAL_TEMPORARY_FAILURE")
        link.start()
        try:
            sent = switch.wait_for_command("sendmsg %s" % uuid)
            assert b"hangup-cause: NORMAL_TEMPORARY_FAILURE" in sent
        finally:
            link.stop()


class NotifySocket:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET; records what it gets."""

    def __init__(self, path):
        self.path = str(path)
        self.messages = []
        self._changed = gevent.event.Event()
        self.sock = gevent.socket.socket(gevent.socket.AF_UNIX, gevent.socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.reader = gevent.spawn(self._read)

    def _read(self):
        while True:
            self.messages.append(self.sock.recv(4096).decode("utf-8"))
            self._changed.set()

    def wait_for(self, text, timeout=WAIT):
        with gevent.Timeout(timeout, AssertionError("no %r in %r" % (text, self.messages))):
            while not any(text in message for message in self.messages):
                self._changed.clear()
                self._changed.wait()
        return [m for m in self.messages if text in m][0]

    def close(self):
        self.reader.kill()
        self.sock.close()


def test_systemd_status_shows_each_switch_and_why_one_is_down(two_switches, tmp_path, receiver, monkeypatch):
    notify = NotifySocket(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", notify.path)
    sim_a, sim_b = two_switches
    daemon = two_switch_daemon(tmp_path, two_switches, receiver).start()
    try:
        notify.wait_for("STATUS=running; fs-a up, fs-b up")
        sim_b.stop()
        status = notify.wait_for("STATUS=running; fs-a up, fs-b down (")
        assert "The system is being shut down" in status or "could not connect" in status
        assert any("READY=1" in message.split("\n") for message in notify.messages)
    finally:
        daemon.stop()
        notify.close()


def test_a_flapping_switch_does_not_disturb_calls_on_the_other(two_switches, tmp_path, receiver, logs):
    sim_a, sim_b = two_switches
    daemon = two_switch_daemon(tmp_path, two_switches, receiver).start()
    try:
        sim_b.wait_for_clients(1)
        call_a = sim_a.place_call(FRONT_DESK, scenario=Scenario(device="no_answer", voicemail_seconds=2))
        for flap in range(3):
            sim_b.wait_for_clients(1)
            sim_b.disconnect_clients("The system is being shut down.")
            logs.wait_for("switch fs-b: reconnecting")
            logs.records.clear()
        daemon.wait_finished(call_a.uuid, WAIT)
        call_a.wait_ended(WAIT)
        assert [app for app, _ in call_a.applications][-1] == "voicemail"
        assert len(receiver.wait_for(1, WAIT)) == 1
    finally:
        daemon.stop()


def test_a_reload_connects_a_switch_added_and_lets_go_of_one_removed_once_its_call_ends(
        two_switches, tmp_path, receiver, logs):
    sim_a, sim_b = two_switches
    path = write_config(tmp_path, sim_a, {"front-desk": front_desk_flow({"uri": receiver.url("/m")})})
    config = yaml.safe_load(path.read_text())
    single = config.pop("freeswitch")

    def write(*sims):
        config["switches"] = [dict(copy.deepcopy(single), name="fs-%s" % sim.hostname, port=sim.port)
                              for sim in sims]
        path.write_text(yaml.safe_dump(config))

    write(sim_a)
    daemon = Daemon(path).start()
    try:
        call_a = sim_a.place_call(FRONT_DESK, scenario=Scenario(device="no_answer", voicemail_seconds=2))
        logs.wait_for("call %s: executing bridge" % call_a.uuid)

        write(sim_a, sim_b)
        assert daemon.service.reload() is True
        sim_b.wait_for_clients(1, timeout=WAIT)
        assert logs.wait_for("reload: switch fs-b added; connecting")

        write(sim_b)
        assert daemon.service.reload() is True
        logs.wait_for("reload: switch fs-a removed; letting it go once its 1 calls end")
        daemon.wait_finished(call_a.uuid, WAIT)  # the call in progress kept its switch to the end
        assert [app for app, _ in call_a.applications][-1] == "voicemail"
        logs.wait_for("switch fs-a: link stopped", timeout=WAIT)
        assert list(daemon.service.links) == ["fs-b"]
        call_b = sim_b.place_call(FRONT_DESK, scenario=Scenario(device="busy", voicemail_seconds=1))
        daemon.wait_finished(call_b.uuid, WAIT)
    finally:
        daemon.stop()


def test_a_call_parked_while_the_link_takes_back_its_calls_waits_without_calling_the_switch_down(
        tmp_path, receiver, logs):
    with FreeswitchSimulator(time_scale=0.01) as sim:
        path = write_config(tmp_path, sim, {"front-desk": front_desk_flow({"uri": receiver.url("/m")})})
        daemon = Daemon(path)
        daemon.start()
        hooks_running, hooks_may_end = gevent.event.Event(), gevent.event.Event()

        def slow_recovery(link):
            hooks_running.set()
            hooks_may_end.wait(WAIT)

        daemon.service.on_connected.append(slow_recovery)
        try:
            sim.disconnect_clients("The system is being shut down.")
            assert hooks_running.wait(WAIT), "the daemon did not reconnect"
            uuid = sim.place_call(FRONT_DESK, scenario=Scenario(device="busy")).uuid
            logs.wait_for("is back and taking back its calls; the flow waits for that")
            assert sent_to(sim, uuid) == []  # nothing goes to the call before the hooks end
            hooks_may_end.set()
            call = daemon.wait_finished(uuid)
            assert [step.module for step in call.history] == ["device", "webhook", "voicemail"]
            assert not [r for r in logs.records if "is down; the flow waits" in r.getMessage()]
        finally:
            hooks_may_end.set()
            daemon.stop()
