"""``response``: answer the caller with a SIP final response of our choosing, and end.

data (Kazoo 4.3 ``callflows.response``):
  ``code``     the SIP response code, 300-699 (default 486)
  ``message``  the reason phrase (default: FreeSWITCH's for the code)
  ``media``    played to the caller first, as early media (183), see actions/media.py

Branches: none: the flow stops (Kazoo: "the call is hung up with the given code").

FreeSWITCH facts: ``respond <code> [<reason>]`` (mod_dptools, mod_sofia) sends the
response on an unanswered inbound channel; a final (3xx-6xx) response ends the channel.
On an answered call there is no INVITE left to answer, so the call is hung up instead.
"""

import dataclasses

from callflowd.actions import media
from callflowd.actions.outcome import STOP
from callflowd.config import fields

MAX_MEDIA_SECONDS = 600


# The data keys it honours, and the keys of Kazoo's schema it accepts without doing them:
# ``check`` warns about each of those, and about any other key (flow/parser.py).
SUPPORTED = ("code", "message", "media")
NOT_SUPPORTED = ()


@dataclasses.dataclass(frozen=True)
class Data:
    code: int
    message: str
    media: str

    @classmethod
    def parse(cls, raw, directory):
        return cls(
            code=fields.integer_in(raw, "code", 486, 300, 699),
            message=fields.text(raw, "message"),
            media=directory.media_path(media.reference(raw, "media")),
        )

    @property
    def argument(self):
        return "%d %s" % (self.code, self.message) if self.message else str(self.code)


# Its first effect is an application: the step's recovery mark rides ahead of it (actions/__init__.py).
FIRST_EFFECT_IS_A_COMMAND = True


# The FreeSWITCH applications it runs, and those a recovery mark names while they run (actions/__init__.py).
APPLICATIONS = ("pre_answer", "playback", "respond")
LONG_APPLICATIONS = ("playback",)


def handle(call, data):
    if data.media:
        call.execute("pre_answer", timeout=call.command_timeout)
        call.execute("playback", data.media, timeout=MAX_MEDIA_SECONDS)
    call.log.info("responding %s", data.argument)
    call.execute("respond", data.argument, timeout=call.command_timeout)
    return STOP
