"""What a webhook's ``retries`` buys, against a real receiver: Kazoo's count of attempts, spent only
on a receiver that was reached; Kazoo's own rule with ``webhooks.retry_mode: kazoo``; and the
commit a call waits for before its flow moves on.
"""

import sqlite3
import time

import pytest

from callflowd.actions import webhook as webhook_action
from callflowd.config.model import BreakerSettings, Directory, WebhookSettings
from callflowd.demo.receiver import free_port
from callflowd.webhooks import dispatcher as dispatcher_module
from callflowd.webhooks.request import WebhookRequest
from callflowd.webhooks.store import FILENAME
from tests.test_webhook_delivery import make_dispatcher, settle  # noqa: F401 - a fixture

pytestmark = pytest.mark.timeout(30)

FAST = {"backoff_factor": 0.01, "backoff_max": 0.02}


def node_request(uri, retries, **settings):
    """The request a ``webhook`` node with ``retries`` makes (its Retry as the node parses it)."""
    raw = {"uri": uri, "http_verb": "post"}
    if retries is not None:
        raw["retries"] = retries
    data = webhook_action.Data.parse(raw, Directory(webhooks=WebhookSettings(**dict(FAST, **settings))))
    return WebhookRequest(call_id="c0ffee", uri=data.uri, method=data.http_verb, fields=(("a", "1"),),
                          retry=data.retry)


@pytest.mark.parametrize("retries, attempts", [
    (0, 1), (1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 5), (7, 5), (None, 3)])
def test_a_failing_receiver_gets_kazoos_number_of_attempts(receiver, make_dispatcher, logs, retries, attempts):
    receiver.respond_with(503)
    dispatcher = make_dispatcher(**FAST)
    request = node_request(receiver.url("/hook"), retries)
    dispatcher.submit(request)
    stats = settle(dispatcher, logs)

    assert (stats.delivered, stats.failed) == (0, 1)
    assert len(receiver.requests) == attempts
    assert {r.header("X-Callflowd-Delivery") for r in receiver.requests} == {request.delivery_id}
    assert [r.header("X-Callflowd-Attempt") for r in receiver.requests] == [str(n + 1) for n in range(attempts)]


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_a_server_error_or_a_not_now_spends_an_attempt_and_is_retried(receiver, make_dispatcher, logs, status):
    receiver.fail_next(1, status)
    dispatcher = make_dispatcher(**FAST)
    dispatcher.submit(node_request(receiver.url("/hook"), 2))
    stats = settle(dispatcher, logs)
    assert (stats.delivered, len(receiver.requests)) == (1, 2)


# -- webhooks.retry_mode: kazoo -------------------------------------------------------------


@pytest.fixture
def quick_kazoo_pause(monkeypatch):
    monkeypatch.setattr(dispatcher_module, "KAZOO_RETRY_PAUSE", 0.05)


@pytest.mark.parametrize("retries, attempts", [(0, 1), (2, 2), (7, 5)])
def test_kazoo_mode_spends_an_attempt_on_a_host_that_is_not_there_and_drops_after_the_last(
        make_dispatcher, logs, quick_kazoo_pause, retries, attempts):
    uri = "http://127.0.0.1:%d/hook" % free_port()
    dispatcher = make_dispatcher(retry_mode="kazoo", **FAST)
    dispatcher.submit(node_request(uri, retries, retry_mode="kazoo"))
    stats = settle(dispatcher, logs)
    assert (stats.failed, stats.expired) == (1, 0)
    assert logs.matching("webhook failed after %d attempt" % attempts)


def test_kazoo_mode_waits_two_seconds_between_attempts(make_dispatcher, logs):
    uri = "http://127.0.0.1:%d/hook" % free_port()
    dispatcher = make_dispatcher(retry_mode="kazoo")
    dispatcher.submit(node_request(uri, 3, retry_mode="kazoo"))
    line = logs.wait_for("(retry_mode kazoo)")
    assert "attempt 2 of 3 in 2s" in line  # webhooks_util:retry_hook/3: timer:sleep(2000)


def test_kazoo_mode_takes_an_answer_of_any_status_as_final(receiver, make_dispatcher, logs):
    receiver.respond_with(503)
    dispatcher = make_dispatcher(retry_mode="kazoo", **FAST)
    dispatcher.submit(node_request(receiver.url("/hook"), 5, retry_mode="kazoo"))
    stats = settle(dispatcher, logs)
    assert (stats.failed, len(receiver.requests)) == (1, 1)  # handle_resp/5 retries no answer


# -- the commit the call waits for ------------------------------------------------------------


def test_submit_committed_returns_once_the_webhook_is_on_disk(receiver, make_dispatcher, tmp_path):
    receiver.hold()  # nothing is delivered (and deleted) meanwhile
    dispatcher = make_dispatcher()
    request = node_request(receiver.url("/hook"), 3)
    started = time.monotonic()
    assert dispatcher.submit_committed(request) is True
    waited = time.monotonic() - started
    # another connection sees the row at once: a SIGKILL from here on finds it in the outbox
    with sqlite3.connect(str(tmp_path / "state" / FILENAME)) as db:
        assert db.execute("SELECT id FROM outbox").fetchall() == [(request.delivery_id,)]
    assert waited < 2.0  # a group commit, not a delivery
    receiver.release()


def test_a_refused_submit_does_not_wait(make_dispatcher):
    dispatcher = make_dispatcher(outbox_max=1)
    uri = "http://127.0.0.1:%d/hook" % free_port()
    assert dispatcher.submit_committed(node_request(uri, 3)) is True
    assert dispatcher.submit_committed(node_request(uri, 3)) is False  # full: logged, counted
    assert dispatcher.stats.dropped == 1


def test_a_webhook_held_back_by_an_open_breaker_expires_after_max_age_without_an_attempt(
        make_dispatcher, logs):
    uri = "http://127.0.0.1:%d/hook" % free_port()
    dispatcher = make_dispatcher(max_age=0.6, breaker=BreakerSettings(failures=1, pause=60, pause_max=60), **FAST)
    dispatcher.submit(node_request(uri, 3))
    logs.wait_for("breaker open")
    held = node_request(uri, 3)  # arrives while the breaker holds the receiver back: never tried
    dispatcher.submit(held)
    stats = settle(dispatcher, logs, count=2)
    assert (stats.expired, stats.failed, stats.delivered) == (2, 0, 0)
    [line] = [line for line in logs.matching("webhook dropped") if held.delivery_id in line]
    assert "0 attempts made" in line
