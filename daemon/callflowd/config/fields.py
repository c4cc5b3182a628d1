"""The validation rules, one set for the settings file and for every callflow node's ``data``.

Each rule reads one key of a raw mapping and returns the typed value or raises
``InvalidData`` naming the key; ``Section`` applies the same rules to a mapping of
the settings file and turns their errors into a ``ConfigError`` naming the file and
the path (``webhooks.retries``). An action's ``Data.parse`` calls the rules directly;
the callflow parser adds the node's path the same way.

One rule for numbers, everywhere:

- An integer may be written as a string holding one (``"timeout": "20"``): Kazoo's UI
  stores numbers as strings and Kazoo reads them with ``kz_term:to_integer``, and a
  Kazoo export carries them so. Only a plain decimal (optional sign, at most
  ``MAX_DIGITS`` digits) is taken; ``"20s"``, ``"2.5"``, ``""`` or ``"0x14"`` are
  refused with the key's path. ``true`` is not 1.
- No number has more than ``MAX_DIGITS`` digits, in a string or in the file itself
  (``config.files`` refuses longer ones while parsing: ``int()`` of 4,300 digits raises).
- Limits are inclusive ranges (``must be between 1 and 65535``); a duration in the
  settings is at most ``MAX_SECONDS``.
- A value left empty (``port:`` with nothing after it, JSON ``null``) counts as not given.
"""

import math
import re

from callflowd.config import uri as uris
from callflowd.errors import ConfigError, InvalidData

MAX_DIGITS = 30  # in any number; the largest setting (outbox.max) has 9
MAX_SECONDS = 3600  # the longest timeout or back-off a setting may ask for
REQUIRED = object()  # a default meaning "no default: the key must be given"
_INTEGER_TEXT = re.compile(r"[-+]?[0-9]{1,%d}" % MAX_DIGITS)
_WHITESPACE = re.compile(r"\s")
_MAX_KEY_SHOWN = 60


# --- rules on one key of a raw mapping (raise InvalidData) --------------------------


def integer_value(value, key):
    """``value`` as an integer under the one rule above; InvalidData naming ``key`` if it is none."""
    if isinstance(value, bool):
        raise InvalidData(key, "must be an integer")
    if isinstance(value, str):
        text = value.strip()
        if not _INTEGER_TEXT.fullmatch(text):
            raise InvalidData(key, "must be an integer (or a string holding one), not %r" % value[:40])
        return int(text)
    if not isinstance(value, int):
        raise InvalidData(key, "must be an integer")
    return value


def optional(raw, key, kind, default, describe=None):
    """``raw[key]`` if present and of ``kind``, else ``default``; a wrong type raises."""
    value = raw.get(key)
    if value is None:
        if default is REQUIRED:
            raise InvalidData(key, "is required")
        return default
    if kind is int:
        return integer_value(value, key)
    if not isinstance(value, kind):
        raise InvalidData(key, "must be %s" % (describe or _describe(kind)))
    return value


def required(raw, key, kind, describe=None):
    return optional(raw, key, kind, REQUIRED, describe)


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


def seconds(raw, key, default):
    """A positive, finite number of seconds (int, float, or a string holding an integer)."""
    value = optional(raw, key, object, default)
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidData(key, "must be a number")
    if not (math.isfinite(value) and value > 0):
        raise InvalidData(key, "must be a number greater than 0")
    if value > MAX_SECONDS:
        raise InvalidData(key, "must be at most %d seconds" % MAX_SECONDS)
    return float(value)


def boolean(raw, key, default):
    """true/false; Kazoo's ``kz_term:is_true`` also takes the strings "true"/"false"."""
    value = optional(raw, key, object, default)
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


def line(raw, key, default=REQUIRED, spaces=True):
    """A non-empty one-line string of the settings; ``spaces=False``: no whitespace at all."""
    value = raw.get(key)
    if value is None:
        if default is REQUIRED:
            raise InvalidData(key, "is required")
        return default
    if not isinstance(value, str):
        raise InvalidData(key, "must be a string, not %s" % kind(value))
    if not value.strip():
        raise InvalidData(key, "must not be empty")
    if not spaces and _WHITESPACE.search(value):
        raise InvalidData(key, "must not contain whitespace")
    if "\n" in value or "\r" in value:
        raise InvalidData(key, "must be one line")
    return value


def one_of(raw, key, choices, default):
    """One of ``choices`` (any case), lowercased; the message lists a tuple in its order."""
    value = optional(raw, key, object, default)
    if not isinstance(value, str) or value.lower() not in choices:
        shown = choices if isinstance(choices, (tuple, list)) else sorted(choices)
        raise InvalidData(key, "must be one of %s" % ", ".join(shown))
    return value.lower()


def known_id(raw, key, table, what):
    """An id that must name an entry of ``table`` (a configured device, box...); ``what`` is
    the kind a ``Reference`` names it by (``device``, ``voicemail box``: Directory.tables)."""
    value = required(raw, key, str, "a string")
    if value not in table:
        raise InvalidData(key, "unknown %s %r" % (what, value), reference=(what, value))
    return table[value]


def string_list(raw, key):
    """A list of non-empty strings (``numbers``, ``callflow_ids``); absent is empty."""
    values = raw.get(key)
    if values is None:
        return []
    if not isinstance(values, list):
        raise InvalidData(key, "must be a list of strings")
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise InvalidData("%s[%d]" % (key, index), "must be a string, not %s (quote it)" % kind(value))
        if not value:
            raise InvalidData("%s[%d]" % (key, index), "must not be empty")
    return list(values)


def check_uri(uri, key="uri"):
    """Raise InvalidData unless ``uri`` is an http:// or https:// URI callflowd can send to
    (``config.uri``: the one check every outbound URI passes, at load time and when sent)."""
    try:
        uris.check(uri)
    except uris.InvalidURI as exc:
        raise InvalidData(key, str(exc)) from None


def has_whitespace(value):
    return bool(_WHITESPACE.search(value))


class NoData:
    """The ``Data`` of an action that takes no data keys."""

    @classmethod
    def parse(cls, raw, directory):
        return cls()


# --- words for error messages ---------------------------------------------------------


def join(path, key):
    """``path.key`` for an error message: escaped to one printable line, a long key cut short."""
    key = str(key)
    if not key.isprintable():
        key = key.encode("unicode_escape").decode("ascii")
    if len(key) > _MAX_KEY_SHOWN:
        key = key[:_MAX_KEY_SHOWN] + "..."
    return "%s.%s" % (path, key) if path else key


def kind(value):
    """What a value is, in the words of a config file (``a list``, ``text``, ``null``)."""
    if value is None:
        return "null"
    return {bool: "true/false", int: "a number", float: "a number", str: "text",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


def one_line(text):
    return " ".join(text.split())


def _describe(kind_):
    return {str: "a string", int: "an integer", bool: "true or false", dict: "an object",
            list: "a list"}.get(kind_, kind_.__name__)


# --- the same rules on a mapping of the settings file (raise ConfigError) ------------


class Section:
    """One mapping of the settings file, with the file and the path its errors name.

    ``known`` lists the keys it may hold; any other is refused. Each typed getter
    applies the rule of the same name above.
    """

    def __init__(self, raw, source, path, known, describe="a mapping"):
        self.source = source
        self.path = path
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self.fail_here("must be %s, not %s" % (describe, kind(raw)))
        unknown = [key for key in raw if key not in known]
        if unknown:
            self.fail_here("%s %s (known: %s)" % (
                "unknown key" if len(unknown) == 1 else "unknown keys",
                ", ".join(repr(key) for key in unknown), ", ".join(known)))
        self.raw = raw

    def fail_here(self, message):
        raise ConfigError(message, self.source, self.path or None)

    def fail(self, key, message):
        if key is None:
            self.fail_here(message)
        raise ConfigError(message, self.source, join(self.path, key))

    def apply(self, rule, key, *args, **kwargs):
        """``rule(self.raw, key, ...)``, its InvalidData turned into this section's ConfigError."""
        try:
            return rule(self.raw, key, *args, **kwargs)
        except InvalidData as exc:
            self.fail(exc.key, exc.message)

    def given(self, key):
        return self.raw.get(key) is not None

    def value(self, key, default):
        return self.apply(optional, key, object, default)

    def string(self, key, default=REQUIRED, spaces=True):
        return self.apply(line, key, default, spaces)

    def integer(self, key, default, low, high):
        return self.apply(integer_in, key, default, low, high)

    def seconds(self, key, default):
        return self.apply(seconds, key, default)

    def choice(self, key, choices, default):
        return self.apply(one_of, key, choices, default)

    def flag(self, key, default):
        return self.apply(boolean, key, default)

    def strings(self, key):
        return self.apply(string_list, key)

    def section(self, key, known, required=False):
        """The mapping under ``key``, allowed only the ``known`` keys."""
        if required and not self.given(key):
            self.fail(key, "is required")
        return Section(self.raw.get(key), self.source, join(self.path, key), known)

    def entries(self, key, known):
        """``(id, section)`` for each entry of a table of ids such as ``devices:``."""
        raw = self.raw.get(key)
        table = Section(raw, self.source, join(self.path, key), raw if isinstance(raw, dict) else ())
        for entry_id, entry in table.raw.items():
            if not isinstance(entry_id, str) or not entry_id.strip():
                table.fail_here("id %r must be a non-empty string (quote it)" % (entry_id,))
            yield entry_id, Section(entry, self.source, join(table.path, entry_id), known)
