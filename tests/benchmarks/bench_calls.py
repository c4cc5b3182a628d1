"""The daemon's own cost per call, with the simulator and the receiver in other processes.

Run: ``.venv/bin/python -m tests.benchmarks.bench_calls`` (from the repo root).

This process runs only the daemon (the real ``Service``, as ``tests/harness.py`` builds it).
The simulator (``callflowd.simulator``) runs in a child process, the webhook receiver
(``callflowd.demo.receiver``) in another, so neither is measured: the simulator costs about
three times the daemon per call. Printed:

* ``CPU per call``: this process's user+system CPU (``os.times``) from the first call placed
  to the last flow finished and its webhook delivered, divided by the calls; the spec's flow
  (park -> device, busy -> webhook -> voicemail -> hangup), every webhook through the durable
  outbox; and the rate the simulator reached (it, not the daemon, bounds the rate here);
* ``event in -> next command out``: per call, from the moment an event for the call was read
  off the socket to the next command naming the call written to it (p50/p99/max), at each
  ``--rates`` (calls placed per second, paced by the simulator);
* ``memory per call held ringing``: RSS growth of this process while ``--ringing`` calls sit in
  ``bridge`` to a phone that rings for an hour, divided by the calls.

``--json`` prints one JSON line for ``python -m tests.benchmarks``.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402

from callflowd import logsetup  # noqa: E402
from callflowd.esl import names  # noqa: E402
from callflowd.esl.connection import EslConnection  # noqa: E402
from tests.benchmarks.bench_burst import rss_mib  # noqa: E402
from tests.benchmarks.bench_webhook_outbox import start_receiver  # noqa: E402
from tests.harness import FRONT_DESK, Daemon, front_desk_flow, write_config  # noqa: E402

# The simulator's process: places calls when told on stdin ("place N RATE SCENARIO"), answers
# "placed <seconds>" once all are placed; "ended" waits for every call to end.
SIMULATOR = r"""
from gevent import monkey; monkey.patch_all()
import sys, time, gevent
from gevent.fileobject import FileObjectThread
from callflowd.simulator import FreeswitchSimulator, Scenario
SCENARIOS = {
    "busy": Scenario(device="busy", ring_seconds=0, voicemail_seconds=0),
    "ringing": Scenario(device="answer", ring_seconds=36000),  # run with time_scale 1
}
sim = FreeswitchSimulator(time_scale=float(sys.argv[1]), heartbeat_seconds=None).start()
print(sim.port, flush=True)
placed = []
for line in FileObjectThread(sys.stdin):
    words = line.split()
    if words[0] == "place":
        count, rate, scenario = int(words[1]), float(words[2]), SCENARIOS[words[3]]
        start = time.perf_counter()
        for n in range(count):
            placed.append(sim.place_call(FRONT_DESK, scenario=scenario))
            if rate:
                gevent.sleep(max(0.0, start + (n + 1) / rate - time.perf_counter()))
            elif n % 20 == 19:
                gevent.sleep(0)
        print("placed %.3f" % (time.perf_counter() - start), flush=True)
    elif words[0] == "ended":
        for call in placed:
            call.wait_ended(timeout=600)
        placed = []
        print("ended", flush=True)
    elif words[0] == "quit":
        break
sim.stop()
""".replace("FRONT_DESK", repr(FRONT_DESK))

_CALL_UUID = re.compile(rb"^(?:sendmsg|api uuid_\w+|bgapi uuid_\w+) ([0-9a-f-]{36})")


class Latency:
    """Event in -> next command out, per call: wraps the connection's reader and writer."""

    def __init__(self):
        self.arrived = {}   # uuid -> perf_counter() of its latest event read
        self.samples = []
        self.bridges = 0
        self.enabled = True

    def install(self):
        handle_frame, write = EslConnection._handle_frame, EslConnection._write
        latency = self

        def timed_handle_frame(connection, headers, body):
            if latency.enabled and headers.get(names.CONTENT_TYPE) == names.EVENT_PLAIN and body:
                found = body.find(b"\nUnique-ID: ")
                if found >= 0:
                    latency.arrived[body[found + 12:found + 48]] = time.perf_counter()
            return handle_frame(connection, headers, body)

        def timed_write(connection, raw, what, deadline):
            result = write(connection, raw, what, deadline)
            match = _CALL_UUID.match(raw)
            if match:
                started = latency.arrived.pop(match.group(1), None)
                if started is not None and latency.enabled:
                    latency.samples.append(time.perf_counter() - started)
                if b"execute-app-name: bridge" in raw:
                    latency.bridges += 1
            return result

        EslConnection._handle_frame = timed_handle_frame
        EslConnection._write = timed_write

    def take(self):
        samples, self.samples = sorted(self.samples), []
        self.arrived.clear()
        if not samples:
            return {"p50_ms": None, "p99_ms": None, "max_ms": None, "samples": 0}
        return {"p50_ms": samples[len(samples) // 2] * 1e3, "p99_ms": samples[int(len(samples) * 0.99)] * 1e3,
                "max_ms": samples[-1] * 1e3, "samples": len(samples)}


class Simulator:
    """The simulator's child process, driven over its stdin."""

    def __init__(self, time_scale):
        self.process = subprocess.Popen([sys.executable, "-c", SIMULATOR, str(time_scale)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.host, self.port = "127.0.0.1", int(self.process.stdout.readline())

    def ask(self, line, timeout=600):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        with gevent.Timeout(timeout):
            return self.process.stdout.readline().split()  # cooperative: subprocess is patched

    def stop(self):
        try:
            self.ask("quit", timeout=5)
        except Exception:  # it may already be gone: terminate below either way
            pass
        self.process.terminate()
        self.process.wait(10)


def cpu_seconds():
    times = os.times()
    return times.user + times.system


def wait_for(probe, timeout, what):
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for %s" % what)
        gevent.sleep(0.01)


def start_daemon(workdir, simulator, url, outbox_max, webhooks_process=False):
    """``webhooks_process``: deliver from the child process (``webhooks.process: true``)."""
    workdir.mkdir()
    config = write_config(workdir, simulator, {"front-desk": front_desk_flow({"uri": url})},
                          webhooks={"outbox": {"max": outbox_max}, "timeout": 10, "process": webhooks_process},
                          freeswitch={"command_timeout": 30},
                          devices={"front_desk_device_id": {"dial_string": "user/1000@example.com",
                                                            "timeout": 3600}})
    return Daemon(config).start()


def delivered(daemon):
    stats = daemon.service.webhooks.stats
    return stats.delivered + stats.failed


def run_calls(daemon, simulator, latency, count, rate):
    """Place ``count`` busy calls at ``rate``/s; CPU per call, rate reached, latencies."""
    finished, hooks = len(daemon.finished), delivered(daemon)
    latency.take()
    cpu, start = cpu_seconds(), time.perf_counter()
    placing = simulator.ask("place %d %s busy" % (count, rate))
    wait_for(lambda: len(daemon.finished) >= finished + count, 600, "the flows to finish")
    wait_for(lambda: delivered(daemon) >= hooks + count, 600, "the webhooks")
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    failed = daemon.service.webhooks.stats.failed
    return dict(latency.take(), calls=count, asked_rate=rate, placing_rate=count / float(placing[1]),
                finished_rate=count / elapsed, cpu_ms_per_call=cpu / count * 1e3, webhooks_failed=failed)


def run_ringing(daemon, simulator, latency, counts):
    """RSS growth per call with calls held in ``bridge`` (ringing), at each cumulative count."""
    latency.enabled = False
    gevent.sleep(0.5)
    base, held, results = rss_mib(), 0, {}
    bridges = latency.bridges
    for count in counts:
        simulator.ask("place %d 0 ringing" % (count - held))
        wait_for(lambda: latency.bridges - bridges >= count, 600, "%d calls ringing" % count)
        held = count
        gevent.sleep(0.5)
        results[str(count)] = {"calls_in_daemon": len(daemon.service.router.calls),
                               "kib_per_call": (rss_mib() - base) * 1024 / count}
    latency.enabled = True
    return results


@contextlib.contextmanager
def running(simulator, workdir, url, outbox_max):
    try:
        daemon = start_daemon(workdir, simulator, url, outbox_max)
        try:
            yield simulator, daemon
        finally:
            daemon.service.halt()
    finally:
        simulator.process.kill()
        simulator.process.wait(10)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="busy calls for CPU per call (default 2000)")
    parser.add_argument("--rates", default="200,1000", help="paced rates for the latency (default 200,1000)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per paced rate (default 5)")
    parser.add_argument("--ringing", default="2000,10000", help="calls held ringing (cumulative, default 2000,10000)")
    parser.add_argument("--json", action="store_true", help="one JSON line of figures")
    parser.add_argument("--log-level", default="error",
                        help="the daemon's log level; lines go to /dev/null (default error: no call lines)")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the daemon during the CPU run, stats to FILE")
    args = parser.parse_args()
    logsetup.configure(args.log_level, stream=open(os.devnull, "w"))  # the daemon's own formatter
    rates = [int(rate) for rate in args.rates.split(",") if rate]
    ringing = [int(count) for count in args.ringing.split(",") if count]
    latency = Latency()
    latency.install()
    receiver, url = start_receiver()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="callflowd-bench-calls-"))
    total = args.calls + sum(int(rate * args.seconds) for rate in rates) + 200
    results = {"pid": os.getpid()}
    try:
        with running(Simulator(time_scale=0.0001), workdir / "busy", url, total) as (simulator, daemon):
            run_calls(daemon, simulator, latency, 100, 0)  # warm up: imports, pools, caches
            profiler = None
            if args.profile:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            results["cpu"] = run_calls(daemon, simulator, latency, args.calls, 0)
            if profiler:
                profiler.disable()
                profiler.dump_stats(args.profile)
            results["paced"] = [run_calls(daemon, simulator, latency, int(rate * args.seconds), rate)
                                for rate in rates]
        if ringing:
            # real time: the phone rings for ten hours, the device's timeout is an hour
            with running(Simulator(time_scale=1.0), workdir / "ringing", url, total) as (simulator, daemon):
                run_calls(daemon, simulator, latency, 100, 0)  # warm up
                results["ringing"] = run_ringing(daemon, simulator, latency, ringing)
    finally:
        receiver.terminate()
        receiver.wait(10)
    if args.json:
        print(json.dumps(results))
        return
    cpu = results["cpu"]
    print("CPU per call (spec's flow, %d calls as fast as the simulator places them): %.2f ms "
          "(simulator placed %.0f/s, flows finished at %.0f/s)"
          % (cpu["calls"], cpu["cpu_ms_per_call"], cpu["placing_rate"], cpu["finished_rate"]))
    for paced in results["paced"]:
        print("asked %d calls/s (placed at %.0f/s): event in -> next command out p50 %.2f ms, p99 %.2f ms, "
              "max %.1f ms (%d samples); CPU %.2f ms/call"
              % (paced["asked_rate"], paced["placing_rate"], paced["p50_ms"], paced["p99_ms"], paced["max_ms"],
                 paced["samples"], paced["cpu_ms_per_call"]))
    for count, figures in results.get("ringing", {}).items():
        print("held ringing: %s calls, %.1f KiB per call" % (count, figures["kib_per_call"]))


if __name__ == "__main__":
    main()
