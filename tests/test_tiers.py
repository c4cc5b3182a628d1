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


def project(tmp_path, switch_test_body, loopback_test_body="def test_here():\n    assert True\n"):
    (tmp_path / "tests" / "realswitch").mkdir(parents=True)
    (tmp_path / "tests" / "conftest.py").write_text(textwrap.dedent("""\
        import importlib.util
        spec = importlib.util.spec_from_file_location("tiers", %r)
        tiers = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tiers)
        pytest_collection_modifyitems = tiers.pytest_collection_modifyitems
        pytest_sessionfinish = tiers.pytest_sessionfinish
        pytest_terminal_summary = tiers.pytest_terminal_summary
        pytest_configure = tiers.pytest_configure
        pytest_runtest_call = tiers.pytest_runtest_call
        """ % str(TIERS)))
    (tmp_path / "tests" / "test_loopback.py").write_text(loopback_test_body)
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


BURST = """import pytest, time, pathlib

@pytest.mark.needs_the_machine
def test_%s_burst():
    start = time.time()
    time.sleep(1.5)  # the burst itself: what must not meet the other tier's
    pathlib.Path(%r).write_text("%%r %%r" %% (start, time.time()))
"""


def test_two_bursts_marked_needs_the_machine_never_run_at_the_same_time(tmp_path):
    here, there = tmp_path / "loopback.times", tmp_path / "switch.times"
    project(tmp_path, BURST % ("switch", str(there)), BURST % ("loopback", str(here)))
    result = run(tmp_path, CALLFLOWD_REAL_FREESWITCH="1")
    assert result.returncode == 0, result.stdout
    (a_start, a_end), (b_start, b_end) = ([float(x) for x in path.read_text().split()] for path in (here, there))
    assert a_end <= b_start or b_end <= a_start, "the bursts overlapped: %s" % ((a_start, a_end, b_start, b_end),)
