"""Deliver webhooks apart from the call: a bounded queue and a pool of worker greenlets.

A call's greenlet only ever calls ``submit()``, which never blocks: a full
queue or a dispatcher that isn't running drops the request, logs it and counts
it. Workers (``settings.workers`` greenlets in a group the dispatcher owns,
each with its own ``requests.Session`` for connection reuse) take requests off
the queue and deliver them, retrying as the request's ``Retry`` allows:

* ``NOT_SENT`` and ``NO_ANSWER`` outcomes (see ``delivery``) are retried,
  waiting ``retry.backoff()`` seconds between attempts through the injected
  ``sleep``; ``REJECTED`` ones fail at once.
* success is logged at INFO with status and attempt count; a final failure at
  WARNING with call id, uri, attempts and reason. ERROR is kept for our own
  bugs (a crashing delivery or worker), which are logged with the traceback.

``stop(timeout)`` stops accepting, lets the workers finish what is queued for up
to ``timeout`` seconds, then kills them and reports what was abandoned.
"""

import dataclasses
import enum
import logging
import random

import gevent
import gevent.pool
import gevent.queue
import requests

from callflowd import metrics
from callflowd.logfmt import safe
from callflowd.retry import RetriesExhausted
from callflowd.webhooks import delivery
from callflowd.webhooks.delivery import Outcome

log = logging.getLogger(__name__)

WORKER_RESTART_DELAY = 1.0  # seconds before a crashed worker is replaced


class State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclasses.dataclass(frozen=True)
class DispatcherStats:
    """Counters since the dispatcher was made; ``queued`` is the queue depth at the time."""

    accepted: int = 0  # taken by submit()
    delivered: int = 0
    failed: int = 0
    dropped: int = 0  # refused by submit(): queue full, or not running
    retried: int = 0  # extra attempts made
    abandoned: int = 0  # still queued or in flight when stop() gave up
    queued: int = 0


class WebhookDispatcher:
    """Owns the webhook queue and its workers.

    ``session`` makes one HTTP session per worker (default ``requests.Session``);
    ``sleep`` waits between attempts and ``rand`` feeds the back-off jitter, both
    injectable so tests can check the back-off without sleeping.
    """

    def __init__(self, settings, *, session=None, sleep=gevent.sleep, rand=random.random):
        if settings.workers < 1:
            raise ValueError("webhook workers must be >= 1")
        if settings.queue_size < 1:
            raise ValueError("webhook queue_size must be >= 1")
        if settings.timeout <= 0:
            raise ValueError("webhook timeout must be > 0")
        self.settings = settings
        self.state = State.NEW
        self._session_factory = session or requests.Session
        self._sleep = sleep
        self._rand = rand
        self._queue = gevent.queue.JoinableQueue(maxsize=settings.queue_size)
        self._group = gevent.pool.Group()
        self._in_flight = {}  # worker greenlet -> the request it is delivering
        self._counts = dict.fromkeys(
            ("accepted", "delivered", "failed", "dropped", "retried", "abandoned"), 0)

    # -- lifecycle -----------------------------------------------------------------

    def start(self):
        if self.state is not State.NEW:
            raise RuntimeError("webhook dispatcher is %s; it can only start once" % self.state.value)
        self.state = State.RUNNING
        for _ in range(self.settings.workers):
            self._spawn_worker()
        metrics.watch_outbox(self._queue.qsize)
        log.info("webhook dispatcher started: %d workers, queue of %d",
                 self.settings.workers, self.settings.queue_size)

    def stop(self, timeout=10.0):
        """Stop accepting, drain the queue for up to ``timeout`` seconds, then kill the workers.

        Returns how many requests were abandoned (still queued or in flight).
        """
        if self.state in (State.STOPPING, State.STOPPED):
            return 0
        was_running = self.state is State.RUNNING
        self.state = State.STOPPING
        pending = self._queue.unfinished_tasks
        if was_running and pending:
            log.info("webhook dispatcher stopping: waiting up to %gs for %d unfinished requests",
                     timeout, pending)
            self._queue.join(timeout=timeout)
        abandoned = list(self._in_flight.values())
        while True:
            try:
                abandoned.append(self._queue.get_nowait())
            except gevent.queue.Empty:
                break
            self._queue.task_done()
        self._group.kill(block=True, timeout=5)
        for request in abandoned:
            log.warning("call %s: webhook abandoned at stop: %s",
                        safe(request.call_id), safe(request.describe()))
        self._counts["abandoned"] += len(abandoned)
        self.state = State.STOPPED
        if abandoned:
            log.warning("webhook dispatcher stopped; %d requests abandoned", len(abandoned))
        else:
            log.info("webhook dispatcher stopped")
        return len(abandoned)

    # -- the call path -------------------------------------------------------------

    def submit(self, request):
        """Queue ``request`` for delivery; never blocks. False (logged, counted) if dropped."""
        if self.state is not State.RUNNING:
            return self._drop(request, "dispatcher %s" % self.state.value)
        try:
            self._queue.put_nowait(request)
        except gevent.queue.Full:
            return self._drop(request, "queue full, %d waiting" % self.settings.queue_size)
        self._counts["accepted"] += 1
        return True

    @property
    def stats(self):
        return DispatcherStats(queued=self._queue.qsize(), **self._counts)

    def _drop(self, request, why):
        self._counts["dropped"] += 1
        metrics.webhook_dropped()
        log.warning("call %s: webhook dropped (%s): %s",
                    safe(request.call_id), why, safe(request.describe()))
        return False

    # -- workers -------------------------------------------------------------------

    def _spawn_worker(self, delay=0):
        worker = gevent.Greenlet(self._work)
        worker.link_exception(self._worker_crashed)
        self._group.add(worker)
        if delay:
            worker.start_later(delay)
        else:
            worker.start()
        return worker

    def _worker_crashed(self, worker):
        # Only reached through a bug outside the per-request guard in _work
        # (e.g. the session factory failing). The replacement starts after a
        # pause so a worker that can never start doesn't spin the hub.
        self._in_flight.pop(worker, None)
        if self.state is not State.RUNNING:
            log.error("webhook worker crashed while stopping", exc_info=worker.exc_info)
            return
        log.error("webhook worker crashed; starting a replacement in %gs",
                  WORKER_RESTART_DELAY, exc_info=worker.exc_info)
        self._spawn_worker(delay=WORKER_RESTART_DELAY)

    def _work(self):
        session = self._session_factory()
        me = gevent.getcurrent()
        try:
            while True:
                request = self._queue.get()
                self._in_flight[me] = request
                try:
                    metrics.timed_delivery(self.deliver, session, request)
                except Exception:
                    self._counts["failed"] += 1
                    log.exception("call %s: webhook delivery crashed; dropping it: %s",
                                  safe(request.call_id), safe(request.describe()))
                finally:
                    self._in_flight.pop(me, None)
                    self._queue.task_done()
        finally:
            session.close()

    def deliver(self, session, request):
        """Deliver one request with its retries; returns the last ``AttemptResult``."""
        retry = request.retry
        attempts = 0
        while True:
            attempts += 1
            result = delivery.attempt(session, request, self.settings.timeout)
            if result.outcome is Outcome.DELIVERED:
                self._counts["delivered"] += 1
                log.info("call %s: webhook delivered: %s answered %s after %s",
                         safe(request.call_id), safe(request.describe()), result.reason,
                         _attempts(attempts))
                return result
            if not result.retryable:
                return self._failed(request, result, attempts)
            try:
                retry = retry.increment()
            except RetriesExhausted:
                return self._failed(request, result, attempts)
            delay = retry.backoff(self._rand)
            log.info("call %s: webhook %s (%s): %s; retry %d%s in %.2fs",
                     safe(request.call_id), result.outcome.value, result.reason,
                     safe(request.describe()), retry.attempt,
                     "" if retry.total is None else " of %d" % retry.total, delay)
            self._counts["retried"] += 1
            self._sleep(delay)

    def _failed(self, request, result, attempts):
        self._counts["failed"] += 1
        log.warning("call %s: webhook failed after %s: %s (%s): %s",
                    safe(request.call_id), _attempts(attempts), result.reason,
                    result.outcome.value, safe(request.describe()))
        return result


def _attempts(n):
    return "1 attempt" if n == 1 else "%d attempts" % n
