"""Talking to systemd: ``sd_notify`` in a few lines of stdlib (after gunicorn/systemd.py),
and a watchdog that only pets while the event loop really turns.

Everything here does nothing when systemd is not listening (no ``NOTIFY_SOCKET``), so
``callflowd run`` behaves the same in a terminal. Protocol facts, from sd_notify(3) and
systemd.service(5):

- one datagram per message, ``KEY=value`` lines, to the AF_UNIX socket named by
  ``NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace);
- ``RELOADING=1`` must come with ``MONOTONIC_USEC=`` (CLOCK_MONOTONIC, in microseconds) so
  systemd can tell this reload from an earlier one; ``READY=1`` ends the reload;
- ``WATCHDOG_USEC`` is the watchdog period; ``WATCHDOG_PID``, if set, names the process it is
  meant for (not us when we were started by a wrapper); ``WATCHDOG=1`` must come more often
  than the period, half of it is the usual advice.
"""

import logging
import os
import socket
import time

import gevent

log = logging.getLogger(__name__)


def notify(*lines):
    """Send ``lines`` (``"READY=1"``, ``"STATUS=running"``...) as one message; False if nobody listens."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    message = "\n".join(lines)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
    except OSError as exc:
        log.warning("could not notify systemd (%s): %s", message.replace("\n", " "), exc)
        return False
    return True


def reloading(*lines):
    """``RELOADING=1`` with the ``MONOTONIC_USEC=`` systemd needs to match it (and ``lines``)."""
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify("RELOADING=1", "MONOTONIC_USEC=%d" % now, *lines)


def watchdog_period():
    """The watchdog period in seconds systemd asked for, or None."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        period = int(usec) / 1e6
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not a number", usec)
        return None
    return period if period > 0 else None


class Watchdog:
    """Sends ``WATCHDOG=1`` every quarter period, but only when the loop is on time.

    A timer alone would keep pinging while calls starve behind a blocked loop (a
    catastrophic regex, a synchronous DNS lookup): each tick measures how late it woke up
    with the real monotonic clock (the loop's own clock is cached and would hide the
    stall), and a tick more than ``max_lag`` late skips the ping and says so. If the loop
    stays stuck, no tick runs at all, and systemd restarts us after the period.
    """

    def __init__(self, period, max_lag=None, send=notify, clock=time.monotonic):
        self.period = period
        self.interval = period / 4
        self.max_lag = period / 4 if max_lag is None else max_lag
        self._send = send
        self._clock = clock
        self._greenlet = None

    def start(self):
        self._greenlet = gevent.spawn(self._run)
        self._greenlet.link_exception(lambda g: log.error("watchdog greenlet died: %r", g.exception))
        log.info("watchdog: pinging systemd every %.1fs while the event loop lags less than %.1fs",
                 self.interval, self.max_lag)
        return self

    def stop(self):
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def _run(self):
        while True:
            before = self._clock()
            gevent.sleep(self.interval)
            self.tick(self._clock() - before - self.interval)

    def tick(self, lag):
        """One check: ping if ``lag`` (seconds late) is acceptable. Returns whether it pinged."""
        if lag > self.max_lag:
            log.warning("event loop stalled %.1fs; not pinging the systemd watchdog", lag)
            return False
        self._send("WATCHDOG=1")
        return True
