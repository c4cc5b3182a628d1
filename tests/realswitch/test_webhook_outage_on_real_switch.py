"""Nothing accepted is lost, on a real FreeSWITCH: a receiver down for 90 s while calls go busy,
with the daemon killed and restarted meanwhile; and the daemon killed at random instants while
200 calls pass their webhook step.

Real SIP phones and callers (sipp), the real daemon process (SIGKILLed, as ``kill -9`` or the
OOM killer would), a real HTTP receiver. The outage lasts as long as the scenario says: those
sleeps are the scenario's clock, not synchronisation; every wait for an outcome is on an event
(a log line, a request arriving, the switch's own events).
"""

import random
import re
import socket

import gevent
import pytest

from callflowd.demo.receiver import WebhookReceiver, free_port
from tests.realswitch.daemon import FRONT_DESK, front_desk_flow

CALLER = "uac_answered_bye.xml"  # hangs up 1 s after voicemail answers
_ACCEPTED = re.compile(r"call (\S+): webhook accepted: .* \(delivery ([0-9a-f]+)\)")


def accepted(*daemons):
    """call uuid -> the delivery ids its webhook steps were accepted under, in every daemon's log."""
    found = {}
    for daemon in daemons:
        for line in daemon.lines:
            match = _ACCEPTED.search(line)
            if match:
                found.setdefault(match.group(1), set()).add(match.group(2))
    return found


def parked_uuids(switch):
    return {event.uuid for event in switch.find("CHANNEL_PARK", since=switch.test_start,
                                                 Caller__Destination__Number=FRONT_DESK, Call__Direction="inbound")}


def wait_until(check, timeout, what):
    """Poll ``check`` (which reads what other greenlets record) until true; fail after ``timeout``."""
    with gevent.Timeout(timeout, AssertionError("not within %ss: %s" % (timeout, what))):
        while not check():
            gevent.sleep(0.1)


class Blackhole:
    """A port that doesn't answer: a listener whose backlog is full, so a SYN gets no reply and a
    connect times out (a host that is down, or a firewall dropping packets), as opposed to a
    closed port, which refuses at once."""

    def __init__(self, port):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(0)
        self.fillers = []
        for _ in range(2):  # one fills the queue, the second finds it full
            filler = socket.socket()
            filler.settimeout(0.5)
            try:
                filler.connect(("127.0.0.1", port))
            except OSError:
                pass
            self.fillers.append(filler)

    def close(self):
        for sock in self.fillers + [self.listener]:
            sock.close()


@pytest.mark.timeout(300)
def test_a_receiver_down_for_90s_loses_none_of_20_webhooks_across_a_sigkill(switch, sipp, start_daemon):
    port = free_port()
    receiver = WebhookReceiver(port=port)  # not started: its port refuses connections
    settings = {"webhooks": {"timeout": 1, "backoff_factor": 0.5, "backoff_max": 4,
                             "breaker": {"failures": 5, "pause": 1, "pause_max": 4}}}
    flows = {"front-desk": front_desk_flow(receiver.url("/missed"), http_verb=None, custom_data=None)}
    first = start_daemon(flows, **settings)  # retries: 1 (the tier's config): one attempt in all
    sipp.register("1000")
    phone = sipp.phone("uas_busy.xml", calls=20)
    callers = sipp.callers(FRONT_DESK, CALLER, calls=20, rate=10, limit=20)
    blackhole = None
    try:
        first.wait_for_count(r"webhook accepted", 20, timeout=60)
        assert sipp.finish(callers, timeout=60) == 0, sipp.output(callers)
        assert sipp.finish(phone, timeout=30) == 0, sipp.output(phone)
        first.wait_for_line(r"webhook not sent \(connection refused\)")
        gevent.sleep(45)  # refused for 45 s
        blackhole = Blackhole(port)  # then not answering at all for 45 s
        first.wait_for_line(r"webhook not sent \(connect timeout\)", timeout=30)
        gevent.sleep(15)
        first.kill()  # SIGKILL in the middle, connects in flight
        second = start_daemon(flows, **settings)
        second.wait_for_line(r"resuming 20 undelivered webhooks")
        gevent.sleep(30)
        assert not second.matching(r"webhook (failed|dropped|delivered)")  # none spent, none lost
        blackhole.close()
        blackhole = None
        receiver.start()  # back after 90 s
        requests = receiver.wait_for(20, timeout=60)
        second.wait_for_count(r"webhook delivered", 20, timeout=30)
    finally:
        if blackhole is not None:
            blackhole.close()
        receiver.stop()

    calls = parked_uuids(switch)
    assert len(calls) == 20
    by_call = {request.query["call_id"][0]: request for request in requests}
    assert set(by_call) == calls and len(requests) == 20  # each delivered once
    ids = accepted(first, second)
    for uuid, request in by_call.items():
        # the id the step was accepted under is the one that arrived, after every try meanwhile
        assert ids[uuid] == {request.header("X-Callflowd-Delivery")}
        assert request.header("X-Callflowd-Attempt") == "1"  # the outage spent no attempt
        assert request.method == "GET"
    assert not second.matching(r"webhook (failed|dropped)")


@pytest.mark.needs_the_machine  # a burst: never beside the other tier's (tests/tiers.py)
@pytest.mark.timeout(300)
def test_sigkill_at_random_instants_while_200_calls_pass_their_webhook_step_loses_no_webhook(
        switch, sipp, receiver, start_daemon):
    flows = {"front-desk": front_desk_flow(receiver.url("/missed"), http_verb=None, custom_data=None)}
    daemons = [start_daemon(flows, log_level="info")]
    sipp.register("1000")
    phone = sipp.phone("uas_busy.xml", calls=200, timeout="240s")
    callers = sipp.callers(FRONT_DESK, CALLER, calls=200, rate=50, limit=200, timeout="240s")
    chance = random.Random()
    seed = chance.randrange(1 << 30)
    chance.seed(seed)
    kills = 0
    # kill while calls are passing their webhook step, at instants of the dice's choosing
    while kills < 4 and len(accepted(*daemons)) < 190:
        daemons[-1].wait_for_line(r"webhook accepted", timeout=60)
        gevent.sleep(chance.uniform(0.05, 1.5))
        daemons[-1].kill()
        kills += 1
        daemons.append(start_daemon(flows, log_level="info"))
    calls = set()

    def all_delivered():
        calls.update(parked_uuids(switch))
        got = {request.query["call_id"][0] for request in receiver.requests}
        return len(calls) == 200 and calls <= got

    wait_until(all_delivered, 180, "a webhook for each of the 200 calls (seed %d)" % seed)
    assert sipp.finish(callers, timeout=120) == 0, sipp.output(callers)
    sipp.finish(phone, timeout=30)

    assert kills >= 1
    # at least once each, and a repeat (a step run again after a kill) is the same webhook
    ids = {}
    for request in receiver.requests:
        ids.setdefault(request.query["call_id"][0], set()).add(request.header("X-Callflowd-Delivery"))
    assert set(ids) == calls
    assert all(len(delivery_ids) == 1 for delivery_ids in ids.values()), (seed, ids)
    assert not daemons[-1].matching(r"webhook (failed|dropped|lost)")
