"""``sleep``: hold the caller (in silence) for a while.

data (Kazoo 4.3 ``callflows.sleep``):
  ``duration``  how long, a whole number (default 0)
  ``unit``      ``ms``, ``s`` (default), ``m`` or ``h``; at most one hour in all

Branches: ``_``.

FreeSWITCH fact: the ``sleep`` application takes milliseconds and does not answer.
"""

import dataclasses

from callflowd.actions.outcome import DEFAULT
from callflowd.config import fields
from callflowd.errors import InvalidData

UNITS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000}
MAX_MILLISECONDS = 3600 * 1000
_GRACE_SECONDS = 10


# The data keys it honours, and the keys of Kazoo's schema it accepts without doing them:
# ``check`` warns about each of those, and about any other key (flow/parser.py).
SUPPORTED = ("duration", "unit")
NOT_SUPPORTED = ()


@dataclasses.dataclass(frozen=True)
class Data:
    milliseconds: int

    @classmethod
    def parse(cls, raw, directory):
        duration = fields.integer_in(raw, "duration", 0, 0, MAX_MILLISECONDS)
        unit = fields.one_of(raw, "unit", UNITS, "s")
        milliseconds = duration * UNITS[unit]
        if milliseconds > MAX_MILLISECONDS:
            raise InvalidData("duration", "must be at most one hour")
        return cls(milliseconds=milliseconds)


# The FreeSWITCH applications it runs (actions/__init__.py).
APPLICATIONS = ("sleep",)


def handle(call, data):
    if data.milliseconds:
        call.execute("sleep", str(data.milliseconds), timeout=data.milliseconds / 1000 + _GRACE_SECONDS)
    return DEFAULT
