"""The ``callflowd`` command as an operator runs it: exit statuses and what it prints."""

import pathlib
import subprocess
import sys

import pytest

from callflowd.actions import REGISTRY

from tests.test_config import front_desk, write_config

pytestmark = pytest.mark.timeout(60)

REPO = pathlib.Path(__file__).resolve().parent.parent


def callflowd(*args):
    return subprocess.run([sys.executable, "-m", "callflowd", *args], capture_output=True, text=True,
                          timeout=50, cwd=REPO)


@pytest.mark.parametrize("scenario, outcome", [
    ("busy", "USER_BUSY"), ("no_answer", "NO_ANSWER"), ("answer", "stop")])
def test_demo_runs_the_example_and_exits_zero(scenario, outcome):
    result = callflowd("demo", "--scenario", scenario)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1. device    at flow" in result.stdout and "-> %s" % outcome in result.stdout
    assert "result: the" in result.stdout
    if scenario == "answer":
        assert "webhook request received" not in result.stdout
    else:
        assert "GET /frontdesk/missed_call" in result.stdout  # Kazoo's default verb
        assert "previous_outcome = %s" % outcome in result.stdout
        assert result.stdout.index("webhook   at flow.children._") < result.stdout.index("voicemail at")
    assert "Traceback" not in result.stderr


def test_check_accepts_the_example_config():
    result = callflowd("check", "-c", "config/callflowd.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("config ok: config/callflowd.yaml: 8 callflows")


def test_run_with_a_bad_config_exits_2_without_a_traceback(tmp_path):
    bad = tmp_path / "callflowd.yaml"
    bad.write_text("freeswitch: {password: x}\nwebhooks: {retries: many}\n")
    result = callflowd("run", "-c", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip() == ("callflowd: %s: webhooks.retries: must be an integer "
                                     "(or a string holding one), not 'many'" % bad)
    assert "Traceback" not in result.stderr


# Each bad input the issue names, through the real command: one line naming file and path, exit 2.
BAD_CONFIGS = {
    "unknown module's bad data": (
        {"numbers": ["1"], "flow": {"module": "conference", "data": []}}, "flow.data: must be an object"),
    "bad http_verb": (front_desk(http_verb="put"), "flow.children._.data.http_verb: must be one of get, post"),
    "non-object custom_data": (
        front_desk(custom_data=[1, 2]), "flow.children._.data.custom_data: must be an object"),
    "non-integer retries": (front_desk(retries="2x"), "flow.children._.data.retries: must be an integer "
                                                      "(or a string holding one), not '2x'"),
    "unknown device": (
        {"numbers": ["1"], "flow": {"module": "device", "data": {"id": "x"}}},
        "flow.data.id: unknown device 'x'"),
    "unknown voicemail box": (
        {"numbers": ["1"], "flow": {"module": "voicemail", "data": {"id": "x"}}},
        "flow.data.id: unknown voicemail box 'x'"),
    "unparsable JSON": ('{"numbers": ["1"],\n "flow": }', "invalid JSON at line 2 column 10: Expecting value"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_check_refuses_each_bad_callflow_with_its_path_and_exit_2(tmp_path, case):
    document, expected = BAD_CONFIGS[case]
    config = write_config(tmp_path, documents={"front-desk.json": document})
    result = callflowd("check", "-c", config)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == "callflowd: callflows.d/front-desk.json: %s\n" % expected


def test_check_lists_every_refused_document_and_every_warning(tmp_path):
    documents = {
        "a.json": front_desk(http_verb="put"),
        "b.json": {"numbers": ["2"], "flow": {"module": "device", "data": {"id": "x"}}},
        "c.json": {"numbers": ["3"], "flow": {"module": "conference", "data": {"id": "room"}}},
    }
    result = callflowd("check", "-c", write_config(tmp_path, documents=documents))
    assert result.returncode == 2
    assert result.stderr == (
        "callflowd: callflows.d/a.json: flow.children._.data.http_verb: must be one of get, post\n"
        "callflowd: callflows.d/b.json: flow.data.id: unknown device 'x'\n")

    good = tmp_path / "good"
    good.mkdir()
    result = callflowd("check", "-c", write_config(good, documents={"c.json": documents["c.json"]}))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == (
        "warning: callflows.d/c.json: flow.module: callflowd has no module 'conference': a call reaching "
        "this node goes on at _, as in Kazoo (known: %s)" % ", ".join(sorted(REGISTRY)))


def test_check_refuses_unparsable_yaml_with_its_place_and_exit_2(tmp_path):
    config = write_config(tmp_path, text="freeswitch:\n  port: [8021\n")
    result = callflowd("check", "-c", config)
    assert result.returncode == 2
    assert result.stderr.startswith("callflowd: %s: invalid YAML at line 3 column 1: " % config)
    assert "Traceback" not in result.stderr
