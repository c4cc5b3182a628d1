"""A burst of 20,000 real events on one event socket: every one delivered, in order, commands still answered.

Timings (the longest wait of any greenlet, memory) are in tests/benchmarks/bench_burst.py.
"""

import gevent
import gevent.event
import pytest

from callflowd.esl import protocol
from callflowd.esl.connection import EslConnection
from tests.doubles.replay_switch import ReplaySwitch, load_capture

pytestmark = pytest.mark.timeout(60)


def real_events():
    data = load_capture("load_200_calls.plain.txt.gz")
    return [raw for headers, _, raw in protocol.iter_frames(data)
            if headers.get("Content-Type") == "text/event-plain"]


def test_a_burst_of_20000_events_is_drained_without_losing_one_while_commands_are_answered():
    frames = real_events()
    rounds = -(-20000 // len(frames))
    seen = []
    started, done = gevent.event.Event(), gevent.event.Event()
    total = len(frames) * rounds

    def on_event(event):
        seen.append(event.get("Event-Sequence"))
        started.set()
        if len(seen) == total:
            done.set()

    with ReplaySwitch() as switch:
        switch.api_replies["status"] = "UP"
        connection = EslConnection(*switch.address, "ClueCon", on_event=on_event, idle_timeout=30)
        connection.connect()
        pusher = gevent.spawn(switch.push, b"".join(frames) * rounds)
        assert started.wait(10)
        assert connection.api("status", timeout=30) == "UP"  # sent in the middle of the burst
        assert done.wait(50), "%d of %d events arrived" % (len(seen), total)
        pusher.get()
        assert connection.connected
        connection.close()
    sequences = [protocol.parse_frame(*next(protocol.iter_frames(raw))[:2]).get("Event-Sequence")
                 for raw in frames]
    assert total >= 20000
    assert seen == sequences * rounds
