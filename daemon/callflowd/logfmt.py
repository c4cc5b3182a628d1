"""Make untrusted values safe to put in a log line, and keep secrets out of it.

Caller ID, SIP headers, digits, even the call uuid come from outside (sofia's
``inbound-use-callid-as-uuid`` makes the Unique-ID the caller's Call-ID): a
newline or a control character in them must not start a new log line or fake a
field, so they are escaped (``escape("a\\nb") == "a\\\\nb"``). ``safe(value)``
does it lazily for a log argument, and the formatters in ``logsetup`` escape
every whole message again, so a value someone forgot to wrap still cannot forge
a line.

Secrets: ``redact()`` hides the credentials of a URI (``https://user:***@host``)
and the values of query parameters that name a secret (``?token=***``), and
any string given to ``hide()`` (the event-socket password, signing secrets),
wherever it appears in a message.
"""

import re
import threading

_MAX_LENGTH = 200
# Characters that end or rewrite a line somewhere: C0/C1 controls, DEL, the Unicode line and
# paragraph separators, and the bidi overrides that reorder what a terminal shows.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/?#@\s]*)@")
_SECRET_QUERY = re.compile(
    r"(?i)([?&;](?:[a-z0-9_.-]*?)(?:pass(?:word)?|passwd|secret|token|key|sig(?:nature)?|auth|"
    r"credential)[a-z0-9_.-]*=)[^&#\s]*")
_SECRETS = frozenset()
_SECRETS_LOCK = threading.Lock()


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


def hide(*secrets):
    """Never log these strings (passwords, signing secrets); empty ones are ignored."""
    global _SECRETS
    with _SECRETS_LOCK:
        _SECRETS = _SECRETS | {secret for secret in secrets if secret}


def hidden():
    """The strings ``hide()`` was given (a delivery process is told them)."""
    return _SECRETS


def redact(text):
    """``text`` with URI credentials, secret-looking query values and hidden strings masked."""
    # Every log line passes here: the patterns can only match around a '@' or a '='.
    if "@" in text:
        text = _USERINFO.sub(_mask_userinfo, text)
    if "=" in text:
        text = _SECRET_QUERY.sub(r"\1***", text)
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def _mask_userinfo(match):
    user, sep, _ = match.group(2).partition(":")
    return "%s%s%s@" % (match.group(1), user, ":***" if sep else "")
