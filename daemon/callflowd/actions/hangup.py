"""``hangup``: end the call.

data: none.

Branches: none: the flow stops and the caller is hung up (``NORMAL_CLEARING``).
"""

from callflowd.actions.outcome import STOP
from callflowd.config import fields


Data = fields.NoData


def handle(call, data):
    call.hangup("NORMAL_CLEARING")
    return STOP
