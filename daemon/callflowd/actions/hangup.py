"""``hangup``: end the call.

data: none.

Branches: none: the flow stops and the caller is hung up (``NORMAL_CLEARING``).
"""

from callflowd.actions.outcome import STOP
from callflowd.config import fields
from callflowd.esl import names


# The data keys it honours, and the keys of Kazoo's schema it accepts without doing them:
# ``check`` warns about each of those, and about any other key (flow/parser.py).
SUPPORTED = ()
NOT_SUPPORTED = ()


Data = fields.NoData


# The FreeSWITCH applications it runs (actions/__init__.py).
APPLICATIONS = ()


def handle(call, data):
    call.hangup(names.NORMAL_CLEARING)
    return STOP
