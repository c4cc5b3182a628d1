"""pivot: the call asks a real HTTP server on 127.0.0.1:0 for its next flow, through the simulator.

Good flows are continued with; bad JSON, a flow that does not validate, a 500,
a body too large and a server that hangs past ``req_timeout`` all go to ``_``
with the reason logged.
"""

import json
import time

import pytest
import yaml

from callflowd.errors import ConfigError
from callflowd.flow.load import load_config
from callflowd.flow.model import FETCHED, graft
from callflowd.flow.parser import parse_flow
from callflowd.simulator import Scenario
from tests.doubles.pivot_server import PivotServer
from tests.harness import FRONT_DESK, WAIT, Daemon, write_config

pytestmark = pytest.mark.timeout(30)

VOICEMAIL_NODE = {"module": "voicemail", "data": {"id": "front_desk_voicemail_box_id"}}
VOICEMAIL = ("voicemail", "default example.com 1000")
DEVICE_THEN_VOICEMAIL = {"module": "device", "data": {"id": "front_desk_device_id"},
                         "children": {"_": VOICEMAIL_NODE}}


# The servers here are on loopback, which a fetched flow may reach only when the operator says so.
LOOPBACK_ALLOWED = {"allow": ["127.0.0.0/8"]}


def pivot_flow(url, **data):
    return {"numbers": [FRONT_DESK],
            "flow": {"module": "pivot", "data": dict({"voice_url": url}, **data),
                     "children": {"_": VOICEMAIL_NODE}}}


@pytest.fixture
def server():
    pivot_server = PivotServer()
    pivot_server.start()
    yield pivot_server
    pivot_server.stop()


@pytest.fixture
def daemon_for(tmp_path, switch):
    started = []

    def start(document, webhooks=LOOPBACK_ALLOWED):
        daemon = Daemon(write_config(tmp_path, switch, {"pivoted": document}, webhooks=webhooks)).start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def place(switch, daemon, device="busy"):
    sim_call = switch.place_call(FRONT_DESK, scenario=Scenario(device=device))
    call = daemon.wait_finished(sim_call.uuid)
    sim_call.wait_ended(WAIT)
    return sim_call, call


def path_of(call):
    return [(step.module, step.outcome) for step in call.history]


# --- a flow that validates is continued with ----------------------------------------------------


def test_a_good_answer_is_the_flow_the_call_continues_with(switch, server, daemon_for):
    server.answer("/next", DEVICE_THEN_VOICEMAIL)
    daemon = daemon_for(pivot_flow(server.url("/next?line=main")))
    sim_call, call = place(switch, daemon)
    assert path_of(call) == [("pivot", "branch"), ("device", "USER_BUSY"), ("voicemail", "_")]
    assert [step.path for step in call.history] == [
        "flow", "flow" + FETCHED + "flow", "flow" + FETCHED + "flow.children._"]
    assert sim_call.applications[1] == ("bridge", "{originate_timeout=20}user/1000@example.com")
    assert sim_call.applications[-1] == VOICEMAIL
    # the recovery marker names the fetched node under the pivot
    assert sim_call.variables["callflowd_node"] == "flow/pivot:flow.children._"
    [request] = server.requests
    assert request.method == "GET"  # Kazoo's default
    assert request.query["line"] == ["main"]
    assert request.query["call_id"] == [sim_call.uuid]
    assert request.query["caller_id_number"] == ["+15551230000"]
    assert request.query["callflow_id"] == ["pivoted"]


def test_post_sends_the_call_fields_form_encoded(switch, server, daemon_for):
    server.answer("/next", {"flow": VOICEMAIL_NODE})  # the {"flow": ...} wrapper is accepted too
    daemon = daemon_for(pivot_flow(server.url("/next"), method="POST"))
    sim_call, call = place(switch, daemon)
    assert path_of(call) == [("pivot", "branch"), ("voicemail", "_")]
    [request] = server.requests
    assert request.method == "POST"
    assert request.form["call_id"] == [sim_call.uuid]
    assert request.form["destination_number"] == [FRONT_DESK]


def test_post_with_a_json_body_sends_the_fields_as_an_object(switch, server, daemon_for):
    server.answer("/next", VOICEMAIL_NODE)
    daemon = daemon_for(pivot_flow(server.url("/next"), method="post", req_body_format="json"))
    sim_call, _ = place(switch, daemon)
    [request] = server.requests
    assert request.header("Content-Type") == "application/json"
    assert json.loads(request.body)["call_id"] == sim_call.uuid


def test_a_fetched_flow_may_pivot_again(switch, server, daemon_for):
    server.answer("/first", {"module": "pivot", "data": {"voice_url": server.url("/second")}})
    server.answer("/second", VOICEMAIL_NODE)
    daemon = daemon_for(pivot_flow(server.url("/first")))
    _, call = place(switch, daemon)
    assert path_of(call) == [("pivot", "branch"), ("pivot", "branch"), ("voicemail", "_")]
    assert call.history[-1].path == "flow" + FETCHED + "flow" + FETCHED + "flow"
    assert server.requests[1].query["previous_action"] == ["pivot"]


def test_a_fetched_flow_may_not_reach_loopback_unless_the_operator_allows_it(switch, server, daemon_for, logs):
    # The configured pivot may (the operator wrote it); the flow it fetched may not, by default.
    server.answer("/first", {"module": "pivot", "data": {"voice_url": server.url("/second")}})
    server.answer("/second", VOICEMAIL_NODE)
    daemon = daemon_for(pivot_flow(server.url("/first")), webhooks={})
    _, call = place(switch, daemon)
    assert path_of(call) == [("pivot", "branch"), ("pivot", "_")]
    assert [r.path for r in server.requests] == ["/first"]
    assert logs.wait_for("destination 127.0.0.1 refused: a fetched flow may not send to a loopback, "
                         "link-local or metadata address")


def test_a_webhook_in_a_fetched_flow_may_not_reach_loopback_by_default(switch, server, daemon_for, logs):
    server.answer("/first", {"module": "webhook", "data": {"uri": server.url("/hook")},
                             "children": {"_": VOICEMAIL_NODE}})
    daemon = daemon_for(pivot_flow(server.url("/first")), webhooks={})
    place(switch, daemon)
    assert logs.wait_for("destination 127.0.0.1 refused")
    assert "webhook failed after 1 attempt" in logs.wait_for("destination 127.0.0.1 refused")
    assert [r.path for r in server.requests] == ["/first"]


def test_a_server_that_answers_itself_for_ever_is_stopped_by_the_step_limit(switch, server, daemon_for, logs):
    server.answer("/loop", {"module": "pivot", "data": {"voice_url": server.url("/loop")}})
    daemon = daemon_for(pivot_flow(server.url("/loop")))
    sim_call, call = place(switch, daemon)
    assert len(call.history) == 50 and set(path_of(call)) == {("pivot", "branch")}
    assert logs.wait_for("flow exceeded 50 steps")
    assert sim_call.applications == []


# --- no usable answer: the pivot node's own "_" ------------------------------------------------


@pytest.mark.parametrize("body, status, reason", [
    ("{not json", 200, "invalid JSON at line 1 column 2"),
    ('{"module": "voicemail", "module": "device"}', 200, "invalid JSON: duplicate key 'module'"),
    ({"module": "device", "data": {"id": "nobody"}}, 200, "answer: flow.data.id: unknown device 'nobody'"),
    ({"module": "hologram", "data": [1]}, 200, "answer: flow.data: must be an object"),
    ({"module": "voicemail", "data": {"id": "front_desk_voicemail_box_id"}, "children": {"_": 7}}, 200,
     "answer: flow.children._: must be an object, not a number"),
    ([1, 2], 200, "answer: flow: must be an object, not a list"),
    ("null", 200, "answer: flow: is required"),
    (VOICEMAIL_NODE, 500, "500 internal server error"),
    (VOICEMAIL_NODE, 404, "404 not found"),
    (VOICEMAIL_NODE, 302, "302 found"),
    ("x" * (300 * 1024), 200, "the answer is larger than 262144 bytes"),
    (b"\xff\xfe{}", 200, "the answer is not UTF-8 text"),
])
def test_an_answer_that_is_no_flow_goes_to_the_default_branch(
        switch, server, daemon_for, logs, body, status, reason):
    server.answer("/next", body, status=status)
    daemon = daemon_for(pivot_flow(server.url("/next")))
    sim_call, call = place(switch, daemon)
    assert path_of(call) == [("pivot", "_"), ("voicemail", "_")]
    assert sim_call.applications == [("answer", None), VOICEMAIL]
    line = logs.wait_for("pivot to %s" % server.url("/next"))
    assert reason in line and "continuing at _" in line and sim_call.uuid in line


def test_a_server_that_hangs_is_given_up_on_after_req_timeout(switch, server, daemon_for, logs):
    server.answer("/next", VOICEMAIL_NODE)
    server.hold()
    daemon = daemon_for(pivot_flow(server.url("/next"), req_timeout=1))
    started = time.monotonic()
    sim_call, call = place(switch, daemon)
    assert 0.9 < time.monotonic() - started < 5
    assert path_of(call) == [("pivot", "_"), ("voicemail", "_")]
    assert "no answer within 1s" in logs.wait_for("pivot to")
    assert len(server.requests) == 1


def test_a_server_that_is_not_there_goes_to_the_default_branch(switch, daemon_for, logs):
    from callflowd.demo.receiver import free_port
    daemon = daemon_for(pivot_flow("http://127.0.0.1:%d/next" % free_port()))
    _, call = place(switch, daemon)
    assert path_of(call) == [("pivot", "_"), ("voicemail", "_")]
    assert "connection refused" in logs.wait_for("pivot to")


# --- at load, and after a restart --------------------------------------------------------------


def load_with(tmp_path, data):
    flows = tmp_path / "callflows.d"
    flows.mkdir(exist_ok=True)
    (flows / "pivoted.json").write_text(json.dumps({"numbers": ["1"], "flow": {"module": "pivot", "data": data}}))
    path = tmp_path / "callflowd.yaml"
    path.write_text(yaml.safe_dump({
        "freeswitch": {"password": "ClueCon"}, "callflows_dir": "callflows.d",
        "voicemail_boxes": {"box": {"profile": "default", "domain": "example.com", "mailbox": "1"}}}))
    return load_config(str(path))


def test_the_defaults_are_kazoos_plus_a_five_second_bound(tmp_path):
    data = load_with(tmp_path, {"voice_url": "http://pivot.example/flow", "debug": False,
                                "cdr_url": "http://pivot.example/cdr"}).callflows[0].flow.data
    assert (data.method, data.body_format, data.timeout) == ("get", "form", 5)


@pytest.mark.parametrize("data, message", [
    ({}, "flow.data.voice_url: is required"),
    ({"voice_url": "ftp://pivot.example/"}, "flow.data.voice_url: must be an http:// or https:// URI"),
    ({"voice_url": "http://pivot.example/", "method": "put"}, "flow.data.method: must be one of get, post"),
    ({"voice_url": "http://pivot.example/", "req_format": "twiml"}, "flow.data.req_format: must be one of kazoo"),
    ({"voice_url": "http://pivot.example/", "req_timeout": 0}, "flow.data.req_timeout: must be between 1 and 30"),
    ({"voice_url": "http://pivot.example/", "req_body_format": "xml"},
     "flow.data.req_body_format: must be one of form, json"),
])
def test_bad_pivot_data_is_refused_with_its_path(tmp_path, data, message):
    with pytest.raises(ConfigError) as raised:
        load_with(tmp_path, data)
    assert str(raised.value) == "callflows.d/pivoted.json: " + message


def test_a_restarted_daemon_finds_the_pivot_node_for_a_call_that_was_in_its_fetched_flow(tmp_path):
    config = load_with(tmp_path, {"voice_url": "http://pivot.example/flow"})
    callflow = config.callflows[0]
    fetched = graft(parse_flow({"module": "voicemail", "data": {"id": "box"}, "children": {
        "_": {"module": "voicemail", "data": {"id": "box"}}}}, config.directory, "answer"), callflow.flow)
    deep = fetched.child("_")
    assert deep.path == "flow/pivot:flow.children._"
    assert callflow.node_at(deep.path) is callflow.flow  # the pivot runs again
    assert callflow.node_at("flow/pivot:flow/pivot:flow") is callflow.flow
    assert callflow.node_at("flow.children.x/pivot:flow") is None


def test_a_call_in_a_fetched_flow_is_taken_back_at_the_pivot_after_a_restart(
        tmp_path, switch, server, logs):
    """The first daemon stops at once (halt) while the fetched flow's phone rings; the second asks
    the server again, finds the same flow, and waits for the ringing bridge instead of ringing twice."""
    ringing = {"module": "device", "data": {"id": "front_desk_device_id", "timeout": 300},
               "children": {"_": VOICEMAIL_NODE}}
    server.answer("/next", ringing)
    config = write_config(tmp_path, switch, {"pivoted": pivot_flow(server.url("/next"))})
    first = Daemon(config).start()
    try:
        sim_call = switch.place_call(FRONT_DESK, scenario=Scenario(device="no_answer"))
        logs.wait_for("executing bridge")
        assert sim_call.variables["callflowd_node"] == "flow/pivot:flow"
    finally:
        first.service.halt()
    assert not sim_call.ended
    second = Daemon(config).start()
    try:
        call = second.wait_finished(sim_call.uuid, timeout=WAIT * 2)
        sim_call.wait_ended(WAIT)
    finally:
        second.stop()
    assert "at flow of callflow pivoted (was waiting for bridge)" in logs.wait_for("taking the call back")
    assert path_of(call) == [("pivot", "branch"), ("device", "NO_ANSWER"), ("voicemail", "_")]
    assert len(server.requests) == 2  # the pivot ran again
    assert [app for app, _ in sim_call.applications].count("bridge") == 1  # the phone rang once
    assert sim_call.applications[-1] == VOICEMAIL
