"""The built-in FreeSWITCH simulator in a process of its own, placing calls at a steady rate.

A load test needs the switch off the daemon's and the test's cores: the simulator costs
more per call than the daemon does (docs/benchmarks.md). ``SimulatorProcess`` starts
``python -m tests.doubles.simulator_process TIME_SCALE``, which prints its port, then obeys
one JSON command per line on stdin and answers each with one JSON line on stdout:

* ``{"place": N, "rate": R, "scenario": {...}, "clients": 1}``: waits for ``clients``
  subscribed clients, then places N calls to the front desk, call n at ``start + n / R``
  (an absolute schedule: a late call does not push the later ones back). Answers
  ``{"placed": [[uuid, unix time], ...], "seconds": ..., "late_max": ..., "cpu": ...,
  "waited": ...}``: when each call arrived, how long placing took, the most any call came
  after its time on the schedule, the CPU seconds the process used meanwhile, and the
  seconds it was ready to run but waited for a CPU (``run_queue_wait``);
* ``{"ended": TIMEOUT}``: waits for every call placed to end; answers
  ``{"calls": {uuid: {"applications": [...], "hangup_cause": ..., "ended": ...}}}``
  (``"ended": false`` for a call still up at the timeout);
* ``{"quit": true}``: stops the simulator (its clients get the shutdown notice) and exits.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import pathlib  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from gevent.fileobject import FileObjectThread  # noqa: E402

from callflowd.simulator import FreeswitchSimulator, Scenario  # noqa: E402

FRONT_DESK = "+10005559999"
REPO = pathlib.Path(__file__).resolve().parents[2]


def run_queue_wait(pid="self"):
    """Seconds the main thread of process ``pid`` has spent runnable but waiting for a CPU
    (the second field of /proc/PID/schedstat): how much a busy machine held it back."""
    return int(pathlib.Path("/proc/%s/schedstat" % pid).read_text().split()[1]) / 1e9


def place(simulator, count, rate, scenario, clients=1):
    simulator.wait_for_clients(clients, timeout=30)
    placed, late_max = [], 0.0
    cpu, waited, start = time.process_time(), run_queue_wait(), time.perf_counter()
    for n in range(count):
        late_max = max(late_max, time.perf_counter() - (start + n / rate))
        call = simulator.place_call(FRONT_DESK, scenario=scenario)
        placed.append((call, time.time()))
        gevent.sleep(max(0.0, start + (n + 1) / rate - time.perf_counter()))  # pacing the load
    return (placed, time.perf_counter() - start, late_max, time.process_time() - cpu,
            run_queue_wait() - waited)


def serve(time_scale):
    simulator = FreeswitchSimulator(time_scale=time_scale).start()
    print(simulator.port, flush=True)
    placed = []
    try:
        for line in FileObjectThread(sys.stdin):
            command = json.loads(line)
            if "place" in command:
                scenario = Scenario(**command.get("scenario", {}))
                calls, seconds, late_max, cpu, waited = place(
                    simulator, command["place"], command["rate"], scenario, command.get("clients", 1))
                placed.extend(call for call, _ in calls)
                answer = {"placed": [[call.uuid, at] for call, at in calls], "seconds": seconds,
                          "late_max": late_max, "cpu": cpu, "waited": waited}
            elif "ended" in command:
                deadline = time.monotonic() + command["ended"]
                for call in placed:
                    try:
                        call.wait_ended(max(0.0, deadline - time.monotonic()))
                    except TimeoutError:
                        pass
                answer = {"calls": {call.uuid: {"applications": [app for app, _ in call.applications],
                                                "hangup_cause": call.hangup_cause, "ended": call.ended}
                                    for call in placed}}
            else:
                break
            print(json.dumps(answer), flush=True)
    finally:
        simulator.stop()


class SimulatorProcess:
    """The parent's handle: ``host``/``port`` for a config, ``place()``, ``ended()``, ``stop()``."""

    def __init__(self, time_scale=1.0):
        self.process = subprocess.Popen([sys.executable, "-m", "tests.doubles.simulator_process", str(time_scale)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        self.host = "127.0.0.1"
        with gevent.Timeout(30, TimeoutError("the simulator process did not start")):
            self.port = int(self.process.stdout.readline())

    def _ask(self, command, timeout):
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        with gevent.Timeout(timeout, TimeoutError("the simulator process did not answer %r within %ss" % (command, timeout))):
            line = self.process.stdout.readline()  # cooperative: the test process is patched
        if not line:
            raise RuntimeError("the simulator process exited (status %s)" % self.process.poll())
        return json.loads(line)

    def place(self, count, rate, scenario=None, timeout=120):
        """Place ``count`` calls at ``rate`` a second; returns the process's answer (see above)."""
        return self._ask({"place": count, "rate": rate, "scenario": scenario or {}}, timeout)

    def ended(self, timeout=60):
        return self._ask({"ended": timeout}, timeout + 10)["calls"]

    def stop(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.write(json.dumps({"quit": True}) + "\n")
                self.process.stdin.close()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait(timeout=10)
        self.process.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


if __name__ == "__main__":
    serve(float(sys.argv[1]))
