"""``python -m callflowd.webhooks -c CONFIG``: the delivery process (see ``webhooks.process``).

Started by the daemon when ``webhooks.process`` is true, never by hand. It
follows the outbox the daemon commits to: woken by a byte on stdin (``WAKE``),
and every ``POLL_SECONDS`` in case a wake-up was missed. The daemon says when
to stop, on stdin too: ``DRAIN`` (the daemon is stopping: it has finished its
calls and committed their webhooks): the child takes the last rows, delivers
what is due for ``--drain`` seconds, then exits. SIGINT, or the end of stdin
(the daemon is gone: killed, crashed): it exits at once, so a restarted
daemon's new delivery process is the only one sending. Either way what is not
delivered stays in the outbox.

SIGTERM alone does not stop it: systemd's ``systemctl stop`` sends SIGTERM to
every process of the unit at once (``KillMode=control-group``), and the child
must keep delivering the webhooks of the calls the daemon is still finishing;
the daemon's ``DRAIN`` (or its end) stops it, and systemd's final SIGKILL at
``TimeoutStopSec`` bounds it all.

It logs as the daemon does (``--log-format``, and journald's priority prefix when
its stderr is the journal), and runs at a lower CPU priority (``NICE``): when the
daemon's calls and the deliveries want the same core, the kernel serves the
calls first. Every ``REPORT_SECONDS`` it writes what its attempts added to the
delivery metrics as one JSON line on stdout; the daemon adds them to its own
``/metrics`` (``metrics.delivery_report``).
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import pickle  # noqa: E402
import struct  # noqa: E402
import types  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
import gevent.fileobject  # noqa: E402
from gevent.event import Event  # noqa: E402

from callflowd import logsetup, metrics  # noqa: E402
from callflowd.webhooks.dispatcher import WebhookDispatcher  # noqa: E402
from callflowd.webhooks.process import DRAIN  # noqa: E402
from callflowd.webhooks.store import OutboxError  # noqa: E402

log = logging.getLogger("callflowd.webhooks.process")

POLL_SECONDS = 1.0
DRAIN_SECONDS = 10.0
REPORT_SECONDS = 1.0
# Added to the daemon's niceness: a nice-10 process gets about a tenth of the CPU a nice-0 one
# gets when both want the same core (sched(7)), and all of what the daemon leaves.
NICE = 10
COUNTS = ("delivered", "failed", "retried", "expired")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m callflowd.webhooks", description=__doc__.splitlines()[0])
    # names the daemon's config in ps; never read: the settings come on stdin (_read_settings)
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("--log-level", default=None)
    parser.add_argument("--drain", type=float, default=DRAIN_SECONDS)
    parser.add_argument("--log-format", choices=logsetup.FORMATS, default="text")
    parser.add_argument("--nice", type=int, default=NICE, help="added to the niceness (default %(default)s)")
    args = parser.parse_args(argv)
    # The daemon's running settings (process.OutboxFeeder), not the file's: it may hold an edit
    # a reload refused.
    given = _read_settings(sys.stdin.fileno())
    settings = dataclasses.replace(given["settings"],
                                   secrets=types.MappingProxyType(dict(given["settings"].secrets)))
    logsetup.configure(args.log_level or "INFO", log_format=args.log_format)
    if args.nice:
        try:
            os.nice(args.nice)
        except OSError as exc:
            log.warning("cannot lower the delivery process's priority (%s); running at the daemon's",
                        exc.strerror or exc)

    stop = Event()
    wake = Event()
    drain = [args.drain]

    def stop_now():
        drain[0] = 0.0
        stop.set()

    def on_sigterm():
        log.info("SIGTERM: delivering until the daemon, which is finishing its calls, says stop")

    gevent.signal_handler(signal.SIGTERM, on_sigterm)
    gevent.signal_handler(signal.SIGINT, stop_now)

    dispatcher = WebhookDispatcher(settings, given["state_dir"], shared=True)
    try:
        dispatcher.start()
    except OutboxError as exc:
        log.error("cannot start: %s", exc)
        return 1

    def read_wakeups():
        stdin = gevent.fileobject.FileObjectPosix(sys.stdin.fileno(), "rb", bufsize=0, close=False)
        while True:
            data = stdin.read(4096)
            if not data:
                break
            if DRAIN in data:
                stop.set()
                return
            wake.set()
        log.warning("the daemon is gone (end of stdin); stopping at once")
        stop_now()

    def follow():
        while True:
            wake.wait(POLL_SECONDS)
            wake.clear()
            dispatcher.follow()

    reporter = Reporter(dispatcher)
    workers = [gevent.spawn(read_wakeups), gevent.spawn(follow), gevent.spawn(reporter.run)]
    stop.wait()
    gevent.killall(workers)
    if drain[0] > 0:
        dispatcher.follow()  # what the daemon committed last, before it said stop
    dispatcher.stop(timeout=drain[0])
    reporter.report()  # the last attempts, before the daemon reads the end of our stdout
    return 0


def _read_settings(fd):
    """The length-prefixed pickle the daemon writes first on our stdin; read with ``os.read``
    so that no byte after it (a wake-up, DRAIN) is left in a buffer the wake-up reader can't see."""
    def exactly(count):
        data = b""
        while len(data) < count:
            chunk = os.read(fd, count - len(data))
            if not chunk:
                raise SystemExit("callflowd delivery: the daemon closed stdin before sending the settings")
            data += chunk
        return data

    (length,) = struct.unpack("!I", exactly(4))
    return pickle.loads(exactly(length))  # from the daemon, through a pipe only it holds


class Reporter:
    """Tells the daemon what changed in the delivery metrics and counts: a JSON line on stdout."""

    def __init__(self, dispatcher, stream=None):
        self._dispatcher = dispatcher
        self._stream = stream or gevent.fileobject.FileObjectPosix(sys.stdout.fileno(), "wb", close=False)
        self._metrics = metrics.delivery_snapshot()
        self._counts = dict.fromkeys(COUNTS, 0)
        self._oldest = None

    def run(self):
        while True:
            gevent.sleep(REPORT_SECONDS)
            self.report()

    def report(self):
        now = metrics.delivery_snapshot()
        counts = {name: self._dispatcher.stats_counts()[name] for name in COUNTS}
        oldest = self._dispatcher.oldest_accepted_at()
        if now == self._metrics and counts == self._counts and oldest == self._oldest:
            return
        report = metrics.delivery_report(self._metrics, now, oldest)
        report["counts"] = {name: counts[name] - self._counts[name] for name in COUNTS}
        self._metrics, self._counts, self._oldest = now, counts, oldest
        try:
            self._stream.write(json.dumps(report, separators=(",", ":")).encode("ascii") + b"\n")
            self._stream.flush()
        except OSError as exc:  # the daemon is gone: end of stdin will stop us
            log.debug("cannot report to the daemon: %s", exc)


if __name__ == "__main__":
    sys.exit(main())
