"""Two ``callflowd run`` processes over one shared outbox (PostgreSQL): what one accepted, the other delivers.

The daemons are real processes on the simulator, named apart (``cluster.name``),
with the outbox in ``cluster.outbox``. The receiver records every request
before it answers, so a request that arrived just before a kill counts: it may
come again after the takeover, but only with the same ``X-Callflowd-Delivery`` id.
"""

import gevent
import psycopg
import pytest

from callflowd.demo.receiver import WebhookReceiver, free_port
from callflowd.simulator import Scenario
from tests.doubles.process import DaemonProcess
from tests.harness import FRONT_DESK, write_config
from tests.test_outbox_durability import ten_webhooks_flow

pytestmark = pytest.mark.timeout(120)

CALLS = 20
NODES = 10
WEBHOOKS = CALLS * NODES
LEASE = 1


@pytest.fixture
def daemons():
    started = []

    def start(config):
        daemon = DaemonProcess(config)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


def config_for(tmp_path, switch, name, uri, url):
    folder = tmp_path / name
    folder.mkdir()
    return write_config(folder, switch, {"ten": ten_webhooks_flow(uri)},
                        webhooks={"timeout": 5, "concurrency_per_endpoint": 8},
                        cluster={"name": name, "lease": LEASE, "outbox": url})


def shared_rows(url):
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT owner, count(*) FROM callflowd_outbox GROUP BY owner").fetchall()


def wait_for_shared_rows(url, count, timeout=60):
    """The daemons are other processes: the shared table is what we can observe, so poll it."""
    with gevent.Timeout(timeout, TimeoutError("the shared outbox never held %d rows" % count)):
        while sum(n for _, n in shared_rows(url)) < count:
            gevent.sleep(0.05)


def distinct_ids(receiver):
    return {request.header("X-Callflowd-Delivery") for request in receiver.requests}


def test_a_daemon_killed_with_webhooks_accepted_has_them_delivered_by_its_peer_once_each(
        tmp_path, switch, shared_url, daemons):
    port = free_port()
    uri = "http://127.0.0.1:%d/hook" % port  # the receiver is down: every webhook waits
    first = daemons(config_for(tmp_path, switch, "daemon-a", uri, shared_url))
    first.wait_for("webhook dispatcher started")
    calls = [switch.place_call(FRONT_DESK, caller_id_number="+1555000%04d" % n, scenario=Scenario())
             for n in range(CALLS)]
    for call in calls:
        call.wait_ended(60)
    wait_for_shared_rows(shared_url, WEBHOOKS)
    assert shared_rows(shared_url) == [("daemon-a", WEBHOOKS)]
    first.kill()  # SIGKILL: its leases are never given back

    receiver = WebhookReceiver(port=port)
    receiver.start()
    try:
        second = daemons(config_for(tmp_path, switch, "daemon-b", uri, shared_url))
        with gevent.Timeout(60, TimeoutError("not every webhook arrived")):
            while len(distinct_ids(receiver)) < WEBHOOKS:
                receiver.wait_for(len(receiver.requests) + 1, timeout=60)
        by_id = {}
        for request in receiver.requests:
            fields = request.form or request.query  # the verb is the flow's default
            key = (fields["call_id"][0], fields["node"][0])
            by_id.setdefault(request.header("X-Callflowd-Delivery"), set()).add(key)
        assert all(len(keys) == 1 for keys in by_id.values())  # one id, one webhook
        assert len({key for keys in by_id.values() for key in keys}) == WEBHOOKS
        with gevent.Timeout(30, TimeoutError("the shared outbox did not empty")):
            while shared_rows(shared_url):
                gevent.sleep(0.1)
        taken = [line for line in second.lines if "undelivered webhooks of daemon daemon-a" in line]
        assert sum(int(line.split("took over ")[1].split()[0]) for line in taken) == WEBHOOKS
    finally:
        receiver.stop()
