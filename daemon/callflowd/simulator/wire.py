"""The simulator's side of the event-socket wire format: encoding exactly as FreeSWITCH 1.10 does.

Kept private to the simulator: the daemon's own reader lives in ``callflowd.esl.protocol``. The
point here is byte fidelity, checked by tests/test_simulator.py against every frame of the real
captures in /work/shared/fixtures/freeswitch (parse, re-encode, compare bytes).

Facts (README of the captures, "Protocol facts" 1, 3, 4):
- events: ``Content-Length`` then ``Content-Type``; ``api/response`` and
  ``text/disconnect-notice`` the other way round; ``command/reply`` and ``auth/request`` have
  no body;
- plain values are encoded by ``switch_url_encode()`` (switch_utils.c): bytes below 0x20 or above
  0x7e and ``SWITCH_URL_UNSAFE`` (``\\r\\n #%&+:;<=>?@[\\]^`{|}"``) become ``%XX`` (upper-case hex);
  a ``%`` already followed by two upper-case hex digits is left alone (no double encoding);
- an event with a body (BACKGROUND_JOB) carries an inner ``Content-Length``, a blank line, the body;
- JSON events are one compact object (cJSON_PrintUnformatted), every value a string, the body
  under ``_body`` right after an inner ``Content-Length`` key.
"""

import functools
import json
import re

# one character per UTF-8 byte (latin-1 view); '%' is safe only before two upper-case hex digits
_UNSAFE_RE = re.compile(r'[\x00-\x1f\x7f-\xff \r\n#&+:;<=>?@\[\\\]^`{|}"]|%(?![0-9A-F]{2})')
_ESCAPE = {chr(byte): "%%%02X" % byte for byte in range(256)}


@functools.lru_cache(maxsize=65536)
def url_encode(value):
    """Percent-encode one header value the way FreeSWITCH's event serializer does.

    Cached: most values repeat from event to event of a call (SIP URIs, SDP, dates).
    """
    latin1 = value.encode("utf-8").decode("latin-1")
    return _UNSAFE_RE.sub(lambda match: _ESCAPE[match.group()], latin1)


def plain_event_body(headers, body=None):
    """The text/event-plain body (what Content-Length counts) for (name, value) pairs."""
    lines = ["%s: %s\n" % (name, url_encode(value)) for name, value in headers]
    if body is None:
        return ("".join(lines) + "\n").encode("utf-8")
    data = body.encode("utf-8")
    lines.append("Content-Length: %d\n\n" % len(data))
    return "".join(lines).encode("utf-8") + data


def json_event_body(headers, body=None):
    """The text/event-json body: one compact object in header order, values as strings.

    Written by hand, not from a dict: like cJSON, a repeated header (``Hangup-Cause`` in
    CHANNEL_HANGUP_COMPLETE) appears twice.
    """
    items = list(headers)
    if body is not None:
        items.append(("Content-Length", str(len(body.encode("utf-8")))))
        items.append(("_body", body))
    # cJSON escapes only '"', '\\' and control characters; UTF-8 goes through as is.
    parts = ["%s:%s" % (_json_str(name), _json_value(value)) for name, value in items]
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def _json_str(text):
    return json.dumps(text, ensure_ascii=False)


def _json_value(value):
    # An "ARRAY::a|:b" header (originated_legs, originate_causes) is a real array in JSON
    # (switch_event_serialize_json; capture a_device_answers.json).
    if value.startswith("ARRAY::"):
        return "[" + ",".join(_json_str(item) for item in value[7:].split("|:")) + "]"
    return _json_str(value)


def event_frame(headers, body=None, fmt="plain"):
    """A whole event frame in the connection's format ("plain" or "json")."""
    if fmt == "json":
        payload = json_event_body(headers, body)
        content_type = "text/event-json"
    else:
        payload = plain_event_body(headers, body)
        content_type = "text/event-plain"
    head = "Content-Length: %d\nContent-Type: %s\n\n" % (len(payload), content_type)
    return head.encode("ascii") + payload


def auth_request():
    return b"Content-Type: auth/request\n\n"


def command_reply(reply_text, extra=()):
    """A command/reply frame; ``extra`` headers follow Reply-Text (bgapi adds Job-UUID)."""
    lines = ["Content-Type: command/reply", "Reply-Text: %s" % reply_text]
    lines.extend("%s: %s" % pair for pair in extra)
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def api_response(text):
    data = text.encode("utf-8")
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(data) + data


def disconnect_notice(text):
    data = text.encode("utf-8")
    return b"Content-Type: text/disconnect-notice\nContent-Length: %d\n\n" % len(data) + data


GOODBYE = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"


def split_frames(data):
    """Split captured bytes into (headers dict, body bytes) frames, as a client would."""
    frames = []
    pos = 0
    while pos < len(data):
        end = data.index(b"\n\n", pos)
        head = data[pos:end].decode("utf-8")
        headers = dict(line.split(": ", 1) for line in head.split("\n"))
        length = int(headers.get("Content-Length", 0))
        body = data[end + 2:end + 2 + length]
        frames.append((headers, body))
        pos = end + 2 + length
    return frames


def parse_plain_body(payload):
    """(name, decoded value) pairs and the inner body of a text/event-plain payload."""
    from urllib.parse import unquote

    head, _, rest = payload.partition(b"\n\n")
    pairs = []
    inner_length = None
    for line in head.decode("utf-8").split("\n"):
        name, _, value = line.partition(": ")
        if name == "Content-Length":
            inner_length = int(value)
            continue
        pairs.append((name, unquote(value)))
    body = rest[:inner_length].decode("utf-8") if inner_length is not None else None
    return pairs, body
