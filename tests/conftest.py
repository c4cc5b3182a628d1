"""Test set-up: the whole test process runs under gevent, as the daemon does."""

from gevent import monkey

monkey.patch_all()

import pathlib  # noqa: E402

import pytest  # noqa: E402

from callflowd.demo.receiver import WebhookReceiver  # noqa: E402
from callflowd.simulator import FreeswitchSimulator  # noqa: E402
from tests.doubles.logwatch import LogWatcher  # noqa: E402
# The real-switch tier in a child pytest beside this one (tests/tiers.py says why).
from tests.tiers import (  # noqa: E402,F401
    pytest_collection_modifyitems, pytest_configure, pytest_runtest_call, pytest_sessionfinish,
    pytest_terminal_summary)

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures_dir():
    return FIXTURES


@pytest.fixture
def switch():
    """The built-in FreeSWITCH simulator on 127.0.0.1:0, at 100x speed."""
    simulator = FreeswitchSimulator(time_scale=0.01)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def receiver():
    """A real HTTP server on 127.0.0.1:0 that records the webhooks it gets."""
    server = WebhookReceiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server (tests/doubles/postgres.py), one for the session."""
    from tests.doubles.postgres import PostgresServer

    server = PostgresServer()
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def shared_url(postgres):
    """The server's URL, running (a test may have stopped it) with no outbox table yet."""
    import psycopg

    try:
        psycopg.connect(postgres.url, connect_timeout=2).close()
    except psycopg.OperationalError:
        postgres.start()
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS callflowd_outbox")
    return postgres.url


@pytest.fixture
def logs():
    """Every callflowd log line, and a way to wait for one."""
    with LogWatcher() as watcher:
        yield watcher
