"""The shared outbox (PostgreSQL): what one daemon accepted, another delivers; a server outage loses nothing.

Dispatchers here are the daemon's own (``WebhookDispatcher`` over ``SpillingStore``
over ``PostgresStore``), against a real PostgreSQL server (tests/doubles/postgres.py)
and a real HTTP receiver. A daemon "dies" by having its greenlets killed and its
connection dropped without giving its leases back, as SIGKILL would leave it.
"""

import contextlib
import io
import time

import psycopg
import pytest

from callflowd import metrics
from callflowd.config.model import WebhookSettings
from callflowd.demo.receiver import WebhookReceiver, free_port
from callflowd.retry import Retry
from callflowd.webhooks.dispatcher import WebhookDispatcher
from callflowd.webhooks.pgstore import PostgresStore
from callflowd.webhooks.request import WebhookRequest
from callflowd.webhooks.spill import SpillingStore
from callflowd.webhooks.store import OutboxStore

pytestmark = pytest.mark.timeout(60)

LEASE = 1.0


@pytest.fixture
def daemons(tmp_path, shared_url):
    made = []

    def make(name, lease=LEASE):
        store = SpillingStore(PostgresStore(shared_url, name, lease=lease),
                              OutboxStore(str(tmp_path / name)))
        dispatcher = WebhookDispatcher(WebhookSettings(timeout=2.0), str(tmp_path / name), store=store,
                                       rand=lambda: 0.5)
        dispatcher.start()
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.stop(timeout=1)


def webhook(uri, call_id, retries=3):
    return WebhookRequest(call_id=call_id, uri=uri, method="post", fields=(("call_id", call_id),),
                          retry=Retry(total=retries, backoff_factor=0.05))


def die(dispatcher):
    """As SIGKILL leaves a daemon: nothing more sent or renewed, leases not given back."""
    dispatcher.outbox.flush(5)
    dispatcher._group.kill(block=True)
    dispatcher._attempts.kill(block=True)
    dispatcher.outbox.store.shared._drop_connection()


def rows_in(url):
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT id, owner FROM callflowd_outbox ORDER BY seq").fetchall()


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.05)  # polling the database: there is no event to wait on


def test_webhooks_a_dead_daemon_accepted_are_delivered_by_a_live_one_once_each(daemons, shared_url, logs):
    port = free_port()
    down = "http://127.0.0.1:%d/hook" % port  # nobody listens yet: refused
    first = daemons("daemon-a")
    requests = [webhook(down, "call-%d" % i) for i in range(5)]
    for request in requests:
        assert first.submit(request)
    first.outbox.flush(5)
    assert {owner for _, owner in rows_in(shared_url)} == {"daemon-a"}
    die(first)

    receiver = WebhookReceiver(port=port)
    receiver.start()
    try:
        second = daemons("daemon-b")
        got = receiver.wait_for(5, timeout=LEASE + 10)
        assert sorted(r.header("X-Callflowd-Delivery") for r in got) == sorted(
            r.delivery_id for r in requests)
        logs.wait_for("took over 5 undelivered webhooks of daemon daemon-a", timeout=5)
        wait_until(lambda: rows_in(shared_url) == [], 5, "the delivered rows to be deleted")
        assert second.stats.delivered == 5
    finally:
        receiver.stop()


def test_a_live_daemon_keeps_its_rows_while_it_renews_its_lease(daemons, shared_url, logs):
    port = free_port()
    first = daemons("daemon-a")
    for i in range(3):
        first.submit(webhook("http://127.0.0.1:%d/hook" % port, "call-%d" % i, retries=5))
    first.outbox.flush(5)
    second = daemons("daemon-b")
    time.sleep(LEASE * 3)  # three leases: a claim would have happened by now if a lease lapsed
    assert {owner for _, owner in rows_in(shared_url)} == {"daemon-a"}
    assert second.stats.accepted == 0
    assert not logs.matching("took over")


def test_a_clean_stop_gives_the_rows_to_a_peer_at_once(daemons, shared_url, logs):
    port = free_port()
    first = daemons("daemon-a", lease=30.0)  # a lease far longer than the test: only release helps
    for i in range(3):
        first.submit(webhook("http://127.0.0.1:%d/hook" % port, "call-%d" % i, retries=5))
    first.outbox.flush(5)
    first.stop(timeout=0.5)
    receiver = WebhookReceiver(port=port)
    receiver.start()
    try:
        daemons("daemon-b")
        assert len(receiver.wait_for(3, timeout=10)) == 3
    finally:
        receiver.stop()


def test_the_server_away_spills_to_the_local_outbox_and_moves_back_losing_nothing(
        daemons, postgres, shared_url, receiver, logs, tmp_path):
    dispatcher = daemons("daemon-a")
    receiver.hold()  # answers wait: rows stay in the outbox while the server goes away
    for i in range(10):
        assert dispatcher.submit(webhook(receiver.url("/hook"), "before-%d" % i))
    dispatcher.outbox.flush(5)
    postgres.crash()
    for i in range(10):
        assert dispatcher.submit(webhook(receiver.url("/hook"), "during-%d" % i))
    dispatcher.outbox.flush(5)
    logs.wait_for("shared webhook outbox", timeout=5)
    assert logs.matching("unreachable")
    store = dispatcher.outbox.store
    assert store.spilled == 10
    assert metrics.REGISTRY.get_sample_value("callflowd_outbox_backend_up", {"backend": "postgresql"}) == 0
    assert metrics.REGISTRY.get_sample_value("callflowd_outbox_spilled") == 10

    postgres.start()
    logs.wait_for("moved 10 webhooks back from the local outbox", timeout=LEASE + 10)
    assert store.spilled == 0
    assert metrics.REGISTRY.get_sample_value("callflowd_outbox_backend_up", {"backend": "postgresql"}) == 1
    receiver.release()
    got = receiver.wait_for(20, timeout=15)
    assert len({r.header("X-Callflowd-Delivery") for r in got}) == 20
    wait_until(lambda: rows_in(shared_url) == [], 10, "the outbox to empty")


def test_a_daemon_started_while_the_server_is_away_spills_then_moves_back(
        postgres, shared_url, tmp_path, receiver, logs):
    postgres.stop()
    store = SpillingStore(PostgresStore(shared_url, "daemon-a", lease=LEASE),
                          OutboxStore(str(tmp_path / "a")))
    dispatcher = WebhookDispatcher(WebhookSettings(timeout=2.0), str(tmp_path / "a"), store=store)
    dispatcher.start()
    try:
        receiver.hold()
        assert dispatcher.submit(webhook(receiver.url("/hook"), "call-1"))
        dispatcher.outbox.flush(5)
        assert store.spilled == 1 and not store.up
        postgres.start()
        logs.wait_for("moved 1 webhooks back from the local outbox", timeout=LEASE + 10)
        receiver.release()
        [got] = receiver.wait_for(1, timeout=10)
        assert got.header("X-Callflowd-Delivery")
    finally:
        dispatcher.stop(timeout=1)


# -- configuration: cluster.outbox -------------------------------------------------------------


def check(tmp_path, cluster, webhooks=None):
    """``callflowd check`` on a config with this ``cluster:`` section: (exit status, stderr)."""
    import yaml

    from callflowd.cli import main

    config = {"freeswitch": {"host": "127.0.0.1", "port": 8021, "password": "ClueCon"},
              "callflows": [{"numbers": ["100"], "flow": {"module": "hangup"}}], "cluster": cluster, "state_dir": str(tmp_path / "state")}
    if webhooks:
        config["webhooks"] = webhooks
    path = tmp_path / "callflowd.yaml"
    path.write_text(yaml.safe_dump(config))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(["check", "-c", str(path)])
    return status, err.getvalue()


def test_cluster_outbox_takes_a_postgresql_url_or_a_file_holding_one(tmp_path):
    assert check(tmp_path, {"outbox": "postgresql://callflowd:pw@db1:5432/callflowd"})[0] == 0
    (tmp_path / "outbox.url").write_text("postgresql://callflowd:pw@db1/callflowd\n")
    assert check(tmp_path, {"outbox_file": "outbox.url"})[0] == 0


@pytest.mark.parametrize("cluster, webhooks, message", [
    ({"outbox": "mysql://db1/callflowd"}, None,
     "cluster.outbox: must be a postgresql:// URL (the shared webhook outbox)"),
    ({"outbox": "postgresql://db1:99999/x"}, None, "cluster.outbox: is not a valid URL"),
    ({"outbox": "postgresql://db1/x", "outbox_file": "f"}, None, "give at most one of outbox, outbox_file"),
    ({"outbox_file": "missing.url"}, None, "cluster.outbox_file: cannot read"),
    ({"outbox": "postgresql://db1/x"}, {"process": True}, "can't be used with cluster.outbox"),
])
def test_a_bad_cluster_outbox_is_one_line_naming_the_key_and_exit_2(tmp_path, cluster, webhooks, message):
    status, err = check(tmp_path, cluster, webhooks)
    assert status == 2
    assert message in err and err.count("\n") == 1
    assert "pw" not in err
