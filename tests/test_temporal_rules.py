"""Temporal rules as arithmetic: which rule holds at a frozen instant, across daylight-saving changes.

Instants are given in UTC (what the clock says) and checked against the local
wall clock of the zone, as Kazoo's cf_temporal_route does.
"""

import datetime
import zoneinfo

import pytest

from callflowd.config.temporal import first_match, local_now, parse_rule
from callflowd.errors import InvalidData

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
NINE = 9 * 3600
FIVE_PM = 17 * 3600


def rule(rule_id="r", **raw):
    return parse_rule(rule_id, raw)


def utc(text):
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.timezone.utc)


def holds(r, zone, instant):
    return r.matches(local_now(zone, utc(instant)))


def local(text):
    return datetime.datetime.fromisoformat(text)


# --- daylight-saving changes ------------------------------------------------------------

OFFICE = rule("office", cycle="daily", time_window_start=NINE, time_window_stop=FIVE_PM)


@pytest.mark.parametrize("instant, expected", [
    # Saturday 2026-03-28, CET (UTC+1): 09:00 local is 08:00 UTC
    ("2026-03-28T07:59:59", False), ("2026-03-28T08:00:00", True),
    ("2026-03-28T16:00:00", True), ("2026-03-28T16:00:01", False),
    # Sunday 2026-03-29, clocks go 02:00 -> 03:00: CEST (UTC+2), 09:00 local is 07:00 UTC
    ("2026-03-29T06:59:59", False), ("2026-03-29T07:00:00", True),
    ("2026-03-29T15:00:00", True), ("2026-03-29T15:00:01", False),
    # Sunday 2026-10-25, clocks go 03:00 -> 02:00: back to CET
    ("2026-10-24T07:00:00", True), ("2026-10-24T15:00:01", False),
    ("2026-10-25T07:00:00", False), ("2026-10-25T08:00:00", True),
    ("2026-10-25T16:00:00", True), ("2026-10-25T16:00:01", False),
])
def test_an_office_window_follows_the_paris_wall_clock_across_both_changes(instant, expected):
    assert holds(OFFICE, PARIS, instant) is expected


def test_the_hour_skipped_in_spring_never_matches_in_paris():
    skipped = rule("night", cycle="daily", time_window_start=2 * 3600, time_window_stop=3 * 3600 - 1)
    # 00:59:59 UTC is 01:59:59 CET; one second later it is 03:00:00 CEST
    assert not holds(skipped, PARIS, "2026-03-29T00:59:59")
    assert not holds(skipped, PARIS, "2026-03-29T01:00:00")
    assert local_now(PARIS, utc("2026-03-29T01:00:00")) == local("2026-03-29T03:00:00")


def test_the_hour_repeated_in_autumn_matches_both_times_in_paris():
    repeated = rule("night", cycle="daily", time_window_start=2 * 3600, time_window_stop=3 * 3600 - 1)
    assert holds(repeated, PARIS, "2026-10-25T00:30:00")  # 02:30 CEST
    assert holds(repeated, PARIS, "2026-10-25T01:30:00")  # 02:30 CET, an hour later
    assert not holds(repeated, PARIS, "2026-10-25T02:00:00")  # 03:00 CET


@pytest.mark.parametrize("instant, expected", [
    # a date rule for Sunday 2026-03-08, the spring change: midnight is 05:00 UTC (EST)...
    ("2026-03-08T04:59:59", False), ("2026-03-08T05:00:00", True),
    # ...and the day ends at midnight EDT, 04:00 UTC: a 23-hour day
    ("2026-03-09T03:59:59", True), ("2026-03-09T04:00:00", False),
])
def test_a_date_rule_covers_the_23_hour_day_in_new_york(instant, expected):
    assert holds(rule("d", cycle="date", start_date="2026-03-08"), NEW_YORK, instant) is expected


@pytest.mark.parametrize("instant, expected", [
    # Sunday 2026-11-01, fall back at 02:00 EDT: a 25-hour day from 04:00 UTC to 05:00 UTC next day
    ("2026-11-01T03:59:59", False), ("2026-11-01T04:00:00", True),
    ("2026-11-02T04:59:59", True), ("2026-11-02T05:00:00", False),
])
def test_a_date_rule_covers_the_25_hour_day_in_new_york(instant, expected):
    assert holds(rule("d", cycle="date", start_date="2026-11-01"), NEW_YORK, instant) is expected


@pytest.mark.parametrize("instant, expected", [
    ("2026-03-06T14:00:00", True),  # Friday 09:00 EST
    ("2026-03-09T13:00:00", True),  # Monday 09:00 EDT
    ("2026-03-09T13:59:59", True),
    ("2026-03-09T12:59:59", False),  # Monday 08:59:59 EDT
    ("2026-03-09T21:00:00", True),  # Monday 17:00 EDT
    ("2026-03-09T22:00:00", False),  # Monday 18:00 EDT: 17:00 EST would have matched
    ("2026-03-08T14:00:00", False),  # Sunday
])
def test_weekday_business_hours_in_new_york_across_the_spring_change(instant, expected):
    weekdays = rule("open", cycle="weekly", wdays=["monday", "tuesday", "wednesday", "thursday", "friday"],
                    time_window_start=NINE, time_window_stop=FIVE_PM)
    assert holds(weekdays, NEW_YORK, instant) is expected


def test_the_same_instant_is_a_different_day_in_paris_and_new_york():
    monday = rule("monday", cycle="weekly", wdays=["monday"])
    instant = "2026-06-01T02:00:00"  # Monday 04:00 in Paris, Sunday 22:00 in New York
    assert holds(monday, PARIS, instant)
    assert not holds(monday, NEW_YORK, instant)


# --- the calendar, as arithmetic on local times ------------------------------------------


@pytest.mark.parametrize("raw, day, expected", [
    # date
    ({"cycle": "date", "start_date": "2026-07-04"}, "2026-07-04", True),
    ({"cycle": "date", "start_date": "2026-07-04"}, "2026-07-05", False),
    ({"cycle": "date", "start_date": "2026-07-04"}, "2027-07-04", False),
    # daily, every third day from 2026-01-01
    ({"cycle": "daily", "interval": 3, "start_date": "2026-01-01"}, "2026-01-01", True),
    ({"cycle": "daily", "interval": 3, "start_date": "2026-01-01"}, "2026-01-02", False),
    ({"cycle": "daily", "interval": 3, "start_date": "2026-01-01"}, "2026-01-07", True),
    ({"cycle": "daily", "interval": 3, "start_date": "2026-01-01"}, "2025-12-29", False),
    ({"cycle": "daily", "interval": 2, "start_date": "2026-03-01"}, "2026-03-01", True),
    # weekly, every other week from Monday 2026-01-05
    ({"cycle": "weekly", "interval": 2, "wdays": ["monday", "friday"], "start_date": "2026-01-05"},
     "2026-01-05", True),
    ({"cycle": "weekly", "interval": 2, "wdays": ["monday", "friday"], "start_date": "2026-01-05"},
     "2026-01-09", True),
    ({"cycle": "weekly", "interval": 2, "wdays": ["monday", "friday"], "start_date": "2026-01-05"},
     "2026-01-12", False),
    ({"cycle": "weekly", "interval": 2, "wdays": ["monday", "friday"], "start_date": "2026-01-05"},
     "2026-01-19", True),
    ({"cycle": "weekly", "interval": 2, "wdays": ["monday", "friday"], "start_date": "2026-01-05"},
     "2026-01-20", False),
    # weekly from a Wednesday: the week of the start counts, its Monday is before the start
    ({"cycle": "weekly", "interval": 2, "wdays": ["monday"], "start_date": "2026-01-07"}, "2026-01-05", False),
    ({"cycle": "weekly", "interval": 2, "wdays": ["monday"], "start_date": "2026-01-07"}, "2026-01-12", False),
    ({"cycle": "weekly", "interval": 2, "wdays": ["monday"], "start_date": "2026-01-07"}, "2026-01-19", True),
    ({"cycle": "weekly", "wdays": ["wensday"]}, "2026-09-30", True),  # Kazoo's spelling
    ({"cycle": "weekly", "wdays": ["Sunday"]}, "2026-03-29", True),
    # monthly by day
    ({"cycle": "monthly", "days": [1, 15]}, "2026-04-15", True),
    ({"cycle": "monthly", "days": [1, 15]}, "2026-04-14", False),
    ({"cycle": "monthly", "days": ["1", "15"]}, "2026-05-01", True),  # Kazoo's UI stores strings
    ({"cycle": "monthly", "interval": 2, "days": [15], "start_date": "2026-01-01"}, "2026-03-15", True),
    ({"cycle": "monthly", "interval": 2, "days": [15], "start_date": "2026-01-01"}, "2026-02-15", False),
    ({"cycle": "monthly", "interval": 2, "days": [15], "start_date": "2025-11-01"}, "2026-01-15", True),
    ({"cycle": "monthly", "days": [31]}, "2026-04-30", False),
    ({"cycle": "monthly", "days": [31]}, "2026-05-01", False),  # Kazoo rolls 04-31 into 05-01; we don't
    ({"cycle": "monthly", "days": [31]}, "2026-05-31", True),
    # monthly by weekday
    ({"cycle": "monthly", "ordinal": "first", "wdays": ["monday"]}, "2026-06-01", True),
    ({"cycle": "monthly", "ordinal": "first", "wdays": ["monday"]}, "2026-06-08", False),
    ({"cycle": "monthly", "wdays": ["monday"]}, "2026-06-01", True),  # ordinal defaults to first
    ({"cycle": "monthly", "ordinal": "second", "wdays": ["monday"]}, "2026-06-08", True),
    ({"cycle": "monthly", "ordinal": "last", "wdays": ["friday"]}, "2026-07-31", True),
    ({"cycle": "monthly", "ordinal": "last", "wdays": ["friday"]}, "2026-07-24", False),
    ({"cycle": "monthly", "ordinal": "fifth", "wdays": ["wednesday"]}, "2026-09-30", True),
    ({"cycle": "monthly", "ordinal": "fifth", "wdays": ["thursday"]}, "2026-10-01", False),
    ({"cycle": "monthly", "ordinal": "fourth", "wdays": ["thursday"]}, "2026-09-24", True),
    ({"cycle": "monthly", "ordinal": "every", "wdays": ["tuesday"]}, "2026-06-02", True),
    ({"cycle": "monthly", "ordinal": "every", "wdays": ["tuesday"]}, "2026-06-30", True),
    ({"cycle": "monthly", "ordinal": "every", "wdays": ["tuesday"]}, "2026-06-03", False),
    ({"cycle": "monthly", "interval": 3, "ordinal": "every", "wdays": ["tuesday"],
      "start_date": "2026-01-01"}, "2026-04-07", True),
    ({"cycle": "monthly", "interval": 3, "ordinal": "every", "wdays": ["tuesday"],
      "start_date": "2026-01-01"}, "2026-05-05", False),
    # yearly
    ({"cycle": "yearly", "month": 12, "days": [25, 26]}, "2026-12-25", True),
    ({"cycle": "yearly", "month": 12, "days": [25, 26]}, "2026-12-26", True),
    ({"cycle": "yearly", "month": 12, "days": [25, 26]}, "2026-11-25", False),
    ({"cycle": "yearly", "days": [1]}, "2027-01-01", True),  # month defaults to January
    ({"cycle": "yearly", "month": 11, "ordinal": "fourth", "wdays": ["thursday"]}, "2026-11-26", True),
    ({"cycle": "yearly", "month": 11, "ordinal": "fourth", "wdays": ["thursday"]}, "2026-11-19", False),
    ({"cycle": "yearly", "month": 11, "ordinal": "fourth", "wdays": ["thursday"], "interval": 2,
      "start_date": "2025-01-01"}, "2026-11-26", False),
    ({"cycle": "yearly", "month": 5, "ordinal": "last", "wdays": ["monday"]}, "2026-05-25", True),
    ({"cycle": "yearly", "month": 2, "days": [29]}, "2028-02-29", True),
    ({"cycle": "yearly", "month": 2, "days": [29]}, "2027-03-01", False),
    # a rule does not hold before its start date
    ({"cycle": "daily", "start_date": "2026-06-02"}, "2026-06-01", False),
    ({"cycle": "daily", "start_date": 63947577600}, "2026-06-02", True),  # Kazoo's gregorian seconds
    ({"cycle": "daily", "start_date": 63947577600}, "2026-06-01", False),
])
def test_the_rule_holds_on_its_days_only(raw, day, expected):
    assert rule(**raw).matches(local(day + "T12:00:00")) is expected


@pytest.mark.parametrize("clock_time, expected", [
    ("08:59:59", False), ("09:00:00", True), ("12:00:00", True), ("17:00:00", True), ("17:00:01", False),
])
def test_both_ends_of_the_window_are_included(clock_time, expected):
    assert OFFICE.matches(local("2026-06-01T" + clock_time)) is expected


def test_the_default_window_is_the_whole_day():
    allday = rule(cycle="daily")
    assert allday.matches(local("2026-06-01T00:00:00"))
    assert allday.matches(local("2026-06-01T23:59:59"))


def test_integer_strings_are_read_as_kazoo_reads_them():
    r = rule(cycle="daily", interval="2", time_window_start="32400", time_window_stop="61200")
    assert (r.interval, r.time_window_start, r.time_window_stop) == (2, 32400, 61200)


def test_enabled_forces_a_rule_on_or_off_whatever_the_calendar_says():
    sunday_night = local("2026-03-29T23:30:00")
    assert rule(cycle="weekly", wdays=["monday"], time_window_start=NINE, enabled=True).matches(sunday_night)
    assert not rule(cycle="daily", enabled=False).matches(sunday_night)


def test_a_rule_forced_on_still_waits_for_its_start_date():
    assert not rule(cycle="daily", enabled=True, start_date="2026-04-01").matches(local("2026-03-31T12:00:00"))


def test_the_first_rule_that_holds_wins_in_the_given_order():
    lunch = rule("lunch", cycle="daily", time_window_start=12 * 3600, time_window_stop=13 * 3600)
    assert first_match([lunch, OFFICE], local("2026-06-01T12:30:00")) is lunch
    assert first_match([OFFICE, lunch], local("2026-06-01T12:30:00")) is OFFICE
    assert first_match([OFFICE, lunch], local("2026-06-01T20:00:00")) is None


def test_local_now_is_the_given_instant_on_the_zones_wall_clock():
    assert local_now(PARIS, utc("2026-10-25T01:30:00")) == local("2026-10-25T02:30:00")


# --- a rule refused, naming the key ------------------------------------------------------


@pytest.mark.parametrize("raw, key, message", [
    ({}, "cycle", "is required (one of date, daily, weekly, monthly, yearly)"),
    ({"cycle": "hourly"}, "cycle", "must be one of date, daily, weekly, monthly, yearly"),
    ({"cycle": "daily", "interval": 0}, "interval", "must be between 1 and 1000"),
    ({"cycle": "daily", "interval": "two"}, "interval", "must be an integer (or a string holding one), not 'two'"),
    ({"cycle": "daily", "interval": True}, "interval", "must be an integer"),
    ({"cycle": "weekly"}, "wdays", "is required for a weekly rule"),
    ({"cycle": "weekly", "wdays": ["funday"]}, "wdays[0]",
     "must be one of monday, tuesday, wednesday, thursday, friday, saturday, sunday"),
    ({"cycle": "weekly", "wdays": "monday"}, "wdays", "must be a list of weekday names"),
    ({"cycle": "monthly"}, "days", "a monthly rule needs days, or wdays with an ordinal"),
    ({"cycle": "monthly", "days": [0]}, "days[0]", "must be between 1 and 31"),
    ({"cycle": "monthly", "days": [1, 32]}, "days[1]", "must be between 1 and 31"),
    ({"cycle": "monthly", "days": [1], "wdays": ["monday"]}, "wdays",
     "give days or wdays (with ordinal), not both"),
    ({"cycle": "monthly", "wdays": ["monday", "friday"]}, "wdays",
     "a monthly rule by weekday takes exactly one weekday"),
    ({"cycle": "yearly", "month": 13, "days": [1]}, "month", "must be between 1 and 12"),
    ({"cycle": "monthly", "ordinal": "sixth", "wdays": ["monday"]}, "ordinal",
     "must be one of first, second, third, fourth, fifth, last, every"),
    ({"cycle": "date", "start_date": "2026-02-30"}, "start_date", "'2026-02-30' is not a date"),
    ({"cycle": "date", "start_date": "next monday"}, "start_date",
     "must be a date YYYY-MM-DD (or Kazoo's gregorian seconds)"),
    ({"cycle": "daily", "time_window_start": 90000}, "time_window_start", "must be between 0 and 86400"),
    ({"cycle": "daily", "time_window_start": 79200, "time_window_stop": 7200}, "time_window_stop",
     "must not be before time_window_start (79200); a window past midnight is two rules"),
    ({"cycle": "daily", "enabled": "yes"}, "enabled", "must be true, false or absent"),
    ({"cycle": "daily", "start_date": "9" * 5000}, "start_date",
     "must be an integer (or a string holding one), not '%s'" % ("9" * 40)),
])
def test_a_bad_rule_is_refused_naming_its_key(raw, key, message):
    with pytest.raises(InvalidData) as caught:
        parse_rule("r", raw)
    assert (caught.value.key, caught.value.message) == (key, message)
