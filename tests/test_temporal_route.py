"""temporal_route: rules checked at load with their paths, and calls routed by a frozen clock.

The simulator tests run the real daemon against the fake FreeSWITCH with its
clock (the service's ``clock``, which every call reads) frozen at instants either
side of the Paris and New York daylight-saving changes.
"""

import datetime
import json

import pytest
import yaml

from callflowd.errors import ConfigError
from callflowd.flow.load import load_config
from callflowd.simulator import Scenario
from tests.harness import FRONT_DESK, WAIT, Daemon, write_config

pytestmark = pytest.mark.timeout(30)

RULES = {
    "office_hours": {"name": "Office hours", "cycle": "weekly",
                     "wdays": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                     "time_window_start": 32400, "time_window_stop": 61200},
    "lunch": {"cycle": "daily", "time_window_start": 43200, "time_window_stop": 46800},
    "christmas": {"cycle": "yearly", "month": 12, "days": [25]},
}
DEVICE = ("bridge", "{originate_timeout=20}user/1000@example.com")
VOICEMAIL = ("voicemail", "default example.com 1000")


def office_flow(timezone="Europe/Paris", rules=("christmas",), **children):
    """christmas (data.rules), then lunch and office_hours (children keys, as Kazoo's UI stores them)."""
    branches = {"christmas": {"module": "voicemail", "data": {"id": "front_desk_voicemail_box_id"}},
                "lunch": {"module": "voicemail", "data": {"id": "front_desk_voicemail_box_id"}},
                "office_hours": {"module": "device", "data": {"id": "front_desk_device_id"}},
                "_": {"module": "voicemail", "data": {"id": "front_desk_voicemail_box_id"}}}
    branches.update(children)
    return {"numbers": [FRONT_DESK],
            "flow": {"module": "temporal_route", "data": {"timezone": timezone, "rules": list(rules)},
                     "children": branches}}


def frozen(instant):
    """A clock stopped at ``instant`` (UTC)."""
    moment = datetime.datetime.fromisoformat(instant).replace(tzinfo=datetime.timezone.utc)
    return lambda: moment


# --- at load ---------------------------------------------------------------------------------


def config_with(tmp_path, document=None, rules=None):
    flows = tmp_path / "callflows.d"
    flows.mkdir(exist_ok=True)
    (flows / "office.json").write_text(json.dumps(document or office_flow()))
    settings = {"freeswitch": {"password": "ClueCon"},
                "devices": {"front_desk_device_id": {"dial_string": "user/1000@example.com"}},
                "voicemail_boxes": {"front_desk_voicemail_box_id": {
                    "profile": "default", "domain": "example.com", "mailbox": "1000"}},
                "temporal_rules": RULES if rules is None else rules,
                "callflows_dir": "callflows.d"}
    path = tmp_path / "callflowd.yaml"
    path.write_text(yaml.safe_dump(settings))
    return str(path)


def refusal(path):
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    return str(raised.value).split(": ", 1)[1]


def test_the_rules_tried_are_data_rules_then_the_children_keys(tmp_path):
    config = load_config(config_with(tmp_path))
    data = config.callflows[0].flow.data
    assert [rule.id for rule in data.rules] == ["christmas", "lunch", "office_hours"]
    assert data.timezone.key == "Europe/Paris"
    assert config.directory.temporal_rules["office_hours"].wdays == (1, 2, 3, 4, 5)


def test_the_timezone_defaults_to_utc(tmp_path):
    document = office_flow()
    del document["flow"]["data"]["timezone"]
    assert load_config(config_with(tmp_path, document)).callflows[0].flow.data.timezone.key == "UTC"


@pytest.mark.parametrize("rules, message", [
    (dict(RULES, lunch={"cycle": "daily", "wdays": ["noday"]}),
     "temporal_rules.lunch.wdays[0]: must be one of monday, tuesday, wednesday, thursday, friday, saturday, sunday"),
    (dict(RULES, lunch={"cycle": "fortnightly"}),
     "temporal_rules.lunch.cycle: must be one of date, daily, weekly, monthly, yearly"),
    (dict(RULES, lunch={"cycle": "daily", "time_window_stop": 90000}),
     "temporal_rules.lunch.time_window_stop: must be between 0 and 86400"),
    (dict(RULES, lunch={"cycle": "daily", "start": "2026-01-01"}),
     "temporal_rules.lunch: unknown key 'start' (known: name, cycle, interval, days, wdays, ordinal, month, "
     "start_date, time_window_start, time_window_stop, enabled)"),
    (dict(RULES, lunch="daily"), "temporal_rules.lunch: must be a mapping, not text"),
    (dict(RULES, _={"cycle": "daily"}), "temporal_rules._: _ is the default branch, not a rule id: name the rule"),
])
def test_a_bad_rule_is_refused_with_its_path(tmp_path, rules, message):
    assert refusal(config_with(tmp_path, rules=rules)) == message


@pytest.mark.parametrize("change, message", [
    ({"rules": ["christmas", "easter"]},
     "flow.data.rules[1]: unknown temporal rule 'easter' (configured: christmas, lunch, office_hours)"),
    ({"rules": "christmas"}, "flow.data.rules: must be a list of temporal rule ids"),
    ({"timezone": "Europe/Lutece"},
     "flow.data.timezone: unknown time zone 'Europe/Lutece' (an IANA name such as Europe/Paris)"),
    ({"timezone": "../../etc/passwd"},
     "flow.data.timezone: unknown time zone '../../etc/passwd' (an IANA name such as Europe/Paris)"),
])
def test_bad_node_data_is_refused_with_its_path(tmp_path, change, message):
    document = office_flow()
    document["flow"]["data"].update(change)
    assert refusal(config_with(tmp_path, document)) == message


def test_a_child_key_that_is_no_rule_is_refused(tmp_path):
    document = office_flow(weekend={"module": "voicemail", "data": {"id": "front_desk_voicemail_box_id"}})
    assert refusal(config_with(tmp_path, document)) == (
        "flow.children.weekend: is not a configured temporal rule (a temporal_route branches on rule ids, or _)")


# --- calls through the simulator, the clock frozen -----------------------------------------------


@pytest.fixture
def office_daemon(tmp_path, switch):
    started = []

    def start(document, instant):
        config = write_config(tmp_path, switch, {"office": document}, extra={"temporal_rules": RULES})
        daemon = Daemon(config, clock=frozen(instant)).start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def place(switch, daemon):
    sim_call = switch.place_call(FRONT_DESK, scenario=Scenario(device="answer"))
    call = daemon.wait_finished(sim_call.uuid)
    sim_call.wait_ended(WAIT)
    return sim_call, [(step.module, step.outcome) for step in call.history]


@pytest.mark.parametrize("instant, branch", [
    ("2026-03-27T08:00:00", "office_hours"),  # Friday 09:00 CET
    ("2026-03-30T07:00:00", "office_hours"),  # Monday 09:00 CEST, after the spring change
    ("2026-03-30T06:59:59", "_"),  # Monday 08:59:59 CEST: 07:59:59 UTC would have been open in winter
    ("2026-03-30T10:30:00", "lunch"),  # 12:30 CEST: lunch is tried before office_hours
    ("2026-10-26T08:00:00", "office_hours"),  # Monday 09:00 CET, after the autumn change
    ("2026-10-26T07:00:00", "_"),  # Monday 08:00 CET
    ("2026-12-25T10:00:00", "christmas"),  # a Friday, but data.rules come first
])
def test_a_call_in_paris_takes_the_branch_of_the_first_rule_that_holds(
        switch, office_daemon, instant, branch):
    sim_call, path = place(switch, office_daemon(office_flow(), instant))
    assert path[0] == ("temporal_route", branch)
    if branch == "office_hours":
        assert path == [("temporal_route", "office_hours"), ("device", "stop")]
        assert sim_call.applications[1] == DEVICE
    else:
        assert sim_call.applications[-1] == VOICEMAIL


@pytest.mark.parametrize("instant, branch", [
    ("2026-03-06T14:00:00", "office_hours"),  # Friday 09:00 EST
    ("2026-03-09T13:00:00", "office_hours"),  # Monday 09:00 EDT
    ("2026-03-09T21:30:00", "_"),  # Monday 17:30 EDT (16:30 by the winter offset)
])
def test_a_call_in_new_york_follows_the_wall_clock_across_the_spring_change(
        switch, office_daemon, instant, branch):
    _, path = place(switch, office_daemon(office_flow("America/New_York", rules=()), instant))
    assert path[0] == ("temporal_route", branch)


def test_a_rule_without_a_child_falls_back_to_the_default_branch(switch, office_daemon):
    document = office_flow()
    del document["flow"]["children"]["christmas"]  # still tried: it is in data.rules
    sim_call, path = place(switch, office_daemon(document, "2026-12-25T10:00:00"))
    assert path[0] == ("temporal_route", "christmas")
    assert sim_call.applications[-1] == VOICEMAIL
