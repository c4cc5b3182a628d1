"""Retry policy as an immutable value (after urllib3's ``Retry``).

One ``Retry`` serves webhook delivery and event-socket reconnects. It holds
no clock and never sleeps: ``backoff(n)`` is pure arithmetic, ``increment()``
returns the next policy or raises ``RetriesExhausted``. Callers do the
waiting, so tests check the arithmetic without sleeping.

For HTTP it also says which answers are worth another try (``retry_statuses``:
408, 429 and every 5xx; after urllib3's ``status_forcelist``) and how long a
``Retry-After`` may hold us (``retry_after_max``). ``delay(retry_after)`` is
the wait before the next attempt: the server's ``Retry-After`` when it gave
one (capped), else the back-off.
"""

import dataclasses
import email.utils
import random

# RFC 9110: 408 Request Timeout and 429 Too Many Requests (RFC 6585) say "not now"; other 4xx
# say "never". Every 5xx is the receiver failing: ``retries`` bounds the attempts that reached a
# receiver that then failed (5xx, 408/429, no answer; docs/webhooks.md#retry-rules), and a 500
# from a receiver mid-deploy is worth the attempts the webhook's ``retries`` allows.
RETRY_STATUSES = frozenset((408, 429)) | frozenset(range(500, 600))


class RetriesExhausted(Exception):
    """No attempts are left."""


@dataclasses.dataclass(frozen=True)
class Retry:
    """``total`` more attempts after the first; back-off doubles up to ``backoff_max``.

    ``backoff(n)`` for the n-th retry (1-based) is
    ``min(backoff_max, backoff_factor * 2 ** (n - 1))``, then spread by up to
    ``jitter`` (a fraction) so many clients don't retry in lock step.
    ``total=None`` retries for ever (reconnects).
    """

    total: int | None = 2
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.0
    attempt: int = 0  # retries used so far
    retry_statuses: frozenset = RETRY_STATUSES
    retry_after_max: float = 300.0  # seconds; a longer Retry-After is cut to this

    def __post_init__(self):
        if self.total is not None and self.total < 0:
            raise ValueError("total must be >= 0 or None")
        if self.backoff_factor < 0 or self.backoff_max < 0:
            raise ValueError("back-off must be >= 0")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")
        if self.retry_after_max < 0:
            raise ValueError("retry_after_max must be >= 0")

    @property
    def exhausted(self):
        return self.total is not None and self.attempt >= self.total

    def increment(self):
        """The policy after one more retry; raises RetriesExhausted when none is left."""
        if self.exhausted:
            raise RetriesExhausted("gave up after %d retries" % self.attempt)
        return dataclasses.replace(self, attempt=self.attempt + 1)

    def backoff(self, rand=random.random):
        """Seconds to wait before the retry numbered ``self.attempt`` (0 before any)."""
        if self.attempt <= 0:
            return 0.0
        try:
            base = min(self.backoff_max, self.backoff_factor * (2 ** (self.attempt - 1)))
        except OverflowError:  # 2**1024 and up don't fit a float: long past the cap
            base = self.backoff_max
        if self.jitter:
            base *= 1 - self.jitter + 2 * self.jitter * rand()
        return base

    def reset(self):
        """A fresh policy with the same settings (after a success)."""
        return dataclasses.replace(self, attempt=0)

    def retries_status(self, status):
        """Whether an HTTP answer with ``status`` is worth another attempt."""
        return status in self.retry_statuses

    def delay(self, retry_after=None, rand=random.random):
        """Seconds before the next attempt: ``retry_after`` (capped) if given, else the back-off."""
        if retry_after is not None:
            return min(max(0.0, retry_after), self.retry_after_max)
        return self.backoff(rand)


def parse_retry_after(value, now):
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None.

    ``now`` is the Unix time the answer came; a date in the past means 0. An
    unreadable value is ignored (None), as RFC 9110 section 10.2.3 allows.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)
