"""The real-switch tier runs beside the default tier, in a pytest of its own.

Why: the real-switch tier (tests/realswitch, ~7 min) spends its time waiting on phones that
ring, leases that lapse and a receiver kept down for 90 s; the default tier (~6 min) is one
busy core. Run one after the other, CI took over 15 minutes; side by side it takes the longer
of the two. The README's test command stays one command: when the real-switch tier is on
(CALLFLOWD_REAL_FREESWITCH=1) and a run collects it beside other tests, its tests are handed
to a child ``python -m pytest`` started at once, the rest run here, and at the end the
child's report is printed and its failure fails this run.

CALLFLOWD_TIERS_IN_SERIES=1 runs everything in this one process instead (one report, no
child): for a loaded machine, or when reading one test's output as it runs.

A test that needs most of the 2 cores to itself (100 calls a second, 200 calls at once) is
marked ``@pytest.mark.needs_the_machine``: while one tier runs such a test, the other tier's
such tests wait (an flock on a file both runs share), so two bursts never meet. The lock is
held only by marked tests; everything else runs on.
"""

import contextlib
import fcntl
import os
import subprocess
import sys
import tempfile

import pytest

REALSWITCH = "tests/realswitch/"
CHILD = "CALLFLOWD_TIER_CHILD"
IN_SERIES = "CALLFLOWD_TIERS_IN_SERIES"
MACHINE_LOCK = "CALLFLOWD_TIERS_MACHINE_LOCK"  # the file both runs lock around marked tests
CHILD_LIMIT_SECONDS = 30 * 60  # the child's own tests time out long before this

_child = {}


def _beside(config, items):
    """The real-switch items to hand to a child run, or [] to run everything here."""
    if os.environ.get("CALLFLOWD_REAL_FREESWITCH") != "1" or os.environ.get(CHILD) \
            or os.environ.get(IN_SERIES) == "1" or config.option.collectonly:
        return []
    switch = [item for item in items if item.nodeid.startswith(REALSWITCH)]
    if not switch or len(switch) == len(items):
        return []
    return switch


def pytest_collection_modifyitems(session, config, items):
    switch = _beside(config, items)
    if not switch:
        return
    output = tempfile.TemporaryFile()
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    command += [item.nodeid for item in switch]  # as selected here (-k, a file, a test)
    selected = {item.nodeid for item in switch}
    lock = tempfile.NamedTemporaryFile(prefix="callflowd-tiers-", suffix=".lock")
    _child["lock"] = lock
    os.environ[MACHINE_LOCK] = lock.name  # this run's marked tests take it too
    env = dict(os.environ, **{CHILD: "1"})
    _child["process"] = subprocess.Popen(command, cwd=str(config.rootpath), env=env, stdout=output,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    _child["output"] = output
    _child["count"] = len(selected)
    items[:] = [item for item in items if item.nodeid not in selected]
    config.hook.pytest_deselected(items=switch)


def pytest_sessionfinish(session, exitstatus):
    process = _child.get("process")
    if process is None:
        return
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        process.kill()
    try:
        _child["status"] = process.wait(timeout=CHILD_LIMIT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        _child["status"] = process.wait()
    if _child["status"] != 0 and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    process = _child.get("process")
    if process is None:
        return
    output = _child["output"]
    output.seek(0)
    text = output.read().decode("utf-8", "replace")
    terminalreporter.write_sep("=", "real-switch tier (%d tests, run beside the tests above): exit %s"
                               % (_child["count"], _child.get("status")))
    terminalreporter.write(text if text.endswith("\n") else text + "\n")


@contextlib.contextmanager
def the_machine_to_ourselves(item):
    """Held around a ``needs_the_machine`` test while the tiers run side by side."""
    path = os.environ.get(MACHINE_LOCK)
    if path is None or item.get_closest_marker("needs_the_machine") is None:
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # blocks this whole process: it runs one test at a time
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    with the_machine_to_ourselves(item):
        return (yield)


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_the_machine: a burst that needs most of the machine; "
                            "never run beside another such test (tests/tiers.py)")
