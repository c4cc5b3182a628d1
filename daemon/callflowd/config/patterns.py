"""Callflow ``patterns``, compiled with RE2: matching time is linear in the number's length.

In the config layer because the settings (``routing.e164_converters``), the callflow
parser and the router (``calls.routes``) all compile patterns, and the lowest of them
is the settings.

Dialled numbers come from callers, so a pattern must not be able to backtrack:
with Python's ``re``, ``^(\\d+)+$`` against 27 digits and an ``x`` took 5 s,
and the event-socket reader (which routes every event) stalled for all of it.
RE2 (``google-re2``) has no backtracking; what it cannot do in linear time
(back-references ``\\1``, look-arounds ``(?=``) it refuses to compile, so such
a pattern is refused at load time with RE2's reason.

Note ``\\d`` is ASCII digits only in RE2 (Python's ``re`` also takes other
scripts' digits), which is what a dial plan means.
"""

import re2

MAX_LENGTH = 512  # characters; a dial-plan pattern is a few dozen
_MAX_MEMORY = 1 << 20  # bytes RE2 may use for one compiled pattern (its default is 8 MiB)


class PatternError(ValueError):
    """The pattern can't be used; ``str()`` says why in one line."""


def _options():
    options = re2.Options()
    options.log_errors = False  # RE2 would print its own error line to stderr
    options.max_mem = _MAX_MEMORY
    return options


_OPTIONS = _options()


def compile_pattern(text):
    """The compiled RE2 regex for ``text``; raises PatternError. ``.match()`` anchors at the start."""
    if len(text) > MAX_LENGTH:
        raise PatternError("longer than %d characters" % MAX_LENGTH)
    try:
        return re2.compile(text, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "cannot compile"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(" ".join(str(reason).split())) from None
