"""The whole config through ``load_config`` and ``callflowd check``: the shipped example loads, a bad one is one line.

The helpers here (``write_config``: the good example with one thing changed, in
``tmp_path``; ``error_for``: the one-line message) serve the tests of each part:
``test_config_settings.py``, ``test_flow_parser.py``, ``test_config_limits.py``...
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
    assert config.directory.webhooks.retries == 3
    assert [flow.id for flow in config.callflows] == [
        "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", "7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d", "feature-codes", "front-desk",
        "main-menu", "no-match", "office-hours", "6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c"]
    assert config.directory.account.timezone == "America/New_York"
    assert [device.dial_string for device in config.directory.devices_of("7c1f0e2d3b4a59687a6b5c4d3e2f1a0b")] == [
        "user/1010@example.com", "user/1011@example.com"]
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
    assert webhook.data.http_verb == "get"  # Kazoo 4.3's default (kzd_webhook:verb/1)
    assert webhook.data.retry.total == 2  # retries: 3 attempts in all
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
    assert config.callflows[0].flow.child("_").data.retry.total == 3  # webhooks.retries: 4 attempts


# --- the real command -----------------------------------------------------------------------


def run_check(config_path, cwd):
    return subprocess.run([sys.executable, "-m", "callflowd", "check", "-c", str(config_path)],
                          cwd=cwd, capture_output=True, text=True, timeout=60)


def test_callflowd_check_accepts_the_shipped_example(tmp_path):
    result = run_check(EXAMPLE_CONFIG, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("config ok: ")
    assert "8 callflows, 6 numbers" in result.stdout
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
