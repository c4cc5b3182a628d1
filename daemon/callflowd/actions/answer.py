"""``answer``: answer the call (200 OK to the caller) if it isn't already.

data: none.

Branches: ``_``.
"""

from callflowd.actions.outcome import DEFAULT
from callflowd.config import fields


# The data keys it honours, and the keys of Kazoo's schema it accepts without doing them:
# ``check`` warns about each of those, and about any other key (flow/parser.py).
SUPPORTED = ()
NOT_SUPPORTED = ()


Data = fields.NoData


# Its first effect is answer: the step's recovery mark rides ahead of it (actions/__init__.py).
FIRST_EFFECT_IS_A_COMMAND = True


# The FreeSWITCH applications it runs (actions/__init__.py).
APPLICATIONS = ("answer",)


def handle(call, data):
    call.answer()
    return DEFAULT
