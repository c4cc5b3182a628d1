"""The real-switch tier run beside the loopback tier (tests/tiers.py): a failure there fails the run.

Each case is a small project of its own in tmp_path whose conftest loads tests/tiers.py, run
with a real ``python -m pytest``: what a user of the test command sees is its exit status and
its report.
"""

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

TIERS = pathlib.Path(__file__).with_name("tiers.py")

pytestmark = pytest.mark.timeout(120)


def project(tmp_path, switch_test_body):
    (tmp_path / "tests" / "realswitch").mkdir(parents=True)
    (tmp_path / "tests" / "conftest.py").write_text(textwrap.dedent("""\
        import importlib.util
        spec = importlib.util.spec_from_file_location("tiers", %r)
        tiers = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tiers)
        pytest_collection_modifyitems = tiers.pytest_collection_modifyitems
        pytest_sessionfinish = tiers.pytest_sessionfinish
        pytest_terminal_summary = tiers.pytest_terminal_summary
        """ % str(TIERS)))
    (tmp_path / "tests" / "test_loopback.py").write_text("def test_here():\n    assert True\n")
    (tmp_path / "tests" / "realswitch" / "test_switch.py").write_text(
        "import os\n\n\ndef test_on_the_switch():\n"
        "    assert os.environ.get('CALLFLOWD_TIER_CHILD') == '1'  # ran in the child\n\n\n"
        + switch_test_body + "\n")


def run(tmp_path, **env):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CALLFLOWD_")}
    environment.update(env)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests"], cwd=tmp_path,
                          env=environment, capture_output=True, text=True, timeout=100)


def test_a_failing_real_switch_test_run_beside_fails_the_run_and_is_reported(tmp_path):
    project(tmp_path, "def test_that_fails():\n    assert 1 == 2, 'the switch said no'")
    result = run(tmp_path, CALLFLOWD_REAL_FREESWITCH="1")
    assert result.returncode == 1, result.stdout
    assert "real-switch tier (2 tests, run beside the tests above): exit 1" in result.stdout
    assert "the switch said no" in result.stdout
    assert "1 failed, 1 passed" in result.stdout  # the child's own summary
    assert "1 passed, 2 deselected" in result.stdout  # this run's


def test_a_passing_real_switch_tier_run_beside_passes_the_run(tmp_path):
    project(tmp_path, "")
    result = run(tmp_path, CALLFLOWD_REAL_FREESWITCH="1")
    assert result.returncode == 0, result.stdout
    assert "real-switch tier (1 tests, run beside the tests above): exit 0" in result.stdout


def test_in_series_everything_runs_in_one_process(tmp_path):
    project(tmp_path, "")
    result = run(tmp_path, CALLFLOWD_REAL_FREESWITCH="1", CALLFLOWD_TIERS_IN_SERIES="1")
    assert "real-switch tier" not in result.stdout
    assert "1 failed, 1 passed" in result.stdout  # the switch test ran here, not in a child
