"""Two daemons on the real switch: each call driven by exactly one, none lost when one dies or
restarts.

The daemons race for each parked call in mod_hash's store on the switch (calls/ownership.py);
the switch's own events say how each call went (one bridge, one voicemail), the receiver how
many webhooks it got (one delivery id per call; a takeover may resend that same id).
"""

import collections
import signal
import time

import gevent
import pytest

from callflowd.calls import hashdb, ownership
from tests.realswitch.daemon import FRONT_DESK, DaemonProcess, front_desk_flow
from tests.realswitch.proxy import EslProxy

pytestmark = pytest.mark.timeout(240)

DELIVERY_HEADER = "x-callflowd-delivery"
LEASE = 2.0  # seconds; a takeover must come within LEASE + 5 s of the owner's death
RINGING = r"moving to action device \(flow\)"  # a daemon's first step of a call: the front desk rings
CALLER = "uac_answered_bye.xml"  # hangs up 1 s after the answer (voicemail's greeting)


@pytest.fixture
def daemons(tmp_path, esl, receiver):
    """``start(name)``: a ``callflowd run`` named ``name`` (own config and outbox), in a cluster
    with a ``LEASE``; each is stopped after the test (exit 0 asserted) unless it was killed."""
    started = []

    def start(name, ring_timeout=20, via=None, **settings):
        workdir = tmp_path / name
        workdir.mkdir(exist_ok=True)
        daemon = DaemonProcess(workdir, via or esl, {"front-desk": front_desk_flow(receiver.url("/missed"))},
                               ring_timeout=ring_timeout, log_level="info",
                               cluster={"name": name, "lease": LEASE}, **settings)
        started.append(daemon)
        daemon.start()
        daemon.wait_for_line(r"switch freeswitch: link up")
        return daemon

    yield start
    failures = []
    for number, daemon in enumerate(started):
        status = None if daemon.killed else daemon.stop(timeout=40)
        # every daemon's whole log stays beside the test, for a failure read after the run
        (daemon.workdir / ("callflowd-%d.log" % number)).write_text(daemon.log())
        if status not in (None, 0):
            failures.append("callflowd exited with %s:\n%s" % (status, daemon.log()[-5000:]))
    assert not failures, "\n".join(failures)


def parked_calls(switch, since):
    return [event.uuid for event in switch.events[since:]
            if event.name == "CHANNEL_PARK" and event.get("Call-Direction") == "inbound"
            and event.get("Caller-Destination-Number") == FRONT_DESK]


def executed(switch, since, application):
    """uuid -> how many times ``application`` started on it."""
    return collections.Counter(event.uuid for event in switch.events[since:]
                               if event.name == "CHANNEL_EXECUTE" and event.get("Application") == application)


def webhooks_by_call(receiver):
    """uuid -> the distinct delivery ids the receiver got for it."""
    ids = collections.defaultdict(set)
    for request in receiver.requests:
        ids[request.fields.get("call_id", [None])[0]].add(request.header(DELIVERY_HEADER))
    return ids


def wait_until(predicate, timeout, what):
    """Poll (a quarter second) until ``predicate()``: "every call is over" is the state of three
    processes, no single event says it."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        gevent.sleep(0.25)


def each_call_had_one_bridge_one_voicemail_one_webhook(switch, receiver, since, uuids):
    bridges, voicemails = executed(switch, since, "bridge"), executed(switch, since, "voicemail")
    hooks = webhooks_by_call(receiver)
    wrong = {uuid: "bridges %d, voicemails %d, webhook ids %d" % (bridges[uuid], voicemails[uuid],
                                                                   len(hooks.get(uuid, ())))
             for uuid in uuids
             if (bridges[uuid], voicemails[uuid], len(hooks.get(uuid, ()))) != (1, 1, 1)}
    assert not wrong, "%d of %d calls went wrong: %s" % (len(wrong), len(uuids), wrong)


def all_over(switch, receiver, since, count):
    def check():
        uuids = parked_calls(switch, since)
        hooks = webhooks_by_call(receiver)
        return (len(uuids) >= count and all(uuid in hooks for uuid in uuids)
                and switch.channel_count() == 0)
    return check


def test_mod_hash_on_the_switch_answers_as_the_claims_expect(switch):
    realm, key = "callflowd_test", "k%d" % time.monotonic_ns()
    try:
        assert hashdb.succeeded(switch.api("hash insert_ifempty/%s/%s/a:1" % (realm, key)))
        assert switch.api("hash insert_ifempty/%s/%s/b:1" % (realm, key)).strip() == "-ERR key already exists"
        assert hashdb.selected(switch.api("hash select/%s/%s" % (realm, key))) == "a:1"
        assert hashdb.parse_dump(switch.api("hash_dump db %s" % realm), realm) == {key: "a:1"}
        assert switch.api("hash delete_ifmatch/%s/%s/b:1" % (realm, key)).strip() == "-ERR Doesn't match"
        assert hashdb.succeeded(switch.api("hash delete_ifmatch/%s/%s/a:1" % (realm, key)))
        assert hashdb.selected(switch.api("hash select/%s/%s" % (realm, key))) is None
    finally:
        switch.api("hash delete/%s/%s" % (realm, key))


@pytest.mark.needs_the_machine  # a burst: never beside the other tier's (tests/tiers.py)
def test_two_daemons_drive_each_of_50_busy_calls_once(switch, sipp, receiver, daemons):
    first, second = daemons("cf-a"), daemons("cf-b")
    since = len(switch.events)
    sipp.register("1000")
    phone = sipp.phone("uas_busy.xml", calls=50)
    callers = sipp.callers(FRONT_DESK, CALLER, calls=50, rate=10, limit=50)
    sipp.finish(callers, timeout=90)
    wait_until(all_over(switch, receiver, since, 50), 60, "the 50 calls to end with their webhooks")
    sipp.finish(phone, timeout=10)

    uuids = parked_calls(switch, since)
    assert len(uuids) == 50
    each_call_had_one_bridge_one_voicemail_one_webhook(switch, receiver, since, uuids)

    def finished_by():
        return {daemon: {uuid for uuid in uuids if daemon.matching(r"call %s: callflow \S+ finished after [1-9]" % uuid)}
                for daemon in (first, second)}

    # a daemon logs a flow's end a moment after the switch's last event of the call (more on a
    # busy machine): the switch and the receiver said every call is over, the logs follow
    wait_until(lambda: set().union(*finished_by().values()) >= set(uuids), 15, "each call's finished line")
    drove = finished_by()
    assert not drove[first] & drove[second]
    assert drove[first] | drove[second] == set(uuids)
    assert drove[first] and drove[second], "one daemon won every call: no race was run"
    gevent.sleep(LEASE / 2)  # the claims' releases go with the next lease write
    assert not set(hashdb.parse_dump(switch.api("hash_dump db %s" % ownership.CLAIMS),
                                     ownership.CLAIMS)) & set(uuids)


def test_a_daemon_killed_while_10_calls_ring_leaves_them_all_to_the_other(switch, sipp, receiver, daemons):
    first = daemons("cf-a", ring_timeout=12)
    since = len(switch.events)
    sipp.register("1000")
    sipp.phone("uas_ring_cancel.xml", calls=10)
    sipp.callers(FRONT_DESK, "uac_wait_bye.xml", calls=10, rate=10, limit=10)
    wait_until(lambda: len(executed(switch, since, "bridge")) == 10, 30, "10 front-desk bridges ringing")
    uuids = parked_calls(switch, since)
    second = daemons("cf-b", ring_timeout=12)

    first.kill()  # SIGKILL: no goodbye, its lease just stops changing
    killed_at = time.monotonic()
    for uuid in uuids:
        second.wait_for_line(r"call %s: taking the call back" % uuid, timeout=LEASE + 5 + 2)
    assert time.monotonic() - killed_at < LEASE + 5

    wait_until(lambda: len(executed(switch, since, "voicemail")) == 10, 40, "10 voicemails")
    wait_until(lambda: set(uuids) <= set(webhooks_by_call(receiver)), 15, "10 webhooks")
    for uuid in uuids:
        switch.api("uuid_kill %s" % uuid)
    wait_until(lambda: switch.channel_count() == 0, 15, "the calls to end")
    each_call_had_one_bridge_one_voicemail_one_webhook(switch, receiver, since, uuids)


def test_a_rolling_restart_of_both_daemons_during_60s_of_calls_loses_none(switch, sipp, receiver, daemons):
    first, second = daemons("cf-a"), daemons("cf-b")
    since = len(switch.events)
    sipp.register("1000")
    # busy after 1.5 s of ringing: each call is in its device step long enough to be handed over
    phone = sipp.phone("uas_ring_then_busy.xml", calls=120, timeout="150s")
    callers = sipp.callers(FRONT_DESK, CALLER, calls=120, rate=2, limit=40, timeout="150s")

    handed_over = 0
    for name, daemon in (("cf-a", first), ("cf-b", second)):
        # stopped while it rings a phone, once it has started ringing a few (a fixed pause let
        # both stops land when neither daemon had a call in flight: nothing was handed over)
        started = len(daemon.matching(RINGING))
        daemon.wait_for_count(RINGING, max(5, started + 1), timeout=60)
        assert daemon.stop(timeout=40) == 0  # SIGTERM: its calls go to the other daemon at once
        handed_over += len(daemon.matching(r"handing \d+ calls over"))
        daemons(name)  # the new version, same name and outbox

    sipp.finish(callers, timeout=120)
    wait_until(all_over(switch, receiver, since, 120), 60, "the 120 calls to end with their webhooks")
    sipp.finish(phone, timeout=10)
    uuids = parked_calls(switch, since)
    assert len(uuids) == 120
    each_call_had_one_bridge_one_voicemail_one_webhook(switch, receiver, since, uuids)
    assert handed_over, "neither stop had a call to hand over: the test proved less than it says"


def ring_one_call(switch, sipp):
    """A caller on the front desk, whose phone rings and never answers; its uuid once rung."""
    sipp.register("1000")
    sipp.phone("uas_ring_cancel.xml")
    since = len(switch.events)
    sipp.call(FRONT_DESK)
    uuid = switch.parked_call(FRONT_DESK, since=since).uuid
    switch.wait_for("CHANNEL_EXECUTE", uuid, Application="bridge")
    return uuid, since


def finished_by_one_daemon(switch, receiver, since, uuid):
    """The bridge ran out, voicemail ran once, one webhook id came; then the caller is hung up."""
    switch.wait_for("CHANNEL_EXECUTE", uuid, Application="voicemail", timeout=40)
    wait_until(lambda: uuid in webhooks_by_call(receiver), 15, "the webhook")
    switch.api("uuid_kill %s" % uuid)
    switch.wait_for("CHANNEL_DESTROY", uuid, timeout=10)
    each_call_had_one_bridge_one_voicemail_one_webhook(switch, receiver, since, [uuid])


def test_a_hung_daemon_that_wakes_after_its_call_was_taken_over_leaves_it_alone(
        switch, sipp, receiver, daemons):
    first = daemons("cf-a", ring_timeout=10)
    uuid, since = ring_one_call(switch, sipp)
    second = daemons("cf-b", ring_timeout=10)
    first.process.send_signal(signal.SIGSTOP)  # hung: its socket stays open, it says nothing
    try:
        second.wait_for_line(r"call %s: taking the call back" % uuid, timeout=LEASE + 5)
    finally:
        first.process.send_signal(signal.SIGCONT)
    first.wait_for_line(r"call %s: another daemon took the call over while our lease" % uuid, timeout=30)
    finished_by_one_daemon(switch, receiver, since, uuid)


def test_a_daemon_cut_off_from_the_switch_finds_its_call_taken_over_when_back(
        switch, sipp, receiver, daemons, esl):
    host, port, password = esl
    proxy = EslProxy((host, port)).start()
    try:
        first = daemons("cf-a", ring_timeout=10, via=("127.0.0.1", proxy.port, password))
        uuid, since = ring_one_call(switch, sipp)
        second = daemons("cf-b", ring_timeout=10)
        proxy.cut()
        second.wait_for_line(r"call %s: taking the call back" % uuid, timeout=LEASE + 5)
        proxy.restore()
        first.wait_for_line(r"call %s: another daemon took the call over while our lease" % uuid, timeout=30)
        finished_by_one_daemon(switch, receiver, since, uuid)
    finally:
        proxy.stop()
