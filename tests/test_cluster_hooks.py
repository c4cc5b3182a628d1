"""Two daemons with the same lifecycle hooks on one (simulated) switch: each channel event is
sent once across the cluster, as one daemon alone sends it.

A call a flow drives has its hooks sent by the daemon that drives it (the claim's winner); a
channel no flow drives (a B-leg, an unrouted call) by the one its uuid picks among the live
daemons (hooks/senders.py). What the switch emitted is read by a plain event-socket client
beside the daemons, and compared with what the receiver got.
"""

import collections
import json
import time

import gevent
import pytest

from callflowd.calls import ownership
from callflowd.config.model import Hook
from callflowd.esl.event import Event
from callflowd.hooks import lifecycle
from callflowd.hooks.senders import Senders, sender_of
from callflowd.simulator import Scenario
from tests.doubles.esl_client import RawClient, is_event
from tests.harness import FRONT_DESK, Daemon, front_desk_flow, write_config
from tests.test_cluster import crash, slow_switch  # noqa: F401 (slow_switch is a fixture)

pytestmark = pytest.mark.timeout(60)

LEASE = 1.0
SWITCH = "freeswitch"  # the switch's name when the config gives none
HOOKED = ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_DESTROY")
ALL_EVENTS = ["channel_create", "channel_answer", "channel_bridge", "channel_destroy"]
UNROUTED = "+19995550100"


@pytest.fixture
def watcher(switch):
    """The switch's own account of the channels: a client subscribed to the hooked events."""
    client = RawClient(switch)
    client.login("plain " + " ".join(HOOKED))
    yield client
    client.close()


@pytest.fixture
def start_daemon(tmp_path, switch, receiver):
    """``start(name)``: a daemon named ``name`` in a cluster on ``switch``, hooking every channel
    event to the receiver's /hooks; started again under the same name, it keeps its outbox."""
    started = []

    def start(name, on=None):
        workdir = tmp_path / name
        workdir.mkdir(exist_ok=True)
        hooks = [{"events": ALL_EVENTS, "uri": receiver.url("/hooks"), "format": "json"}]
        flows = {"front-desk": front_desk_flow({"uri": receiver.url("/flow")})}
        daemon = Daemon(write_config(workdir, on or switch, flows, hooks=hooks,
                                     cluster={"name": name, "lease": LEASE})).start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.service.state.value != "stopped":
            daemon.stop()


def switch_saw(watcher):
    """(uuid, hook event) of every hooked event the switch emitted."""
    return [(headers["Unique-ID"], headers["Event-Name"].lower())
            for headers in map(dict, watcher.events())]


def hooks_got(receiver):
    return [json.loads(request.body) for request in receiver.requests if request.path == "/hooks"]


def place_calls(switch, count):
    """Busy and answered calls to the front desk (each rings a phone: a B-leg), and unrouted ones."""
    calls = [switch.place_call(FRONT_DESK, scenario=Scenario(
        device="answer" if n % 4 == 0 else "busy", ring_seconds=0, talk_seconds=1, voicemail_seconds=1))
        for n in range(count)]
    unrouted = [switch.place_call(UNROUTED, scenario=Scenario(caller_hangup_after=0.5)) for _ in range(count // 4)]
    return calls, unrouted


def wait_all_hooked(watcher, receiver, sim_calls):
    """Every call over, as the switch tells it; then a hook at the receiver for each of its events."""
    for sim_call in sim_calls:
        sim_call.wait_ended(15)
        watcher.wait_for(is_event("CHANNEL_DESTROY", uuid=sim_call.uuid))
    wanted = len(switch_saw(watcher))
    missed = sum(1 for request in receiver.requests if request.path == "/flow")
    try:
        receiver.wait_for(wanted + missed, 15)
    except TimeoutError:
        missing = collections.Counter(switch_saw(watcher)) - collections.Counter(
            (hook["call_id"], hook["event"]) for hook in hooks_got(receiver))
        raise AssertionError("%d hooks never came: %s" % (len(missing), sorted(missing))) from None


def wait_until(predicate, what, timeout=5.0):
    """Poll: "a daemon has read another's lease" is no event anybody sends."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        gevent.sleep(0.05)


def both_see_each_other(*daemons):
    """Each counts the other once it has seen its lease renewed: until then both send."""
    for daemon in daemons:
        wait_until(lambda: daemon.service.ownership.live_names(SWITCH) == {"cf-a", "cf-b"},
                   "%s sees both" % daemon.service.ownership.name)


def test_a_lease_left_by_a_daemon_that_died_before_we_started_takes_no_share_of_the_hooks(
        switch, receiver, watcher, start_daemon):
    """Only ever one value seen: maybe a dead daemon's. Counted live for a lease after our
    start, it took a share of the channels no flow drives, and nobody sent those hooks."""
    switch.api("hash", "insert/%s/cf-gone/crashed.7" % ownership.LEASES)
    start_daemon("cf-a")
    calls, unrouted = place_calls(switch, 8)  # at once: within a lease of cf-a's start
    wait_all_hooked(watcher, receiver, calls + unrouted)


def test_two_daemons_send_each_channel_event_once_and_the_driver_sends_the_path(
        switch, receiver, watcher, start_daemon):
    first, second = start_daemon("cf-a"), start_daemon("cf-b")
    both_see_each_other(first, second)
    calls, unrouted = place_calls(switch, 8)  # the switch tells cf-a first: cf-a wins the claims
    wait_all_hooked(watcher, receiver, calls + unrouted)

    first.stop()  # restarted: now the switch tells cf-b first, and cf-b wins
    restarted = start_daemon("cf-a")
    both_see_each_other(restarted, second)
    more_calls, more_unrouted = place_calls(switch, 8)
    calls, unrouted = calls + more_calls, unrouted + more_unrouted
    wait_all_hooked(watcher, receiver, more_calls + more_unrouted)
    gevent.sleep(0.5)  # a duplicate would be on its way by now: give it the chance to come

    saw, hooks = switch_saw(watcher), hooks_got(receiver)
    got = [(hook["call_id"], hook["event"]) for hook in hooks]
    doubled = sorted(key for key, count in collections.Counter(got).items() if count > 1)
    assert not doubled, "%d of %d hooks sent twice: %s" % (len(doubled), len(got), doubled[:5])
    assert sorted(got) == sorted(saw)
    b_legs = {uuid for uuid, _ in saw} - {c.uuid for c in calls + unrouted}
    assert len(b_legs) == len(calls)

    drivers = {}
    for sim_call in calls:
        (drivers[sim_call.uuid],) = [daemon for daemon in (first, second, restarted)
                                     if sim_call.uuid in daemon.finished and daemon.finished[sim_call.uuid].history]
    assert {daemon.service.ownership.name for daemon in drivers.values()} == {"cf-a", "cf-b"}
    for hook in hooks:
        if hook["event"] == "channel_destroy" and hook["call_id"] in drivers:
            history = drivers[hook["call_id"]].finished[hook["call_id"]].history
            assert [step["module"] for step in json.loads(hook["flow_path"])] == [step.module for step in history]
            assert hook["callflow_id"] == "front-desk"


def test_a_call_taken_over_from_a_dead_daemon_has_its_later_hooks_sent_by_the_new_owner(
        slow_switch, receiver, start_daemon, logs):
    first = start_daemon("cf-a", slow_switch)
    sim_call = slow_switch.place_call(FRONT_DESK, scenario=Scenario(device="no_answer", voicemail_seconds=2))
    logs.wait_for("call %s: executing bridge" % sim_call.uuid)
    second = start_daemon("cf-b", slow_switch)
    crash(first)
    logs.wait_for("call %s: taking the call back on switch freeswitch" % sim_call.uuid, timeout=LEASE + 5)
    second.wait_finished(sim_call.uuid, timeout=20)
    sim_call.wait_ended(10)
    receiver.wait_for(1 + 3, 10)  # the flow's webhook; the caller's create, answer and destroy
    gevent.sleep(0.5)  # a duplicate would be on its way by now

    caller = [hook["event"] for hook in hooks_got(receiver) if hook["call_id"] == sim_call.uuid]
    assert sorted(caller) == ["channel_answer", "channel_create", "channel_destroy"]  # each once
    (destroy,) = [hook for hook in hooks_got(receiver)
                  if hook["call_id"] == sim_call.uuid and hook["event"] == "channel_destroy"]
    assert [step["module"] for step in json.loads(destroy["flow_path"])] == [
        step.module for step in second.finished[sim_call.uuid].history]


def test_a_daemon_whose_call_was_taken_over_while_its_lease_lapsed_sends_no_more_of_its_hooks(
        slow_switch, receiver, start_daemon, logs):
    first = start_daemon("cf-a", slow_switch)
    sim_call = slow_switch.place_call(FRONT_DESK, scenario=Scenario(device="no_answer", voicemail_seconds=2))
    logs.wait_for("call %s: executing bridge" % sim_call.uuid)
    second = start_daemon("cf-b", slow_switch)
    wait_until(lambda: first.service.ownership.live_names(SWITCH) == {"cf-a", "cf-b"}, "cf-a sees cf-b")
    first.service.ownership._group.kill(block=True)  # hung: no more renewals; it still sees every event
    logs.wait_for("call %s: taking the call back" % sim_call.uuid, timeout=LEASE + 5)
    logs.wait_for("call %s: another daemon took the call over while our lease" % sim_call.uuid, timeout=20)
    second.wait_finished(sim_call.uuid, timeout=20)
    sim_call.wait_ended(10)
    receiver.wait_for(1 + 3, 10)  # the flow's webhook; the caller's create, answer and destroy
    gevent.sleep(0.5)  # a duplicate would be on its way by now

    caller = [hook["event"] for hook in hooks_got(receiver) if hook["call_id"] == sim_call.uuid]
    assert sorted(caller) == ["channel_answer", "channel_create", "channel_destroy"]  # each once


# -- the policy, on its own ----------------------------------------------------------------

UUIDS = ["%08x-0000-4000-8000-000000000000" % n for n in range(1000)]


def test_each_channel_no_flow_drives_is_picked_by_exactly_one_of_the_live_daemons():
    names = ("cf-a", "cf-b", "cf-c")
    senders = [Senders(name, lambda switch: frozenset(names)) for name in names]
    shares = collections.Counter()
    for uuid in UUIDS:
        (picked,) = [s.name for s in senders if s.mine(uuid, SWITCH)]
        assert picked == sender_of(uuid, names)
        shares[picked] += 1
    assert all(250 < share < 420 for share in shares.values()), shares


def test_when_a_daemon_dies_only_its_own_share_moves():
    before = {uuid: sender_of(uuid, ("cf-a", "cf-b", "cf-c")) for uuid in UUIDS}
    after = {uuid: sender_of(uuid, ("cf-a", "cf-b")) for uuid in UUIDS}
    assert {uuid for uuid in UUIDS if before[uuid] != after[uuid]} == {
        uuid for uuid in UUIDS if before[uuid] == "cf-c"}


def test_a_daemon_alone_or_without_claims_sends_every_hook():
    alone, unclaimed, no_mod_hash = Senders("cf-a", lambda switch: frozenset({"cf-a"})), Senders(), \
        Senders("cf-a", lambda switch: None)
    assert all(s.mine(uuid, SWITCH) for uuid in UUIDS for s in (alone, unclaimed, no_mod_hash))
    assert alone.clustered(SWITCH)
    assert not unclaimed.clustered(SWITCH) and not no_mod_hash.clustered(SWITCH)


def test_a_daemon_whose_own_lease_lapsed_sends_none_of_the_shared_hooks():
    lapsed = Senders("cf-a", lambda switch: frozenset({"cf-b"}))  # cf-b counts us dead
    assert not any(lapsed.mine(uuid, SWITCH) for uuid in UUIDS)


class _Routes:
    def lookup(self, number):
        return _Callflow() if number == FRONT_DESK else None


class _Callflow:
    id = "front-desk"


class _Router:
    routes = _Routes()


class _Outbox:
    def __init__(self):
        self.sent = []

    def submit(self, request):
        self.sent.append((request.call_id, request.event))
        return True


def _hooks(name, peers):
    outbox = _Outbox()
    senders = Senders(name, lambda switch: frozenset(peers) | {name})
    return lifecycle.LifecycleHooks([Hook(events=frozenset(ALL_EVENTS), uri="http://h/")], _Router(),
                                    outbox, senders), outbox


def _event(name, uuid, number=FRONT_DESK):
    return Event({"Event-Name": name, "Unique-ID": uuid, "Call-Direction": "inbound",
                  "Caller-Destination-Number": number})


def test_a_call_gone_before_it_parked_is_sent_by_one_daemon_as_a_channel_no_flow_drives():
    pair = [_hooks("cf-a", ["cf-b"]), _hooks("cf-b", ["cf-a"])]
    for uuid in UUIDS[:20]:
        for hooks, _ in pair:
            hooks.observe(_event("CHANNEL_CREATE", uuid), None, SWITCH)
            assert hooks._channels[uuid].sender == lifecycle.WAITING
            hooks.observe(_event("CHANNEL_DESTROY", uuid), None, SWITCH)
    sent = sorted(pair[0][1].sent + pair[1][1].sent)
    assert sent == sorted((uuid, event) for uuid in UUIDS[:20] for event in ("channel_create", "channel_destroy"))
    assert pair[0][1].sent and pair[1][1].sent
    assert not pair[0][0]._channels and not pair[1][0]._channels


def test_a_lost_claim_drops_the_held_hooks_and_says_so_at_debug(logs):
    hooks, outbox = _hooks("cf-a", ["cf-b"])
    hooks.observe(_event("CHANNEL_CREATE", "u1"), None, SWITCH)
    hooks.left_to_another("u1")
    hooks.observe(_event("CHANNEL_ANSWER", "u1"), None, SWITCH)
    hooks.observe(_event("CHANNEL_DESTROY", "u1"), None, SWITCH)
    assert outbox.sent == [] and not hooks._channels
    text = "call u1: another daemon drives it; its 1 held hooks are that daemon's to send"
    assert [record.levelname for record in logs.records if record.getMessage() == text] == ["DEBUG"]


def test_a_claim_that_takes_too_long_lets_the_held_hooks_go_by_the_uuid(logs, monkeypatch):
    monkeypatch.setattr(lifecycle, "MAX_HELD", 2)
    uuid = next(u for u in UUIDS if sender_of(u, ("cf-a", "cf-b")) == "cf-a")
    hooks, outbox = _hooks("cf-a", ["cf-b"])
    hooks.observe(_event("CHANNEL_CREATE", uuid), None, SWITCH)
    hooks.observe(_event("CHANNEL_ANSWER", uuid), None, SWITCH)
    assert outbox.sent == [(uuid, "channel_create"), (uuid, "channel_answer")]
    assert logs.matching("call %s: 2 hook events held and its claim still not decided" % uuid)


def test_a_channel_first_seen_after_it_parked_is_left_to_its_driver_until_taken_over():
    hooks, outbox = _hooks("cf-a", ["cf-b"])
    hooks.observe(_event("CHANNEL_ANSWER", "u2"), None, SWITCH)  # we came up mid-call
    assert outbox.sent == []
    call = _Call("u2")
    hooks.driving(call)  # its driver died; we took it over
    hooks.observe(_event("CHANNEL_DESTROY", "u2"), call, SWITCH)
    assert outbox.sent == []  # the destroy waits for the flow's path
    hooks.call_finished(call)
    assert outbox.sent == [("u2", "channel_destroy")]


class _Step:
    module, outcome = "device", "call ended"


class _Switch:
    name = SWITCH


class _Call:
    callflow_id, switch, history = "front-desk", _Switch(), [_Step()]

    def __init__(self, uuid):
        self.uuid = uuid
