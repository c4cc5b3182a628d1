"""The spec's flow on the real switch under load: every call checked, CPU per call beside FreeSWITCH's.

Run (from the repo root; it holds ``/tmp/realswitch.lock`` for the whole run, its own or the one
``flock(1)`` took for it):

    flock /tmp/realswitch.lock .venv/bin/python -m tests.benchmarks.bench_realswitch            # 80 calls/s for 30 s
    flock /tmp/realswitch.lock .venv/bin/python -m tests.benchmarks.bench_realswitch --rates 80,60,40

With no switch answering at 127.0.0.1:8021 (``CALLFLOWD_REAL_FREESWITCH_ESL`` for another) it
prints ``skipped: no FreeSWITCH at ...`` and exits 0, so ``python -m tests.benchmarks`` can run it.

The rig is the real-switch tier's (``tests/realswitch``): the real ``callflowd run`` process
(``daemon.py``, logging at ``info`` as deployed), the spec's front-desk flow (device user 1000,
busy -> webhook -> voicemail), sipp registered as 1000 answering 486 to every INVITE, sipp callers
to a parked test number of the benchmark's own (``NUMBER``) on the external profile at each
``--rates`` calls/s for ``--seconds``
(``uac_answered_bye.xml``: each caller hangs up 1 s after the answer, while voicemail still
plays its greeting of 250 ms tones, so no message is recorded and a call lasts ~1.2 s), a real
HTTP receiver (in this process) for the webhooks, and an independent event-socket client
(``observer.py``) that records, for each caller's channel, its CHANNEL_PARK, the daemon's first
CHANNEL_EXECUTE and its CHANNEL_HANGUP_COMPLETE (filtered in the switch: 3 events a call).
``fsctl sps`` is raised to 200 for the run (``--sps``; each call takes two sessions) and
restored afterwards; whatever happens (SIGTERM included), sipps are killed, the daemon stopped
and channels hung up.

Printed per rate:

* calls placed (sipp) and parked (the switch), and handled: by the channel's own variables at
  hangup, its bridge ended ``USER_BUSY`` and voicemail was the last application it ran; the
  daemon logged the busy bridge and the flow finished; the receiver got exactly one webhook
  for the call, with an ``X-Callflowd-Delivery`` id no other call has; then ``show channels
  count`` back to 0 and no voicemail message recorded. Every other outcome is counted by
  kind, with sipp's failure counters and the SIP answers its aborted calls got;
* CPU per call, from ``/proc`` over the same window (first call placed -> last call checked):
  the daemon's process tree (user+sys, children included), FreeSWITCH's process, the two
  sipps, and this process (observer, receiver, checks); each also as a share of one core,
  mean and busiest second, and the machine's busy share (other engineers' work included);
* park -> first command executed: from CHANNEL_PARK to the CHANNEL_EXECUTE of the daemon's
  first command on the call, as both reached the observer (the daemon reading the event,
  deciding, writing its commands, the switch's parked session picking them up, which it does
  once per 20 ms frame, and the event coming back), and by their Event-Date-Timestamp (the
  switch's clock, which moves in 20 ms ticks here: its timer runs at 20 ms); how late the
  PARK reached the observer (the switch's event queues); and, from the daemon's own
  ``/metrics``, the events and commands a call and how long FreeSWITCH took to answer them.

Results and what bounds them: docs/benchmarks.md, "the real-switch load run".

``--json`` prints one JSON line for ``python -m tests.benchmarks --realswitch``.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import collections  # noqa: E402
import contextlib  # noqa: E402
import fcntl  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import requests  # noqa: E402
import yaml  # noqa: E402

from callflowd.demo.receiver import WebhookReceiver, free_port  # noqa: E402
from tests.realswitch.conftest import esl_settings  # noqa: E402
from tests.realswitch.daemon import DaemonProcess, front_desk_flow  # noqa: E402
from tests.realswitch.observer import SwitchObserver, SwitchUnreachable  # noqa: E402
from tests.realswitch.sipp import Sipp  # noqa: E402
from tests.benchmarks.procstat import cpu_seconds, tree_cpu  # noqa: E402

LOCK = "/tmp/realswitch.lock"
# A parked test number of our own (the switch parks ^\+?1?000555\d{4}$): the tier's tests all
# route +10005559999, so a daemon a killed test left on the switch leaves these calls alone.
NUMBER = "+10005550180"
FREESWITCH_PIDFILE = "/usr/local/freeswitch/var/run/freeswitch/freeswitch.pid"
CALLER_SCENARIO = "uac_answered_bye.xml"  # hangs up 1 s after the answer (voicemail's greeting)
# What the observer asks for, so the switch sends it 3 events a call, not ~19: FreeSWITCH copies
# and serialises every event once for each listener that takes it (mod_event_socket's
# event_handler, after the filters), and a second full subscription would double that part of
# the switch's CPU. Filters pass an event if any "+" one matches, unless a "-" one does.
EVENTS = "CHANNEL_PARK CHANNEL_EXECUTE CHANNEL_HANGUP_COMPLETE"
FILTERS = (
    ("Event-Name", "/^CHANNEL_(PARK|HANGUP_COMPLETE)$/"),
    ("Application-Data", "continue_on_fail=true"),  # the daemon's first command (the device action's set)
    ("Call-Direction", "-outbound"),  # not the phone's leg
)
KEEP = ("Event-Name", "Unique-ID", "Event-Date-Timestamp", "Call-Direction", "Caller-Destination-Number",
        "Application", "Application-Data", "Hangup-Cause", "variable_originate_disposition",
        "variable_last_bridge_proto_specific_hangup_cause", "variable_current_application")
DELIVERY_HEADER = "x-callflowd-delivery"
SESSIONS_PER_SECOND = 200
_FINISHED = re.compile(r"call (\S+): callflow \S+ finished")
_BUSY = re.compile(r"call (\S+): bridge failed: USER_BUSY")
_LEVEL = re.compile(r"^(?:\S+ )?(WARNING|ERROR|CRITICAL) ")


# -- the lock and the switch's settings ---------------------------------------------------------

@contextlib.contextmanager
def switch_lock(path=LOCK):
    """Hold ``path`` (flock) for the whole run. Started as ``flock path cmd``, the descriptor
    flock(1) locked is inherited: locking through it again is ours at once; otherwise we take
    the lock ourselves, waiting (and saying so) while another real-switch run holds it."""
    inherited = None
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink("/proc/self/fd/%s" % name) == path:
                inherited = int(name)
    if inherited is not None:
        fcntl.flock(inherited, fcntl.LOCK_EX)
        yield
        return
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("waiting for %s: another real-switch run holds it" % path, file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def switch_answers(host, port, timeout=3.0):
    """Whether something at host:port speaks the event socket's greeting."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            return b"auth/request" in sock.recv(256)
    except OSError:
        return False


def session_limits(observer):
    """(sessions a second allowed, sessions at most), from ``status``:
    ``0 session(s) per Sec out of max 30, ...`` and ``1000 session(s) max``."""
    text = observer.api("status")
    per_second = re.search(r"per Sec out of max (\d+)", text)
    most = re.search(r"(\d+) session\(s\) max", text)
    return (int(per_second.group(1)) if per_second else None), (int(most.group(1)) if most else None)


def clear_channels(observer, timeout=15.0):
    """``hupall`` and wait for ``show channels count`` to read 0; what is left."""
    if observer.channel_count():
        observer.api("hupall NORMAL_CLEARING")
    return observer.wait_no_channels(timeout=timeout)


# -- CPU from /proc ------------------------------------------------------------------------------

def machine_busy():
    """(busy, total) jiffies of every core, /proc/stat's first line."""
    with open("/proc/stat") as handle:
        values = [int(value) for value in handle.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def niceness(pid):
    """The nice value of ``pid`` (proc(5) stat field 19), or None."""
    with contextlib.suppress(OSError, IndexError, ValueError, TypeError):
        with open("/proc/%d/stat" % pid) as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[16])
    return None


def other_daemons(ours, port):
    """``callflowd run`` processes other than ``ours`` with a TCP connection to ``port``: (pid,
    command line). One with a front-desk callflow takes some of the parked calls (a killed
    test's orphan did: bridges to another phone, webhooks to a receiver long gone)."""
    connected = set()  # socket inodes connected to the port, from /proc/net/tcp
    with open("/proc/net/tcp") as table:
        for line in list(table)[1:]:
            fields = line.split()
            if fields[2].endswith(":%04X" % port) and fields[3] == "01":  # ESTABLISHED
                connected.add(fields[9])
    found = []
    for name in os.listdir("/proc"):
        with contextlib.suppress(OSError):
            if name.isdigit() and int(name) != ours:
                words = pathlib.Path("/proc/%s/cmdline" % name).read_bytes().split(b"\0")
                if b"callflowd" not in words or b"run" not in words:
                    continue
                sockets = {os.readlink("/proc/%s/fd/%s" % (name, fd))[8:-1]
                           for fd in os.listdir("/proc/%s/fd" % name)}
                if sockets & connected:
                    found.append((int(name), b" ".join(words).decode(errors="replace").strip()))
    return found


def freeswitch_pid():
    with contextlib.suppress(OSError, ValueError):
        return int(pathlib.Path(FREESWITCH_PIDFILE).read_text().split()[0])
    for name in os.listdir("/proc"):
        with contextlib.suppress(OSError):
            if name.isdigit() and pathlib.Path("/proc/%s/comm" % name).read_text().strip() == "freeswitch":
                return int(name)
    return None


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Sampler:
    """Every second, each process's CPU (a ``top`` of our own) and the switch's channel count."""

    def __init__(self, observer, processes):
        self.observer, self.processes = observer, processes  # name -> zero-argument CPU reader
        self.rows = []
        self._greenlet = None

    def start(self):
        self._greenlet = gevent.spawn(self._run)
        return self

    def stop(self):
        self._greenlet.kill()

    def _run(self):
        while True:
            row = {name: read() for name, read in self.processes.items()}
            row["machine"] = machine_busy()
            row["at"] = time.monotonic()
            with contextlib.suppress(Exception):  # a busy switch may answer late: the next second will do
                row["channels"] = self.observer.channel_count()
            self.rows.append(row)
            gevent.sleep(1.0)  # the sampling period itself

    def busiest(self):
        """name -> the busiest second's share of one core, in %; and the most channels seen."""
        peaks = collections.defaultdict(float)
        for before, after in zip(self.rows, self.rows[1:]):
            wall = after["at"] - before["at"]
            for name in self.processes:
                if before[name] is not None and after[name] is not None:
                    peaks[name] = max(peaks[name], (after[name] - before[name]) / wall * 100)
            busy = after["machine"][0] - before["machine"][0]
            total = after["machine"][1] - before["machine"][1]
            if total:
                peaks["machine"] = max(peaks["machine"], busy / total * 100)
        return dict(peaks), max((row.get("channels", 0) for row in self.rows), default=0)


# -- the daemon's own counters ------------------------------------------------------------------

_SAMPLE = re.compile(r'^(callflowd_\w+?)(?:\{([^}]*)\})? (\S+)$')


def scrape(url):
    """The daemon's /metrics: {(name, labels text): value}, or {} if it does not answer."""
    try:
        text = requests.get(url, timeout=5).text
    except requests.RequestException:
        return {}
    samples = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            samples[(match.group(1), match.group(2) or "")] = float(match.group(3))
    return samples


def command_figures(before, after, calls):
    """From two scrapes: events and commands a call, and how long FreeSWITCH took to answer the
    daemon's commands (callflowd_command_seconds: mean, and the bucket bounds of p50 and p99)."""
    def delta(name, match=""):
        return sum(value - before.get(key, 0.0) for key, value in after.items()
                   if key[0] == name and match in key[1])
    count = delta("callflowd_command_seconds_count")
    buckets = sorted((float(re.search(r'le="([^"]+)"', key[1]).group(1)), value - before.get(key, 0.0))
                     for key, value in after.items() if key[0] == "callflowd_command_seconds_bucket")
    def bound(share):
        return next((le for le, cumulative in buckets if cumulative >= share * count), None)
    return {"events_per_call": delta("callflowd_events_received_total") / max(1, calls),
            "commands_per_call": count / max(1, calls),
            "reply_mean_ms": delta("callflowd_command_seconds_sum") / count * 1e3 if count else None,
            "reply_p50_le_ms": (bound(0.5) or 0) * 1e3 if count else None,
            "reply_p99_le_ms": (bound(0.99) or 0) * 1e3 if count else None}


# -- one run ------------------------------------------------------------------------------------

def percentiles(values):
    values = sorted(values)
    if not values:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None, "samples": 0}
    return {"p50_ms": values[len(values) // 2], "p90_ms": values[int(len(values) * 0.9)],
            "p99_ms": values[int(len(values) * 0.99)], "max_ms": values[-1], "samples": len(values)}


class Run:
    """One rate: place the calls, wait until each is over, check each, read the CPU."""

    def __init__(self, rig, rate, seconds):
        self.rig, self.rate, self.seconds = rig, rate, seconds
        self.calls = int(rate * seconds)

    def place_and_wait(self, drain):
        rig = self.rig
        observer, daemon, receiver, sipp = rig.observer, rig.daemon, rig.receiver, rig.sipp
        self.since_event, self.since_request = len(observer.events), len(receiver.requests)
        self.since_line = len(daemon.lines)
        self.metrics_before = scrape(rig.metrics_url)
        limit = max(50, int(self.rate * 10))  # sipp lowers the rate once this many callers are up
        self.phone = sipp.phone("uas_busy.xml", calls=self.calls, timeout="%ds" % (self.seconds + drain + 60))
        start = self._cpu()
        sampler = Sampler(observer, {
            "callflowd": lambda: tree_cpu(daemon.process.pid),
            "freeswitch": lambda: cpu_seconds(rig.freeswitch),
            "sipp phone": lambda: cpu_seconds(self.phone.pid),
            "sipp callers": lambda: cpu_seconds(getattr(self, "callers", None) and self.callers.pid),
            "this process": self_cpu,
        }).start()
        self.callers = sipp.callers(NUMBER, CALLER_SCENARIO, self.calls, self.rate, limit,
                                    timeout="%ds" % (self.seconds + drain + 60))
        sipp.finish(self.callers, timeout=self.seconds + drain + 90)
        self.complete = self._wait_all_over(drain)
        end = self._cpu()
        self.metrics_after = scrape(rig.metrics_url)
        sampler.stop()
        self.peaks, self.most_channels = sampler.busiest()
        with contextlib.suppress(Exception):  # it ends by itself once it saw every INVITE it was told to
            sipp.finish(self.phone, timeout=5)
        sipp.stop_all()  # reaped, so RUSAGE_CHILDREN has both sipps
        end["sipp"] = children_cpu()
        self.window = end["at"] - start["at"]
        self.cpu = {name: end[name] - start[name] for name in ("callflowd", "freeswitch", "sipp", "this process")
                    if start[name] is not None and end[name] is not None}
        self.machine = ((end["machine"][0] - start["machine"][0]) / max(1, end["machine"][1] - start["machine"][1]))

    def _cpu(self):
        return {"at": time.monotonic(), "callflowd": tree_cpu(self.rig.daemon.process.pid),
                "freeswitch": cpu_seconds(self.rig.freeswitch), "sipp": children_cpu(),
                "this process": self_cpu(), "machine": machine_busy()}

    def _parked(self):
        return [event.uuid for event in self.rig.observer.events[self.since_event:]
                if event.name == "CHANNEL_PARK" and event.get("Call-Direction") == "inbound"
                and event.get("Caller-Destination-Number") == NUMBER]

    def _finished(self):
        return {match.group(1) for match in map(_FINISHED.search, self.rig.daemon.lines[self.since_line:]) if match}

    def _wait_all_over(self, drain):
        """Until every parked call's flow finished, its webhook arrived and no channel is left;
        polled (a quarter second): "all over" is three processes' state, no one event says it."""
        deadline = time.monotonic() + drain
        while True:
            parked = set(self._parked())
            hooked = {request.fields.get("call_id", [None])[0]
                      for request in self.rig.receiver.requests[self.since_request:]}
            if parked <= self._finished() and parked <= hooked and self.rig.observer.channel_count() == 0:
                return True
            if time.monotonic() > deadline:
                return False
            gevent.sleep(0.25)

    def check(self):
        """Every call, by what the switch, the receiver and the daemon's log say; failures by kind."""
        rig = self.rig
        events = collections.defaultdict(list)
        for event in rig.observer.events[self.since_event:]:
            events[event.uuid].append(event)
        requests = collections.defaultdict(list)
        for request in rig.receiver.requests[self.since_request:]:
            requests[request.fields.get("call_id", [None])[0]].append(request)
        lines = rig.daemon.lines[self.since_line:]
        finished = self._finished()
        busy = {match.group(1) for match in map(_BUSY.search, lines) if match}
        parked = self._parked()
        failures, delivery_ids = collections.Counter(), collections.Counter()
        seen, stamped, parks, lag = [], [], [], []
        wall = time.time() - time.monotonic()  # seen_at is monotonic; Event-Date-Timestamp is epoch µs
        handled = 0
        for uuid in parked:
            mine = events[uuid]
            park = next(event for event in mine if event.name == "CHANNEL_PARK")
            parks.append(park.seen_at)
            lag.append((park.seen_at + wall - int(park["Event-Date-Timestamp"]) / 1e6) * 1e3)
            first = [event for event in mine if event.name == "CHANNEL_EXECUTE"]  # set continue_on_fail
            ended = [event for event in mine if event.name == "CHANNEL_HANGUP_COMPLETE"]
            hooks = requests.get(uuid, [])
            wrong = []
            if first:
                seen.append((first[0].seen_at - park.seen_at) * 1e3)
                stamped.append((int(first[0]["Event-Date-Timestamp"]) - int(park["Event-Date-Timestamp"])) / 1e3)
            else:
                wrong.append("the daemon's first command never ran")
            if not ended:
                wrong.append("the caller's channel never hung up")
            else:
                # The channel's own record at hangup: how its bridge ended, the last app it ran.
                disposition = ended[0].get("variable_originate_disposition")
                last_app = ended[0].get("variable_current_application")
                if disposition != "USER_BUSY":
                    wrong.append("bridge ended %s" % disposition)
                if last_app == "answer":
                    wrong.append("no voicemail: the caller hung up first (1 s after the answer)")
                elif last_app != "voicemail":
                    wrong.append("no voicemail (last application: %s)" % last_app)
            if len(hooks) != 1:
                wrong.append("%d webhooks" % len(hooks))
            for request in hooks:
                delivery = request.header(DELIVERY_HEADER)
                if not delivery:
                    wrong.append("webhook without %s" % DELIVERY_HEADER)
                delivery_ids[delivery] += 1
            if uuid not in finished:
                wrong.append("flow not finished in the daemon's log")
            elif uuid not in busy:
                wrong.append("the daemon did not log bridge failed: USER_BUSY")
            failures.update(wrong)
            handled += not wrong
        shared = sum(1 for delivery, count in delivery_ids.items() if delivery and count > 1)
        if shared:
            failures["a delivery id on two webhooks"] = shared
        stray = len(rig.receiver.requests) - self.since_request - sum(len(requests.get(uuid, [])) for uuid in parked)
        if stray:
            failures["webhooks for no parked call"] = stray
        caller_stats = rig.sipp.stats(self.callers)
        placed = int(caller_stats.get("TotalCallCreated", 0) or 0)
        if placed > len(parked):
            failures["placed, never parked"] = placed - len(parked)
        for name, value in caller_stats.items():
            if name.startswith("Failed") and name.endswith("(C)") and name != "FailedCall(C)" and value.strip("0"):
                failures["sipp caller: %s" % name[:-3]] = int(value)
        for answer, count in rig.sipp.unexpected(self.callers).items():
            failures["sipp caller got %s" % answer.strip()] = count
        messages = rig.voicemail_messages() - rig.messages_before
        if messages:
            failures["voicemail messages recorded"] = messages
        left = rig.observer.channel_count()
        if left:
            failures["channels left on the switch"] = left
        warnings = collections.Counter(match.group(1) for match in map(_LEVEL.match, lines) if match)
        cpu = {name: seconds / max(1, len(parked)) * 1e3 for name, seconds in self.cpu.items()}
        commands = command_figures(self.metrics_before, self.metrics_after, len(parked))
        return {
            "asked_rate": self.rate, "seconds": self.seconds, "asked_calls": self.calls,
            "placed": placed,
            "placing_rate": (len(parks) - 1) / (max(parks) - min(parks)) if len(parks) > 1 else None,
            "parked": len(parked), "handled": handled,
            "sipp_successful": int(caller_stats.get("SuccessfulCall(C)", 0) or 0),
            "sipp_failed": int(caller_stats.get("FailedCall(C)", 0) or 0),
            "retransmissions": int(caller_stats.get("Retransmissions(C)", 0) or 0),
            "observer_events_per_call": (len(rig.observer.events) - self.since_event) / max(1, len(parked)),
            "all_over_in_time": self.complete, "channels_left": left, "most_channels": self.most_channels,
            "failures": dict(failures), "daemon_log_levels": dict(warnings),
            "window_s": self.window, "cpu_ms_per_call": cpu,
            "cpu_share_of_a_core": {name: seconds / self.window * 100 for name, seconds in self.cpu.items()},
            "busiest_second": self.peaks, "machine_busy": self.machine * 100,
            "park_to_first_execute": percentiles(seen),
            "park_to_first_execute_switch_clock": percentiles(stamped),
            "park_delivery_lag": percentiles(lag),
            "daemon_commands": commands,
            "clean": handled == self.calls and not failures and left == 0,
        }


class Rig:
    """The daemon, the receiver, the observer and the sipps, for every rate of one invocation."""

    def __init__(self, workdir, esl, log_level, sessions_per_second=SESSIONS_PER_SECOND, claims=None):
        self.workdir, self.esl, self.log_level = workdir, esl, log_level
        self.claims = claims  # None: the config says nothing (the default); True/False: cluster.claims
        self.sessions_per_second = sessions_per_second
        self.observer = self.daemon = self.receiver = self.sipp = None
        self.freeswitch = freeswitch_pid()
        self.restore = None

    def __enter__(self):
        try:
            return self._start()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise

    def _start(self):
        host, port, password = self.esl
        self.observer = SwitchObserver(host, port, password, timeout=15.0, events=EVENTS, keep=KEEP).connect()
        for header, value in FILTERS:
            self.observer.command("filter %s %s" % (header, value))
        self.restore = session_limits(self.observer)
        self.observer.api("fsctl sps %d" % self.sessions_per_second)
        if clear_channels(self.observer):
            raise SystemExit("the switch still has channels after hupall: not a clean start")
        self.receiver = WebhookReceiver().start()
        self.sipp = Sipp(self.workdir)
        flow = dict(front_desk_flow(self.receiver.url("/missed")), numbers=[NUMBER])
        self.daemon = DaemonProcess(self.workdir, self.esl, {"front-desk": flow}, webhooks={"timeout": 10},
                                    log_level=self.log_level,
                                    cluster=None if self.claims is None else {"claims": self.claims})
        config = yaml.safe_load(self.daemon.config_path.read_text())
        config["metrics"] = {"host": "127.0.0.1", "port": free_port()}  # its command reply times
        self.daemon.config_path.write_text(yaml.safe_dump(config))
        self.metrics_url = "http://127.0.0.1:%d/metrics" % config["metrics"]["port"]
        self.daemon.start()
        self.sipp.register("1000")
        self.messages_before = self.voicemail_messages()
        return self

    def voicemail_messages(self):
        """Messages in the box (``vm_boxcount ...|all``: ``new:saved:new-urgent:saved-urgent``)."""
        text = self.observer.api("vm_boxcount default/1000@127.0.0.1|all").strip()
        return sum(int(part) for part in text.split(":") if part.isdigit())

    def __exit__(self, *exc_info):
        """Whatever happened: sipps killed, the daemon stopped, channels hung up, sps restored."""
        if self.sipp:
            self.sipp.stop_all()
        if self.daemon:
            self.daemon.stop()
            with contextlib.suppress(OSError):  # kept beside the sipp logs, for a look afterwards
                (self.workdir / "callflowd.log").write_text(self.daemon.log())
        if self.receiver:
            self.receiver.stop()
        if self.observer:
            with contextlib.suppress(Exception):
                clear_channels(self.observer)
            if self.restore and self.restore[0]:
                with contextlib.suppress(Exception):
                    self.observer.api("fsctl sps %d" % self.restore[0])
            self.observer.close()


def describe(result):
    cpu, share, peak = result["cpu_ms_per_call"], result["cpu_share_of_a_core"], result["busiest_second"]
    latency, stamped = result["park_to_first_execute"], result["park_to_first_execute_switch_clock"]
    lines = [
        "asked %d calls/s for %gs: %d placed (parked at %.1f calls/s), %d parked, %d handled%s"
        % (result["asked_rate"], result["seconds"], result["placed"], result["placing_rate"] or 0, result["parked"],
           result["handled"], "" if result["clean"] else "  NOT CLEAN: see failures"),
        "  failures: %s" % (", ".join("%s: %d" % item for item in sorted(result["failures"].items())) or "none"),
        "  sipp callers: %d successful, %d failed, %d retransmissions; at most %d channels on the switch; "
        "channels left: %d; the observer got %.1f events a call"
        % (result["sipp_successful"], result["sipp_failed"], result["retransmissions"], result["most_channels"],
           result["channels_left"], result["observer_events_per_call"]),
        "  CPU per call over %.1f s (ms; share of one core, mean / busiest second):" % result["window_s"],
    ]
    for name in ("callflowd", "freeswitch", "sipp", "this process"):
        if name in cpu:
            busiest = " / %.0f %%" % peak[name] if name in peak else (
                " / phone %.0f %%, callers %.0f %%" % (peak.get("sipp phone", 0), peak.get("sipp callers", 0)))
            lines.append("    %-13s %6.2f ms  (%.0f %%%s)" % (name, cpu[name], share[name], busiest))
    lines.append("    machine busy: %.0f %% of 2 cores (busiest second %.0f %%), others' work included"
                 % (result["machine_busy"], peak.get("machine", 0)))
    if latency["samples"]:
        lines.append("  CHANNEL_PARK -> first CHANNEL_EXECUTE, as they reached the observer: p50 %.1f ms, p90 %.1f, "
                     "p99 %.1f, max %.1f (%d calls); by their Event-Date-Timestamp (20 ms ticks): p50 %.0f, p99 %.0f"
                     % (latency["p50_ms"], latency["p90_ms"], latency["p99_ms"], latency["max_ms"],
                        latency["samples"], stamped["p50_ms"], stamped["p99_ms"]))
    commands = result["daemon_commands"]
    if commands["reply_mean_ms"] is not None:
        lines.append("  the daemon: %.1f events and %.1f commands a call; FreeSWITCH answered its commands in "
                     "%.1f ms on average (p50 <= %g ms, p99 <= %g ms: callflowd_command_seconds buckets)"
                     % (commands["events_per_call"], commands["commands_per_call"], commands["reply_mean_ms"],
                        commands["reply_p50_le_ms"], commands["reply_p99_le_ms"]))
    lag = result["park_delivery_lag"]
    if lag["samples"]:
        lines.append("  CHANNEL_PARK stamped by the switch -> read by the observer (the switch's event queues): "
                     "p50 %.0f ms, p99 %.0f, max %.0f" % (lag["p50_ms"], lag["p99_ms"], lag["max_ms"]))
    if result["daemon_log_levels"]:
        lines.append("  daemon log: %s" % ", ".join("%d %s" % (n, level)
                                                   for level, n in sorted(result["daemon_log_levels"].items())))
    return "\n".join(lines)


def _terminated(signum, frame):
    """SIGTERM (``timeout``, a CI job cancelled) unwinds like Ctrl-C, so the rig's cleanup runs:
    sps restored, channels hung up. gevent's hub passes SystemExit on to the main greenlet."""
    raise SystemExit(128 + signum)


def main():
    signal.signal(signal.SIGTERM, _terminated)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="80", help="calls/s, one run each, in this order (default 80)")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of calls per rate (default 30)")
    parser.add_argument("--drain", type=float, default=60.0,
                        help="seconds after the last call placed for every call to be over (default 60)")
    parser.add_argument("--log-level", default="info", help="the daemon's log level (default info, as deployed)")
    parser.add_argument("--sps", type=int, default=SESSIONS_PER_SECOND,
                        help="fsctl sps for the run, restored after (default %d)" % SESSIONS_PER_SECOND)
    parser.add_argument("--claims", default="",
                        help="cluster.claims per daemon, one daemon each in turn for every rate: e.g. "
                             "off,on,off,on (default: the config's default, one daemon)")
    parser.add_argument("--json", action="store_true", help="one JSON line of figures")
    args = parser.parse_args()
    modes = [{"on": True, "off": False}[word] for word in args.claims.split(",") if word] or [None]
    esl = esl_settings()
    where = "%s:%d" % esl[:2]
    if not switch_answers(*esl[:2]):
        print(json.dumps({"skipped": "no FreeSWITCH at %s" % where}) if args.json
              else "skipped: no FreeSWITCH at %s" % where)
        return 0
    results = {"switch": where, "runs": []}
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="callflowd-bench-realswitch-"))
    with switch_lock():
        try:
            for index, claims in enumerate(modes):
                mode_dir = workdir if len(modes) == 1 else workdir / ("%d-claims-%s" % (index, claims))
                mode_dir.mkdir(exist_ok=True)
                if claims is not None and not args.json:
                    print("== cluster.claims %s" % ("on" if claims else "off"), flush=True)
                _run_rates(Rig(mode_dir, esl, args.log_level, args.sps, claims), args, results, claims)
        except SwitchUnreachable as exc:
            print(json.dumps({"skipped": "no FreeSWITCH at %s: %s" % (where, exc)}) if args.json
                  else "skipped: no FreeSWITCH at %s (%s)" % (where, exc))
            return 0
    if args.json:
        print(json.dumps(results))
    else:
        print("(work dir %s: the daemon's config, sipp logs and counters)" % workdir)
    return 0


def _run_rates(rig_context, args, results, claims):
    with rig_context as rig:
        results["sessions_before"] = list(rig.restore)
        results["other_daemons"] = other_daemons(rig.daemon.process.pid, rig.esl[1])
        for pid, command in results["other_daemons"]:
            print("warning: another callflowd is connected to the switch (pid %d: %s): it may take some"
                  " of the parked calls" % (pid, command), file=sys.stderr, flush=True)
        results["nice"] = {"freeswitch": niceness(rig.freeswitch),
                           "callflowd": niceness(rig.daemon.process.pid)}
        if not args.json:
            print("FreeSWITCH pid %s, nice %s; callflowd nice %s; fsctl sps was %s (max sessions %s), "
                  "%d for the run" % (rig.freeswitch, results["nice"]["freeswitch"],
                                      results["nice"]["callflowd"], rig.restore[0], rig.restore[1],
                                      rig.sessions_per_second), flush=True)
        for rate in [int(rate) for rate in args.rates.split(",") if rate]:
            run = Run(rig, rate, args.seconds)
            run.place_and_wait(args.drain)
            result = run.check()
            result["claims"] = claims
            results["runs"].append(result)
            if not args.json:
                print(describe(result), flush=True)
            if clear_channels(rig.observer):  # the next rate starts clean or not at all
                break


if __name__ == "__main__":
    sys.exit(main())
