"""The callflow document parser (``flow/parser.py``, ``config/documents.py``): every bad document
gives one exact line naming its file and the node.
"""

import ast
import copy
import pathlib

import pytest

import callflowd
from callflowd.actions import REGISTRY
from callflowd.config.model import Directory
from callflowd.errors import ConfigErrors
from callflowd.flow.load import load_config
from callflowd.flow.parser import parse_flow, references_of
from tests.test_config import FRONT_DESK, FRONT_DESK_NUMBER, error_for, front_desk, write_config


# --- bad callflow documents (JSON files) ----------------------------------------------


def test_a_bad_http_verb_names_the_json_file_and_node(tmp_path):
    path = write_config(tmp_path, documents={"front-desk.json": front_desk(http_verb="put")})

    assert error_for(path) == "callflows.d/front-desk.json: flow.children._.data.http_verb: must be one of get, post"


def test_non_integer_webhook_retries_in_a_node_are_refused(tmp_path):
    path = write_config(tmp_path, documents={"front-desk.json": front_desk(retries="two")})

    assert error_for(path) == ("callflows.d/front-desk.json: flow.children._.data.retries: "
                               "must be an integer (or a string holding one), not 'two'")


def test_boolean_webhook_retries_in_a_node_are_refused(tmp_path):
    path = write_config(tmp_path, documents={"front-desk.json": front_desk(retries=True)})

    assert error_for(path) == "callflows.d/front-desk.json: flow.children._.data.retries: must be an integer"


def test_custom_data_that_is_not_an_object_is_refused(tmp_path):
    path = write_config(tmp_path, documents={"front-desk.json": front_desk(custom_data=["a", "b"])})

    assert error_for(path) == "callflows.d/front-desk.json: flow.children._.data.custom_data: must be an object"


def test_an_unknown_device_id_is_refused(tmp_path):
    document = copy.deepcopy(FRONT_DESK)
    document["flow"]["data"]["id"] = "back_office"
    path = write_config(tmp_path, documents={"front-desk.json": document})

    assert error_for(path) == "callflows.d/front-desk.json: flow.data.id: unknown device 'back_office'"


def test_an_unknown_voicemail_box_id_is_refused(tmp_path):
    document = copy.deepcopy(FRONT_DESK)
    document["flow"]["children"]["_"]["children"]["_"]["data"]["id"] = "nobody"
    path = write_config(tmp_path, documents={"front-desk.json": document})

    assert error_for(path) == (
        "callflows.d/front-desk.json: flow.children._.children._.data.id: unknown voicemail box 'nobody'")


def test_an_unknown_module_is_accepted_with_a_warning_and_the_call_goes_on_at_default(tmp_path):
    """Kazoo's cf_exe: a module it has not got is "unknown callflow action"; the call continues at _."""
    document = copy.deepcopy(FRONT_DESK)
    document["flow"]["children"]["_"]["module"] = "teleport"
    config = load_config(write_config(tmp_path, documents={"front-desk.json": document}))

    node = config.callflows[0].flow.child("_")
    assert (node.module, node.skip) == ("teleport", True)
    assert node.child("_").module == "voicemail"  # its children are read as usual
    assert config.warnings == (
        "callflows.d/front-desk.json: flow.children._.module: callflowd has no module 'teleport': a call "
        "reaching this node goes on at _, as in Kazoo (known: %s)" % ", ".join(sorted(REGISTRY)),)


def test_a_kazoo_key_callflowd_does_not_do_and_an_unknown_key_are_warnings(tmp_path):
    document = copy.deepcopy(FRONT_DESK)
    document["flow"]["data"].update({"static_invite": "1000", "colour": "blue"})
    config = load_config(write_config(tmp_path, documents={"front-desk.json": document}))

    assert config.warnings[0] == ("callflows.d/front-desk.json: flow.data.static_invite: not supported by "
                                  "callflowd (a Kazoo device key): accepted and ignored")
    assert config.warnings[1].startswith(
        "callflows.d/front-desk.json: flow.data.colour: not a key of Kazoo's device (known: id, timeout")


def test_every_refused_document_is_named_in_one_run_and_one_does_not_hide_the_others(tmp_path):
    first = front_desk(http_verb="put")
    second = copy.deepcopy(FRONT_DESK)
    second["numbers"] = ["2002"]
    second["flow"]["data"]["id"] = "nobody"
    second["flow"]["children"]["_"]["data"]["retries"] = "x"
    path = write_config(tmp_path, documents={"a.json": first, "b.json": second})

    with pytest.raises(ConfigErrors) as raised:
        load_config(path)

    assert [str(problem) for problem in raised.value.problems] == [
        "callflows.d/a.json: flow.children._.data.http_verb: must be one of get, post",
        "callflows.d/b.json: flow.data.id: unknown device 'nobody'",
        "callflows.d/b.json: flow.children._.data.retries: must be an integer (or a string holding one), not 'x'"]
    assert str(raised.value).endswith("(and 2 more problems: callflowd check lists them)")


def test_unparsable_json_is_refused_with_its_line_and_column(tmp_path):
    text = '{"numbers": ["+10005559999"],\n "flow": {"module": "device"\n    "data": {}}}\n'
    path = write_config(tmp_path, documents={"x.json": text})

    assert error_for(path) == "callflows.d/x.json: invalid JSON at line 3 column 5: Expecting ',' delimiter"


def test_a_duplicate_json_key_is_refused(tmp_path):
    text = '{"numbers": ["1"], "numbers": ["2"], "flow": {"module": "device", "data": {}}}'
    path = write_config(tmp_path, documents={"x.json": text})

    assert error_for(path) == "callflows.d/x.json: invalid JSON: duplicate key 'numbers'"


def test_a_document_that_is_not_an_object_is_refused(tmp_path):
    path = write_config(tmp_path, documents={"x.json": [FRONT_DESK]})

    assert error_for(path) == "callflows.d/x.json: must be an object (a callflow document), not a list"


def test_a_document_without_numbers_or_patterns_is_refused(tmp_path):
    document = dict(FRONT_DESK, numbers=[])
    path = write_config(tmp_path, documents={"x.json": document})

    assert error_for(path) == "callflows.d/x.json: needs at least one number or pattern"


def test_an_invalid_pattern_is_refused(tmp_path):
    document = dict(FRONT_DESK, patterns=["^(\\d+$"])
    path = write_config(tmp_path, documents={"x.json": document})

    assert error_for(path) == (
        "callflows.d/x.json: patterns[0]: invalid or unsafe regular expression: missing ): ^(\\d+$")


def test_an_empty_number_is_refused(tmp_path):
    document = dict(FRONT_DESK, numbers=[FRONT_DESK_NUMBER, ""])
    path = write_config(tmp_path, documents={"x.json": document})

    assert error_for(path) == "callflows.d/x.json: numbers[1]: must not be empty"


def test_a_document_without_a_flow_is_refused(tmp_path):
    path = write_config(tmp_path, documents={"x.json": {"numbers": ["100"]}})

    assert error_for(path) == "callflows.d/x.json: flow: is required"


def test_a_misspelt_node_key_is_refused_rather_than_dropping_the_branch(tmp_path):
    document = copy.deepcopy(FRONT_DESK)
    document["flow"]["childern"] = document["flow"].pop("children")
    path = write_config(tmp_path, documents={"x.json": document})

    assert error_for(path) == "callflows.d/x.json: flow: unknown key 'childern' (known: module, data, children)"


def test_node_data_that_is_not_an_object_is_refused(tmp_path):
    document = copy.deepcopy(FRONT_DESK)
    document["flow"]["data"] = "front_desk_device_id"
    path = write_config(tmp_path, documents={"x.json": document})

    assert error_for(path) == "callflows.d/x.json: flow.data: must be an object"


def test_children_that_are_not_an_object_are_refused(tmp_path):
    document = copy.deepcopy(FRONT_DESK)
    document["flow"]["children"] = [document["flow"]["children"]["_"]]
    path = write_config(tmp_path, documents={"x.json": document})

    assert error_for(path) == "callflows.d/x.json: flow.children: must be an object"


def test_a_skip_module_that_is_not_a_boolean_is_refused(tmp_path):
    path = write_config(tmp_path, documents={"x.json": front_desk(skip_module="yes")})

    assert error_for(path) == "callflows.d/x.json: flow.children._.data.skip_module: must be true or false"


def test_skip_module_may_be_the_string_true_as_kazoo_reads_it(tmp_path):
    document = copy.deepcopy(FRONT_DESK)
    document["flow"]["data"]["skip_module"] = "true"
    document["flow"]["children"]["_"]["data"]["skip_module"] = "false"

    flow = load_config(write_config(tmp_path, documents={"x.json": document})).callflows[0].flow

    assert (flow.skip, flow.child("_").skip) == (True, False)


def test_skip_module_marks_the_node_skipped_on_any_module(tmp_path):
    document = copy.deepcopy(FRONT_DESK)
    document["flow"]["data"]["skip_module"] = True
    path = write_config(tmp_path, documents={"x.json": document})

    flow = load_config(path).callflows[0].flow

    assert flow.skip is True
    assert flow.child("_").skip is False


def test_a_webhook_uri_python_cannot_parse_is_refused_not_crashed_on(tmp_path):
    path = write_config(tmp_path, documents={"x.json": front_desk(uri="http://[::1/hook")})

    assert error_for(path) == "callflows.d/x.json: flow.children._.data.uri: is not a valid URI: Invalid IPv6 URL"


def test_a_flow_nested_absurdly_deep_is_refused(tmp_path):
    node = {"module": "voicemail", "data": {"id": "front_desk_voicemail_box_id"}}
    for _ in range(150):
        node = {"module": "voicemail", "data": {"id": "front_desk_voicemail_box_id"}, "children": {"_": node}}
    path = write_config(tmp_path, documents={"x.json": {"numbers": ["1"], "flow": node}})

    message = error_for(path)

    assert message.startswith("callflows.d/x.json: flow.children._.children._.")
    assert message.endswith(": the flow is more than 100 nodes deep")


# --- several callflows ------------------------------------------------------------------


def test_kazoo_document_extras_are_ignored_and_its_id_is_used(tmp_path):
    document = dict(FRONT_DESK, id="3f8b2c1d9e", name="Front desk", featurecode={},
                    metadata={"3f8b2c1d9e": {}}, ui_metadata={"version": "4.3"})
    path = write_config(tmp_path, documents={"front-desk.json": document})

    assert load_config(path).callflows[0].id == "3f8b2c1d9e"


def test_callflow_ids_come_from_the_document_then_the_file_name_then_the_list_index(tmp_path):
    inline = [dict(FRONT_DESK, numbers=["100"]), dict(FRONT_DESK, numbers=["101"], id="named")]
    path = write_config(tmp_path, callflows=inline)

    assert [flow.id for flow in load_config(path).callflows] == ["callflows[0]", "named", "front-desk"]


def test_inline_callflows_come_first_then_json_files_in_name_order_skipping_hidden_ones(tmp_path):
    documents = {"b.json": dict(FRONT_DESK, numbers=["2"]), "a.json": dict(FRONT_DESK, numbers=["1"]),
                 ".#a.json": "editor lock file", "notes.txt": "not a callflow"}
    path = write_config(tmp_path, documents=documents, callflows=[dict(FRONT_DESK, numbers=["0"])])

    callflows = load_config(path).callflows

    assert [(flow.id, flow.source) for flow in callflows] == [
        ("callflows[0]", path), ("a", "callflows.d/a.json"), ("b", "callflows.d/b.json")]


def test_a_number_claimed_by_two_files_names_both(tmp_path):
    documents = {"a.json": FRONT_DESK, "b.json": dict(FRONT_DESK, numbers=["200", FRONT_DESK_NUMBER])}
    path = write_config(tmp_path, documents=documents)

    assert error_for(path) == (
        "callflows.d/b.json: numbers[1]: number '+10005559999' is already claimed by callflow 'a' "
        "(callflows.d/a.json)")


def test_a_number_claimed_inline_and_in_a_file_names_both(tmp_path):
    path = write_config(tmp_path, callflows=[dict(FRONT_DESK, id="main")])

    assert error_for(path) == (
        "callflows.d/front-desk.json: numbers[0]: number '+10005559999' is already claimed by "
        "callflow 'main' (%s)" % path)


def test_a_number_listed_twice_in_one_document_is_refused(tmp_path):
    path = write_config(tmp_path, documents={"x.json": dict(FRONT_DESK, numbers=["100", "100"])})

    assert error_for(path) == "callflows.d/x.json: numbers[1]: '100' is listed twice"


def test_two_documents_with_the_same_id_are_refused(tmp_path):
    documents = {"a.json": dict(FRONT_DESK, id="main"), "b.json": dict(FRONT_DESK, numbers=["2"], id="main")}
    path = write_config(tmp_path, documents=documents)

    assert error_for(path) == "callflows.d/b.json: id: callflow id 'main' is already used in callflows.d/a.json"


# --- callflows written inline in the YAML -----------------------------------------------


def test_an_inline_callflow_error_names_the_yaml_file_and_list_index(tmp_path):
    path = write_config(tmp_path, documents={}, callflows=[front_desk(http_verb="put")])

    assert error_for(path) == "%s: callflows[0].flow.children._.data.http_verb: must be one of get, post" % path


def test_an_unquoted_inline_number_is_refused_rather_than_losing_its_plus(tmp_path):
    text = ("freeswitch: {password: x}\n"
            "devices: {front_desk_device_id: {dial_string: user/1000}}\n"
            "callflows:\n"
            "  - numbers: [+10005559999]\n"
            "    flow: {module: device, data: {id: front_desk_device_id}}\n")
    path = write_config(tmp_path, documents={}, text=text)

    assert error_for(path) == "%s: callflows[0].numbers[0]: must be a string, not a number (quote it)" % path


def test_an_unquoted_numeric_child_key_is_refused(tmp_path):
    text = ("freeswitch: {password: x}\n"
            "devices: {front_desk_device_id: {dial_string: user/1000}}\n"
            "callflows:\n"
            "  - numbers: ['100']\n"
            "    flow:\n"
            "      module: device\n"
            "      data: {id: front_desk_device_id}\n"
            "      children: {1: {module: device, data: {id: front_desk_device_id}}}\n")
    path = write_config(tmp_path, documents={}, text=text)

    assert error_for(path) == "%s: callflows[0].flow.children: key 1 must be a string (quote it)" % path


def test_a_yaml_alias_loop_in_a_flow_is_refused(tmp_path):
    text = ("freeswitch: {password: x}\n"
            "devices: {front_desk_device_id: {dial_string: user/1000}}\n"
            "callflows:\n"
            "  - numbers: ['100']\n"
            "    flow: &loop\n"
            "      module: device\n"
            "      data: {id: front_desk_device_id}\n"
            "      children: {_: *loop}\n")
    path = write_config(tmp_path, documents={}, text=text)

    assert error_for(path) == (
        "%s: invalid YAML at line 8 column 21: YAML aliases (*loop) are not allowed; write the value out" % path)


def test_callflows_that_are_not_a_list_are_refused(tmp_path):
    path = write_config(tmp_path, callflows=FRONT_DESK)

    assert error_for(path) == "%s: callflows: must be a list of callflow documents, not a mapping" % path


def test_a_webhook_uri_with_a_newline_is_refused(tmp_path):
    path = write_config(tmp_path, documents={"x.json": front_desk(uri="http://x/hook\n")})

    assert error_for(path) == (
        "callflows.d/x.json: flow.children._.data.uri: must not contain spaces or control characters")


# --- references: declared by the actions, checked by the parser ---------------------------


def test_the_parser_knows_no_action_by_name():
    """No string in the modules that read documents is the name of an action."""
    package = pathlib.Path(callflowd.__file__).parent
    for name in ("flow/parser.py", "flow/load.py", "config/documents.py", "config/settings.py"):
        tree = ast.parse((package / name).read_text())
        strings = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)}
        assert not strings & set(REGISTRY), name


def test_every_reference_an_action_declares_is_checked_against_its_table(tmp_path):
    """A ring_group endpoint names a device: its declared reference carries the endpoint's key."""
    document = {"numbers": ["1"], "flow": {"module": "ring_group", "data": {"endpoints": [
        {"id": "front_desk_device_id"}, {"id": "front_desk_device_id", "delay": 5}]}}}
    config = load_config(write_config(tmp_path, documents={"rg.json": document}))

    assert [(ref.kind, ref.id, ref.key) for ref in references_of(config.callflows[0].flow)] == [
        ("device", "front_desk_device_id", "endpoints[0].id"),
        ("device", "front_desk_device_id", "endpoints[1].id")]


def test_a_jump_in_a_fetched_flow_is_checked_when_taken_not_when_parsed():
    flow = parse_flow({"module": "callflow", "data": {"id": "elsewhere"}}, Directory(), "answer")

    assert flow.data.callflow_id == "elsewhere"
