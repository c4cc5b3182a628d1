"""Two daemons on the real switch sharing one outbox in PostgreSQL: the server restarted while calls
run, then one daemon killed, and still every call's webhook reaches the receiver, once per call.

The receiver is down the whole time the calls run, so every webhook waits in the outbox; the
database server crashes and comes back in the middle of the calls (webhooks accepted meanwhile
wait in each daemon's local SQLite outbox and move back); then one daemon is SIGKILLed with its
webhooks still undelivered, and the other delivers them once their lease runs out.
"""

import gevent
import psycopg
import pytest

from tests.doubles.postgres import PostgresServer
from tests.realswitch.daemon import FRONT_DESK, DaemonProcess, front_desk_flow
from tests.realswitch.test_cluster_on_real_switch import (
    CALLER, LEASE, each_call_had_one_bridge_one_voicemail_one_webhook, parked_calls,
    wait_until, webhooks_by_call)

pytestmark = pytest.mark.timeout(240)

CALLS = 20


@pytest.fixture
def postgres():
    server = PostgresServer()
    server.start()
    yield server
    server.destroy()


def shared_rows(url):
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return dict(conn.execute("SELECT owner, count(*) FROM callflowd_outbox GROUP BY owner").fetchall())
    except psycopg.OperationalError:
        return None  # the server is away


def test_the_database_restarted_and_a_daemon_killed_while_calls_run_lose_no_webhook(
        tmp_path, esl, switch, sipp, receiver, postgres):
    started = []

    def start(name):
        workdir = tmp_path / name
        workdir.mkdir()
        daemon = DaemonProcess(workdir, esl, {"front-desk": front_desk_flow(receiver.url("/missed"))},
                               log_level="info",
                               cluster={"name": name, "lease": LEASE, "outbox": postgres.url})
        started.append(daemon)
        daemon.start()
        daemon.wait_for_line(r"switch freeswitch: link up")
        return daemon

    try:
        first, second = start("cf-a"), start("cf-b")
        receiver.stop()  # refused: every webhook waits in the outbox
        since = len(switch.events)
        sipp.register("1000")
        phone = sipp.phone("uas_busy.xml", calls=CALLS)
        callers = sipp.callers(FRONT_DESK, CALLER, calls=CALLS, rate=4, limit=CALLS)
        gevent.sleep(2)
        postgres.crash()  # no checkpoint, no goodbye to the clients
        gevent.sleep(3)
        postgres.start()
        sipp.finish(callers, timeout=90)
        sipp.finish(phone, timeout=30)
        wait_until(lambda: len(parked_calls(switch, since)) == CALLS and switch.channel_count() == 0, 60,
                   "the %d calls to end" % CALLS)
        spilled = [d for d in (first, second) if d.matching(r"shared webhook outbox .* unreachable")]
        assert spilled, "no daemon noticed the database away: the test proved less than it says"
        wait_until(lambda: sum((shared_rows(postgres.url) or {}).values()) == CALLS, 30,
                   "every call's webhook in the shared outbox")

        held = shared_rows(postgres.url)
        assert held.get("cf-a"), "cf-a won no call: the test proved less than it says (%s)" % held
        first.kill()  # SIGKILL, its webhooks undelivered: cf-b must take them
        receiver.start()
        wait_until(lambda: set(parked_calls(switch, since)) <= set(webhooks_by_call(receiver)), 60,
                   "a webhook for every call")
        wait_until(lambda: shared_rows(postgres.url) == {}, 30, "the shared outbox to empty")
        uuids = parked_calls(switch, since)
        each_call_had_one_bridge_one_voicemail_one_webhook(switch, receiver, since, uuids)
        taken = second.matching(r"took over \d+ undelivered webhooks of daemon cf-a")
        assert sum(int(line.split("took over ")[1].split()[0]) for line in taken) == held["cf-a"]
    finally:
        for daemon in started:
            if not daemon.killed:
                daemon.stop(timeout=40)
