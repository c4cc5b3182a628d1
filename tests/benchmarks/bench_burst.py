"""A 20,000-event burst on one event socket: the longest any greenlet waits, memory, events lost.

Run: ``.venv/bin/python -m tests.benchmarks.bench_burst`` (from the repo root).
The 200-call capture's 5,000 events, four times over, are written to a real
EslConnection over loopback in one go, as FreeSWITCH flushes a backlog. A
probe greenlet asks to wake every 5 ms and records how late it wakes (the
longest any greenlet waits for its turn); a command is sent mid-burst and
its round trip timed; RSS growth is read from /proc. Each yield strategy of
the reader and dispatcher is run in turn (issue 6's targets: < 50 ms, < 50 MB,
none lost). ``--client greenswitch`` runs the same burst through stock greenswitch
(the reference); ``--probe-ms 1`` makes the probe a 1 ms sleeper (issue 10's figure);
``--json`` prints one JSON line for ``python -m tests.benchmarks``.
Figures go in docs/benchmarks.md.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402

from callflowd.esl import pacing  # noqa: E402
from callflowd.esl.connection import EslConnection  # noqa: E402
from tests.benchmarks.bench_event_socket import event_frames, rounds_of  # noqa: E402
from tests.doubles.replay_switch import ReplaySwitch  # noqa: E402

STRATEGIES = {
    "paced": pacing.pause,  # what the daemon uses: sleep(0), and sleep(0.0001) every 2 ms
    "sleep(0.0001)": lambda: gevent.sleep(0.0001),  # a tiny timer at every yield
    "idle()": gevent.idle,
    "sleep(0)": lambda: gevent.sleep(0),
}


def rss_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def run_burst(frames, rounds, probe_seconds=0.005, client="callflowd"):
    total = len(frames) * rounds
    seen = [0]
    done = Event()
    worst = [0.0]
    peak_rss = [0.0]

    def on_event(event):
        seen[0] += 1
        if seen[0] == total:
            done.set()

    def probe():
        while not done.is_set():
            asked = time.perf_counter()
            gevent.sleep(probe_seconds)
            worst[0] = max(worst[0], time.perf_counter() - asked - probe_seconds)
            peak_rss[0] = max(peak_rss[0], rss_mib())

    with ReplaySwitch() as switch:
        switch.api_replies["status"] = "UP"
        host, port = switch.address
        if client == "greenswitch":
            import greenswitch

            connection = greenswitch.InboundESL(host, port, "ClueCon")
            connection.register_handle("*", on_event)
            connection.connect()
        else:
            connection = EslConnection(host, port, "ClueCon", on_event=on_event, idle_timeout=60)
            connection.connect()
        blob = b"".join(rounds_of(frames, rounds))
        before = rss_mib()
        start = time.perf_counter()
        prober = gevent.spawn(probe)
        pusher = gevent.spawn(switch.push, blob)
        gevent.sleep(0.05)
        sent = time.perf_counter()
        if client == "greenswitch":
            connection.send("api status")
        else:
            connection.api("status")
        round_trip = time.perf_counter() - sent
        if not done.wait(120):
            raise SystemExit("only %d of %d events arrived" % (seen[0], total))
        elapsed = time.perf_counter() - start
        pusher.join()
        prober.join()
        connection.stop() if client == "greenswitch" else connection.close()
    return {"events": seen[0], "of": total, "seconds": elapsed, "worst_wait_ms": worst[0] * 1000,
            "round_trip_ms": round_trip * 1000, "rss_growth_mib": peak_rss[0] - before}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="times the 5,000-event capture is sent (default 4)")
    parser.add_argument("--probe-ms", type=float, default=5.0, help="the probe's sleep (default 5 ms)")
    parser.add_argument("--strategy", choices=sorted(STRATEGIES), action="append",
                        help="yield strategy to run (default: each in turn)")
    parser.add_argument("--client", choices=("callflowd", "greenswitch"), default="callflowd")
    parser.add_argument("--json", action="store_true", help="one JSON line of figures")
    args = parser.parse_args()
    frames = event_frames()
    if not args.json:
        print("machine: %s, %s, Python %s" % (platform.machine(), platform.processor() or "?",
                                              platform.python_version()))
        print("burst: %d events (%d KiB), fresh uuids, %s" % (
            len(frames) * args.rounds, len(b"".join(frames)) * args.rounds // 1024, args.client))
    if args.client == "greenswitch":
        runs = [("greenswitch", None)]
    else:
        runs = [(name, STRATEGIES[name]) for name in (args.strategy or STRATEGIES)]
    results = {}
    for name, pause in runs:
        if pause is not None:
            pacing.pause = pause
        figures = run_burst(frames, args.rounds, args.probe_ms / 1000.0, args.client)
        results[name] = figures
        if not args.json:
            print("%-14s %6d/%d events in %.2fs; longest wait %5.1f ms; command mid-burst %6.1f ms; "
                  "RSS +%.1f MiB" % (name, figures["events"], figures["of"], figures["seconds"],
                                     figures["worst_wait_ms"], figures["round_trip_ms"],
                                     figures["rss_growth_mib"]))
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
