"""One decoded event-socket frame."""

import functools
from urllib.parse import unquote

from callflowd.esl import names

# unquote() is most of the decoding time and an event's encoded values repeat
# across its call's events (dates, SIP URIs, SDP); a pure function, so cache it.
# Never unquote_plus: a '+' is sent as %2B and a literal '+' means '+'.
unquote_value = functools.lru_cache(maxsize=4096)(unquote)

# Inside a text/event-plain event: the length of the event's own body, not a header of it.
BODY_LENGTH = names.CONTENT_LENGTH

_MISSING = object()


class Event:
    """Headers (decoded values) and an optional body of one event or reply.

    ``headers`` maps each header name to its value exactly as FreeSWITCH meant
    it (percent-decoding done per value, after the lines were split), so a
    caller-controlled value can never add or replace another header.

    A text/event-plain event (``Event.plain``) keeps its header block as text
    and decodes a value only when it is read: an event carries ~150 headers
    and a call reads a handful, so splitting and decoding them all would be most
    of the daemon's CPU per event (docs/benchmarks.md). ``headers``
    still gives the whole dict, built on first use.
    """

    __slots__ = ("_headers", "_head", "body", "content_type")

    def __init__(self, headers, body=None, content_type=None):
        self._headers = headers
        self._head = None
        self.body = body
        self.content_type = content_type

    @classmethod
    def plain(cls, head, body=None, content_type=None):
        """An event whose values are looked up in ``head``, its header block as text."""
        event = cls(None, body, content_type)
        event._head = "\n" + head  # every line, the first too, starts after a "\n"
        return event

    @property
    def headers(self):
        if self._headers is None:
            self._headers = _split_head(self._head)
        return self._headers

    def get(self, name, default=None):
        if self._headers is not None:
            return self._headers.get(name, default)
        if name == BODY_LENGTH:
            return default
        return head_value(self._head, name, default)

    def __getitem__(self, name):
        value = self.get(name, _MISSING)
        if value is _MISSING:
            raise KeyError(name)
        return value

    def __contains__(self, name):
        return self.get(name, _MISSING) is not _MISSING

    @property
    def name(self):
        return self.get(names.EVENT_NAME)

    @property
    def uuid(self):
        return self.get(names.UNIQUE_ID)

    def __repr__(self):
        return "<Event %s %s>" % (self.name or self.content_type, self.uuid or "")


def head_value(head, name, default=None):
    """The decoded value of header ``name`` in ``head`` ("\\n" + header lines), or ``default``.

    The line is found before anything is decoded: on the wire a value is
    percent-encoded and holds no raw newline, so "\\n<name>: " can only be the
    start of that header's own line, never text inside another value; a value
    that decodes into "\\nUnique-ID: forged" stays inside its own value. The
    last line with the name wins, as in ``_split_head`` (FreeSWITCH repeats a
    few headers with the same value).
    """
    key = "\n" + name + ": "
    at = head.rfind(key)
    if at < 0:
        return default
    start = at + len(key)
    end = head.find("\n", start)
    value = head[start:] if end < 0 else head[start:end]
    return unquote_value(value) if "%" in value else value


def _split_head(head):
    """Every header of ``head`` as a dict: lines split first, then each value decoded."""
    lines = [line.partition(": ") for line in head.split("\n")]
    headers = {name: (unquote_value(value) if "%" in value else value) for name, sep, value in lines if sep}
    headers.pop(BODY_LENGTH, None)
    return headers


def headers_with_prefix(event, prefix):
    """``(name, value)`` of every header of ``event`` whose name starts with ``prefix``, in order.

    On a plain event the header block is searched as text (most events hold none of
    them), so the ~150 other headers are never split nor decoded.
    """
    head = event._head
    if head is None:
        return [(name, value) for name, value in event.headers.items() if name.startswith(prefix)]
    found = {}
    key = "\n" + prefix
    at = head.find(key)
    while at >= 0:
        end = head.find("\n", at + 1)
        line = head[at + 1:] if end < 0 else head[at + 1:end]
        name, sep, value = line.partition(": ")
        if sep:
            found[name] = unquote_value(value) if "%" in value else value  # the last one wins
        at = head.find(key, at + 1) if end < 0 else head.find(key, end)
    return list(found.items())
