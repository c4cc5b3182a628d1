"""``answer``: answer the call (200 OK to the caller) if it isn't already.

data: none.

Branches: ``_``.
"""

import dataclasses

from callflowd.actions.outcome import DEFAULT


@dataclasses.dataclass(frozen=True)
class Data:
    @classmethod
    def parse(cls, raw, directory):
        return cls()


def handle(call, data):
    call.answer()
    return DEFAULT
