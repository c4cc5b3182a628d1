"""Calls per second through the whole daemon: park -> device (busy) -> webhook -> voicemail.

Run: ``.venv/bin/python -m tests.benchmarks.bench_call_setup [--calls 200]`` (from the repo root).
The simulator, the daemon and the webhook receiver share one process and one core,
so the figure is a floor for the daemon alone. Figures go in docs/benchmarks.md.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from callflowd.demo.receiver import WebhookReceiver  # noqa: E402
from callflowd.simulator import FreeswitchSimulator, Scenario  # noqa: E402
from tests.harness import FRONT_DESK, Daemon, front_desk_flow, write_config  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    switch = FreeswitchSimulator(time_scale=0.0001, heartbeat_seconds=None).start()
    receiver = WebhookReceiver().start()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="callflowd-bench-"))
    config = write_config(workdir, switch, {"front-desk": front_desk_flow({"uri": receiver.url("/m")})},
                          webhooks={"outbox": {"max": args.calls * 2}})
    daemon = Daemon(config).start()
    scenario = Scenario(device="busy", ring_seconds=0, voicemail_seconds=0)
    start = time.perf_counter()
    calls = [switch.place_call(FRONT_DESK, scenario=scenario) for _ in range(args.calls)]
    for call in calls:
        daemon.wait_finished(call.uuid, timeout=120)
    flows_done = time.perf_counter() - start
    receiver.wait_for(args.calls, timeout=120)
    hooks_done = time.perf_counter() - start
    daemon.stop()
    receiver.stop()
    switch.stop()
    print("machine: %s, Python %s" % (platform.machine(), platform.python_version()))
    print("calls: %d, each park -> bridge busy -> webhook -> answer -> voicemail -> hangup" % args.calls)
    print("all flows finished in %.2fs: %.0f calls/s" % (flows_done, args.calls / flows_done))
    print("all webhooks received in %.2fs: %.0f webhooks/s" % (hooks_done, args.calls / hooks_done))


if __name__ == "__main__":
    main()
