"""The load generator (tests/benchmarks/loadgen.py) plays the real switch, not a model of it.

Its frames must be capture b's, byte for byte but for what it documents (fresh uuids, the
Event-UUIDs echoed, the destination number, the applications' arguments), and the daemon
must see the same call from it as from the built-in simulator: the same events, in the
same order, with the same values in the headers it reads, and take the same path.
"""

import re
import subprocess
import sys

import gevent
import pytest

from callflowd.esl import names, protocol
from callflowd.esl.connection import EslConnection
from tests.benchmarks.loadgen import CAPTURE, CAPTURE_DESTINATION, Switch, Templates
from tests.doubles.replay_switch import load_capture, sent_commands
from tests.harness import FRONT_DESK, Daemon, front_desk_flow, write_config

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# What the daemon sends for the spec's flow (recorded from it; see the end-to-end test below)
APPS = (("set", "continue_on_fail=true"), ("bridge", "{originate_timeout=20}user/1000@example.com"),
        ("answer", None), ("voicemail", "default example.com 1000"))
# The headers the daemon reads from events (calls/facts.py, calls/router.py, calls/call.py,
# actions/device.py, hooks/lifecycle.py)
READ = (names.EVENT_NAME, names.APPLICATION, names.CALL_DIRECTION, names.CALLER_DESTINATION_NUMBER,
        names.CALLER_CALLER_ID_NUMBER, names.CALLER_CALLER_ID_NAME, names.CALLER_CALLEE_ID_NAME,
        names.CALLER_CALLEE_ID_NUMBER, names.CALLER_CONTEXT, names.HANGUP_CAUSE, names.VAR_ORIGINATE_DISPOSITION,
        names.VAR_DIALSTATUS, names.VAR_LAST_BRIDGE_PROTO_CAUSE, "variable_outside_call")


def event_bodies(data):
    """The bodies of the plain events in ``data``; every Content-Length must hold."""
    return [body for headers, body, _ in protocol.iter_frames(data)
            if headers.get(names.CONTENT_TYPE) == names.EVENT_PLAIN]


def events_of(data):
    return [protocol.parse_plain_event(body) for body in event_bodies(data)]


def capture_call_bodies():
    """Capture b's events about a channel (system events such as HEARTBEAT left out)."""
    return [body for body in event_bodies(load_capture(CAPTURE))
            if protocol.parse_plain_event(body).get(names.UNIQUE_ID)]


def capture_call_events():
    return [protocol.parse_plain_event(body) for body in capture_call_bodies()]


def play_call(switch, event_uuids):
    """One call through ``switch``, commanded as the daemon commands the spec's flow."""
    uuid = switch.place()
    connection = switch.connections[0]
    for (app, arg), event_uuid in zip(APPS, event_uuids):
        switch.command(connection, ("api uuid_setvar_multi %s callflowd_node=flow" % uuid).encode())
        lines = ["sendmsg " + uuid, "call-command: execute", "execute-app-name: " + app]
        if arg:
            lines.append("execute-app-arg: " + arg)
        lines.append("Event-UUID: " + event_uuid)
        switch.command(connection, "\n".join(lines).encode())
    return uuid


def subscribed_switch(subscription):
    output = []
    switch = Switch(Templates())
    connection = switch.connect(output.append)
    switch.command(connection, b"auth ClueCon")
    switch.command(connection, ("event plain " + subscription).encode())
    output.clear()
    return switch, output


def fresh_event_uuids(count=4):
    return ["%08x-1111-4222-8333-%012x" % (n, n) for n in range(1, count + 1)]


def test_a_call_is_capture_b_byte_for_byte_but_for_uuids_number_and_arguments():
    switch, output = subscribed_switch("ALL")
    event_uuids = fresh_event_uuids()
    caller = play_call(switch, event_uuids)
    played = event_bodies(b"".join(output))
    captured = capture_call_bodies()
    assert len(played) == len(captured) > 70

    mapping = {}  # the capture's uuid -> the one played, position by position
    for mine, theirs in zip(played, captured):
        old_uuids, new_uuids = UUID.findall(theirs.decode()), UUID.findall(mine.decode())
        assert len(old_uuids) == len(new_uuids)
        for old, new in zip(old_uuids, new_uuids):
            assert mapping.setdefault(old, new) == new, "%s played as two uuids" % old
    assert len(set(mapping.values())) == len(mapping), "two of the capture's uuids played as one"
    inverse = {new.encode(): old.encode() for old, new in mapping.items()}
    sent_args = [(protocol.url_encode(new).encode(), protocol.url_encode(old).encode()) for new, old in (
        (APPS[0][1], "continue_on_fail=true"), (APPS[1][1], "{call_timeout=5}user/1000@127.0.0.1"),
        (APPS[3][1], "default 127.0.0.1 1000"), (FRONT_DESK, CAPTURE_DESTINATION))]
    for mine, theirs in zip(played, captured):
        back = re.sub(UUID.pattern.encode(), lambda m: inverse[m.group(0)], mine)
        for new, old in sent_args:
            back = back.replace(new, old)
        assert back == theirs

    core = captured[0].split(b"\nCore-UUID: ")[1][:36].decode()
    assert mapping[core] == core, "the switch keeps its Core-UUID"
    assert caller in mapping.values()
    fresh = [new for old, new in mapping.items() if old != core]
    assert not set(fresh) & set(mapping), "every other uuid is fresh"
    # the Application-UUID of each application the client ran is the Event-UUID it sent
    events = [protocol.parse_plain_event(body) for body in played]
    ran = {e.get(names.APPLICATION): e.get(names.APPLICATION_UUID) for e in events
           if e.name == names.CHANNEL_EXECUTE and e.get(names.UNIQUE_ID) == caller}
    for (app, arg), event_uuid in zip(APPS, event_uuids):
        assert ran[app] == event_uuid
        complete = [e for e in events if e.name == names.CHANNEL_EXECUTE_COMPLETE
                    and e.get(names.APPLICATION_UUID) == event_uuid]
        assert len(complete) == 1 and complete[0].get(names.APPLICATION) == app
        assert complete[0].get(names.APPLICATION_DATA) == arg
    assert switch.stats()["unexpected"] == 0 and switch.stats()["live"] == 0


def test_every_call_gets_its_own_uuids():
    switch, output = subscribed_switch("ALL")
    seen = []
    for _ in range(2):
        play_call(switch, fresh_event_uuids())
        seen.append(set(UUID.findall(b"".join(output).decode())) - set(fresh_event_uuids()))
        output.clear()
    core = capture_call_events()[0].get(names.CORE_UUID)
    assert seen[0] & seen[1] == {core}
    assert len(seen[0]) == len(seen[1]) > 5


def test_a_client_gets_only_the_events_it_subscribed_to_in_the_captures_order():
    switch, output = subscribed_switch(" ".join(names.SUBSCRIBED_EVENTS))
    play_call(switch, fresh_event_uuids())
    played = events_of(b"".join(output))
    expected = [e for e in capture_call_events() if e.name in names.SUBSCRIBED_EVENTS]
    assert [(e.name, e.get(names.APPLICATION)) for e in played] == [
        (e.name, e.get(names.APPLICATION)) for e in expected]
    assert len(played) == 22


def test_commands_to_a_call_it_does_not_have_get_freeswitchs_errors():
    switch, output = subscribed_switch("ALL")
    connection = switch.connections[0]
    gone = "00000000-0000-4000-8000-000000000000"
    switch.command(connection, ("sendmsg %s\ncall-command: execute\nexecute-app-name: answer" % gone).encode())
    switch.command(connection, ("api uuid_setvar_multi %s a=1" % gone).encode())
    frames = list(protocol.iter_frames(b"".join(output)))
    assert frames[0][0][names.REPLY_TEXT] == "-ERR invalid session id [%s]" % gone
    assert frames[1][1] == b"-ERR No such channel!\n"


def test_the_caller_stays_in_voicemail_as_long_as_asked():
    now = [100.0]
    output = []
    switch = Switch(Templates(), voicemail_seconds=8.0, clock=lambda: now[0])
    connection = switch.connect(output.append)
    switch.command(connection, b"auth ClueCon")
    switch.command(connection, ("event plain " + " ".join(names.SUBSCRIBED_EVENTS)).encode())
    play_call(switch, fresh_event_uuids())
    assert events_of(b"".join(output))[-1].get(names.APPLICATION) == "voicemail"
    assert switch.due() == 8.0 and switch.stats()["live"] == 1
    now[0] += 8.0
    assert switch.due() is None
    assert [e.name for e in events_of(b"".join(output))[-4:]] == [
        names.CHANNEL_HANGUP, names.CHANNEL_EXECUTE_COMPLETE, names.CHANNEL_EXECUTE_COMPLETE,
        names.CHANNEL_HANGUP_COMPLETE]
    assert switch.stats()["ended"] == 1 and switch.stats()["live"] == 0


def test_a_call_hung_up_between_applications_completes_none():
    switch, output = subscribed_switch(" ".join(names.SUBSCRIBED_EVENTS))
    uuid = switch.place()
    output.clear()
    switch.command(switch.connections[0], ("api uuid_kill %s" % uuid).encode())
    frames = list(protocol.iter_frames(b"".join(output)))
    assert frames[0][1] == b"+OK\n"
    events = events_of(b"".join(output))
    assert [e.name for e in events] == [names.CHANNEL_HANGUP, names.CHANNEL_EXECUTE_COMPLETE,
                                        names.CHANNEL_HANGUP_COMPLETE]
    assert events[1].get(names.APPLICATION) == "park"  # the park ends; nothing else was running
    assert {e.get(names.UNIQUE_ID) for e in events} == {uuid}


def test_the_capture_client_sent_the_applications_the_generator_serves():
    # the generator's segments are cut at the capture's client applications, in this order
    sent = [block for block in sent_commands(CAPTURE) if block.startswith(b"sendmsg")]
    apps = [re.search(rb"execute-app-name: (\w+)", block).group(1).decode() for block in sent
            if b"execute-app-name" in block]
    assert apps == [app for app, _ in APPS]


# ------------------------------------------------------------------------------- end to end


class Generator:
    """tests/benchmarks/loadgen.py in its own process (it runs no gevent)."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, "-m", "tests.benchmarks.loadgen"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.host, self.port = "127.0.0.1", int(self.process.stdout.readline())

    def ask(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        with gevent.Timeout(20):
            return self.process.stdout.readline().split(None, 1)

    def stop(self):
        self.process.stdin.write("quit\n")
        self.process.stdin.flush()
        self.process.wait(10)


@pytest.fixture
def recorded(monkeypatch):
    """What the daemon reads and writes on its event socket, per call uuid."""
    seen = {"events": [], "commands": []}
    handle_frame, write = EslConnection._handle_frame, EslConnection._write

    def recording_handle_frame(connection, headers, body):
        if headers.get(names.CONTENT_TYPE) == names.EVENT_PLAIN and body:
            seen["events"].append(protocol.parse_plain_event(body))
        return handle_frame(connection, headers, body)

    def recording_write(connection, raw, what, deadline):
        seen["commands"].append(raw.decode())
        return write(connection, raw, what, deadline)

    monkeypatch.setattr(EslConnection, "_handle_frame", recording_handle_frame)
    monkeypatch.setattr(EslConnection, "_write", recording_write)
    return seen


def run_calls(tmp_path, peer, receiver, place, recorded, count=3):
    tmp_path.mkdir()
    config = write_config(tmp_path, peer, {"front-desk": front_desk_flow({"uri": receiver.url("/missed")})})
    daemon = Daemon(config).start()
    try:
        recorded["events"].clear()
        recorded["commands"].clear()
        uuids = place(count)
        calls = [daemon.wait_finished(uuid) for uuid in uuids]
        receiver.wait_for(count, timeout=10)
    finally:
        daemon.service.halt()
    return uuids, calls


def call_view(uuid, recorded):
    """What the daemon saw of one call: the headers it reads, uuids as roles; its commands."""
    sent = {}  # event uuid -> app
    commands = []
    for raw in recorded["commands"]:
        if uuid not in raw or raw.startswith("api hash"):  # the claim and its release (calls/ownership.py)
            continue
        app = re.search(r"execute-app-name: (\w+)", raw)
        event_uuid = re.search(r"Event-UUID: (\S+)", raw)
        if app and event_uuid:
            sent[event_uuid.group(1)] = app.group(1)
        commands.append(UUID.sub("<uuid>", raw.replace(uuid, "<call>")))
    legs = {}
    events = []
    for event in recorded["events"]:
        leg = event.get(names.UNIQUE_ID)
        related = leg == uuid or event.get("Other-Leg-Unique-ID") == uuid or \
            event.get("variable_bridge_uuid") == uuid or event.get("variable_originating_leg_uuid") == uuid
        if not related:
            continue
        role = "caller" if leg == uuid else legs.setdefault(leg, "leg%d" % (len(legs) + 1))
        app_uuid = event.get(names.APPLICATION_UUID)
        events.append((role,) + tuple(event.get(name) for name in READ)
                      + ("ours:" + sent[app_uuid] if app_uuid in sent else "theirs" if app_uuid else None,))
    return events, commands


def test_the_daemon_sees_the_same_calls_from_the_generator_as_from_the_simulator(tmp_path, switch, receiver, recorded):
    generator = Generator()
    try:
        def place_on_generator(count):
            assert generator.ask("place %d 0" % count)[0] == "placed"
            with gevent.Timeout(10):
                while len([e for e in recorded["events"] if e.name == names.CHANNEL_PARK]) < count:
                    gevent.sleep(0.01)
            return [e.get(names.UNIQUE_ID) for e in recorded["events"] if e.name == names.CHANNEL_PARK]

        uuids, calls = run_calls(tmp_path / "generator", generator, receiver, place_on_generator, recorded)
        generated = [call_view(uuid, recorded) for uuid in uuids]
        hooks_generated = list(receiver.requests)
        stats = generator.ask("stats")
    finally:
        generator.stop()
    assert '"unexpected": 0' in stats[1]

    receiver.requests.clear()
    from callflowd.simulator import Scenario
    scenario = Scenario(device="busy", ring_seconds=0, voicemail_seconds=0)
    sim_uuids, sim_calls = run_calls(
        tmp_path / "simulator", switch, receiver,
        lambda count: [switch.place_call(FRONT_DESK, scenario=scenario).uuid for _ in range(count)], recorded)
    simulated = [call_view(uuid, recorded) for uuid in sim_uuids]

    for call in calls + sim_calls:
        assert [(s.module, s.outcome) for s in call.history] == [
            ("device", "USER_BUSY"), ("webhook", "_"), ("voicemail", "_")]
    assert len(generated) == len(simulated) == 3
    for (events, commands), (sim_events, sim_commands) in zip(generated, simulated):
        assert len(events) == 22 and len(commands) == 3
        assert commands == sim_commands
        assert events == sim_events
    assert len(hooks_generated) == len(receiver.requests) == 3
    # the same webhooks, but for what names the call and the switch (the simulator is "sim")
    per_switch = ("call_id", "switch_hostname")
    sim_forms = [{k: v for k, v in request.fields.items() if k not in per_switch} for request in receiver.requests]
    for request in hooks_generated:
        assert request.fields["call_id"][0] in uuids
        assert request.fields["switch_hostname"] == [capture_call_events()[0].get(names.HOSTNAME)]
        assert {k: v for k, v in request.fields.items() if k not in per_switch} in sim_forms
