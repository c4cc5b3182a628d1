"""Make untrusted values safe to put in a log line.

Caller ID, SIP headers and digits come from the caller: a newline or a control
character in them must not start a new log line or fake a field, so they are
escaped before formatting (``safe("a\\nb") == "a\\\\nb"``).
"""

_MAX_LENGTH = 200


class safe:
    """Lazy log argument: ``log.info("caller %s", safe(name))`` escapes on formatting only."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __str__(self):
        return escape(self.value)


def escape(value):
    text = "" if value is None else str(value)
    if len(text) > _MAX_LENGTH:
        text = text[:_MAX_LENGTH] + "..."
    if text.isprintable():
        return text
    return text.encode("unicode_escape").decode("ascii")
