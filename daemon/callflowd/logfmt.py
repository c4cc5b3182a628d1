"""Make untrusted values safe to put in a log line, and keep secrets out of it.

Caller ID, SIP headers, digits, even the call uuid come from outside (sofia's
``inbound-use-callid-as-uuid`` makes the Unique-ID the caller's Call-ID): a
newline or a control character in them must not start a new log line or fake a
field, so they are escaped (``escape("a\\nb") == "a\\\\nb"``). ``safe(value)``
does it lazily for a log argument, and the formatters in ``logsetup`` escape
every whole message again, so a value someone forgot to wrap still cannot forge
a line.

Secrets are masked where they are placed, never by searching a line for their
text (a password of ``x`` must not turn "the outbox is empty" into "the
outbo*** is empty"): ``redact_uri()`` is the one masker of a URI (its userinfo
and every query value: ``https://***@host/path?token=***``), used wherever a
URI is named (``WebhookRequest.describe()``, ``pivot``, ``callflowd simulate``);
the formatters in ``logsetup`` apply it, through ``redact()``, to any URI a
message quotes (an exception's text), as a net. Config secrets (the event-socket
password, signing secrets) are never formatted into a message at all: their
dataclass fields have ``repr=False``, and secret headers are masked by name
(``SECRET_HEADERS``).
"""

import re

_MAX_LENGTH = 200
# Characters that end or rewrite a line somewhere: C0/C1 controls, DEL, the Unicode line and
# paragraph separators, and the bidi overrides that reorder what a terminal shows.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# A URI inside free text: scheme, "://", then anything up to a space, a quote or a bracket.
_URI_IN_TEXT = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s\"'<>]+")
MASK = "***"
# Headers whose value is a secret, masked by name wherever a request is shown.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-callflowd-signature", "cookie"})


class safe:
    """Lazy log argument: ``log.info("caller %s", safe(name))`` escapes on formatting only."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __str__(self):
        return escape(self.value)


def escape(value, max_length=_MAX_LENGTH):
    """``value`` as one printable line: control characters become ``\\n``, ``\\x1b``...; cut long."""
    text = "" if value is None else str(value)
    if max_length is not None and len(text) > max_length:
        text = text[:max_length] + "..."
    return escape_line(text)


def escape_line(text):
    """``text`` with every line-breaking or control character escaped; nothing cut."""
    if not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub(_escape_char, text)


def _escape_char(match):
    code = ord(match.group())
    if code == 0x0A:
        return "\\n"
    if code == 0x0D:
        return "\\r"
    if code == 0x09:
        return "\\t"
    return "\\x%02x" % code if code < 0x100 else "\\u%04x" % code


def redact_uri(uri):
    """``uri`` with its userinfo and every query value masked, the fragment dropped:
    ``https://u:p@host/a?token=t&id=7#f`` -> ``https://***@host/a?token=***&id=***``."""
    text = str(uri)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    authority, slash, tail = _split_authority(rest)
    if "@" in authority:
        authority = MASK + "@" + authority.rpartition("@")[2]
    tail = tail.split("#", 1)[0]
    path, question, query = tail.partition("?")
    if question:
        query = "&".join(_mask_pair(pair) for pair in query.split("&"))
    return "%s://%s%s%s%s%s" % (scheme, authority, slash, path, question, query)


def _split_authority(rest):
    """``(authority, the separator, what follows)`` for the part of a URI after ``://``."""
    for index, char in enumerate(rest):
        if char in "/?#":
            return rest[:index], "", rest[index:]
    return rest, "", ""


def _mask_pair(pair):
    name, equals, value = pair.partition("=")
    if not equals:
        return MASK if name else name
    return name + "=" + (MASK if value else "")


def mask_header(name, value):
    """A header's value as it may be shown: masked if the header carries a secret."""
    return MASK if name.lower() in SECRET_HEADERS else value


def redact(text):
    """``text`` with every URI in it masked by ``redact_uri`` (the formatters' net)."""
    if "://" not in text:
        return text
    return _URI_IN_TEXT.sub(lambda match: redact_uri(match.group()), text)
