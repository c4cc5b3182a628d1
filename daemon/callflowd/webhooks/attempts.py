"""One webhook attempt and what its outcome does: delivered (the row deleted), retried by
``Retry`` (scheduled), held while the host is not available, or failed; the dispatcher's
``AttemptRecorder`` part.

Split out of ``dispatcher`` (issue 17: one job per file); it logs under the dispatcher's logger,
so its lines read as before. Kazoo's retry rule (``_record_kazoo``) stays in ``dispatcher``
beside ``KAZOO_RETRY_PAUSE``.
"""

import dataclasses
import heapq
import logging

from callflowd import metrics
from callflowd.logfmt import safe
from callflowd.retry import RetriesExhausted
from callflowd.webhooks import delivery
from callflowd.webhooks.delivery import AttemptResult, Outcome

log = logging.getLogger("callflowd.webhooks.dispatcher")


class AttemptRecorder:
    """Makes attempts and records their outcome. Needs the dispatcher's ``settings``, ``outbox``,
    ``_session``, ``_clock``, ``_rand``, ``_on_attempt``, ``_counts``, ``_waiting``, ``_timers``,
    ``_seq``, ``_busy``, ``_wake``, ``_progress``, ``_in_flight``, ``_kazoo``, and its
    ``_expired``, ``_expires_at`` and ``_record_kazoo``."""


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
                     attempts_made(item.attempts), request.delivery_id)
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
                    safe(request.call_id), attempts_made(item.attempts), result.reason,
                    result.outcome.value, request.describe(), request.delivery_id)


def attempts_made(n):
    return "1 attempt" if n == 1 else "%d attempts" % n
