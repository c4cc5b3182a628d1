"""The config loader: the shipped example loads, and every bad input gives one exact line.

Each bad-input test writes a small config into ``tmp_path`` (the good example,
with one thing broken) and checks the whole message: the file, the path inside
it, and what is wrong.
"""

import copy
import dataclasses
import json
import pathlib
import subprocess
import sys
from types import MappingProxyType

import pytest
import yaml

from callflowd.actions import REGISTRY
from callflowd.errors import ConfigError
from callflowd.flow.load import load_config

REPO = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = REPO / "config" / "callflowd.yaml"
FRONT_DESK_NUMBER = "+10005559999"

# The spec's example callflow, as config/callflows.d/front-desk.json holds it.
FRONT_DESK = {
    "numbers": [FRONT_DESK_NUMBER],
    "flow": {"module": "device", "data": {"id": "front_desk_device_id"},
             "children": {"_": {"module": "webhook",
                                "data": {"uri": "http://my.ser.ver/frontdesk/missed_call"},
                                "children": {"_": {"module": "voicemail",
                                                   "data": {"id": "front_desk_voicemail_box_id"}}}}}},
}

SETTINGS = {
    "freeswitch": {"password": "ClueCon"},
    "devices": {"front_desk_device_id": {"dial_string": "user/1000@example.com"}},
    "voicemail_boxes": {"front_desk_voicemail_box_id": {
        "profile": "default", "domain": "example.com", "mailbox": "1000"}},
    "callflows_dir": "callflows.d",
}


_DROP = object()  # a top-level key to leave out of write_config's settings


class _NoAliasDumper(yaml.SafeDumper):
    """Writes a shared dict out each time: the loader refuses YAML aliases."""

    def ignore_aliases(self, data):
        return True


def front_desk(**webhook_data):
    """The example document, with the webhook node's data changed."""
    document = copy.deepcopy(FRONT_DESK)
    document["flow"]["children"]["_"]["data"].update(webhook_data)
    return document


def write_config(tmp_path, settings=None, documents=None, text=None, **changes):
    """A config file in tmp_path: ``text`` as is, else SETTINGS with top-level ``changes``.

    ``documents`` maps file names in callflows.d/ to a document (dumped as JSON) or raw text;
    by default the directory holds the example front-desk.json.
    """
    flows = tmp_path / "callflows.d"
    flows.mkdir(exist_ok=True)
    if documents is None:
        documents = {"front-desk.json": FRONT_DESK}
    for name, document in documents.items():
        content = document if isinstance(document, str) else json.dumps(document, indent=1)
        (flows / name).write_text(content)
    if text is None:
        settings = dict(copy.deepcopy(settings or SETTINGS), **changes)
        settings = {key: value for key, value in settings.items() if value is not _DROP}
        text = yaml.dump(settings, Dumper=_NoAliasDumper, sort_keys=False)
    path = tmp_path / "callflowd.yaml"
    path.write_text(text)
    return str(path)


def with_device(**fields):
    return {"front_desk_device_id": dict({"dial_string": "user/1000@example.com"}, **fields)}


def with_freeswitch(**fields):
    return dict({"password": "ClueCon"}, **fields)


def error_for(path):
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert "\n" not in message
    return message


# --- the shipped example ------------------------------------------------------


def test_the_shipped_example_config_loads_as_is():
    config = load_config(str(EXAMPLE_CONFIG))

    assert config.log_level == "INFO"
    assert config.freeswitch.host == "127.0.0.1"
    assert config.freeswitch.port == 8021
    assert config.freeswitch.password == "ClueCon"
    assert config.freeswitch.reconnect.total is None
    assert config.freeswitch.reconnect.jitter == 0.2
    assert config.directory.webhooks.retries == 2
    assert [flow.id for flow in config.callflows] == [
        "feature-codes", "front-desk", "main-menu", "no-match", "office-hours"]
    assert sorted(config.directory.temporal_rules) == ["christmas", "office_hours"]


def test_the_shipped_examples_show_every_action():
    shown = set()
    for callflow in load_config(str(EXAMPLE_CONFIG)).callflows:
        pending = [callflow.flow]
        while pending:
            node = pending.pop()
            shown.add(node.module)
            pending.extend(node.children.values())
    assert shown == set(REGISTRY)


def test_the_shipped_front_desk_json_is_the_spec_example_exactly():
    shipped = json.loads((REPO / "config" / "callflows.d" / "front-desk.json").read_text())
    assert shipped == FRONT_DESK


def test_the_example_callflow_becomes_a_device_webhook_voicemail_tree():
    (callflow,) = [flow for flow in load_config(str(EXAMPLE_CONFIG)).callflows if flow.id == "front-desk"]

    assert callflow.numbers == (FRONT_DESK_NUMBER,)
    assert callflow.patterns == ()
    assert callflow.source == "callflows.d/front-desk.json"
    device = callflow.flow
    webhook = device.child("_")
    voicemail = webhook.child("_")
    assert [node.module for node in (device, webhook, voicemail)] == ["device", "webhook", "voicemail"]
    assert [node.path for node in (device, webhook, voicemail)] == [
        "flow", "flow.children._", "flow.children._.children._"]
    assert voicemail.children == {}
    assert not any(node.skip for node in (device, webhook, voicemail))


def test_the_example_callflow_nodes_hold_the_resolved_device_box_and_webhook():
    config = load_config(str(EXAMPLE_CONFIG))
    (front_desk_flow,) = [flow for flow in config.callflows if flow.id == "front-desk"]
    device = front_desk_flow.flow
    webhook = device.child("_")
    voicemail = webhook.child("_")

    assert device.data.device is config.directory.devices["front_desk_device_id"]
    assert device.data.device.dial_string == "user/1000@example.com"
    assert device.data.timeout == 20
    assert webhook.data.uri == "http://my.ser.ver/frontdesk/missed_call"
    assert webhook.data.http_verb == "post"
    assert webhook.data.retry.total == 2
    box = voicemail.data.box
    assert (box.profile, box.domain, box.mailbox) == ("default", "example.com", "1000")


def test_the_loaded_config_is_frozen_all_the_way_down():
    config = load_config(str(EXAMPLE_CONFIG))
    node = config.callflows[0].flow

    assert isinstance(node.children, MappingProxyType)
    assert isinstance(config.directory.devices, MappingProxyType)
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.module = "voicemail"
    with pytest.raises(TypeError):
        node.children["x"] = node


def test_relative_paths_are_taken_from_the_config_files_directory(tmp_path, monkeypatch):
    path = write_config(tmp_path)
    monkeypatch.chdir("/")

    assert load_config(path).callflows[0].source == "callflows.d/front-desk.json"


def test_defaults_fill_in_what_the_config_leaves_out(tmp_path):
    config = load_config(write_config(tmp_path))

    assert config.freeswitch.host == "127.0.0.1"
    assert config.freeswitch.port == 8021
    assert config.freeswitch.connect_timeout == 5.0
    assert config.freeswitch.command_timeout == 10.0
    assert (config.freeswitch.reconnect.backoff_factor, config.freeswitch.reconnect.backoff_max) == (0.5, 4.0)
    assert config.directory.devices["front_desk_device_id"].timeout == 20
    assert config.directory.webhooks.concurrency == 1000
    assert config.directory.webhooks.concurrency_per_endpoint == 125
    assert config.directory.webhooks.outbox_max == 100000
    assert config.directory.webhooks.format == "form"
    assert config.directory.webhooks.synchronous == "normal"
    assert config.log_level == "INFO"


def test_settings_given_are_used(tmp_path):
    config = load_config(write_config(
        tmp_path, log_level="DEBUG",
        freeswitch=with_freeswitch(host="10.0.0.5", port=8022, connect_timeout=1.5,
                                   reconnect={"backoff_factor": 0.1, "backoff_max": 2}),
        webhooks={"timeout": 2, "retries": 4, "backoff_factor": 0.25,
                  "concurrency": 50, "concurrency_per_endpoint": 8, "outbox": {"max": 10}},
        devices=with_device(timeout=45)))

    assert config.log_level == "DEBUG"
    assert (config.freeswitch.host, config.freeswitch.port) == ("10.0.0.5", 8022)
    assert config.freeswitch.connect_timeout == 1.5
    assert config.freeswitch.reconnect.backoff_max == 2.0
    assert config.directory.webhooks.retries == 4
    assert config.directory.webhooks.concurrency_per_endpoint == 8
    assert config.directory.webhooks.outbox_max == 10
    assert config.directory.devices["front_desk_device_id"].timeout == 45
    assert config.callflows[0].flow.data.timeout == 45  # the device's own ring time
    assert config.callflows[0].flow.child("_").data.retry.total == 4  # webhooks.retries


# --- the password -----------------------------------------------------------------


def test_the_password_can_come_from_a_file_next_to_the_config(tmp_path):
    (tmp_path / "esl-password").write_text("  s3cret-from-file \n")
    path = write_config(tmp_path, freeswitch={"password_file": "esl-password"})

    assert load_config(path).freeswitch.password == "s3cret-from-file"


def test_the_password_can_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CALLFLOWD_TEST_ESL_PASSWORD", "s3cret-from-env")
    path = write_config(tmp_path, freeswitch={"password_env": "CALLFLOWD_TEST_ESL_PASSWORD"})

    assert load_config(path).freeswitch.password == "s3cret-from-env"


def test_the_password_never_shows_in_the_configs_repr(tmp_path):
    path = write_config(tmp_path, freeswitch={"password": "do-not-print-me"})

    assert "do-not-print-me" not in repr(load_config(path))


def test_a_missing_password_is_refused_rather_than_defaulted(tmp_path):
    path = write_config(tmp_path, freeswitch={"host": "127.0.0.1"})

    assert error_for(path) == "%s: freeswitch: give exactly one of password, password_file, password_env" % path


def test_two_passwords_are_refused(tmp_path):
    path = write_config(tmp_path, freeswitch={"password": "a", "password_env": "HOME"})

    assert error_for(path) == (
        "%s: freeswitch: give exactly one of password, password_file, password_env "
        "(got password, password_env)" % path)


def test_a_missing_password_file_is_named(tmp_path):
    path = write_config(tmp_path, freeswitch={"password_file": "nope"})

    assert error_for(path) == "%s: freeswitch.password_file: cannot read %s: No such file or directory" % (
        path, tmp_path / "nope")


def test_an_empty_password_file_is_refused(tmp_path):
    (tmp_path / "esl-password").write_text("\n")
    path = write_config(tmp_path, freeswitch={"password_file": "esl-password"})

    assert error_for(path) == "%s: freeswitch.password_file: %s is empty" % (path, tmp_path / "esl-password")


def test_an_unset_password_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("CALLFLOWD_TEST_UNSET", raising=False)
    path = write_config(tmp_path, freeswitch={"password_env": "CALLFLOWD_TEST_UNSET"})

    assert error_for(path) == (
        "%s: freeswitch.password_env: environment variable CALLFLOWD_TEST_UNSET is not set" % path)


# --- bad YAML settings ---------------------------------------------------------------


def test_a_missing_config_file_is_named(tmp_path):
    path = str(tmp_path / "missing.yaml")

    assert error_for(path) == "%s: cannot read: No such file or directory" % path


def test_an_empty_config_file_is_refused(tmp_path):
    path = write_config(tmp_path, text="# nothing yet\n")

    assert error_for(path) == "%s: the file is empty" % path


def test_unparsable_yaml_is_refused_with_its_line_and_column(tmp_path):
    path = write_config(tmp_path, text="freeswitch:\n  password: x\n devices: {}\n")

    assert error_for(path) == (
        "%s: invalid YAML at line 3 column 2: expected <block end>, but found '<block mapping start>'" % path)


def test_a_duplicate_yaml_key_is_refused_not_silently_overwritten(tmp_path):
    path = write_config(tmp_path, text="freeswitch:\n  password: a\nfreeswitch:\n  password: b\n")

    assert error_for(path) == "%s: invalid YAML at line 3 column 1: duplicate key 'freeswitch'" % path


def test_an_octal_looking_yaml_number_is_refused_rather_than_misread(tmp_path):
    path = write_config(tmp_path, text=(
        "freeswitch: {password: x}\n"
        "voicemail_boxes:\n"
        "  box: {profile: default, domain: example.com, mailbox: 0123}\n"))

    assert error_for(path) == (
        "%s: invalid YAML at line 3 column 57: 0123 is not a plain decimal number "
        "(YAML would read it as 83); quote it if it is text" % path)


def test_a_config_that_is_not_a_mapping_is_refused(tmp_path):
    path = write_config(tmp_path, text="- freeswitch\n")

    assert error_for(path) == "%s: must be a mapping of settings, not a list" % path


def test_an_unknown_top_level_key_is_named(tmp_path):
    path = write_config(tmp_path, callflow_dir="callflows.d")

    assert error_for(path) == (
        "%s: unknown key 'callflow_dir' (known: freeswitch, switches, log_level, devices, voicemail_boxes, "
        "webhooks, callflows_dir, callflows, shutdown_grace, metrics, state_dir, hooks, routing, "
        "temporal_rules)" % path)


def test_an_unknown_key_inside_a_section_is_named(tmp_path):
    path = write_config(tmp_path, freeswitch={"pasword": "ClueCon"})

    assert error_for(path) == (
        "%s: freeswitch: unknown key 'pasword' (known: name, host, port, connect_timeout, command_timeout, "
        "idle_timeout, reconnect, limits, password, password_file, password_env)" % path)


def test_a_missing_freeswitch_section_is_refused(tmp_path):
    path = write_config(tmp_path, freeswitch=_DROP)

    assert error_for(path) == "%s: freeswitch: is required" % path


def test_a_port_out_of_range_is_refused(tmp_path):
    path = write_config(tmp_path, freeswitch=with_freeswitch(port=80210))

    assert error_for(path) == "%s: freeswitch.port: must be between 1 and 65535" % path


def test_a_zero_timeout_is_refused(tmp_path):
    path = write_config(tmp_path, freeswitch=with_freeswitch(command_timeout=0))

    assert error_for(path) == "%s: freeswitch.command_timeout: must be a number greater than 0" % path


def test_a_device_timeout_that_is_not_an_integer_is_refused(tmp_path):
    path = write_config(tmp_path, devices=with_device(timeout="20s"))

    assert error_for(path) == ("%s: devices.front_desk_device_id.timeout: must be an integer "
                               "(or a string holding one), not '20s'" % path)


def test_a_boolean_does_not_pass_as_an_integer(tmp_path):
    path = write_config(tmp_path, devices=with_device(timeout=True))

    assert error_for(path) == "%s: devices.front_desk_device_id.timeout: must be an integer" % path


def test_a_device_timeout_out_of_range_is_refused(tmp_path):
    path = write_config(tmp_path, devices=with_device(timeout=0))

    assert error_for(path) == "%s: devices.front_desk_device_id.timeout: must be between 1 and 3600" % path


def test_a_dial_string_with_a_line_break_is_refused(tmp_path):
    path = write_config(tmp_path, devices=with_device(dial_string="user/1000\nuser/1001"))

    assert error_for(path) == "%s: devices.front_desk_device_id.dial_string: must not contain whitespace" % path


def test_a_device_without_a_dial_string_is_refused(tmp_path):
    path = write_config(tmp_path, devices={"front_desk_device_id": {"timeout": 20}})

    assert error_for(path) == "%s: devices.front_desk_device_id.dial_string: is required" % path


def test_an_unknown_device_setting_is_named(tmp_path):
    path = write_config(tmp_path, devices=with_device(dialstring="user/1000"))

    assert error_for(path) == (
        "%s: devices.front_desk_device_id: unknown key 'dialstring' (known: dial_string, timeout)" % path)


def test_a_numeric_mailbox_becomes_a_string(tmp_path):
    boxes = {"front_desk_voicemail_box_id": {"profile": "default", "domain": "example.com", "mailbox": 1000}}

    config = load_config(write_config(tmp_path, voicemail_boxes=boxes))

    assert config.directory.voicemail_boxes["front_desk_voicemail_box_id"].mailbox == "1000"


def test_webhook_retries_that_are_not_an_integer_are_refused(tmp_path):
    path = write_config(tmp_path, webhooks={"retries": 2.5})

    assert error_for(path) == "%s: webhooks.retries: must be an integer" % path


def test_webhook_retries_above_four_are_refused(tmp_path):
    path = write_config(tmp_path, webhooks={"retries": 5})

    assert error_for(path) == "%s: webhooks.retries: must be between 0 and 4" % path


def test_an_unknown_log_level_is_refused(tmp_path):
    path = write_config(tmp_path, log_level="verbose")

    assert error_for(path) == "%s: log_level: must be one of debug, info, warning, error" % path


def test_a_missing_callflows_dir_is_named(tmp_path):
    path = write_config(tmp_path, callflows_dir="flows")

    assert error_for(path) == "%s: callflows_dir: cannot read directory %s: No such file or directory" % (
        path, tmp_path / "flows")


def test_a_config_without_any_callflow_is_refused(tmp_path):
    path = write_config(tmp_path, documents={}, callflows_dir=_DROP)

    assert error_for(path) == (
        "%s: no callflows: give callflows, or callflows_dir holding *.json documents" % path)


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


def test_an_unknown_module_is_refused_listing_the_known_ones(tmp_path):
    document = copy.deepcopy(FRONT_DESK)
    document["flow"]["children"]["_"]["module"] = "teleport"
    path = write_config(tmp_path, documents={"front-desk.json": document})

    assert error_for(path) == (
        "callflows.d/front-desk.json: flow.children._.module: "
        "unknown module 'teleport' (known: %s)" % ", ".join(sorted(REGISTRY)))
    assert "device, hangup, menu" in error_for(path)


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


# --- the real command -----------------------------------------------------------------------


def run_check(config_path, cwd):
    return subprocess.run([sys.executable, "-m", "callflowd", "check", "-c", str(config_path)],
                          cwd=cwd, capture_output=True, text=True, timeout=60)


def test_callflowd_check_accepts_the_shipped_example(tmp_path):
    result = run_check(EXAMPLE_CONFIG, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("config ok: ")
    assert "5 callflows, 4 numbers" in result.stdout
    assert result.stderr == ""


def test_callflowd_check_prints_one_line_and_exits_2_on_a_bad_callflow(tmp_path):
    path = write_config(tmp_path, documents={"front-desk.json": front_desk(http_verb="put")})

    result = run_check(path, cwd=tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "callflowd: callflows.d/front-desk.json: flow.children._.data.http_verb: must be one of get, post\n")


def test_callflowd_check_prints_no_traceback_for_unparsable_yaml(tmp_path):
    path = write_config(tmp_path, text="freeswitch: [\n")

    result = run_check(path, cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr == (
        "callflowd: %s: invalid YAML at line 2 column 1: expected the node content, but found '<stream end>'\n"
        % path)


def test_a_webhook_uri_with_a_newline_is_refused(tmp_path):
    path = write_config(tmp_path, documents={"x.json": front_desk(uri="http://x/hook\n")})

    assert error_for(path) == (
        "callflows.d/x.json: flow.children._.data.uri: must not contain spaces or control characters")


def test_shutdown_grace_defaults_to_30_seconds_and_is_bounded(tmp_path):
    assert load_config(write_config(tmp_path)).shutdown_grace == 30.0
    assert load_config(write_config(tmp_path, shutdown_grace=2.5)).shutdown_grace == 2.5
    path = write_config(tmp_path, shutdown_grace=7200)
    assert error_for(path) == "%s: shutdown_grace: must be at most 3600 seconds" % path
