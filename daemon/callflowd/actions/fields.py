"""Small validators shared by the actions' ``Data.parse``; each raises InvalidData naming the key."""

from callflowd.errors import InvalidData

_MISSING = object()


def optional(raw, key, kind, default, describe=None):
    """``raw[key]`` if present and of ``kind``, else ``default``; a wrong type raises."""
    value = raw.get(key, _MISSING)
    if value is _MISSING or value is None:
        return default
    if kind is int and isinstance(value, bool):
        raise InvalidData(key, "must be an integer")
    if not isinstance(value, kind):
        raise InvalidData(key, "must be %s" % (describe or _describe(kind)))
    return value


def required(raw, key, kind, describe=None):
    if raw.get(key) is None:
        raise InvalidData(key, "is required")
    return optional(raw, key, kind, None, describe)


def integer_in(raw, key, default, low, high):
    value = optional(raw, key, int, default)
    if not low <= value <= high:
        raise InvalidData(key, "must be between %d and %d" % (low, high))
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


def _describe(kind):
    return {str: "a string", int: "an integer", bool: "true or false", dict: "an object",
            list: "a list"}.get(kind, kind.__name__)
