"""``hangup``: end the call.

data: none.

Branches: none: the flow stops and the caller is hung up (``NORMAL_CLEARING``).
"""

import dataclasses

from callflowd.actions.outcome import STOP


@dataclasses.dataclass(frozen=True)
class Data:
    @classmethod
    def parse(cls, raw, directory):
        return cls()


def handle(call, data):
    call.hangup("NORMAL_CLEARING")
    return STOP
