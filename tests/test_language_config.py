"""Kazoo documents as exported, the new actions' data and the routing settings, at load time.

What Kazoo would make sense of is accepted (its API envelope, integers written as strings);
what it would not is refused with one line naming the file and the path inside it.
"""

import pytest

from callflowd.actions import REGISTRY
from callflowd.calls.routes import RouteTable, normalize
from callflowd.config.model import Converter, RoutingSettings
from callflowd.flow.load import load_config
from tests.test_config import SETTINGS, error_for, write_config

DEVICES = dict(SETTINGS["devices"], phone_1001={"dial_string": "{sip_cid_type=none}user/1001@example.com"})


def flow_document(flow, numbers=("2001",), **more):
    return dict({"numbers": list(numbers), "flow": flow}, **more)


def load(tmp_path, documents, **changes):
    changes.setdefault("devices", DEVICES)
    return load_config(str(write_config(tmp_path, documents=documents, **changes)))


def refused(tmp_path, documents, **changes):
    changes.setdefault("devices", DEVICES)
    return error_for(write_config(tmp_path, documents=documents, **changes))


def test_a_document_in_kazoos_api_envelope_is_accepted(tmp_path):
    document = {"data": {"id": "abc123", "numbers": ["2001"], "flow": {
        "module": "device", "data": {"id": "front_desk_device_id", "timeout": "20"}}},
        "revision": "2-x", "status": "success", "auth_token": ""}
    [callflow] = load(tmp_path, {"kazoo.json": document}).callflows
    assert callflow.id == "abc123"
    assert callflow.flow.data.timeout == 20


def test_errors_inside_an_envelope_name_the_path_through_data(tmp_path):
    document = {"data": {"numbers": ["2001"], "flow": {
        "module": "device", "data": {"id": "front_desk_device_id", "timeout": "twenty"}}}}
    assert refused(tmp_path, {"kazoo.json": document}) == (
        "callflows.d/kazoo.json: data.flow.data.timeout: must be an integer (or a string holding one), "
        "not 'twenty'")


@pytest.mark.parametrize("text", ["20s", "2.5", "", " ", "0x14", "1e3", "٢٠"])
def test_strings_that_are_not_plain_integers_are_still_refused(tmp_path, text):
    document = flow_document({"module": "device", "data": {"id": "front_desk_device_id", "timeout": text}})
    assert "flow.data.timeout: must be an integer" in refused(tmp_path, {"d.json": document})


def test_an_integer_string_out_of_range_is_refused_with_the_range(tmp_path):
    document = flow_document({"module": "menu", "data": {"retries": "99"}})
    assert refused(tmp_path, {"d.json": document}) == (
        "callflows.d/d.json: flow.data.retries: must be between 1 and 10")


def test_a_jump_to_an_unknown_callflow_is_refused_with_its_path(tmp_path):
    document = flow_document({"module": "answer", "children": {"_": {"module": "callflow", "data": {"id": "nope"}}}})
    assert refused(tmp_path, {"main.json": document}) == (
        "callflows.d/main.json: flow.children._.data.id: unknown callflow 'nope' (known: main)")


def test_a_number_claimed_by_two_callflows_is_refused(tmp_path):
    documents = {"a.json": flow_document({"module": "answer"}), "b.json": flow_document({"module": "hangup"})}
    assert refused(tmp_path, documents).startswith(
        "callflows.d/b.json: numbers[0]: number '2001' is already claimed by callflow 'a'")


@pytest.mark.parametrize("data, path, message", [
    ({"endpoints": []}, "endpoints", "must list at least one endpoint"),
    ({"endpoints": [{"id": "phone_9"}]}, "endpoints[0].id", "unknown device 'phone_9'"),
    ({"endpoints": [{"id": "phone_1001", "delay": -1}]}, "endpoints[0].delay", "must be between 0 and 3600"),
    ({"endpoints": [{"id": "phone_1001", "endpoint_type": "user"}]}, "endpoints[0].id",
     "unknown user 'phone_1001'"),
    ({"endpoints": [{"id": "phone_1001", "endpoint_type": "phone"}]}, "endpoints[0].endpoint_type",
     "must be one of device, user, group"),
    ({"endpoints": [{"id": "phone_1001"}], "strategy": "random"}, "strategy",
     "must be one of simultaneous, single, weighted_random"),
])
def test_bad_ring_group_data_is_refused_with_the_path(tmp_path, data, path, message):
    document = flow_document({"module": "ring_group", "data": data})
    assert refused(tmp_path, {"g.json": document}) == "callflows.d/g.json: flow.data.%s: %s" % (path, message)


@pytest.mark.parametrize("module, data, path, message", [
    ("menu", {"greeting": "/sounds/main menu.wav"}, "greeting", "must not contain spaces"),
    ("menu", {"max_extension_length": 0}, "max_extension_length", "must be between 1 and 32"),
    ("play", {}, "id", "is required"),
    ("play", {"id": "a.wav", "terminators": ["10"]}, "terminators[0]", "must be one DTMF key"),
    ("play", {"id": "a.wav", "answer": "maybe"}, "answer", "must be true or false"),
    ("response", {"code": 200}, "code", "must be between 300 and 699"),
    ("response", {"message": "Busy\r\nX-Evil: 1"}, "message", "must not contain control characters"),
    ("sleep", {"duration": 2, "unit": "days"}, "unit", "must be one of h, m, ms, s"),
    ("sleep", {"duration": 2, "unit": "h"}, "duration", "must be at most one hour"),
    ("set_variables", {"variables": {"bad name": "x"}}, "variables.bad name", "a variable name is"),
    ("set_variables", {"variables": {"a": ["x"]}}, "variables.a", "must be a string, a number"),
    ("callflow", {}, "id", "is required"),
])
def test_bad_action_data_is_refused_with_the_path(tmp_path, module, data, path, message):
    document = flow_document({"module": module, "data": data})
    error = refused(tmp_path, {"x.json": document})
    assert error.startswith("callflows.d/x.json: flow.data.%s: %s" % (path, message)), error


def test_a_ring_group_moves_a_devices_own_variables_into_its_leg(tmp_path):
    document = flow_document({"module": "ring_group", "data": {
        "endpoints": [{"id": "front_desk_device_id", "timeout": 15}, {"id": "phone_1001", "delay": "5"}]}})
    [callflow] = load(tmp_path, {"g.json": document}).callflows
    assert callflow.flow.data.dial_string() == (
        "{originate_timeout=20}[leg_timeout=15]user/1000@example.com,"
        "[leg_delay_start=5,leg_timeout=20,sip_cid_type=none]user/1001@example.com")


def test_every_action_is_documented_with_its_data_and_branches():
    for name, module in REGISTRY.items():
        assert "Branches" in module.__doc__, name


def test_routing_settings_are_read_and_checked(tmp_path):
    config = load(tmp_path, {"a.json": flow_document({"module": "answer"})}, routing={
        "max_callflow_jumps": 7, "e164_converters": [{"regex": "^0(\\d{9})$", "prefix": "+33"}]})
    assert config.routing == RoutingSettings(converters=(Converter("^0(\\d{9})$", "+33"),), max_callflow_jumps=7)
    assert refused(tmp_path, {"a.json": flow_document({"module": "answer"})}, routing={
        "e164_converters": [{"regex": "(a)\\1"}]}).endswith(
        "callflowd.yaml: routing.e164_converters[0].regex: invalid or unsafe regular expression: "
        "invalid escape sequence: \\1")


@pytest.mark.parametrize("dialled, normalised", [
    ("4155552671", "+14155552671"),
    ("14155552671", "+14155552671"),
    ("+14155552671", "+14155552671"),
    ("011442079460000", "+442079460000"),
    ("00442079460000", "+442079460000"),
    ("442079460000", "+442079460000"),
    ("2001", "2001"),
    ("*97", "*97"),
    ("*4155552671", "*4155552671"),
    ("alice", "alice"),
])
def test_numbers_are_normalised_with_kazoos_default_rules(dialled, normalised):
    assert normalize(dialled) == normalised


def test_a_pattern_match_is_linear_even_for_a_hostile_number():
    from callflowd.flow.model import Callflow, Node
    flow = Callflow(id="p", numbers=(), patterns=("^(\\d+)+$",), flow=Node("answer", None))
    table = RouteTable([flow])
    assert table.route("1" * 400 + "x") is None
    assert table.route("1" * 30).captures == ("1" * 30,)


def test_two_spellings_of_one_number_in_two_callflows_are_refused(tmp_path):
    documents = {"a.json": flow_document({"module": "answer"}, numbers=["4155552671"]),
                 "b.json": flow_document({"module": "hangup"}, numbers=["+14155552671"])}
    assert refused(tmp_path, documents) == (
        "callflows.d/b.json: numbers[0]: number '+14155552671' is already claimed by callflow 'a' "
        "(callflows.d/a.json) as '4155552671'")


def test_a_number_listed_twice_in_one_callflow_is_refused(tmp_path):
    documents = {"a.json": flow_document({"module": "answer"}, numbers=["2001", "2001"])}
    assert refused(tmp_path, documents) == "callflows.d/a.json: numbers[1]: '2001' is listed twice"
