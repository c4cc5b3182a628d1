"""How fast the event socket takes events: parsing alone, and over a real TCP connection.

Run: ``.venv/bin/python -m tests.benchmarks.bench_event_socket`` (from the repo root).
It replays the real 200-call capture (5,000 events) and prints events per second.
Figures go in docs/benchmarks.md with the machine they came from.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402

from callflowd.esl import protocol  # noqa: E402
from callflowd.esl.connection import EslConnection  # noqa: E402
from tests.doubles.replay_switch import ReplaySwitch, load_capture  # noqa: E402

CAPTURE = "load_200_calls.plain.txt.gz"


def event_frames():
    data = load_capture(CAPTURE)
    return [raw for headers, body, raw in protocol.iter_frames(data)
            if headers.get("Content-Type") == "text/event-plain"]


def bench_parse(frames, rounds):
    parsed = [(h, b) for h, b, _ in protocol.iter_frames(b"".join(frames))]
    start = time.perf_counter()
    for _ in range(rounds):
        for headers, body in parsed:
            protocol.parse_frame(headers, body)
    elapsed = time.perf_counter() - start
    return len(parsed) * rounds / elapsed


def bench_tcp(frames, rounds):
    total = len(frames) * rounds
    seen = [0]
    done = Event()

    def on_event(event):
        seen[0] += 1
        if seen[0] == total:
            done.set()

    with ReplaySwitch() as switch:
        host, port = switch.address
        connection = EslConnection(host, port, "ClueCon", on_event=on_event)
        connection.connect()
        blob = b"".join(frames)
        start = time.perf_counter()
        pusher = gevent.spawn(lambda: [switch.push(blob) for _ in range(rounds)])
        if not done.wait(120):
            raise SystemExit("only %d of %d events arrived" % (seen[0], total))
        elapsed = time.perf_counter() - start
        pusher.join()
        connection.close()
    return total / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="times to replay the capture (default 4)")
    args = parser.parse_args()
    frames = event_frames()
    print("machine: %s, %s, Python %s" % (platform.machine(), platform.processor() or "?",
                                          platform.python_version()))
    print("capture: %s, %d events, %d rounds" % (CAPTURE, len(frames), args.rounds))
    print("parse only:           %8.0f events/s" % bench_parse(frames, args.rounds))
    print("over TCP, EslConnection: %5.0f events/s" % bench_tcp(frames, args.rounds))


if __name__ == "__main__":
    main()
