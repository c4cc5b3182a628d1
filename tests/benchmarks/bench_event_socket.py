"""How fast the event socket takes events: parsing alone, and over a real TCP connection.

Run: ``.venv/bin/python -m tests.benchmarks.bench_event_socket`` (from the repo root).
It replays the real 200-call capture (5,000 events), every round with fresh uuids,
and prints events per second and CPU per event, for callflowd's EslConnection and,
as the reference in the same run, stock greenswitch's InboundESL over the same socket.
``--json`` prints one JSON line for ``python -m tests.benchmarks``.

``--formats`` compares the two event formats FreeSWITCH offers on the same call (the
a_device_answers capture, taken both as ``event plain`` and as ``event json``): plain,
decoded lazily (what the daemon subscribes to), against json decoded by the stdlib and,
if it is installed, by orjson; parsing alone, parsing plus the five reads a call makes of
an event, and over TCP.
Figures go in docs/benchmarks.md with the machine they came from.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402

from callflowd.esl import protocol  # noqa: E402
from callflowd.esl.connection import EslConnection  # noqa: E402
from tests.doubles.replay_switch import ReplaySwitch, load_capture  # noqa: E402

CAPTURE = "load_200_calls.plain.txt.gz"
# One call captured in both formats (tests/fixtures/README.md).
FORMAT_CAPTURES = {"plain": "a_device_answers.plain.txt", "json": "a_device_answers.json.txt"}
# What the router and a call read of an event (calls/router.py, calls/call.py, actions/device.py).
CALL_READS = ("Unique-ID", "Event-Name", "Application-UUID", "variable_originate_disposition",
              "Hangup-Cause")


def event_frames(capture=CAPTURE, content_type="text/event-plain"):
    data = load_capture(capture)
    return [raw for headers, body, raw in protocol.iter_frames(data)
            if headers.get("Content-Type") == content_type]


_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def fresh_uuids(blob):
    """The same frames with every uuid replaced by a new one (same length: Content-Length holds)."""
    fresh = {}

    def new(match):
        old = match.group(0)
        if old not in fresh:
            fresh[old] = str(uuid.uuid4()).encode("ascii")
        return fresh[old]

    return _UUID.sub(new, blob)


def rounds_of(frames, rounds):
    """``rounds`` copies of the capture, each with its own fresh uuids, made before timing."""
    blob = b"".join(frames)
    return [fresh_uuids(blob) for _ in range(rounds)]


def bench_parse(frames, rounds):
    parsed = [(h, b) for h, b, _ in protocol.iter_frames(b"".join(frames))]
    start = time.perf_counter()
    for _ in range(rounds):
        for headers, body in parsed:
            protocol.parse_frame(headers, body)
    elapsed = time.perf_counter() - start
    return len(parsed) * rounds / elapsed


def bench_tcp(frames, rounds, client="callflowd", reads=()):
    """Events/s and CPU µs/event for ``client`` ("callflowd" or "greenswitch") over loopback TCP;
    ``reads``: headers read of each event, as a call would."""
    total = len(frames) * rounds
    seen = [0]
    done = Event()

    def on_event(event):
        for name in reads:
            event.get(name)
        seen[0] += 1
        if seen[0] == total:
            done.set()

    blobs = rounds_of(frames, rounds)
    with ReplaySwitch() as switch:
        host, port = switch.address
        if client == "greenswitch":
            import greenswitch

            connection = greenswitch.InboundESL(host, port, "ClueCon")
            connection.register_handle("*", on_event)
            connection.connect()
        else:
            connection = EslConnection(host, port, "ClueCon", on_event=on_event)
            connection.connect()
        switch.wait_connected()
        cpu = time.process_time()
        start = time.perf_counter()
        pusher = gevent.spawn(lambda: [switch.push(blob) for blob in blobs])
        if not done.wait(120):
            raise SystemExit("%s: only %d of %d events arrived" % (client, seen[0], total))
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
        pusher.join()
        if client == "greenswitch":
            connection.stop()
        else:
            connection.close()
    return total / elapsed, cpu / total * 1e6


def json_decoders():
    """{"json": the stdlib's loads, "orjson": orjson's if installed}: what parse_json_event calls."""
    decoders = {"json": json.loads}
    try:
        import orjson
    except ImportError:
        return decoders
    decoders["orjson"] = orjson.loads
    return decoders


def with_json_loads(loads, run):
    """``run()`` with protocol.parse_json_event decoding through ``loads``."""
    saved = protocol.json
    protocol.json = type("Decoder", (), {"loads": staticmethod(loads)})
    try:
        return run()
    finally:
        protocol.json = saved


def bench_formats(seconds=1.0, tcp_events=20000):
    """Per format and decoder: parse only, parse + CALL_READS (events/s), over TCP (events/s, µs CPU)."""
    variants = [("plain", "plain", None)] + [("json", name, loads) for name, loads in json_decoders().items()]
    results = {}
    for fmt, decoder, loads in variants:
        frames = event_frames(FORMAT_CAPTURES[fmt], "text/event-" + fmt)
        parsed = [(h, b) for h, b, _ in protocol.iter_frames(b"".join(frames))]

        def rate(read):
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                for headers, body in parsed:
                    event = protocol.parse_frame(headers, body)
                    if read:
                        for name in CALL_READS:
                            event.get(name)
                count += len(parsed)
            return count / (time.perf_counter() - start)

        rounds = max(1, tcp_events // len(frames))
        figures = with_json_loads(loads or json.loads, lambda: (
            rate(False), rate(True), bench_tcp(frames, rounds, reads=CALL_READS)))
        results["%s/%s" % (fmt, decoder)] = {
            "events_in_capture": len(frames), "parse": figures[0], "parse_and_read": figures[1],
            "tcp_and_read": figures[2][0], "tcp_and_read_cpu_us": figures[2][1]}
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="times to replay the capture (default 4)")
    parser.add_argument("--json", action="store_true", help="one JSON line of figures")
    parser.add_argument("--formats", action="store_true",
                        help="only compare event plain (lazy) with event json (stdlib json, orjson)")
    args = parser.parse_args()
    if args.formats:
        results = bench_formats()
        if args.json:
            print(json.dumps(results))
            return
        print("one call (a_device_answers) in both formats; reads per event: %s" % ", ".join(CALL_READS))
        for variant, figures in results.items():
            print("%-12s %2d events: parse %7.0f/s, parse + reads %7.0f/s; "
                  "over TCP with the reads %7.0f/s, %5.1f µs CPU/event"
                  % (variant, figures["events_in_capture"], figures["parse"], figures["parse_and_read"],
                     figures["tcp_and_read"], figures["tcp_and_read_cpu_us"]))
        return
    frames = event_frames()
    parse = bench_parse(frames, args.rounds)
    ours, ours_cpu = bench_tcp(frames, args.rounds)
    stock, stock_cpu = bench_tcp(frames, args.rounds, client="greenswitch")
    if args.json:
        print(json.dumps({"events": len(frames) * args.rounds, "parse": parse, "callflowd": ours,
                          "callflowd_cpu_us": ours_cpu, "greenswitch": stock, "greenswitch_cpu_us": stock_cpu}))
        return
    print("machine: %s, %s, Python %s" % (platform.machine(), platform.processor() or "?",
                                          platform.python_version()))
    print("capture: %s, %d events, %d rounds, fresh uuids each round" % (CAPTURE, len(frames), args.rounds))
    print("parse only:                %8.0f events/s" % parse)
    print("over TCP, EslConnection:   %8.0f events/s, %5.1f µs CPU/event" % (ours, ours_cpu))
    print("over TCP, greenswitch:     %8.0f events/s, %5.1f µs CPU/event" % (stock, stock_cpu))
    print("ratio:                     %8.2f x greenswitch" % (ours / stock))


if __name__ == "__main__":
    main()
