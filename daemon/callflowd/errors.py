"""The small error hierarchy of callflowd.

Each error says what went wrong in words an operator can act on; none of
them should reach the operator as a traceback.
"""


class CallflowdError(Exception):
    """Base of every error callflowd raises on purpose."""


class ConfigError(CallflowdError):
    """A configuration file or callflow document is not acceptable.

    ``source`` names the file, ``path`` the place inside it
    (``flow.children._.data.http_verb``); ``str()`` gives the one line the
    operator sees: ``callflows.d/front-desk.json: flow.children._.data.http_verb: must be one of get, post``.
    ``reference``, ``(kind, id)`` or None, is the document a "no such id" problem names, so a
    load that already refused that document can leave this problem out (config/problems.py).
    """

    def __init__(self, message, source=None, path=None, reference=None):
        super().__init__(message)
        self.message = message
        self.source = source
        self.path = path
        self.reference = reference

    def __str__(self):
        parts = [p for p in (self.source, self.path) if p]
        parts.append(self.message)
        return ": ".join(parts)


class ConfigErrors(ConfigError):
    """Several problems found in one read (every Kazoo and callflow document is checked before
    this is raised: config/problems.py); ``problems`` holds each ConfigError. ``str()`` is the
    first, and how many more: ``callflowd check`` prints them all, one line each."""

    def __init__(self, problems):
        first = problems[0]
        super().__init__(first.message, first.source, first.path)
        self.problems = tuple(problems)

    def __str__(self):
        first = ConfigError.__str__(self)
        more = len(self.problems) - 1
        return first if not more else "%s (and %d more problem%s: callflowd check lists them)" % (
            first, more, "s" if more > 1 else "")


class InvalidData(CallflowdError):
    """A callflow node's ``data`` is wrong; ``key`` is the path below ``data``.

    Raised by an action's ``Data.parse``; the loader adds the node's path and
    the file name and turns it into a ConfigError. ``reference`` as in ConfigError:
    ``("user", "alice")`` when the problem is that no user ``alice`` is known.
    """

    def __init__(self, key, message, reference=None):
        super().__init__("%s: %s" % (key, message) if key else message)
        self.key = key
        self.message = message
        self.reference = reference


class EslError(CallflowdError):
    """Talking to FreeSWITCH failed."""


class NotConnected(EslError):
    """The event socket is down (never connected, or lost): the command was never (fully) sent."""


class CommandTimeout(EslError):
    """A command was sent but FreeSWITCH did not answer in time: it may still run.

    ``late_reply`` (a gevent AsyncResult, or None) gets the reply if it comes
    after all, or NotConnected if the connection ends first.
    """

    def __init__(self, message, late_reply=None):
        super().__init__(message)
        self.late_reply = late_reply


class ReplyLost(CommandTimeout):
    """The connection ended after a command was sent and before its reply: it may have run."""


class AuthenticationFailed(EslError):
    """FreeSWITCH refused the event-socket password."""


class CallEnded(CallflowdError):
    """The call's channel hung up (or vanished): the flow ends quietly."""


class CallLost(CallEnded):
    """Another daemon drives the call now (calls/ownership.py): the flow ends without a word
    to the switch."""


class ActionTimeout(CallflowdError):
    """An application did not complete on the channel within its time limit."""
