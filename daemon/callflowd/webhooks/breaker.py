"""A per-endpoint circuit breaker: a dead receiver is paused, probed, and resumed.

States (after Supervisor's: named, with guarded transitions):

``closed``     requests flow; ``failures`` consecutive failed attempts (not sent,
               or no good answer) open it.
``open``       nothing is sent until ``pause`` seconds have passed; the endpoint's
               webhooks wait in the outbox and spend no attempts.
``half-open``  one probe is sent: success closes it, failure opens it again for
               twice the last pause (up to ``pause_max``).

An answer that says "never" (a 4xx) proves the receiver is alive: it resets
the count like a success. The breaker holds no clock: callers pass ``now``.
"""

import enum
import logging

from callflowd.config.model import BreakerSettings  # noqa: F401 - the settings a Breaker takes

log = logging.getLogger(__name__)


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class Breaker:
    """One endpoint's breaker; ``name`` (redacted) is for the log."""

    def __init__(self, name, settings):
        self.name = name
        self.settings = settings
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.reopens_at = 0.0
        self._pause = settings.pause
        self._probing = False

    def allows(self, now):
        """How many attempts may start now: None (no limit), 1 (the probe) or 0."""
        if self.state is BreakerState.CLOSED:
            return None
        if self.state is BreakerState.OPEN and now >= self.reopens_at:
            self.state = BreakerState.HALF_OPEN
            log.info("webhook endpoint %s: breaker half-open; sending one probe", self.name)
        if self.state is BreakerState.HALF_OPEN and not self._probing:
            return 1
        return 0

    def started(self):
        """An attempt starts; True if it is the half-open breaker's probe."""
        if self.state is BreakerState.HALF_OPEN:
            self._probing = True
            return True
        return False

    def settled(self):
        """The probe ended: if it neither closed nor reopened us (a TLS error...), allow another."""
        self._probing = False

    def succeeded(self):
        if self.state is not BreakerState.CLOSED:
            log.warning("webhook endpoint %s: breaker closed; delivering again", self.name)
        self.state = BreakerState.CLOSED
        self.failures = 0
        self._pause = self.settings.pause
        self._probing = False

    def failed(self, now):
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN:
            self._pause = min(self.settings.pause_max, self._pause * 2)
            self._open(now, "the probe failed")
        elif self.state is BreakerState.CLOSED and self.failures >= self.settings.failures:
            self._open(now, "%d failures in a row" % self.failures)

    def _open(self, now, why):
        self.state = BreakerState.OPEN
        self.reopens_at = now + self._pause
        self._probing = False
        log.warning("webhook endpoint %s: breaker open (%s); its webhooks wait in the outbox, "
                    "next probe in %gs", self.name, why, self._pause)
