"""The event-socket wire format: framing, decoding and encoding, no I/O.

Everything here is checked against the FreeSWITCH 1.10.12 captures in
tests/fixtures/ (named in the comments). The reader side is on the hot path
(thousands of events a second), so it stays plain: bytes in, dicts out.
The encoders exist for the simulator and the test doubles; they reproduce
FreeSWITCH's bytes exactly (tests re-encode whole captures).
"""

import functools
import io
import json
import re

from callflowd.errors import EslError
from callflowd.esl import names
from callflowd.esl.event import BODY_LENGTH, Event, head_value, unquote_value
from callflowd.esl.limits import DEFAULT_LIMITS

__all__ = [
    "ProtocolError",
    "FrameTooLarge",
    "excerpt",
    "read_frame",
    "iter_frames",
    "parse_frame",
    "parse_plain_event",
    "parse_json_event",
    "plain_event_pairs",
    "read_command",
    "encode_command",
    "url_encode",
    "encode_plain_event",
    "encode_json_event",
    "encode_command_reply",
    "encode_api_response",
    "encode_disconnect_notice",
    "encode_rude_rejection",
    "encode_auth_request",
]

_BLANK = b"\n"

_unquote = unquote_value  # cached urllib.parse.unquote (esl/event.py)
_EVENT_BODY_LENGTH = BODY_LENGTH  # inside an event: the length of its own body

# Texts FreeSWITCH sends (misc_bad_auth.txt, misc_protocol.plain.txt).
GOODBYE = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
ACCESS_DENIED = "Access Denied, go away.\n"  # mod_event_socket.c; not in the captures


class ProtocolError(EslError):
    """The byte stream is not event-socket framing: the connection cannot resynchronise."""


class FrameTooLarge(ProtocolError):
    """A frame is past the FrameLimits: refused unread, so the stream is lost too."""


# ---------------------------------------------------------------- framing


def read_frame(fileobj, limits=DEFAULT_LIMITS):
    """Read one frame from a binary file-like; return ``(headers, body)``, or None at EOF.

    A frame is a header block closed by a blank line; with Content-Length,
    exactly that many body bytes follow (protocol fact 1 in the fixtures'
    README). Outer headers are not percent-encoded. ``body`` is bytes or None.
    Raises ProtocolError if the stream ends inside a frame or is not framing,
    FrameTooLarge past ``limits`` (a FrameLimits): a line is read at most
    ``max_line`` + 1 bytes at a time and a body is never reserved before its
    length was checked, so a bad peer costs at most the limits in memory.
    """
    readline = fileobj.readline
    max_line = limits.max_line + 1  # the line's own newline included
    line = readline(max_line)
    while line == _BLANK:
        # FreeSWITCH never sends blank lines between frames, but the annotated
        # api_replies_during_call.txt has them and skipping one costs nothing.
        line = readline(max_line)
    if not line:
        return None
    headers = {}
    while line != _BLANK:
        if not line.endswith(_BLANK):
            if len(line) >= max_line:
                raise FrameTooLarge("header line longer than %d bytes: %s"
                                    % (limits.max_line, excerpt(line)))
            raise ProtocolError("connection closed inside a frame's headers")
        name, sep, value = line[:-1].decode("utf-8", "replace").partition(": ")
        if not sep:
            raise ProtocolError("not a frame header line: %s" % excerpt(line))
        headers[name] = value
        if len(headers) > limits.max_headers:
            raise FrameTooLarge("more than %d header lines, the last: %s"
                                % (limits.max_headers, excerpt(line)))
        line = readline(max_line)
    length = headers.get(names.CONTENT_LENGTH)
    if length is None:
        return headers, None
    try:
        size = int(length)
    except ValueError:
        raise ProtocolError("bad Content-Length %s" % excerpt(length)) from None
    if size < 0:
        raise ProtocolError("bad Content-Length %s" % excerpt(length))
    if size > limits.max_body:
        raise FrameTooLarge("Content-Length %d is over the %d-byte limit (%s)"
                            % (size, limits.max_body, excerpt(headers.get(names.CONTENT_TYPE, ""))))
    body = fileobj.read(size) if size > 0 else b""
    if len(body) < size:
        raise ProtocolError("connection closed inside a frame's body")
    return headers, body


def excerpt(data, size=60):
    """A short, escaped, printable piece of what a peer sent, for a log line."""
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    text = repr(bytes(data[:size]))[2:-1]
    return "'%s'%s" % (text, "..." if len(data) > size else "")


def iter_frames(data):
    """Yield ``(headers, body, raw_bytes)`` for each frame of a recorded byte string."""
    stream = io.BytesIO(data)
    start = 0
    while True:
        frame = read_frame(stream)
        if frame is None:
            return
        end = stream.tell()
        yield frame[0], frame[1], data[start:end]
        start = end


def read_command(fileobj):
    """Read one client command block (lines up to a blank line); return its bytes, or None at EOF.

    The server side of the framing, for doubles and the simulator. A command
    ends with an empty line (``NAME.sent.txt`` in the fixtures).
    """
    lines = []
    while True:
        line = fileobj.readline()
        if not line:
            if lines:
                raise ProtocolError("connection closed inside a command")
            return None
        if line == _BLANK and lines:
            lines.append(line)
            return b"".join(lines)
        if line != _BLANK:
            lines.append(line)


# ---------------------------------------------------------------- decoding


def parse_frame(headers, body):
    """Decode one frame into an Event, by its Content-Type.

    Events (plain or json) become their own headers and body; every other
    frame (replies, auth/request, notices) keeps its outer headers and a
    text body.
    """
    content_type = headers.get(names.CONTENT_TYPE)
    if content_type == names.EVENT_PLAIN:
        event = parse_plain_event(body or b"")
    elif content_type == names.EVENT_JSON:
        event = parse_json_event(body or b"")
    else:
        text = None if body is None else body.decode("utf-8", "replace")
        event = Event(headers, text)
    event.content_type = content_type
    return event


def parse_plain_event(body):
    """Decode a text/event-plain body into an Event.

    Split into lines first, each line at its first ': ', and only then
    percent-decode each value with ``unquote`` (never ``unquote_plus``: a '+'
    is sent as %2B and a literal '+' means '+'). A value may decode into a
    newline or ': ' (a caller-controlled name, say); splitting after decoding
    would let it forge headers -- greenswitch's ESLEvent has that bug. An
    event with its own body (BACKGROUND_JOB) ends its headers with
    ``Content-Length: N``, a blank line and N bytes (misc_protocol.plain.txt).

    FreeSWITCH repeats a few headers with the same value (CODEC repeats
    Channel-Write-Codec-Name, CHANNEL_HANGUP_COMPLETE Hangup-Cause); the last
    one wins, as with json.loads. A line without ': ' (never seen from
    FreeSWITCH) is skipped rather than losing the whole event.

    Values are decoded when read (``Event.get``, esl/event.py), by the same
    rule: the line is found on the undecoded text, then its value decoded.
    """
    if isinstance(body, str):
        body = body.encode("utf-8")
    head, _, rest = body.partition(b"\n\n")
    event = Event.plain(head.decode("utf-8", "replace"), content_type=names.EVENT_PLAIN)
    length = head_value(event._head, _EVENT_BODY_LENGTH)
    if length is not None:
        event.body = rest[: int(length)].decode("utf-8", "replace")
    return event


def plain_event_pairs(body):
    """Decode a text/event-plain body into ``(name, value)`` pairs in wire order, and its body.

    The same splitting rule as parse_plain_event, but nothing is merged: repeated
    headers stay repeated. For the simulator's templates and for byte-exact
    re-encoding; the daemon's hot path uses parse_plain_event.
    """
    if isinstance(body, str):
        body = body.encode("utf-8")
    head, _, rest = body.partition(b"\n\n")
    pairs = []
    text = None
    for line in head.decode("utf-8", "replace").split("\n"):
        name, sep, value = line.partition(": ")
        if not sep:
            continue
        if name == _EVENT_BODY_LENGTH:
            text = rest[: int(value)].decode("utf-8", "replace")
        else:
            pairs.append((name, _unquote(value) if "%" in value else value))
    return pairs, text


# An array header (variable_originated_legs on CHANNEL_BRIDGE) is a JSON list
# in text/event-json but "ARRAY::a|:b" in text/event-plain
# (a_device_answers.*.txt); events carry the plain form, whichever format.
_ARRAY_PREFIX, _ARRAY_SEP = "ARRAY::", "|:"


def _plain_value(value):
    if isinstance(value, list):
        return _ARRAY_PREFIX + _ARRAY_SEP.join(str(item) for item in value)
    return str(value)


def parse_json_event(body):
    """Decode a text/event-json body: one object of strings, the body in ``_body``.

    FreeSWITCH also puts the body's length in a "Content-Length" key
    (g_event_uuid_playback_bgapi.json.txt); like the plain inner
    Content-Length it is framing, so it is dropped, and both formats decode to
    the same headers.
    """
    headers = json.loads(body)
    if not isinstance(headers, dict):
        raise ValueError("a json event is not an object")
    for name, value in headers.items():
        if value.__class__ is not str:
            headers[name] = _plain_value(value)
    text = headers.pop("_body", None)
    if text is not None:
        headers.pop(_EVENT_BODY_LENGTH, None)
    return Event(headers, text, names.EVENT_JSON)


# ---------------------------------------------------------------- encoding


def encode_command(line, headers=()):
    """Encode a client command: its line, ``name: value`` lines, a blank line.

    Refuses (ValueError) any part holding CR or LF: it would end the command
    early and let the rest be read as a command of its own.
    """
    parts = [line]
    parts.extend("%s: %s" % pair for pair in headers)
    for part in parts:
        if "\n" in part or "\r" in part:
            raise ValueError("line break in event-socket command: %r" % part)
    return ("\n".join(parts) + "\n\n").encode("utf-8")


# switch_url_encode() (src/switch_utils.c, SWITCH_URL_UNSAFE in switch_utils.h):
# every byte below ' ' or above '~' and each of \r\n #%&+:;<=>?@[\]^`{|}" is
# escaped with upper-case hex; everything else, '/' ',' '(' ')' '!' '*' '~'
# "'" '$' included, stays as it is (checked against every plain capture).
# mod_event_socket encodes without double_encode, so a '%' already followed by
# two upper-case hex digits is left alone (signalwire/freeswitch issue #85).
_URL_UNSAFE = re.compile(
    r'[\x00-\x1f\x7f-\xff #&+:;<=>?@\[\\\]^`{|}"]|%(?![0-9A-F]{2})'
)
_ESCAPES = {chr(byte): "%%%02X" % byte for byte in range(256)}


def _escape(match):
    return _ESCAPES[match.group()]


@functools.lru_cache(maxsize=65536)  # values repeat across a call's events (URIs, SDP, dates)
def url_encode(value):
    """Percent-encode an event header value the way FreeSWITCH does."""
    latin1 = str(value).encode("utf-8").decode("latin-1")  # one char per UTF-8 byte
    return _URL_UNSAFE.sub(_escape, latin1)


def _pairs(headers):
    return headers.items() if hasattr(headers, "items") else headers


def _frame(content_type, payload, content_length_first=False):
    """Outer frame: events put Content-Length first, replies Content-Type first."""
    if content_length_first:
        head = "Content-Length: %d\nContent-Type: %s\n\n" % (len(payload), content_type)
    else:
        head = "Content-Type: %s\nContent-Length: %d\n\n" % (content_type, len(payload))
    return head.encode("ascii") + payload


def encode_plain_event(headers, body=None):
    """Encode a text/event-plain frame from ``(name, value)`` pairs (or a dict).

    Byte-exact with FreeSWITCH's switch_event_serialize(): ``Name: value``
    lines, then a blank line, or with a non-empty body ``Content-Length: N``,
    a blank line and the body (a_device_answers.plain.txt,
    misc_protocol.plain.txt).
    """
    lines = "".join("%s: %s\n" % (name, url_encode(value)) for name, value in _pairs(headers))
    payload = lines.encode("utf-8")
    raw_body = body.encode("utf-8") if isinstance(body, str) else body
    if raw_body:
        payload += b"Content-Length: %d\n\n" % len(raw_body) + raw_body
    else:
        payload += b"\n"
    return _frame(names.EVENT_PLAIN, payload, content_length_first=True)


def _json_text(text):
    # cJSON escapes only '"', '\\' and control characters; UTF-8 goes through as is.
    return json.dumps(text, ensure_ascii=False)


def _json_value(value):
    value = str(value)
    if value.startswith(_ARRAY_PREFIX):
        items = value[len(_ARRAY_PREFIX):].split(_ARRAY_SEP)
        return "[" + ",".join(_json_text(item) for item in items) + "]"
    return _json_text(value)


def encode_json_event(headers, body=None):
    """Encode a text/event-json frame: one compact object, not newline-terminated.

    Written pair by pair, not from a dict: like cJSON, a repeated header
    (Hangup-Cause in CHANNEL_HANGUP_COMPLETE) appears twice. With a body,
    FreeSWITCH adds "Content-Length" (its UTF-8 length, as a string) and
    "_body" last (g_event_uuid_playback_bgapi.json.txt).
    """
    items = ["%s:%s" % (_json_text(name), _json_value(value)) for name, value in _pairs(headers)]
    if body:
        items.append("%s:%s" % (_json_text(_EVENT_BODY_LENGTH), _json_text(str(len(body.encode("utf-8"))))))
        items.append("%s:%s" % (_json_text("_body"), _json_text(body)))
    payload = ("{" + ",".join(items) + "}").encode("utf-8")
    return _frame(names.EVENT_JSON, payload, content_length_first=True)


def encode_command_reply(text, extra_headers=()):
    """Encode a command/reply; bgapi adds ``Job-UUID`` as an extra header (misc_protocol)."""
    lines = ["Content-Type: %s" % names.COMMAND_REPLY, "Reply-Text: %s" % text]
    lines.extend("%s: %s" % pair for pair in extra_headers)
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def encode_api_response(body):
    """Encode an api/response: Content-Type before Content-Length, then the body."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return _frame(names.API_RESPONSE, raw)


def encode_disconnect_notice(text=GOODBYE, extra_headers=()):
    """Encode a text/disconnect-notice; ``extra_headers`` go between the two framing headers.

    mod_event_socket writes e.g. ``Content-Disposition: linger`` there for a
    lingering outbound socket; shutdown_sigterm.plain.txt has the text
    "The system is being shut down.\\n".
    """
    raw = text.encode("utf-8")
    lines = ["Content-Type: %s" % names.DISCONNECT_NOTICE]
    lines.extend("%s: %s" % pair for pair in extra_headers)
    lines.append("Content-Length: %d" % len(raw))
    return ("\n".join(lines) + "\n\n").encode("utf-8") + raw


def encode_rude_rejection(text=ACCESS_DENIED):
    """Encode the text/rude-rejection an ACL-refused client gets instead of auth/request."""
    return _frame(names.RUDE_REJECTION, text.encode("utf-8"))


def encode_auth_request():
    """The greeting: FreeSWITCH asks for the password."""
    return ("Content-Type: %s\n\n" % names.AUTH_REQUEST).encode("ascii")
