"""What the media-playing actions (``play``, ``menu``, ``response``) share: which media they take.

A media reference is a file path (``/usr/share/.../hello.wav`` or relative to FreeSWITCH's
sound prefix), an ``http://``/``https://`` URL (mod_httpc/mod_http_cache: the switch fetches
it), or a FreeSWITCH stream (``tone_stream://``, ``silence_stream://``, ``say:``...). It goes
into an application argument as it is, so it must be one line; play_and_get_digits splits its
argument on spaces, so for the menu it must have none.
"""

from callflowd.errors import InvalidData

DTMF_KEYS = frozenset("0123456789*#")
MAX_LENGTH = 2048  # Kazoo's schema: string(0..2048)


def reference(raw, key, needed=False, spaces=True):
    """The media reference under ``key``, or None when it is optional and absent."""
    value = raw.get(key)
    if value is None:
        if needed:
            raise InvalidData(key, "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidData(key, "must be a media path, URL or tone_stream:// string")
    if len(value) > MAX_LENGTH:
        raise InvalidData(key, "must be at most %d characters" % MAX_LENGTH)
    if not value.isprintable() or value != value.strip():
        raise InvalidData(key, "must be one line without control characters or surrounding spaces")
    if not spaces and " " in value:
        raise InvalidData(key, "must not contain spaces (play_and_get_digits splits its argument on them)")
    return value


def terminators(raw, key, default):
    """A list of DTMF keys (``["#", "*"]``) as a string (``"#*"``)."""
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, list):
        raise InvalidData(key, "must be a list of DTMF keys (0-9, * and #)")
    out = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or item not in DTMF_KEYS:
            raise InvalidData("%s[%d]" % (key, index), "must be one DTMF key: 0-9, * or #")
        if item not in out:
            out.append(item)
    return "".join(out)
