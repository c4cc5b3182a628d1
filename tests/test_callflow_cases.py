"""Data-driven callflow cases: ``tests/callflows/<case>.json``, each one call through the simulator.

Every case runs the real daemon (Service) against the FreeSWITCH simulator and a real webhook
receiver, places one call, and compares what happened with what the case expects. A case file
is one JSON object; only ``callflows``, ``call`` and ``expect`` are needed:

    {
      "about": "a sentence saying what the case proves",
      "callflows": [ {callflow document}, ... ],       # as in callflows.d/ (a Kazoo envelope too);
                                                       # each written to callflows.d/<id or index>.json
      "config": {"routing": {...}, "devices": {...}},  # optional: more callflowd.yaml settings
                                                       # (tables are merged into the defaults below)
      "call": {"to": "5551234567", "from": "+15551230000"},   # "from" is optional
      "scenario": {                                    # optional: simulator.Scenario fields
        "device": "busy",                              # answer | busy | no_answer | unregistered
        "phones": {"1001": "answer"},                  # per dialled user (ring groups)
        "digits": ["1", "", "42#"],                    # keys per play_and_get_digits try
        "caller_hangup_after": 3,                      # ... any other Scenario field
        "authenticated_as": "1000"                     # from registered user 1000 (no_match needs it)
      },
      "clock": "2026-03-29T07:00:00",                  # optional: "now" for temporal_route, in UTC
      "answers": {"/next": {"status": 200, "body": {flow node}}},
                                                       # optional: what the receiver answers on a path
                                                       # (a pivot's flow); other paths answer 200
      "hold": true,                                    # optional: the receiver answers nothing until
                                                       # the case ends (a server that hangs)
      "expect": {
        "callflow": "main",            # the callflow that answered; null: none (the call stays parked)
        "captures": ["123"],           # call.captures (a pattern's capture groups)
        "trace": [["device", "USER_BUSY"], ["main", "webhook", "_"]],
                                       # call.history: [module, outcome] or [callflow, module, outcome]
        "trace_end": [...],            # like trace, but only the last entries are compared
        "steps": 51,                   # len(call.history)
        "commands": [["set", "continue_on_fail=true"], ["answer", null]],
                                       # every application the switch ran for the call, in order
        "commands_include": [["respond", "486"]],      # these, in this order, among the others
        "hangup_cause": "NORMAL_CLEARING",             # the caller leg's hangup cause
        "responded": [486, null],      # the final SIP response sent with ``respond`` (code, reason)
        "webhooks": [{"method": "POST", "path": "/missed", "form": {"previous_outcome": "USER_BUSY"}}],
                                       # requests the receiver got (form, query: subsets of the fields)
        "logs": ["jump limit reached"] # substrings of log lines the daemon wrote
      }
    }

In a case, the text ``{receiver}`` anywhere is replaced by the webhook receiver's base URL
(``http://127.0.0.1:<port>``). Configured devices: ``front_desk_device_id`` (user/1000),
``phone_1000`` (user/1000@example.com) and ``phone_1001`` (user/1001@example.com); voicemail box
``front_desk_voicemail_box_id``. The simulator runs at 100x: seconds in ``scenario`` and
milliseconds in actions' data are divided by 100 in wall time.
"""

import datetime
import json
import pathlib

import pytest

from callflowd.config.temporal import utc_now
from callflowd.simulator import Scenario
from tests.doubles.pivot_server import PivotServer
from tests.harness import WAIT, Daemon, write_config

pytestmark = pytest.mark.timeout(60)

CASES = pathlib.Path(__file__).parent / "callflows"
CASE_KEYS = {"about", "callflows", "config", "call", "scenario", "clock", "answers", "hold", "expect"}
EXPECT_KEYS = {"callflow", "captures", "trace", "trace_end", "steps", "commands", "commands_include",
               "hangup_cause", "responded", "webhooks", "logs"}
DEVICES = {
    "phone_1000": {"dial_string": "user/1000@example.com", "timeout": 20},
    "phone_1001": {"dial_string": "user/1001@example.com", "timeout": 20},
}


@pytest.fixture
def receiver():
    """The webhook receiver, able to answer scripted bodies on some paths (a pivot server)."""
    server = PivotServer()
    server.start()
    yield server
    server.stop()


def load_case(path, receiver_url):
    text = path.read_text().replace("{receiver}", receiver_url)
    case = json.loads(text)
    unknown = set(case) - CASE_KEYS
    assert not unknown, "%s: unknown case keys %s" % (path.name, sorted(unknown))
    unknown = set(case["expect"]) - EXPECT_KEYS
    assert not unknown, "%s: unknown expect keys %s" % (path.name, sorted(unknown))
    return case


def documents_of(case):
    documents = {}
    for index, document in enumerate(case["callflows"]):
        inner = document.get("data", document) if "flow" not in document else document
        documents[str(inner.get("id", "callflow-%d" % index))] = document
    return documents


def trace_of(call, expected):
    """call.history shaped like ``expected``: 3-item entries name the callflow too."""
    steps = call.history[-len(expected):] if expected else []
    return [[step.callflow, step.module, step.outcome] if len(want) == 3 else [step.module, step.outcome]
            for step, want in zip(steps, expected)]


def contains_in_order(commands, wanted):
    position = 0
    for item in commands:
        if position < len(wanted) and item == wanted[position]:
            position += 1
    return position == len(wanted)


@pytest.mark.parametrize("path", sorted(CASES.glob("*.json")), ids=lambda p: p.stem)
def test_the_callflow_case_runs_as_its_file_expects(path, tmp_path, switch, receiver, logs):
    case = load_case(path, receiver.url("").rstrip("/"))
    expect = case["expect"]
    clock = utc_now
    if "clock" in case:
        moment = datetime.datetime.fromisoformat(case["clock"]).replace(tzinfo=datetime.timezone.utc)
        clock = lambda: moment  # noqa: E731
    for answer_path, answer in case.get("answers", {}).items():
        receiver.answer(answer_path, answer.get("body", ""), status=answer.get("status", 200))
    if case.get("hold"):
        receiver.hold()
    extra = dict(case.get("config", {}))
    extra["devices"] = dict(DEVICES, **extra.get("devices", {}))
    daemon = Daemon(write_config(tmp_path, switch, documents_of(case), extra=extra), clock=clock).start()
    try:
        call_spec = case["call"]
        options = {"caller_id_number": call_spec["from"]} if "from" in call_spec else {}
        sim_call = switch.place_call(call_spec["to"], scenario=Scenario(**case.get("scenario", {})), **options)
        if expect.get("callflow", "") is None:
            for text in expect.get("logs", ["no callflow for number"]):
                logs.wait_for(text)
            assert sim_call.applications == []
            sim_call.hangup("NORMAL_CLEARING", "remote")
            return
        call = daemon.wait_finished(sim_call.uuid, timeout=WAIT * 3)
        sim_call.wait_ended(WAIT)
        commands = [list(item) for item in sim_call.applications]
        if "callflow" in expect:
            assert call.callflow_id == expect["callflow"]
        if "captures" in expect:
            assert list(call.captures) == expect["captures"]
        if "trace" in expect:
            assert trace_of(call, expect["trace"]) == expect["trace"]
            assert len(call.history) == len(expect["trace"])
        if "trace_end" in expect:
            assert trace_of(call, expect["trace_end"]) == expect["trace_end"]
        if "steps" in expect:
            assert len(call.history) == expect["steps"]
        if "commands" in expect:
            assert commands == expect["commands"]
        if "commands_include" in expect:
            assert contains_in_order(commands, expect["commands_include"]), commands
        if "hangup_cause" in expect:
            assert sim_call.hangup_cause == expect["hangup_cause"]
        if "responded" in expect:
            assert list(sim_call.responded or ()) == expect["responded"]
        wanted = expect.get("webhooks", [])
        got = receiver.wait_for(len(wanted), WAIT) if wanted else receiver.requests
        assert len(got) == len(wanted)
        for request, want in zip(got, wanted):
            assert request.method == want.get("method", "POST")
            assert request.path == want["path"]
            form = {name: values[0] for name, values in request.fields.items()}
            assert {k: form.get(k) for k in want.get("form", {})} == want.get("form", {})
            query = {name: values[0] for name, values in request.query.items()}
            assert {k: query.get(k) for k in want.get("query", {})} == want.get("query", {})
        for text in expect.get("logs", []):
            logs.wait_for(text)
    finally:
        daemon.stop()
