"""Webhook delivery in a process of its own, fed by the outbox file (``webhooks.process: true``).

Why: in the daemon's process, delivery greenlets share one hub and one core with
the calls. A steady 200 webhooks/s adds about 1 ms to the call path's p99, a
burst of thousands 30-40 ms (docs/benchmarks.md). With ``process: true`` the
daemon only commits webhooks to the outbox (``OutboxFeeder``, group commit on
the store's thread, as in-process) and a child, ``python -m callflowd.webhooks``,
delivers them with a ``WebhookDispatcher`` that follows the same SQLite file.

The two talk through the child's stdin: the daemon writes a byte after each
commit that added webhooks ("look at the outbox"). The daemon's ``stop()``
writes ``DRAIN`` (the child delivers what is due for the drain time; SIGTERM
alone, as systemd sends it to the whole unit, doesn't stop it: see
``__main__``) or, to stop at once, sends SIGINT; end of file means the daemon
died (``kill -9``, a crash): the child exits at once, so the restarted daemon's
child is the only one sending.
What is not delivered stays in the outbox. A child that dies while the daemon
runs is started again after a pause.

The child logs in the daemon's format (``--log-format`` follows the daemon's
handler; under journald it inherits the journal stream), runs at a lower CPU
priority than the daemon (``NICE`` in ``__main__``), and reports its attempts
back on its stdout, a JSON line a second: the daemon adds them to its own
``/metrics`` and ``stats`` (``metrics.add_delivery_report``).
"""

import dataclasses
import json
import logging
import pickle
import signal
import struct
import subprocess
import sys
import time

import gevent
import gevent.pool
from gevent.event import Event

from callflowd import logsetup, metrics
from callflowd.webhooks.dispatcher import DispatcherStats, OutboxIntake, State
from callflowd.webhooks.outbox import Outbox
from callflowd.webhooks.store import OutboxStore

log = logging.getLogger(__name__)

WAKE = b"."  # on the child's stdin: the daemon committed webhooks, look at the outbox
DRAIN = b"T"  # the daemon is stopping: deliver what is due for the drain time, then exit
RESTART_DELAY = 1.0  # seconds before a dead delivery process is replaced
STOP_MARGIN = 5.0  # seconds the child gets beyond its drain time before it is killed


class OutboxFeeder(OutboxIntake):
    """The daemon's side: ``submit()`` commits to the outbox; a child process delivers."""

    def __init__(self, settings, state_dir, config_path, log_level="INFO", drain=10.0, clock=time.time):
        self.settings = settings
        self.drain = drain
        self.state = State.NEW
        self._config_path = config_path
        self._log_level = log_level
        self._clock = clock
        self.outbox = Outbox(OutboxStore(state_dir, settings.synchronous), settings.outbox_max,
                             on_committed=self._committed, on_lost=self._lost, shared=True)
        self._group = gevent.pool.Group()
        self._child = None
        self._reports = None  # the greenlet reading the child's reports
        self.reported = Event()  # set after each report from the child is counted
        self._counts = dict.fromkeys(("accepted", "delivered", "failed", "dropped", "lost", "retried",
                                      "expired"), 0)

    def start(self):
        rows = self.outbox.open()
        self.state = State.RUNNING
        self.outbox.start(self._group)
        metrics.watch_outbox(lambda: self.outbox.size)
        metrics.watch_delivery_process()
        self._group.spawn(self._supervise).link_exception(
            lambda g: log.error("webhook delivery supervisor died", exc_info=g.exc_info))
        log.info("webhook outbox %s: %d waiting; delivery runs in its own process",
                 self.outbox.store.path, len(rows))

    def stop(self, timeout=10.0, hurry=None):
        """Commit what was handed over, let the child deliver for ``timeout`` s, stop it.

        ``hurry`` set (a second SIGTERM) while the child drains: it is told to stop at once.
        Returns how many webhooks are left in the outbox for the next start.
        """
        if self.state is not State.RUNNING:
            self.state = State.STOPPED
            return 0
        self.state = State.STOPPING
        self.outbox.flush(max(timeout, 5.0))
        child, self._child = self._child, None
        self._group.kill(block=True, timeout=5)  # the supervisor: no restart from here on
        if child is not None and child.poll() is None:
            if timeout > 0:
                _tell(child, DRAIN)
            else:
                child.send_signal(signal.SIGINT)
            if hurry is not None and timeout > 0:
                hurried = gevent.spawn(_hurry_child, hurry, child)
            try:
                child.wait(timeout=(self.drain if timeout > 0 else 0) + STOP_MARGIN)
            except subprocess.TimeoutExpired:
                log.error("webhook delivery process %d did not stop; killing it (its webhooks stay "
                          "in the outbox)", child.pid)
                child.kill()
                child.wait()
            if hurry is not None and timeout > 0:
                hurried.kill(block=False)
        if self._reports is not None:
            self._reports.join(timeout=1.0)  # the child's last report, up to its stdout's end
        self.outbox.stop(timeout=5.0)
        left = self.outbox.store_rows_left()
        self.state = State.STOPPED
        if left:
            log.warning("webhook dispatcher stopped; %d undelivered webhooks stay in the outbox "
                        "%s for the next start", left, self.outbox.store.path)
        else:
            log.info("webhook dispatcher stopped; the outbox is empty")
        return left

    @property
    def stats(self):
        return DispatcherStats(pending=self.outbox.size, **self._counts)

    def _committed(self, items):
        self._counts["accepted"] += len(items)
        child = self._child
        if child is None or child.poll() is not None:
            return  # a new child reads the whole outbox when it starts
        _tell(child, WAKE)

    def _supervise(self):
        while self.state is State.RUNNING:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "callflowd.webhooks", "-c", self._config_path,
                 "--log-level", self._log_level, "--drain", str(self.drain),
                 "--log-format", _log_format()],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, preexec_fn=_ignore_sigterm)
            _tell(self._child, self._settings_message())
            log.info("webhook delivery process %d started", self._child.pid)
            self._reports = gevent.spawn(self._read_reports, self._child.stdout)
            self._reports.link_exception(
                lambda g: log.error("reading the delivery process's reports crashed; its metrics "
                                    "are no longer counted", exc_info=g.exc_info))
            status = self._child.wait()
            if self.state is not State.RUNNING:
                return
            log.error("webhook delivery process exited with %s; starting another in %gs "
                      "(its webhooks wait in the outbox)", _describe(status), RESTART_DELAY)
            gevent.sleep(RESTART_DELAY)

    def _settings_message(self):
        """The settings the daemon runs with, for the child, as its first bytes on stdin.

        Not the config file: it may hold an edit the daemon refused at a reload (or not yet
        reloaded), and a child reading it would fail to start, again and again."""
        blob = pickle.dumps({"settings": dataclasses.replace(self.settings, secrets=dict(self.settings.secrets)),
                             "state_dir": self.outbox.store.state_dir})
        return struct.pack("!I", len(blob)) + blob

    def _read_reports(self, stream):
        """Add each report the child writes to our metrics and counts, until its stdout ends."""
        for line in stream:
            try:
                report = json.loads(line)
                counts = report.get("counts", {})
                for name in ("delivered", "failed", "retried", "expired"):
                    self._counts[name] += int(counts.get(name, 0))
                metrics.add_delivery_report(report)
                self.reported.set()
            except (ValueError, TypeError, AttributeError) as exc:
                log.warning("unreadable report from the webhook delivery process (%s); ignored", exc)
        stream.close()


def _ignore_sigterm():
    """In the forked child, before exec: SIGTERM ignored from its first instant (an ignored signal
    stays ignored across exec), so systemd's SIGTERM to the whole unit can't stop it before it
    installs its own handler; the daemon's DRAIN stops it (see ``__main__``)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _tell(child, what):
    try:
        child.stdin.write(what)
        child.stdin.flush()
    except OSError as exc:  # it just died: the supervisor replaces it, and it reads the outbox
        log.warning("webhook delivery process unreachable (%s)", exc)
        if what == DRAIN and child.poll() is None:
            child.send_signal(signal.SIGINT)


def _log_format():
    """The format this process logs in: the delivery process logs in the same."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, logsetup.JsonFormatter):
            return "json"
    return "text"


def _describe(status):
    if status is not None and status < 0:
        try:
            return signal.Signals(-status).name
        except ValueError:
            pass
    return "status %s" % status


def _hurry_child(hurry, child):
    """A second SIGTERM while the child drains: tell it to stop at once (SIGINT)."""
    hurry.wait()
    if child.poll() is None:
        child.send_signal(signal.SIGINT)
