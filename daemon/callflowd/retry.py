"""Retry policy as an immutable value (after urllib3's ``Retry``).

One ``Retry`` serves webhook delivery and event-socket reconnects. It holds
no clock and never sleeps: ``backoff(n)`` is pure arithmetic, ``increment()``
returns the next policy or raises ``RetriesExhausted``. Callers do the
waiting, so tests check the arithmetic without sleeping.
"""

import dataclasses
import random


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

    def __post_init__(self):
        if self.total is not None and self.total < 0:
            raise ValueError("total must be >= 0 or None")
        if self.backoff_factor < 0 or self.backoff_max < 0:
            raise ValueError("back-off must be >= 0")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

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
