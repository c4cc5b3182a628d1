"""The call path's side of the webhook dispatcher: ``submit`` into the outbox (``OutboxIntake``),
and the values it hands over and reports (``Item``, ``State``, ``DispatcherStats``).

Split out of ``dispatcher`` (issue 17: one job per file); it logs under the dispatcher's logger,
so its lines read as before.
"""

import dataclasses
import enum
import logging

from callflowd import metrics
from callflowd.logfmt import safe
from callflowd.webhooks.outbox import OutboxFull
from callflowd.webhooks.request import WebhookRequest

log = logging.getLogger("callflowd.webhooks.dispatcher")


# How long a call's greenlet waits for its webhook's group commit (normally milliseconds).
COMMIT_WAIT = 10.0


class State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclasses.dataclass(frozen=True)
class DispatcherStats:
    """Counters since the dispatcher started; ``pending`` is the outbox size at the time."""

    accepted: int = 0  # committed to the outbox (including those resumed at start)
    delivered: int = 0
    failed: int = 0  # rejected, or retries spent
    dropped: int = 0  # refused by submit(): outbox full, or not running
    lost: int = 0  # handed over, but their commit failed (disk full...)
    retried: int = 0  # extra attempts scheduled
    expired: int = 0  # dropped after webhooks.max_age without their receiver being available
    pending: int = 0
    in_flight: int = 0


@dataclasses.dataclass(eq=False)
class Item:
    """A webhook in the outbox, with its progress."""

    request: WebhookRequest
    attempts: int = 0  # attempts that count against its retries (the receiver was reached)
    due: float = 0.0  # Unix time the next attempt may start
    waits: int = 0  # tries in a row that found the host not available (the back-off's count)

class OutboxIntake:
    """The call path's side of a dispatcher: ``submit`` into the outbox, and what could not be
    taken logged one by one with a running total and counted (``self._counts``: ``dropped``,
    ``lost``). Needs ``state``, ``outbox`` and ``_clock``."""

    def submit(self, request):
        """Hand ``request`` to the outbox; never blocks. False (logged, counted) if dropped."""
        return self._add(request) is not None

    def submit_committed(self, request, timeout=COMMIT_WAIT):
        """Hand ``request`` to the outbox and wait (this greenlet only) until it is committed.

        True once it is on disk: a SIGKILL from then on finds it in the outbox. False if it
        was refused or its commit failed (both logged and counted). After ``timeout``
        seconds without a commit (a stuck disk) it says so and returns False: the call is
        not held longer; the webhook is still committed if the writer gets to it.
        """
        batch = self._add(request)
        if batch is None:
            return False
        committed = batch.wait(timeout)
        if committed is None:
            log.error("call %s: webhook not committed within %gs (outbox writer stuck?); the call "
                      "moves on: %s", safe(request.call_id), timeout, request.describe())
            return False
        return committed

    def _add(self, request):
        if self.state is not State.RUNNING:
            self._drop(request, "dispatcher %s" % self.state.value)
            return None
        now = self._clock()
        if not request.accepted_at:
            request = dataclasses.replace(request, accepted_at=now)
        try:
            return self.outbox.add(Item(request, 0, now))
        except OutboxFull as exc:
            self._drop(request, "outbox full: %s" % exc)
            return None

    def _drop(self, request, why):
        self._counts["dropped"] += 1
        metrics.webhook_dropped()
        log.error("call %s: webhook dropped (%s): %s; %d dropped since start",
                  safe(request.call_id), why, request.describe(), self._counts["dropped"])
        return False

    def _lost(self, items):
        self._counts["lost"] += len(items)
        for item in items:
            log.error("call %s: webhook lost (outbox write failed): %s; %d lost since start",
                      safe(item.request.call_id), item.request.describe(), self._counts["lost"])
