"""How the event socket's two greenlets give the rest of the process its turn.

A burst of 20,000 events read in one go must not starve the call greenlets or the
timers (tests/benchmarks/bench_burst.py measures it), so the reader and the
dispatcher each yield every ``YIELD_EVERY`` frames through ``pause()``.
"""

import time

import gevent

# Frames read (or events delivered) between two yields.
YIELD_EVERY = 64
# gevent.sleep(0) only queues a callback: the hub runs ~50 of them before it
# looks at timers and sockets again, so two greenlets yielding that way keep
# each other going and starve the rest. A tiny timer goes through the loop
# (bench_burst.py: longest wait 2-21 ms vs 36-116 ms).
# gevent.idle() measured as well, but resumes only when nothing else is
# pending: under saturation the reader could fall behind and be dropped.
_YIELD_SECONDS = 0.0001
# But the tiny timer costs a whole millisecond when nothing else is due
# (libev's epoll_wait takes milliseconds, rounded up): at one per 64 frames
# that was half of a burst's wall time (docs/benchmarks.md). So the timer goes
# through the loop at most every _SLEEP_EVERY seconds; in between, a yield only
# lets the ready greenlets (the other half of the pair, the calls) run.
_SLEEP_EVERY = 0.002
_last_sleep = 0.0


def pause():
    """Let every other greenlet have a turn, and timers and sockets at least every _SLEEP_EVERY."""
    global _last_sleep
    now = time.monotonic()
    if now - _last_sleep >= _SLEEP_EVERY:
        gevent.sleep(_YIELD_SECONDS)
        _last_sleep = time.monotonic()
    else:
        gevent.sleep(0)
