"""Calls per second the daemon takes, paced by a cheap load generator: 200/s, 1,000/s, 30 s sustained.

Run: ``.venv/bin/python -m tests.benchmarks.bench_call_rate`` (from the repo root).

Four processes, so each is measured alone: this one only orchestrates; the daemon (the real
``Service``, built by ``bench_calls.start_daemon`` with its latency hooks ``bench_calls
.Latency``) runs in a child (``--serve-daemon``); the load generator (``loadgen.py``: the
real switch's frames from capture b, replayed with fresh uuids, far cheaper per call than
the simulator) in another; the webhook receiver (``bench_webhook_outbox.start_receiver``) in
a third. Every call is the spec's flow (park -> device, busy -> webhook -> voicemail ->
hangup), every webhook through the durable outbox. For each phase, printed:

* calls/s placed by the generator and finished by the daemon (flow ended *and* its webhook
  delivered), and whether every flow took the expected path and every webhook was delivered;
* the daemon's CPU per call: user+system of its process tree (``/proc``; the delivery child
  too, if the config had one) over the phase, divided by the calls; the generator's and the
  receiver's beside it, as the reference (they ran on the other core);
* event in -> next command out for that call (p50/p99/max), taken inside the daemon as
  ``bench_calls`` takes it.

Phases: warm-up (200 calls), each ``--rates`` for ``--seconds``, then ``--sustain`` seconds
at the highest of those rates the daemon kept up with (finished at >= 95 % of it) or, if it
fell behind at the highest, at 90 % of the rate it finished at there, whichever is higher
(``--sustain-rate`` to choose).
``--json`` prints one JSON line for ``python -m tests.benchmarks``.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402

import gevent  # noqa: E402

from tests.benchmarks.procstat import cpu_seconds, tree_cpu  # noqa: E402

WARM_UP = 200
KEEPS_UP = 0.95
EXPECTED_PATH = "device>webhook>voicemail"


# ------------------------------------------------------------------------------- the daemon's process


def serve_daemon(port, url, log_level, webhooks_process=False):
    """The daemon's process: the real Service against the generator on ``port``; orders on stdin.

    ``expect N``: the next N calls are a phase (latencies reset); ``wait``: answers once N
    more flows finished and N more webhooks were delivered or failed, with the latencies;
    ``paths``: the paths finished flows took since the last ``paths`` (then forgotten, so a
    long run does not keep every Call).
    """
    from gevent.fileobject import FileObjectThread

    from callflowd import logsetup
    from tests.benchmarks.bench_calls import Latency, delivered, start_daemon

    logsetup.configure(log_level, stream=open(os.devnull, "w"))
    latency = Latency()
    latency.install()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="callflowd-bench-rate-"))
    switch = types.SimpleNamespace(host="127.0.0.1", port=port)
    daemon = start_daemon(workdir / "daemon", switch, url, 1000000, webhooks_process=webhooks_process)
    paths = collections.Counter()
    finished = [0]

    def tally():
        # the flows finished so far, counted and forgotten (Daemon keeps every Call otherwise)
        calls = list(daemon.finished.values())
        daemon.finished.clear()
        for call in calls:
            paths[">".join(step.module for step in call.history)] += 1
        finished[0] += len(calls)
        return finished[0]

    def answer(text):
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    answer("ready %d" % os.getpid())
    target = None
    try:
        for line in FileObjectThread(sys.stdin):
            words = line.split()
            if not words:
                continue
            if words[0] == "expect":
                latency.take()
                target = (tally() + int(words[1]), delivered(daemon) + int(words[1]), time.perf_counter())
                answer("ok")
            elif words[0] == "wait":
                while tally() < target[0] or delivered(daemon) < target[1]:
                    gevent.sleep(0.01)
                stats = daemon.service.webhooks.stats
                answer("done " + json.dumps(dict(latency.take(), seconds=time.perf_counter() - target[2],
                                                 webhooks_delivered=stats.delivered,
                                                 webhooks_failed=stats.failed, webhooks_dropped=stats.dropped)))
            elif words[0] == "paths":
                tally()
                answer("paths " + json.dumps(dict(paths)))
                paths.clear()
            elif words[0] == "quit":
                break
    finally:
        daemon.service.halt()
        shutil.rmtree(workdir, ignore_errors=True)


# ------------------------------------------------------------------------------- the orchestrator


class Child:
    """A child process taking one-line orders on stdin, answering one line on stdout."""

    def __init__(self, argv):
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.first = self.read(60)

    def read(self, timeout):
        with gevent.Timeout(timeout, SystemExit("no answer from %s within %ss" % (self.process.args, timeout))):
            line = self.process.stdout.readline()
        if not line:
            raise SystemExit("%s exited (status %s)" % (self.process.args, self.process.wait()))
        return line.split(None, 1)

    def ask(self, line, timeout=600):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.read(timeout)

    def stop(self, line="quit"):
        try:
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
            self.process.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(10)


def run_phase(daemon, generator, receiver_pid, count, rate):
    """``count`` calls at ``rate``/s (0: as fast as the generator places them)."""
    daemon.ask("expect %d" % count)
    cpu, own = tree_cpu(daemon.pid), cpu_seconds(daemon.pid)
    receiver = tree_cpu(receiver_pid)
    generator_cpu = json.loads(generator.ask("stats")[1])["cpu"]
    start = time.perf_counter()
    placing = float(generator.ask("place %d %s" % (count, rate))[1])
    done = json.loads(daemon.ask("wait")[1])
    elapsed = time.perf_counter() - start
    cpu, own = tree_cpu(daemon.pid) - cpu, cpu_seconds(daemon.pid) - own
    receiver = tree_cpu(receiver_pid) - receiver
    stats = json.loads(generator.ask("stats")[1])
    paths = json.loads(daemon.ask("paths")[1])
    return dict(done, calls=count, asked_rate=rate, placed_rate=count / placing, finished_rate=count / elapsed,
                cpu_ms_per_call=cpu / count * 1e3, own_cpu_ms_per_call=own / count * 1e3,
                generator_cpu_ms_per_call=(stats["cpu"] - generator_cpu) / count * 1e3,
                receiver_cpu_ms_per_call=receiver / count * 1e3,
                expected_paths=paths.pop(EXPECTED_PATH, 0), other_paths=paths,
                generator_unexpected=stats["unexpected"], generator_unexpected_first=stats["unexpected_first"],
                generator_live=stats["live"])


def sustain_rate(paced):
    """The highest asked rate the daemon kept up with, or, if it fell behind at the highest,
    90 % of the rate it finished at there when that is higher: (rate, why)."""
    kept = [run["asked_rate"] for run in paced
            if run["asked_rate"] and run["finished_rate"] >= KEEPS_UP * run["asked_rate"]]
    top = max(paced, key=lambda run: run["asked_rate"])
    best = max(kept, default=0)
    if top["asked_rate"] not in kept:
        saturated = int(top["finished_rate"] * 0.9) // 10 * 10
        if saturated > best:
            return saturated, "90 %% of the %.0f/s it finished at when asked %d/s" % (
                top["finished_rate"], top["asked_rate"])
    return max(best, 10), "the highest rate it kept up with"


def describe(run):
    ok = "every flow %s, every webhook delivered" % EXPECTED_PATH
    if run["expected_paths"] != run["calls"] or run["other_paths"] or run["webhooks_failed"] or run["webhooks_dropped"]:
        ok = "NOT ALL OK: %d/%d flows %s, other paths %s, webhooks failed %d dropped %d" % (
            run["expected_paths"], run["calls"], EXPECTED_PATH, run["other_paths"], run["webhooks_failed"],
            run["webhooks_dropped"])
    if run["generator_unexpected"]:
        ok += "; generator saw %d unexpected commands: %s" % (run["generator_unexpected"],
                                                              run["generator_unexpected_first"])
    return ("%d calls asked at %s/s: placed at %.0f/s, finished at %.0f/s; %s\n"
            "  daemon CPU %.2f ms/call%s (reference: generator %.3f ms/call, receiver %.2f ms/call)\n"
            "  event in -> next command out: p50 %.2f ms, p99 %.2f ms, max %.1f ms (%d samples)"
            % (run["calls"], run["asked_rate"] or "max", run["placed_rate"], run["finished_rate"], ok,
               run["cpu_ms_per_call"],
               "" if abs(run["own_cpu_ms_per_call"] - run["cpu_ms_per_call"]) < 0.005 else
               ", of which the call-control process %.2f" % run["own_cpu_ms_per_call"],
               run["generator_cpu_ms_per_call"], run["receiver_cpu_ms_per_call"],
               run["p50_ms"] or 0, run["p99_ms"] or 0, run["max_ms"] or 0, run["samples"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="200,1000", help="paced rates, calls/s (default 200,1000)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per paced rate (default 5)")
    parser.add_argument("--sustain", type=float, default=30.0,
                        help="seconds of the sustained run (default 30; 0: none)")
    parser.add_argument("--sustain-rate", type=int, help="its rate (default: chosen from the paced runs)")
    parser.add_argument("--log-level", default="error", help="the daemon's log level, to /dev/null (default error)")
    parser.add_argument("--json", action="store_true", help="one JSON line of figures")
    parser.add_argument("--profile-generator", metavar="FILE", help="cProfile the generator's process, stats to FILE")
    parser.add_argument("--webhooks-process", action="store_true",
                        help="deliver webhooks from the delivery child (webhooks.process: true): both cores")
    parser.add_argument("--serve-daemon", nargs=4, metavar=("PORT", "URL", "LOG_LEVEL", "PROCESS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_daemon:
        port, url, log_level, process = args.serve_daemon
        serve_daemon(int(port), url, log_level, process == "process")
        return
    from tests.benchmarks.bench_webhook_outbox import start_receiver

    receiver, url = start_receiver()
    generator = daemon = None
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": _commit()}
    try:
        profile = ["-m", "cProfile", "-o", args.profile_generator] if args.profile_generator else []
        generator = Child([sys.executable] + profile + ["-m", "tests.benchmarks.loadgen"])
        daemon = Child([sys.executable, "-m", "tests.benchmarks.bench_call_rate", "--serve-daemon",
                        generator.first[0].strip(), url, args.log_level,
                        "process" if args.webhooks_process else "inline"])
        daemon.pid = int(daemon.first[1])
        run_phase(daemon, generator, receiver.pid, WARM_UP, 0)
        results["paced"] = [run_phase(daemon, generator, receiver.pid, int(rate * args.seconds), rate)
                            for rate in (int(rate) for rate in args.rates.split(",") if rate)]
        if args.sustain:
            rate, why = (args.sustain_rate, "asked") if args.sustain_rate else sustain_rate(results["paced"])
            results["sustained"] = dict(run_phase(daemon, generator, receiver.pid, int(rate * args.sustain), rate),
                                        seconds=args.sustain, why=why)
    finally:
        for child in (daemon, generator):
            if child is not None:
                child.stop()
        receiver.terminate()
        receiver.wait(10)
    if args.json:
        print(json.dumps(results))
        return
    print("%s, commit %s" % (results["date"], results["commit"]))
    for run in results["paced"]:
        print(describe(run))
    if "sustained" in results:
        run = results["sustained"]
        print("sustained %.0f s at %d/s (%s):" % (run["seconds"], run["asked_rate"], run["why"]))
        print(describe(run))


def _commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE, text=True,
                              stderr=subprocess.DEVNULL, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


if __name__ == "__main__":
    main()
