"""Deliver webhooks from the durable outbox: per-endpoint lanes, cheap greenlets, retries by the rules.

The call path only calls ``submit()``, which never blocks and never touches
the disk: the webhook goes into the outbox's buffer and is *accepted* once
the writer commits it (see ``outbox``). Then:

* each endpoint (``scheme://host:port``) has a lane: webhooks ready to go,
  attempts in flight, and a circuit breaker (``breaker``). A slow or dead
  receiver fills its own lane only: others keep flowing.
* every attempt is its own greenlet, up to ``concurrency_per_endpoint`` per
  endpoint and ``concurrency`` in all. A receiver taking 1 s to answer 100
  webhooks a second needs 100 in flight: greenlets, not a fixed pool.
* ``DELIVERED`` deletes the row. ``NOT_SENT`` (the host isn't available: refused,
  DNS failure, connect timeout, a TLS handshake cut) spends none of the webhook's
  ``retries``: it waits in the outbox with back-off, as it does while its endpoint's
  breaker is open, until the receiver answers again, up to ``webhooks.max_age``
  from when it was accepted; then it is dropped with one warning and counted
  (``callflowd_webhooks_expired_total``). ``NO_ANSWER`` (sent, then 408/429/5xx or
  nothing) spends one: the next is scheduled after ``Retry.delay()`` (the server's
  ``Retry-After``, capped, or the back-off) until ``retries`` attempts in all were
  made. ``REJECTED`` and spent retries delete the row and log a warning.
* ``webhooks.retry_mode: kazoo`` is Kazoo 4.3's rule instead
  (``webhooks_util:handle_resp/5``, ``retry_hook/3``): any attempt that got no answer
  (not sent, or sent without one) spends one of the ``retries``, the next follows
  2 s later, and after the last the webhook is dropped; an answer of any status is
  final (Kazoo retries none); no breaker holds the endpoint back.
* nothing waits in a loop: a timer heap holds the retries, and one scheduler
  greenlet launches what is due when woken.

``stop(timeout)`` stops accepting, commits what was handed over, lets what is
due finish for up to ``timeout`` seconds, then stops; everything not delivered
stays in the outbox for the next start, and the log says how many. Delivery is
at-least-once: a webhook whose success was not yet recorded is sent again
with the same ``X-Callflowd-Delivery`` id.
"""

import collections
import dataclasses
import enum
import heapq
import itertools
import logging
import math
import random
import time

import gevent
import gevent.pool
from gevent.event import Event

from callflowd import metrics
from callflowd.logfmt import redact_uri, safe
from callflowd.retry import RetriesExhausted
from callflowd.webhooks import delivery
from callflowd.webhooks.breaker import Breaker, BreakerState
from callflowd.webhooks.delivery import AttemptResult, Outcome
from callflowd.webhooks.outbox import Outbox, OutboxFull
from callflowd.webhooks.request import WebhookRequest
from callflowd.webhooks.store import OutboxStore

log = logging.getLogger(__name__)

# How long a call's greenlet waits for its webhook's group commit (normally milliseconds).
COMMIT_WAIT = 10.0
# webhooks.retry_mode: kazoo -- webhooks_util:retry_hook/3 sleeps 2000 ms between attempts.
KAZOO_RETRY_PAUSE = 2.0


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


class _Lane:
    """One endpoint: its ready webhooks, its attempts in flight, its breaker."""

    def __init__(self, endpoint, breaker):
        self.endpoint = endpoint
        self.ready = collections.deque()
        self.in_flight = 0
        self.breaker = breaker
        self.expires_at = math.inf  # no ready webhook is past max_age before this (a lower bound)


def make_session(settings):
    """The shared HTTP client for ``settings`` (see ``delivery.make_client``)."""
    return delivery.make_client(settings.concurrency_per_endpoint, settings.proxy,
                                destinations=settings.destinations)


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


class WebhookDispatcher(OutboxIntake):
    """Owns the outbox, the lanes and the attempt greenlets.

    ``rand`` feeds the back-off jitter and ``clock`` gives Unix time, both
    injectable so tests can check the schedule without sleeping. ``on_attempt``:
    callables ``(request, result)`` told the outcome of every attempt (an
    ``AttemptResult``) before it is acted on (``callflowd simulate`` reports them).
    """

    def __init__(self, settings, state_dir, *, session=None, rand=random.random, clock=time.time,
                 shared=False, on_attempt=(), store=None):
        if settings.concurrency < 1 or settings.concurrency_per_endpoint < 1:
            raise ValueError("webhook concurrency must be >= 1")
        if settings.outbox_max < 1:
            raise ValueError("webhook outbox_max must be >= 1")
        if settings.timeout <= 0:
            raise ValueError("webhook timeout must be > 0")
        self.settings = settings
        self.state = State.NEW
        self._session = session or make_session(settings)
        self._rand = rand
        self._clock = clock
        self._on_attempt = tuple(on_attempt)
        # shared: a delivery process, following an outbox the daemon writes (webhooks.process)
        # store: a shared outbox (pgstore behind spill) when webhooks.outbox.url says so
        store = store or OutboxStore(state_dir, settings.synchronous)
        self.outbox = Outbox(store, settings.outbox_max,
                             on_committed=self._accepted, on_lost=self._lost, shared=shared)
        self._group = gevent.pool.Group()  # the writer and the scheduler
        self._attempts = gevent.pool.Group()
        self._lanes = {}  # endpoint -> _Lane
        self._busy = set()  # lanes with ready webhooks
        self._timers = []  # heap of (due, seq, item)
        self._seq = itertools.count()
        self._in_flight = 0
        self._last_seq = 0  # the newest outbox row seen
        self._waiting = {}  # delivery id -> when accepted, oldest first (for the metrics gauge)
        self._scheduler = None
        self._keeper = None  # a shared outbox's lease keeper
        self._wake = Event()
        self._progress = Event()  # set whenever an attempt ends
        self._counts = dict.fromkeys(
            ("accepted", "delivered", "failed", "dropped", "lost", "retried", "expired"), 0)
        self._kazoo = getattr(settings, "retry_mode", "durable") == "kazoo"
        self._max_age = getattr(settings, "max_age", 3600.0)

    # -- lifecycle -----------------------------------------------------------------

    def start(self):
        """Open the outbox, resume what it holds, start the writer and the scheduler.

        Raises OutboxError when the state directory or the database can't be used.
        """
        if self.state is not State.NEW:
            raise RuntimeError("webhook dispatcher is %s; it can only start once" % self.state.value)
        resumed = self._items(self.outbox.open())
        self.state = State.RUNNING
        self.outbox.start(self._group)
        self._scheduler = self._group.spawn(self._schedule_loop)
        self._scheduler.link_exception(lambda g: log.error("webhook scheduler died", exc_info=g.exc_info))
        if self.outbox.store.maintenance_interval:
            self._keeper = keeper = self._group.spawn(self._keep_leases,
                                                      self.outbox.store.maintenance_interval)
            keeper.link_exception(lambda g: log.error("webhook lease keeper died", exc_info=g.exc_info))
        if resumed and self.outbox.shared:  # a delivery process: the daemon committed these
            log.info("webhook outbox %s: %d webhooks to deliver", self.outbox.store.path, len(resumed))
            self._accepted(resumed)
        elif resumed:
            log.warning("webhook outbox %s: resuming %d undelivered webhooks",
                        self.outbox.store.path, len(resumed))
            self._accepted(resumed)
        metrics.watch_outbox(lambda: self.outbox.size, self._oldest_age)
        log.info("webhook dispatcher started: outbox %s (synchronous=%s, at most %d), "
                 "%d in flight at most, %d per endpoint", self.outbox.store.path,
                 self.settings.synchronous, self.settings.outbox_max, self.settings.concurrency,
                 self.settings.concurrency_per_endpoint)

    def stop(self, timeout=10.0, hurry=None):
        """Stop accepting; deliver what is due for up to ``timeout`` s; keep the rest in the outbox.

        ``hurry`` (an Event) cuts the delivery wait short when it is set (a second SIGTERM).
        Returns how many webhooks are left in the outbox for the next start.
        """
        if self.state in (State.STOPPING, State.STOPPED):
            return 0
        was_running = self.state is State.RUNNING
        self.state = State.STOPPING
        if not was_running:
            self.state = State.STOPPED
            return 0
        deadline = time.monotonic() + timeout
        self.outbox.flush(timeout)
        if not self._drained():
            log.info("webhook dispatcher stopping: up to %gs to deliver %d due webhooks",
                     timeout, self._due_count())
            while not self._drained():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (hurry is not None and hurry.is_set()):
                    break
                self._progress.clear()
                gevent.wait([self._progress] + ([hurry] if hurry is not None else []),
                            timeout=remaining, count=1)
        interrupted = self._in_flight
        self._attempts.kill(block=True, timeout=5)
        self._scheduler.kill(block=True, timeout=5)  # the writer is the outbox's to stop
        if self._keeper is not None:  # before the store closes: no lease renewed after it
            self._keeper.kill(block=True, timeout=5)
        self.outbox.stop(timeout=max(5.0, deadline - time.monotonic()))
        left = self.outbox.store_rows_left()
        self.state = State.STOPPED
        if left:
            log.warning("webhook dispatcher stopped; %d undelivered webhooks stay in the outbox "
                        "%s for the next start (%d were in flight)", left, self.outbox.store.path,
                        interrupted)
        else:
            log.info("webhook dispatcher stopped; the outbox is empty")
        return left

    def _items(self, rows):
        items = []
        for seq, delivery_id, attempts, due, text in rows:
            self._last_seq = max(self._last_seq, seq)
            try:
                items.append(Item(WebhookRequest.from_json(delivery_id, text), attempts, due))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("outbox row %s unreadable (%s); deleting it", safe(delivery_id), exc)
                self.outbox.delete(delivery_id)
        return items

    def _keep_leases(self, interval):
        """A shared outbox: renew this daemon's leases, take in what a dead daemon left."""
        while True:
            gevent.sleep(interval)
            self.take_over(self.outbox.store.maintain())

    def take_over(self, rows):
        """Accept ``rows`` claimed from the shared outbox (their daemon's lease ran out)."""
        if self.state is not State.RUNNING or not rows:
            return 0
        self.outbox.rows += len(rows)
        items = self._items(rows)
        if items:
            self._accepted(items)
        return len(items)

    def follow(self):
        """Take the rows another process (the daemon) committed since we last looked."""
        if self.state is not State.RUNNING:
            return 0
        items = self._items(self.outbox.load_after(self._last_seq))
        if items:
            self._accepted(items)
        return len(items)

    # -- the call path -------------------------------------------------------------

    @property
    def stats(self):
        return DispatcherStats(pending=self.outbox.size, in_flight=self._in_flight, **self._counts)

    def stats_counts(self):
        """The counters alone, cheaply (a delivery process reports them to the daemon)."""
        return self._counts

    def oldest_accepted_at(self):
        """Unix time the oldest webhook still waiting was accepted; None when none waits."""
        for accepted_at in self._waiting.values():
            return accepted_at
        return None

    # -- scheduling ------------------------------------------------------------------

    def _oldest_age(self):
        """Seconds the oldest webhook in the outbox has waited (0 when empty): a metrics gauge."""
        for accepted_at in self._waiting.values():
            return max(0.0, self._clock() - accepted_at)
        return 0.0

    def _accepted(self, items):
        self._counts["accepted"] += len(items)
        now = self._clock()
        for item in items:
            if item.request.delivery_id in self._waiting:  # the same step again (outbox kept one)
                log.info("call %s: webhook %s already accepted; not sending it twice",
                         safe(item.request.call_id), item.request.delivery_id)
                continue
            self._waiting[item.request.delivery_id] = min(item.due, now) if item.attempts else now
            self._schedule(item, now)
        self._wake.set()

    def _lane(self, endpoint):
        lane = self._lanes.get(endpoint)
        if lane is None:
            settings = self.settings.breaker
            if self._kazoo:  # Kazoo has no breaker: every webhook makes its own attempts
                settings = dataclasses.replace(settings, failures=2 ** 62)
            breaker = Breaker(redact_uri(endpoint), settings)
            lane = self._lanes[endpoint] = _Lane(endpoint, breaker)
        return lane

    def _schedule(self, item, now):
        if item.due <= now:
            lane = self._lane(item.request.endpoint)
            lane.ready.append(item)
            lane.expires_at = min(lane.expires_at, self._expires_at(item, now))
            self._busy.add(lane)
        else:
            heapq.heappush(self._timers, (item.due, next(self._seq), item))

    def _schedule_loop(self):
        while True:
            self._wake.clear()
            wait = self._launch()
            self._wake.wait(wait)

    def _launch(self):
        """Start every attempt that is due and allowed; seconds until something else is due."""
        now = self._clock()
        while self._timers and self._timers[0][0] <= now:
            _, _, item = heapq.heappop(self._timers)
            if item.waits and self._expired(item, now):
                continue
            self._schedule(item, now)
        next_at = self._timers[0][0] if self._timers else None
        settings = self.settings
        for lane in list(self._busy):
            allowed = lane.breaker.allows(now)
            if allowed == 0:  # held back by its breaker: spending nothing, but not past max_age
                if now >= lane.expires_at:
                    self._sweep(lane, now)
                if lane.in_flight == 0:
                    next_at = lane.breaker.reopens_at if next_at is None else min(next_at, lane.breaker.reopens_at)
                if lane.ready:
                    if lane.expires_at < math.inf:
                        next_at = lane.expires_at if next_at is None else min(next_at, lane.expires_at)
                else:
                    self._busy.discard(lane)
                continue
            room = settings.concurrency_per_endpoint - lane.in_flight
            if allowed is not None:
                room = min(room, allowed)
            while room > 0 and lane.ready and self._in_flight < settings.concurrency:
                item = lane.ready.popleft()
                lane.in_flight += 1
                self._in_flight += 1
                room -= 1
                probe = lane.breaker.started()
                self._attempts.spawn(self._attempt, lane, item, probe)
            if not lane.ready:
                lane.expires_at = math.inf
                self._busy.discard(lane)
        if next_at is None:
            return None
        return max(0.0, next_at - now)

    def _sweep(self, lane, now):
        """Drop the webhooks an open breaker has held past ``max_age``; note when the next expires.
        Runs only when one is due to (``lane.expires_at``), not on a clock."""
        kept = [item for item in lane.ready if not self._expired(item, now)]
        lane.ready.clear()
        lane.ready.extend(kept)
        lane.expires_at = min((self._expires_at(item, now) for item in kept), default=math.inf)

    def _expires_at(self, item, now):
        """When ``item`` passes ``max_age`` (never under ``retry_mode: kazoo``)."""
        if self._kazoo:
            return math.inf
        return now - self._age(item, now) + self._max_age

    def _age(self, item, now):
        accepted = item.request.accepted_at or self._waiting.get(item.request.delivery_id, now)
        return now - accepted

    def _expired(self, item, now):
        """True (and the webhook dropped, logged, counted) if it is past ``max_age``."""
        if self._kazoo or self._age(item, now) < self._max_age:
            return False
        request = item.request
        self.outbox.delete(request.delivery_id)
        self._waiting.pop(request.delivery_id, None)
        self._counts["expired"] += 1
        metrics.webhook_expired()
        log.warning("call %s: webhook dropped: its receiver was not available for %gs "
                    "(webhooks.max_age): %s (delivery %s, %s made); %d expired since start",
                    safe(request.call_id), self._max_age, request.describe(), request.delivery_id,
                    _attempts(item.attempts), self._counts["expired"])
        return True

    # -- attempts --------------------------------------------------------------------

    def _attempt(self, lane, item, probe=False):
        request = item.request
        item.attempts += 1  # taken back in _record when the host was not available
        response = None
        recorded = False
        try:
            secret = self._secret(request)
            if secret is False:
                result = AttemptResult(Outcome.REJECTED, "its signing secret %r is not configured"
                                       % safe(request.secret))
            else:
                sent = []

                def send_once():
                    answer, sent_response = delivery.send(
                        self._session, request, self.settings.timeout,
                        attempt=item.attempts, secret=secret, clock=self._clock)
                    sent.append(sent_response)
                    return answer

                result = metrics.timed_delivery(send_once)  # counted by outcome, per attempt
                response = sent[0]
            recorded = True
            self._record(lane, item, result)
            delivery.release(response, self.settings.timeout, request)
        except Exception:
            if response is not None:
                response.close()
            if recorded:
                log.exception("call %s: releasing a webhook answer crashed: %s; the outcome stands",
                              safe(request.call_id), request.describe())
            else:
                # Our bug, not the receiver's: log it, and treat the attempt as unanswered so the
                # webhook stays in the outbox and is retried by the rules rather than lost.
                log.exception("call %s: webhook attempt crashed: %s; counting it as not answered",
                              safe(request.call_id), request.describe())
                self._record(lane, item, AttemptResult(Outcome.NO_ANSWER, "internal error"))
        finally:
            if probe:
                lane.breaker.settled()
            lane.in_flight -= 1
            self._in_flight -= 1
            if lane.ready:
                self._busy.add(lane)
            self._wake.set()
            self._progress.set()

    def _secret(self, request):
        """The signing secret for ``request``: a string, None (unsigned), or False (missing)."""
        if request.secret is None:
            return None
        secret = self.settings.secrets.get(request.secret)
        if secret is None:
            return None if request.secret == "" else False
        return secret

    def _record(self, lane, item, result):
        request = item.request
        for observer in self._on_attempt:
            try:
                observer(request, result)
            except Exception:
                log.exception("call %s: an observer of webhook attempts failed; delivery goes on",
                              safe(request.call_id))
        if result.outcome is Outcome.DELIVERED:
            lane.breaker.succeeded()
            self.outbox.delete(request.delivery_id)
            self._waiting.pop(request.delivery_id, None)
            self._counts["delivered"] += 1
            log.info("call %s: webhook delivered: %s answered %s after %s (delivery %s)",
                     safe(request.call_id), request.describe(), result.reason,
                     _attempts(item.attempts), request.delivery_id)
            return
        if self._kazoo:
            return self._record_kazoo(lane, item, result)
        if not result.retryable:
            if result.status is not None:
                lane.breaker.succeeded()  # it answered: the endpoint is alive
            return self._failed(item, result)
        now = self._clock()
        lane.breaker.failed(now)
        if result.outcome is Outcome.NOT_SENT:
            return self._hold(item, result, now)
        item.waits = 0
        retry = dataclasses.replace(request.retry, attempt=item.attempts - 1)
        try:
            retry = retry.increment()
        except RetriesExhausted:
            return self._failed(item, result)
        delay = retry.delay(result.retry_after, self._rand)
        self._retry_later(item, now + delay)
        log.info("call %s: webhook %s (%s): %s; retry %d%s in %.2fs%s",
                 safe(request.call_id), result.outcome.value, result.reason, request.describe(),
                 retry.attempt, "" if retry.total is None else " of %d" % retry.total, delay,
                 "" if result.retry_after is None else " (Retry-After)")

    def _hold(self, item, result, now):
        """The host was not available: the try spends nothing; wait (back-off) up to max_age."""
        request = item.request
        item.attempts -= 1
        if self._expired(item, now):
            return
        item.waits += 1
        waited = dataclasses.replace(request.retry, total=None, attempt=min(item.waits, 64))
        delay = waited.backoff(self._rand)
        self._retry_later(item, min(now + delay, self._expires_at(item, now)))
        log.info("call %s: webhook not sent (%s): %s; it waits in the outbox and tries again in "
                 "%.2fs (attempts spent: %d of %d)", safe(request.call_id), result.reason,
                 request.describe(), delay, item.attempts, (request.retry.total or 0) + 1)

    def _record_kazoo(self, lane, item, result):
        """Kazoo 4.3: an answer is final; no answer (sent or not) spends an attempt; 2 s apart."""
        request = item.request
        if result.status is not None:  # handle_resp/5: any answer but 200 is logged, not retried
            lane.breaker.succeeded()
            return self._failed(item, result)
        if item.attempts >= (request.retry.total or 0) + 1:
            return self._failed(item, result)
        self._retry_later(item, self._clock() + KAZOO_RETRY_PAUSE)
        log.info("call %s: webhook %s (%s): %s; attempt %d of %d in %gs (retry_mode kazoo)",
                 safe(request.call_id), result.outcome.value, result.reason, request.describe(),
                 item.attempts + 1, (request.retry.total or 0) + 1, KAZOO_RETRY_PAUSE)

    def _retry_later(self, item, due):
        item.due = due
        self.outbox.update(item)
        self._counts["retried"] += 1
        heapq.heappush(self._timers, (item.due, next(self._seq), item))

    def _failed(self, item, result):
        request = item.request
        self.outbox.delete(request.delivery_id)
        self._waiting.pop(request.delivery_id, None)
        self._counts["failed"] += 1
        log.warning("call %s: webhook failed after %s: %s (%s): %s (delivery %s)",
                    safe(request.call_id), _attempts(item.attempts), result.reason,
                    result.outcome.value, request.describe(), request.delivery_id)

    # -- draining --------------------------------------------------------------------

    def _due_count(self):
        return sum(len(lane.ready) for lane in self._busy) + self._in_flight

    def _drained(self):
        """Nothing in flight and nothing due that a closed breaker would let out."""
        if self._in_flight:
            return False
        now = self._clock()
        if self._timers and self._timers[0][0] <= now:
            return False
        return not any(lane.ready and lane.breaker.state is not BreakerState.OPEN for lane in self._busy)


def _attempts(n):
    return "1 attempt" if n == 1 else "%d attempts" % n
