"""``voicemail``: leave a message in a box, or check a box (Kazoo's cf_voicemail).

data (Kazoo 4.3 ``callflows.voicemail``):
  ``id``        a box: under ``voicemail_boxes:`` or a Kazoo vmbox document (``vmboxes``);
                required to leave a message
  ``action``    ``compose`` (default: the caller leaves a message) or ``check`` (the caller
                listens to the box's messages: FreeSWITCH asks for the box number when no
                ``id`` is given, then its PIN; the standard ``*97``)
  not supported (accepted, ``check`` warns): ``max_message_length`` (mod_voicemail's
  profile setting ``max-record-len`` rules), ``interdigit_timeout``, ``callerid_match_login``,
  ``single_mailbox_login``

Branches: ``_`` once FreeSWITCH's voicemail application returns (usually the
caller has hung up by then, which ends the flow).

FreeSWITCH facts (the capture of a busy device then voicemail,
tests/fixtures/b_device_busy_voicemail.plain.txt; mod_voicemail): ``voicemail`` does not answer
the call (it sends 183), so we execute ``answer`` first; ``voicemail check <profile> <domain>
[<id>]`` is the box's menu (login, then messages), without ``<id>`` it asks for one. A ``check``
without an ``id`` uses profile ``default`` and the account's realm (else FreeSWITCH's ``${domain}``).
"""

import dataclasses

from callflowd.config import fields
from callflowd.actions.outcome import DEFAULT
from callflowd.config.model import Reference, VoicemailBox
from callflowd.errors import InvalidData

# A message can be long; the wait still needs an upper bound.
MAX_VOICEMAIL_SECONDS = 3600
ACTIONS = ("compose", "check")
SUPPORTED = ("id", "action")
NOT_SUPPORTED = ("max_message_length", "interdigit_timeout", "callerid_match_login", "single_mailbox_login")


@dataclasses.dataclass(frozen=True)
class Data:
    box: VoicemailBox | None
    action: str = "compose"
    domain: str = "${domain}"  # for a check without a box

    @classmethod
    def parse(cls, raw, directory):
        action = fields.one_of(raw, "action", ACTIONS, "compose")
        if raw.get("id") is None:
            if action == "compose":
                raise InvalidData("id", "is required to leave a message (action compose)")
            box = None
        else:
            box = fields.known_id(raw, "id", directory.voicemail_boxes, "voicemail box")
        account = directory.account
        return cls(box=box, action=action,
                   domain=account.realm if account is not None and account.realm else "${domain}")

    def argument(self):
        if self.action == "check":
            if self.box is None:
                return "check default %s" % self.domain
            return "check %s %s %s" % (self.box.profile, self.box.domain, self.box.mailbox)
        return "%s %s %s" % (self.box.profile, self.box.domain, self.box.mailbox)


def references(data):
    return (Reference("voicemail box", data.box.id),) if data.box is not None else ()


# Its first effect is answer: the step's recovery mark rides ahead of it (actions/__init__.py).
FIRST_EFFECT_IS_A_COMMAND = True


# The FreeSWITCH applications it runs, and those a recovery mark names while they run (actions/__init__.py).
APPLICATIONS = ("answer", "voicemail")
LONG_APPLICATIONS = ("voicemail",)


def handle(call, data):
    call.answer(ahead=True)  # not waited for: it goes out with voicemail, ahead of it
    call.execute("voicemail", data.argument(), timeout=MAX_VOICEMAIL_SECONDS)
    return DEFAULT
