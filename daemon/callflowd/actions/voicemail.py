"""``voicemail``: answer and let the caller leave a message in a configured box.

data:
  ``id`` (required)  a box configured under ``voicemail_boxes:``

Branches: ``_`` once FreeSWITCH's voicemail application returns (usually the
caller has hung up by then, which ends the flow).

FreeSWITCH fact (the capture of a busy device then voicemail,
tests/fixtures/b_device_busy_voicemail.plain.txt): ``voicemail`` does not answer the call
(it sends 183), so we execute ``answer`` first.
"""

import dataclasses

from callflowd.actions.outcome import DEFAULT
from callflowd.config import fields
from callflowd.config.model import Reference, VoicemailBox

# A message can be long; the wait still needs an upper bound.
MAX_VOICEMAIL_SECONDS = 3600


@dataclasses.dataclass(frozen=True)
class Data:
    box: VoicemailBox

    @classmethod
    def parse(cls, raw, directory):
        return cls(box=fields.known_id(raw, "id", directory.voicemail_boxes, "voicemail box"))


def references(data):
    return (Reference("voicemail box", data.box.id),)


# Its first effect is answer: the step's recovery mark rides ahead of it (actions/__init__.py).
FIRST_EFFECT_IS_A_COMMAND = True


# The FreeSWITCH applications it runs, and those a recovery mark names while they run (actions/__init__.py).
APPLICATIONS = ("answer", "voicemail")
LONG_APPLICATIONS = ("voicemail",)


def handle(call, data):
    box = data.box
    call.answer(ahead=True)  # not waited for: it goes out with voicemail, ahead of it
    call.execute("voicemail", "%s %s %s" % (box.profile, box.domain, box.mailbox),
                 timeout=MAX_VOICEMAIL_SECONDS)
    return DEFAULT
