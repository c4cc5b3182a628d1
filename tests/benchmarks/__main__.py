"""Every figure of issue 10's table, each beside its reference measured in the same run.

Run from the repo root:

    .venv/bin/python -m tests.benchmarks            # about 4.5 minutes on 2 cores
    .venv/bin/python -m tests.benchmarks --quick    # about 1.7 minutes, smaller counts
    .venv/bin/python -m tests.benchmarks --realswitch   # and the real-switch load run (about 1 more minute)

``--realswitch`` (on by itself when CALLFLOWD_REAL_FREESWITCH=1) adds ``bench_realswitch``: the
spec's flow on the real FreeSWITCH at 80 calls/s for 30 s (10 s with ``--quick``); it takes
/tmp/realswitch.lock itself, and says "skipped" when no switch answers.

Each benchmark runs in a process of its own (each monkey-patches, and RSS must be its own),
as ``python -m tests.benchmarks.<module> --json``; the ingest and burst pairs are interleaved
``--repeat`` times and the medians printed with their ranges. Results go in docs/benchmarks.md.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time


def run(module, *options):
    command = [sys.executable, "-m", "tests.benchmarks." + module, "--json"] + list(options)
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def spread(values, fmt="%.0f"):
    """Median (min-max)."""
    values = [value for value in values if value is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return fmt % values[0]
    return (fmt + " (" + fmt + "-" + fmt + ")") % (statistics.median(values), min(values), max(values))


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor() or "?")
    return "%d cores (nproc), %s, Python %s" % (os.cpu_count(), cpu, platform.python_version())


def realswitch_rows(figures):
    """The real-switch load run's rows: every call handled, and the CPU per call of each process."""
    if "skipped" in figures:
        return [("real switch, spec's flow at 80 calls/s", "skipped: %s" % figures["skipped"], "-",
                 "every call handled")]
    rows = []
    for result in figures["runs"]:
        failures = ", ".join("%s: %d" % item for item in sorted(result["failures"].items())) or "no failures"
        cpu = result["cpu_ms_per_call"]
        latency = result["park_to_first_execute"]
        rows.append(("real switch, spec's flow at %d calls/s for %gs" % (result["asked_rate"], result["seconds"]),
                     "%d/%d calls handled (%d parked at %.0f/s); %s; channels left %d; park -> first command "
                     "p50 %s ms, p99 %s ms" % (
                         result["handled"], result["asked_calls"], result["parked"], result["placing_rate"] or 0,
                         failures, result["channels_left"],
                         "-" if latency["p50_ms"] is None else "%.0f" % latency["p50_ms"],
                         "-" if latency["p99_ms"] is None else "%.0f" % latency["p99_ms"]),
                     "CPU per call: callflowd %.2f ms, FreeSWITCH %.2f ms, sipp %.2f ms; machine %.0f %% busy" % (
                         cpu.get("callflowd", 0), cpu.get("freeswitch", 0), cpu.get("sipp", 0),
                         result["machine_busy"]),
                     "every call handled"))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, one round each (about 1.7 min)")
    parser.add_argument("--repeat", type=int, default=None, help="interleaved runs of ingest and burst (default 3)")
    parser.add_argument("--realswitch", action="store_true", default=os.environ.get("CALLFLOWD_REAL_FREESWITCH") == "1",
                        help="also the load run on the real switch (default: on when CALLFLOWD_REAL_FREESWITCH=1)")
    args = parser.parse_args()
    repeat = args.repeat or (1 if args.quick else 3)
    started = time.monotonic()
    print("machine: %s" % machine())
    print("command: python -m tests.benchmarks%s%s" % (" --quick" if args.quick else "",
                                                      " --realswitch" if args.realswitch else ""))
    rows = []

    ingest = [run("bench_event_socket", "--rounds", "2" if args.quick else "4") for _ in range(repeat)]
    ours = [run_["callflowd"] for run_ in ingest]
    stock = [run_["greenswitch"] for run_ in ingest]
    rows.append(("ingest over TCP (real events, fresh uuids)",
                 "%s events/s, %s us CPU/event" % (spread(ours), spread([r["callflowd_cpu_us"] for r in ingest], "%.1f")),
                 "greenswitch %s events/s, %s us CPU/event; %s x" % (
                     spread(stock), spread([r["greenswitch_cpu_us"] for r in ingest], "%.1f"),
                     spread([o / s for o, s in zip(ours, stock)], "%.2f")),
                 ">= 30,000/s and >= 3.5 x greenswitch"))

    bursts, stock_bursts = [], []
    for _ in range(repeat):
        bursts.append(run("bench_burst", "--probe-ms", "1", "--strategy", "paced")["paced"])
        stock_bursts.append(run("bench_burst", "--probe-ms", "1", "--client", "greenswitch")["greenswitch"])
    rows.append(("20,000-event burst: 1 ms sleeper, RSS",
                 "%s ms; +%s MiB; %s of 20,000 delivered" % (
                     spread([b["worst_wait_ms"] for b in bursts], "%.1f"),
                     spread([b["rss_growth_mib"] for b in bursts], "%.1f"),
                     spread([b["events"] for b in bursts])),
                 "greenswitch %s ms; +%s MiB" % (spread([b["worst_wait_ms"] for b in stock_bursts], "%.1f"),
                                                 spread([b["rss_growth_mib"] for b in stock_bursts], "%.1f")),
                 "<= 50 ms; < 50 MB"))

    calls = run("bench_calls", *(["--calls", "500", "--seconds", "2", "--ringing", "2000,10000"] if args.quick
                                 else ["--calls", "2000", "--seconds", "5", "--ringing", "2000,10000"]))
    cpu = calls["cpu"]
    rows.append(("daemon CPU per call (spec's flow)",
                 "%.2f ms (%d calls; flows finished at %.0f/s)" % (cpu["cpu_ms_per_call"], cpu["calls"],
                                                                   cpu["finished_rate"]),
                 "simulator placed %.0f calls/s on the other core" % cpu["placing_rate"],
                 "<= 1 ms"))
    for paced, target in zip(calls["paced"], ("<= 2 ms", "<= 10 ms")):
        rows.append(("event in -> command out, %d calls/s" % paced["asked_rate"],
                     "p99 %.2f ms (p50 %.2f, max %.1f; %d samples)" % (paced["p99_ms"], paced["p50_ms"],
                                                                        paced["max_ms"], paced["samples"]),
                     "reached %.0f calls/s placed, %.0f/s finished; %.2f ms CPU/call"
                     % (paced["placing_rate"], paced["finished_rate"], paced["cpu_ms_per_call"]),
                     "p99 " + target + " at %d calls/s" % paced["asked_rate"]))

    rate = run("bench_call_rate", *(["--seconds", "2", "--sustain", "10"] if args.quick
                                    else ["--seconds", "5", "--sustain", "30"]))

    def call_rate(paced):
        ok = (paced["expected_paths"] == paced["calls"] and not paced["other_paths"]
              and not paced["webhooks_failed"] and not paced["webhooks_dropped"] and not paced["generator_unexpected"])
        return ("finished %.0f calls/s (placed %.0f/s), %s; p99 %.2f ms (p50 %.2f, max %.1f); daemon CPU %.2f ms/call"
                % (paced["finished_rate"], paced["placed_rate"],
                   "every flow and webhook done" if ok else "NOT every flow/webhook done",
                   paced["p99_ms"] or 0, paced["p50_ms"] or 0, paced["max_ms"] or 0, paced["cpu_ms_per_call"]))

    for paced, target in zip(rate["paced"], ("p99 <= 2 ms at 200 calls/s", "p99 <= 10 ms at 1,000 calls/s")):
        rows.append(("load generator, asked %d calls/s" % paced["asked_rate"], call_rate(paced),
                     "generator %.3f ms CPU/call, receiver %.2f" % (paced["generator_cpu_ms_per_call"],
                                                                    paced["receiver_cpu_ms_per_call"]), target))
    if "sustained" in rate:
        sustained = rate["sustained"]
        rows.append(("load generator, %.0f s sustained at %d/s" % (sustained["seconds"], sustained["asked_rate"]),
                     call_rate(sustained),
                     "rate chosen: %s; generator %.3f ms CPU/call" % (sustained["why"],
                                                                       sustained["generator_cpu_ms_per_call"]),
                     ">= 1,000 calls/s for 30 s, every webhook delivered; CPU <= 1 ms/call"))

    hooks = run("bench_webhook_outbox", "--rounds", "1" if args.quick else "3",
                "--webhooks", "2000" if args.quick else "5000")
    rounds = hooks["rounds"]
    rows.append(("durable webhook deliveries/s",
                 "%s/s, %s ms CPU each" % (spread([r["durable"] for r in rounds]),
                                           spread([r["durable_cpu_ms"] for r in rounds], "%.2f")),
                 "bare requests.Session %s/s; bare urllib3 %s/s; bare loop on our client (h11) %s/s"
                 % (spread([r["requests"] for r in rounds]), spread([r["urllib3"] for r in rounds]),
                    spread([r["client"] for r in rounds])),
                 ">= 2,500/s durable"))

    for count, figures in calls["ringing"].items():
        rows.append(("memory per ringing call, %s" % count,
                     "%.1f KiB" % figures["kib_per_call"], "-", "<= 10 KiB at 10,000"))

    if args.realswitch:
        rows.extend(realswitch_rows(run("bench_realswitch", "--seconds", "10" if args.quick else "30")))

    print()
    width = max(len(row[0]) for row in rows)
    for figure, result, reference, target in rows:
        print("%-*s  %s" % (width, figure, result))
        print("%-*s  reference: %s" % (width, "", reference))
        print("%-*s  target: %s" % (width, "", target))
    print("\n(%.0f s; medians with ranges over %d interleaved runs where a range is shown)"
          % (time.monotonic() - started, repeat))


if __name__ == "__main__":
    main()
