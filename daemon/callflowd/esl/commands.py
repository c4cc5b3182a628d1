"""The commands we write on the event socket, and how FreeSWITCH's replies are matched to them.

mod_event_socket answers commands one at a time, in the order it read them (protocol
fact 2 in tests/fixtures/README.md), with nothing on the wire that names the command
a reply answers; so each command written gets a ``Pending`` slot, in wire order, and a
reply goes to the oldest slot unless it provably cannot be that command's.
"""

import gevent.event

from callflowd.errors import EslError
from callflowd.esl import names, protocol

# sendmsg to a uuid mod_event_socket does not have: ``-ERR invalid session id [<uuid>]``
_NO_SUCH_CHANNEL = names.ERR_NO_SUCH_CHANNEL + " ["


class Pending:
    """One command waiting for its reply.

    ``expects`` is the reply's Content-Type (api/response only for ``api``);
    ``channel`` the uuid a sendmsg names; ``sent_at`` is None until every
    byte of the command was handed to the kernel.
    """

    __slots__ = ("command", "result", "abandoned", "expects", "channel", "sent_at", "overdue_at")

    def __init__(self, command):
        self.command = command
        self.result = gevent.event.AsyncResult()
        self.abandoned = False
        verb, _, rest = command.partition(" ")
        self.expects = names.API_RESPONSE if verb == "api" else names.COMMAND_REPLY
        self.channel = rest.strip() if verb == "sendmsg" else None
        self.sent_at = None
        self.overdue_at = None  # past this, no reply means FreeSWITCH is not answering

    def refuses(self, reply):
        """Why ``reply`` cannot be this command's answer, or None if it can.

        A reply read before our last byte left cannot answer us (gevent's
        sendall returns without yielding once the last send succeeds, so the
        reader only sees such a reply while ``sent_at`` is None); nor can a
        reply of the wrong Content-Type, or an ``invalid session id`` naming
        another channel. An unsolicited ``+OK`` that comes after our command
        went out is indistinguishable from ours: nothing on the wire says.
        """
        if self.sent_at is None:
            return "it came before %r was sent" % self.command
        if reply.content_type != self.expects:
            return "%s cannot answer %r" % (reply.content_type, self.command)
        text = reply.get(names.REPLY_TEXT, "")
        if self.channel and text.startswith(_NO_SUCH_CHANNEL):
            named = text[len(_NO_SUCH_CHANNEL):].rstrip("]").strip()
            if named and named != self.channel:
                return "it names channel %s, not %s" % (named, self.channel)
        if self.command.startswith("bgapi ") and text.startswith(names.OK) and not reply.get(names.JOB_UUID):
            return "a bgapi reply carries a Job-UUID"
        return None


def encode(line, headers=(), what=None):
    """The bytes of one command; EslError for a line break, which would end the command early
    and inject the rest as commands of their own."""
    try:
        return protocol.encode_command(line, headers)
    except ValueError:
        raise EslError("refusing a line break in %s" % (what or repr(line))) from None


def execute_headers(app, arg, event_uuid):
    """The headers of ``sendmsg <uuid>`` that queue application ``app`` (``arg``, ``event_uuid``)."""
    headers = [(names.CALL_COMMAND, "execute"), (names.EXECUTE_APP_NAME, app)]
    if arg:
        headers.append((names.EXECUTE_APP_ARG, arg))
    if event_uuid:
        headers.append((names.EVENT_UUID, event_uuid))
    return headers


def hangup_headers(cause):
    """The headers of ``sendmsg <uuid>`` that hang the channel up with ``cause``."""
    return [(names.CALL_COMMAND, "hangup"), (names.HANGUP_CAUSE_ARG, cause)]
