"""The real-switch tier: tests against a running FreeSWITCH, on when CALLFLOWD_REAL_FREESWITCH=1.

Off (the default), every test here is skipped with one line saying how to turn it on,
so the README's test command passes on a machine with no switch. On, a switch that
does not answer is a failure, never a skip: CI must not pass by not testing.
"""

import os

import pytest

from tests.realswitch.daemon import DaemonProcess
from tests.realswitch.observer import SwitchObserver, SwitchUnreachable
from tests.realswitch.sipp import Sipp

ENABLE = "CALLFLOWD_REAL_FREESWITCH"
ADDRESS = "CALLFLOWD_REAL_FREESWITCH_ESL"
PASSWORD = "CALLFLOWD_REAL_FREESWITCH_PASSWORD"
SKIP_REASON = ("real-switch tier off: set %s=1 to run it against FreeSWITCH on 127.0.0.1:8021 "
               "(%s=host:port for another address; see docs/testing.md)" % (ENABLE, ADDRESS))

pytestmark = pytest.mark.timeout(120)



def pytest_runtest_setup(item):
    """Skipped here (not in a fixture) so pytest folds the whole tier into one summary line."""
    if os.environ.get(ENABLE) != "1":
        pytest.skip(SKIP_REASON)


def esl_settings():
    host, _, port = os.environ.get(ADDRESS, "127.0.0.1:8021").rpartition(":")
    return host or "127.0.0.1", int(port), os.environ.get(PASSWORD, "ClueCon")


@pytest.fixture(scope="session")
def esl():
    """(host, port, password) of the real switch."""
    return esl_settings()


@pytest.fixture(scope="session")
def observer(esl):
    """The test's own event-socket connection; no answer means failure, never a skip."""
    host, port, password = esl
    watcher = SwitchObserver(host, port, password)
    try:
        watcher.connect()
    except SwitchUnreachable as exc:
        pytest.fail("%s=1 but FreeSWITCH does not answer: %s" % (ENABLE, exc), pytrace=False)
    # Each bridged call takes two sessions; the default 30/s is plenty, but leave room.
    watcher.api("fsctl sps 200")
    yield watcher
    watcher.close()


@pytest.fixture
def switch(observer):
    """The observer, checked clean before the test and left clean after it."""
    leftover = observer.kill_all_channels()
    if leftover:
        observer.wait_no_channels()
    start = len(observer.events)
    observer.test_start = start
    yield observer
    left = observer.wait_no_channels(timeout=3)
    if left:
        observer.kill_all_channels()
        observer.wait_no_channels()
        pytest.fail("the test left %d channels on the switch (killed now)" % left, pytrace=False)


@pytest.fixture
def sipp(tmp_path):
    runner = Sipp(tmp_path)
    yield runner
    runner.stop_all()


@pytest.fixture
def start_daemon(tmp_path, esl):
    """Start a real ``callflowd run`` with the given callflows; stopped (exit 0 asserted) after."""
    started = []

    def start(documents, via=None, **settings):
        daemon = DaemonProcess(tmp_path, via or esl, documents, **settings)
        started.append(daemon)
        return daemon.start()

    yield start
    failures = []
    for daemon in started:  # every one is stopped, even when an earlier one failed
        if daemon.killed:
            continue
        status = daemon.stop()
        if status != 0:
            failures.append("callflowd exited with %s:\n%s" % (status, daemon.log()))
    assert not failures, "\n".join(failures)
