"""``answer``: answer the call (200 OK to the caller) if it isn't already.

data: none.

Branches: ``_``.
"""

from callflowd.actions import fields
from callflowd.actions.outcome import DEFAULT


Data = fields.NoData


def handle(call, data):
    call.answer()
    return DEFAULT
