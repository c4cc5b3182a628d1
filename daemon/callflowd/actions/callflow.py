"""``callflow``: run another callflow, then come back.

data:
  ``id`` (required)  the id of a configured callflow (checked once every callflow is read)

Branches: none of its own. The executor runs callflow ``id`` from its first node;
when that callflow ends (a node with no child to go to), the flow resumes at this
node's ``_`` child. A node that stops the flow (an answered ``device``, ``response``,
``hangup``) ends the call wherever it is. At most ``routing.max_callflow_jumps``
(default 50, as Kazoo's cf_exe) jumps per call; past that the call is hung up.
The way back is written on the channel with each step (calls/marker.py, ``RETURNS``),
so a call taken back after a restart still returns to the calling callflow.
"""

import dataclasses

from callflowd.actions.outcome import Jump
from callflowd.config import fields
from callflowd.config.model import CALLFLOW, Reference


# The data keys it honours, and the keys of Kazoo's schema it accepts without doing them:
# ``check`` warns about each of those, and about any other key (flow/parser.py).
SUPPORTED = ("id",)
NOT_SUPPORTED = ()


@dataclasses.dataclass(frozen=True)
class Data:
    callflow_id: str

    @classmethod
    def parse(cls, raw, directory):
        return cls(callflow_id=fields.text(raw, "id", needed=True))


def references(data):
    return (Reference(CALLFLOW, data.callflow_id),)


# The FreeSWITCH applications it runs (actions/__init__.py).
APPLICATIONS = ()


def handle(call, data):
    return Jump(data.callflow_id)
