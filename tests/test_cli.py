"""The ``callflowd`` command as an operator runs it: exit statuses and what it prints."""

import pathlib
import subprocess
import sys

import pytest

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
        assert "POST /frontdesk/missed_call" in result.stdout
        assert "previous_outcome = %s" % outcome in result.stdout
        assert result.stdout.index("webhook   at flow.children._") < result.stdout.index("voicemail at")
    assert "Traceback" not in result.stderr


def test_check_accepts_the_example_config():
    result = callflowd("check", "-c", "config/callflowd.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("config ok: config/callflowd.yaml: 1 callflows")


def test_run_with_a_bad_config_exits_2_without_a_traceback(tmp_path):
    bad = tmp_path / "callflowd.yaml"
    bad.write_text("freeswitch: {password: x}\nwebhooks: {retries: many}\n")
    result = callflowd("run", "-c", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip() == "callflowd: %s: webhooks.retries: must be an integer" % bad
    assert "Traceback" not in result.stderr
