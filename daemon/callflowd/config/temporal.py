"""Kazoo temporal rules as values, and whether one holds at a given local time.

A rule (Kazoo's ``temporal_rules`` document) names days -- a ``cycle`` of
``date``, ``daily``, ``weekly``, ``monthly`` or ``yearly`` repeating every
``interval`` cycles from ``start_date`` -- and a window of the day
(``time_window_start`` to ``time_window_stop``, seconds since local midnight,
both ends included as in cf_temporal_route's ``process_rules``).

Everything here works on the *local wall clock* of a named zone: Kazoo turns
UTC into local date and time (``localtime:utc_to_local``) and compares
gregorian seconds of that naive local time. So a 09:00-17:00 window is 09:00 to
17:00 on the office clock before and after a daylight-saving change; on the
spring-forward day the skipped hour never shows on the clock, and on the
fall-back day the repeated hour matches twice. ``local_now`` does the
conversion with stdlib ``zoneinfo`` (system zone data; ``tzdata`` from PyPI on
machines without it).

Kazoo computes "the next occurrence after yesterday" (``next_rule_date``) and
checks it is today; we ask directly whether today is an occurrence, which is
what its comments say it means. Where its arithmetic slips (an interval > 1
daily rule starting today, a day 31 rolled into the next month by
``kz_date:normalize``, the fifth weekday with interval > 1) we follow the
meaning, not the slip: see docs/actions.md, "Where we differ from Kazoo 4.3".

"Now" is never read here: the caller passes it (``temporal_route`` reads the
call's clock, which the service is given: ``utc_now`` unless a test or
``callflowd simulate --at`` injects another).

In the config layer because the rules are settings (``temporal_rules:``, parsed
here), and the ``temporal_route`` action above evaluates them.
"""

import calendar
import dataclasses
import datetime
import re
import zoneinfo

from callflowd.config import fields
from callflowd.errors import InvalidData

CYCLES = ("date", "daily", "weekly", "monthly", "yearly")
ORDINALS = ("first", "second", "third", "fourth", "fifth", "last", "every")
_ORDINAL_NUMBER = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
# ISO weekday numbers (Monday 1); "wensday" is Kazoo's own spelling, kept for its documents.
WDAYS = {"monday": 1, "tuesday": 2, "wednesday": 3, "wensday": 3, "thursday": 4, "friday": 5,
         "saturday": 6, "sunday": 7}
SECONDS_IN_DAY = 86400
DEFAULT_START_DATE = datetime.date(2011, 1, 1)  # Kazoo's RULE_DEFAULT_START_DATE
MAX_INTERVAL = 1000
RULE_KEYS = ("name", "cycle", "interval", "days", "wdays", "ordinal", "month", "start_date",
             "time_window_start", "time_window_stop", "enabled")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Kazoo stores start_date as gregorian seconds (seconds since 0000-01-01).
_GREGORIAN_EPOCH_SECONDS = 62167219200


def utc_now():
    """The real clock: now, as an aware UTC datetime."""
    return datetime.datetime.now(datetime.timezone.utc)


def local_now(zone, now):
    """``now`` (an aware datetime) as naive wall-clock time in ``zone``, in whole seconds as
    Kazoo counts them."""
    return now.astimezone(zone).replace(tzinfo=None, microsecond=0)


def zone_named(name):
    """The ``ZoneInfo`` for an IANA name (``Europe/Paris``); InvalidData if unknown."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidData("timezone", "must be an IANA time zone name such as Europe/Paris")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidData("timezone", "unknown time zone %r (an IANA name such as Europe/Paris)"
                          % name) from None


@dataclasses.dataclass(frozen=True)
class Rule:
    """One temporal rule, validated; ``matches(local)`` says whether it holds then."""

    id: str
    cycle: str
    name: str = ""
    interval: int = 1
    days: tuple = ()  # days of the month, 1-31
    wdays: tuple = ()  # ISO weekday numbers, 1 (Monday) - 7
    ordinal: str = "first"
    month: int = 1
    start_date: datetime.date = DEFAULT_START_DATE
    time_window_start: int = 0
    time_window_stop: int = SECONDS_IN_DAY
    enabled: bool | None = None  # True: always on; False: always off; None: by the calendar

    def matches(self, local):
        """Whether the rule holds at ``local``, a naive wall-clock datetime.

        ``enabled`` forces it on or off, except that a rule whose ``start_date``
        is still to come is left out either way (Kazoo drops such rules before
        it looks at ``enabled``).
        """
        if local.date() < self.start_date:
            return False
        if self.enabled is not None:
            return self.enabled
        if not self.occurs_on(local.date()):
            return False
        second = local.hour * 3600 + local.minute * 60 + local.second
        return self.time_window_start <= second <= self.time_window_stop

    def occurs_on(self, day):
        """Whether ``day`` (a date) is one of the rule's days, ignoring the window."""
        if day < self.start_date:
            return False
        start = self.start_date
        if self.cycle == "date":
            return day == start
        if self.cycle == "daily":
            return (day - start).days % self.interval == 0
        if self.cycle == "weekly":
            weeks = (_monday(day) - _monday(start)).days // 7
            return weeks % self.interval == 0 and day.isoweekday() in self.wdays
        if self.cycle == "monthly":
            months = (day.year - start.year) * 12 + day.month - start.month
            return months % self.interval == 0 and self._day_of_month_matches(day)
        # yearly
        return ((day.year - start.year) % self.interval == 0 and day.month == self.month
                and self._day_of_month_matches(day))

    def _day_of_month_matches(self, day):
        if self.days:
            return day.day in self.days
        if day.isoweekday() != self.wdays[0]:
            return False
        if self.ordinal == "every":
            return True
        if self.ordinal == "last":
            return day.day + 7 > calendar.monthrange(day.year, day.month)[1]
        return (day.day - 1) // 7 + 1 == _ORDINAL_NUMBER[self.ordinal]


def _monday(day):
    return day - datetime.timedelta(days=day.isoweekday() - 1)


def first_match(rules, local):
    """The first rule of ``rules`` that holds at ``local``, or None."""
    for rule in rules:
        if rule.matches(local):
            return rule
    return None


# --- parsing one rule of the config ---------------------------------------------------


def parse_rule(rule_id, raw):
    """A ``Rule`` from its config mapping; raises InvalidData naming the key."""
    if not isinstance(raw, dict):
        raise InvalidData(None, "must be a mapping (a temporal rule)")
    unknown = [key for key in raw if key not in RULE_KEYS]
    if unknown:
        raise InvalidData(None, "unknown key%s %s (known: %s)" % (
            "s" if len(unknown) > 1 else "", ", ".join(repr(k) for k in unknown), ", ".join(RULE_KEYS)))
    cycle = _choice(raw, "cycle", CYCLES, None)
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidData("name", "must be a string")
    interval = fields.integer_in(raw, "interval", 1, 1, MAX_INTERVAL)
    days = tuple(sorted(set(_integer_list(raw, "days", 1, 31))))
    wdays = _wdays(raw)
    ordinal = _choice(raw, "ordinal", ORDINALS, "first")
    month = fields.integer_in(raw, "month", 1, 1, 12)
    start_date = _date(raw, "start_date")
    window_start = fields.integer_in(raw, "time_window_start", 0, 0, SECONDS_IN_DAY)
    window_stop = fields.integer_in(raw, "time_window_stop", SECONDS_IN_DAY, 0, SECONDS_IN_DAY)
    if window_start > window_stop:
        # Kazoo would never match it (LSec < Start or LSec > Stop always holds); say so at load.
        raise InvalidData("time_window_stop", "must not be before time_window_start (%d); a window "
                          "past midnight is two rules" % window_start)
    enabled = raw.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise InvalidData("enabled", "must be true, false or absent")
    if cycle == "weekly" and not wdays:
        raise InvalidData("wdays", "is required for a weekly rule")
    if cycle in ("monthly", "yearly"):
        if days and wdays:
            raise InvalidData("wdays", "give days or wdays (with ordinal), not both")
        if not days and not wdays:
            raise InvalidData("days", "a %s rule needs days, or wdays with an ordinal" % cycle)
        if wdays and len(wdays) != 1:
            raise InvalidData("wdays", "a %s rule by weekday takes exactly one weekday" % cycle)
    return Rule(id=rule_id, cycle=cycle, name=name or "", interval=interval, days=days, wdays=wdays,
                ordinal=ordinal, month=month, start_date=start_date, time_window_start=window_start,
                time_window_stop=window_stop, enabled=enabled)


def _integer_list(raw, key, low, high):
    values = raw.get(key)
    if values is None:
        return []
    if not isinstance(values, list):
        raise InvalidData(key, "must be a list")
    result = []
    for index, value in enumerate(values):
        where = "%s[%d]" % (key, index)
        value = fields.integer_value(value, where)
        if not low <= value <= high:
            raise InvalidData(where, "must be between %d and %d" % (low, high))
        result.append(value)
    return result


def _wdays(raw):
    values = raw.get("wdays")
    if values is None:
        return ()
    if not isinstance(values, list):
        raise InvalidData("wdays", "must be a list of weekday names")
    result = []
    for index, value in enumerate(values):
        number = WDAYS.get(value.lower()) if isinstance(value, str) else None
        if number is None:
            raise InvalidData("wdays[%d]" % index, "must be one of monday, tuesday, wednesday, "
                              "thursday, friday, saturday, sunday")
        if number not in result:
            result.append(number)
    return tuple(sorted(result))


def _choice(raw, key, choices, default):
    if default is None and raw.get(key) is None:
        raise InvalidData(key, "is required (one of %s)" % ", ".join(choices))
    return fields.one_of(raw, key, choices, default)


def _date(raw, key):
    """``YYYY-MM-DD``, or Kazoo's gregorian seconds (read as a UTC date)."""
    value = raw.get(key)
    if value is None:
        return DEFAULT_START_DATE
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return datetime.date.fromisoformat(value.strip())
        except ValueError:
            raise InvalidData(key, "%r is not a date" % value) from None
    if isinstance(value, str) and value.strip().isdigit():
        value = fields.integer_value(value, key)  # bounded: int() of 4,300 digits raises
    if isinstance(value, int) and not isinstance(value, bool):
        unix = value - _GREGORIAN_EPOCH_SECONDS
        if not 0 <= unix < 253402300800 - 86400:  # 1970 to 9999
            raise InvalidData(key, "gregorian seconds out of range")
        return datetime.datetime.fromtimestamp(unix, datetime.timezone.utc).date()
    raise InvalidData(key, "must be a date YYYY-MM-DD (or Kazoo's gregorian seconds)")
