"""Small validators shared by the actions' ``Data.parse``; each raises InvalidData naming the key.

Integers may be written as integer-valued strings (``"timeout": "20"``): Kazoo's UI
stores numbers as strings and Kazoo reads them with ``kz_term:to_integer``. Only a
plain decimal (optional sign, at most ``MAX_DIGITS`` digits) is taken; ``"20s"``,
``"2.5"``, ``""`` or ``"0x14"`` are still refused with the key's path.
"""

import re

from callflowd.errors import InvalidData

_MISSING = object()
MAX_DIGITS = 18  # no setting needs more; and int() of 4,300 digits raises
_INTEGER_TEXT = re.compile(r"[-+]?[0-9]{1,%d}" % MAX_DIGITS)


def optional(raw, key, kind, default, describe=None):
    """``raw[key]`` if present and of ``kind``, else ``default``; a wrong type raises."""
    value = raw.get(key, _MISSING)
    if value is _MISSING or value is None:
        return default
    if kind is int and isinstance(value, bool):
        raise InvalidData(key, "must be an integer")
    if kind is int and isinstance(value, str):
        text = value.strip()
        if not _INTEGER_TEXT.fullmatch(text):
            raise InvalidData(key, "must be an integer (or a string holding one), not %r" % value[:40])
        return int(text)
    if not isinstance(value, kind):
        raise InvalidData(key, "must be %s" % (describe or _describe(kind)))
    return value


def required(raw, key, kind, describe=None):
    if raw.get(key) is None:
        raise InvalidData(key, "is required")
    return optional(raw, key, kind, None, describe)


def some(raw, key, kind, describe, most, when_empty, items):
    """A required list or object holding 1 to ``most`` entries (``when_empty`` says what's missing)."""
    value = required(raw, key, kind, describe)
    if not value:
        raise InvalidData(key, when_empty)
    if len(value) > most:
        raise InvalidData(key, "at most %d %s" % (most, items))
    return value


def integer_in(raw, key, default, low, high):
    value = optional(raw, key, int, default)
    if not low <= value <= high:
        raise InvalidData(key, "must be between %d and %d" % (low, high))
    return value


def boolean(raw, key, default):
    """true/false; Kazoo's ``kz_term:is_true`` also takes the strings "true"/"false"."""
    value = raw.get(key)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise InvalidData(key, "must be true or false")
    return value


def text(raw, key, default=None, needed=False):
    """A one-line string: no control characters (it goes into a FreeSWITCH command line)."""
    if needed and raw.get(key) is None:
        raise InvalidData(key, "is required")
    value = optional(raw, key, str, default, "a string")
    if value is None:
        return value
    if not value.strip():
        raise InvalidData(key, "must not be empty")
    if not value.isprintable():
        raise InvalidData(key, "must not contain control characters or line breaks")
    return value


def one_of(raw, key, choices, default):
    value = raw.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, str) or value.lower() not in choices:
        raise InvalidData(key, "must be one of %s" % ", ".join(sorted(choices)))
    return value.lower()


def known_id(raw, key, table, what):
    """An id that must name an entry of ``table`` (a configured device, box...)."""
    value = required(raw, key, str, "a string")
    if value not in table:
        raise InvalidData(key, "unknown %s %r" % (what, value))
    return table[value]


class NoData:
    """The ``Data`` of an action that takes no data keys."""

    @classmethod
    def parse(cls, raw, directory):
        return cls()


def _describe(kind):
    return {str: "a string", int: "an integer", bool: "true or false", dict: "an object",
            list: "a list"}.get(kind, kind.__name__)
