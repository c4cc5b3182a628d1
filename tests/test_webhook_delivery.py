"""Webhook delivery through the durable outbox, against a real receiver over loopback.

Nothing here mocks requests or SQLite. The receiver refuses, fails, hangs, drips
or succeeds as told; the tests synchronise on its arrivals and on the
dispatcher's log lines and counters, never on sleeps.
"""

import base64
import dataclasses
import hashlib
import hmac
import json
import logging
import socket
import ssl
import sqlite3
import time
import urllib.parse

import gevent
import gevent.server
import pytest

from callflowd import __version__, metrics
from callflowd.config.model import WebhookSettings
from callflowd.demo.receiver import WebhookReceiver, free_port
from callflowd.retry import Retry
from callflowd.webhooks import client as client_module
from callflowd.webhooks import delivery, wire
from callflowd.webhooks import dispatcher as dispatcher_module
from callflowd.webhooks.breaker import BreakerSettings
from callflowd.webhooks.delivery import Outcome
from callflowd.webhooks.dispatcher import WebhookDispatcher, make_session
from callflowd.webhooks.request import WebhookRequest
from callflowd.webhooks.store import FILENAME

pytestmark = pytest.mark.timeout(20)

FIELDS = (
    ("call_id", "c0ffee"),
    ("caller_id_name", "Ann & Bob = friends"),
    ("caller_id_number", "+15551234567"),
    ("empty", ""),
    ("accent", "Zoë"),
)


@pytest.fixture
def make_dispatcher(tmp_path):
    made = []

    def make(state_dir=None, rand=lambda: 0.5, clock=time.time, on_attempt=(), **settings):
        settings.setdefault("timeout", 2.0)
        dispatcher = WebhookDispatcher(WebhookSettings(**settings), str(state_dir or tmp_path / "state"),
                                       rand=rand, clock=clock, on_attempt=on_attempt)
        dispatcher.start()
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.stop(timeout=1)


def webhook(uri, method="post", fields=FIELDS, retries=2, call_id="c0ffee", **options):
    retry = {key: options.pop(key) for key in ("backoff_factor", "backoff_max", "jitter") if key in options}
    retry.setdefault("backoff_factor", 0.05)
    return WebhookRequest(call_id=call_id, uri=uri, method=method, fields=tuple(fields),
                          retry=Retry(total=retries, **retry), **options)


def settle(dispatcher, logs, count=1, timeout=10):
    """Wait until ``count`` webhooks are finished (delivered, failed or expired)."""
    def finished():
        stats = dispatcher.stats
        return stats.delivered + stats.failed + stats.expired >= count
    logs.wait_until(finished, timeout, "%d webhooks finished" % count)
    return dispatcher.stats


def rows(state_dir):
    with sqlite3.connect(str(state_dir / FILENAME)) as db:
        return db.execute("SELECT id, attempts FROM outbox").fetchall()


# -- the wire format ----------------------------------------------------------------


def test_post_sends_the_fields_as_a_form_body_with_a_delivery_id(receiver, make_dispatcher, logs):
    dispatcher = make_dispatcher()
    request = webhook(receiver.url("/hooks/front-desk"))
    assert dispatcher.submit(request)

    [got] = receiver.wait_for(1)
    assert got.method == "POST"
    assert got.path == "/hooks/front-desk"
    assert got.header("Content-Type") == "application/x-www-form-urlencoded"
    assert got.body == urllib.parse.urlencode(FIELDS).encode("ascii")
    assert got.form == {name: [value] for name, value in FIELDS}
    assert got.header("User-Agent") == "callflowd/%s" % __version__
    assert got.header("X-Callflowd-Delivery") == request.delivery_id
    assert got.header("X-Callflowd-Signature") is None  # no secret configured


def test_get_sends_the_fields_as_a_query_string_after_any_query_in_the_uri(receiver, make_dispatcher):
    dispatcher = make_dispatcher()
    dispatcher.submit(webhook(receiver.url("/hook?token=s3cret"), method="get"))

    [got] = receiver.wait_for(1)
    assert got.method == "GET"
    assert got.query_string == "token=s3cret&" + urllib.parse.urlencode(FIELDS)
    assert got.body == b""


def test_a_get_without_a_query_in_the_uri_gets_one(receiver, make_dispatcher):
    dispatcher = make_dispatcher()
    dispatcher.submit(webhook(receiver.url("/hook"), method="get", fields=[("a", "1")]))
    [got] = receiver.wait_for(1)
    assert got.query_string == "a=1"


def test_the_json_format_posts_the_fields_as_one_json_object(receiver, make_dispatcher):
    dispatcher = make_dispatcher()
    dispatcher.submit(webhook(receiver.url("/hook"), format="json"))

    [got] = receiver.wait_for(1)
    assert got.header("Content-Type") == "application/json"
    assert json.loads(got.body.decode("utf-8")) == dict(FIELDS)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_answer_is_a_delivery(receiver, make_dispatcher, status, logs):
    receiver.respond_with(status)
    dispatcher = make_dispatcher()
    dispatcher.submit(webhook(receiver.url("/hook")))
    stats = settle(dispatcher, logs)

    assert (stats.delivered, stats.failed, stats.retried) == (1, 0, 0)
    line = logs.wait_for("webhook delivered")
    assert line.startswith("call c0ffee: ")
    assert "answered %d" % status in line and "after 1 attempt" in line


# -- retried, by the rules ---------------------------------------------------------------


def test_503_then_200_is_delivered_on_the_second_attempt_with_the_same_delivery_id(
        receiver, make_dispatcher, logs):
    receiver.fail_next(1, status=503)
    dispatcher = make_dispatcher()
    dispatcher.submit(webhook(receiver.url("/hook")))
    stats = settle(dispatcher, logs)

    first, second = receiver.requests
    assert first.header("X-Callflowd-Delivery") == second.header("X-Callflowd-Delivery")
    assert (first.header("X-Callflowd-Attempt"), second.header("X-Callflowd-Attempt")) == ("1", "2")
    assert (stats.delivered, stats.failed, stats.retried) == (1, 0, 1)
    assert logs.matching("webhook sent, no good answer (503 service unavailable)")
    assert logs.matching("after 2 attempts")


def test_an_observer_is_told_every_attempts_outcome_and_a_failing_one_stops_nothing(
        receiver, make_dispatcher, logs):
    seen = []

    def broken(request, result):
        raise RuntimeError("observer bug")

    receiver.fail_next(1, status=503)
    dispatcher = make_dispatcher(on_attempt=[broken, lambda request, result: seen.append((request, result))])
    request = webhook(receiver.url("/hook"))
    dispatcher.submit(request)
    stats = settle(dispatcher, logs)

    assert [(r.delivery_id, result.outcome, result.status) for r, result in seen] == [
        (request.delivery_id, Outcome.NO_ANSWER, 503), (request.delivery_id, Outcome.DELIVERED, 200)]
    assert (stats.delivered, stats.retried) == (1, 1)
    assert logs.matching("an observer of webhook attempts failed; delivery goes on")


@pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
def test_the_statuses_that_mean_not_now_are_retried(receiver, make_dispatcher, status, logs):
    receiver.fail_next(1, status=status)
    dispatcher = make_dispatcher()
    dispatcher.submit(webhook(receiver.url("/hook")))
    assert settle(dispatcher, logs).delivered == 1
    assert len(receiver.requests) == 2


def test_429_with_retry_after_waits_as_long_as_the_receiver_asked(receiver, make_dispatcher, logs):
    receiver.fail_next(1, status=429, headers=[("Retry-After", "1")])
    dispatcher = make_dispatcher()
    dispatcher.submit(webhook(receiver.url("/hook"), backoff_factor=0.01))
    settle(dispatcher, logs)

    first, second = receiver.requests
    assert second.received_at - first.received_at >= 0.95  # not the 0.01 s back-off
    assert logs.matching("retry 1 of 2 in 1.00s (Retry-After)")


@pytest.mark.parametrize("status, phrase", [(400, "bad request"), (404, "not found"), (410, "gone")])
def test_an_answer_that_means_never_is_not_retried(receiver, make_dispatcher, status, phrase, logs):
    receiver.respond_with(status)
    dispatcher = make_dispatcher()
    dispatcher.submit(webhook(receiver.url("/missing"), retries=4))
    stats = settle(dispatcher, logs)

    assert len(receiver.requests) == 1
    assert (stats.delivered, stats.failed, stats.retried) == (0, 1, 0)
    line = logs.wait_for("webhook failed")
    assert "failed after 1 attempt: %d %s (rejected)" % (status, phrase) in line


def test_a_redirect_is_not_followed(receiver, make_dispatcher, logs):
    receiver.respond_with(302)
    dispatcher = make_dispatcher()
    dispatcher.submit(webhook(receiver.url("/hook")))
    assert settle(dispatcher, logs).failed == 1
    assert len(receiver.requests) == 1


def test_a_receiver_that_comes_up_later_gets_the_webhook_as_its_first_attempt(make_dispatcher, logs):
    receiver = WebhookReceiver(port=free_port())  # down: its port is closed
    try:
        dispatcher = make_dispatcher()
        dispatcher.submit(webhook(receiver.url("/hook"), retries=2, backoff_factor=0.5))
        logs.wait_for("webhook not sent (connection refused)")
        receiver.start()
        stats = settle(dispatcher, logs)
        [got] = receiver.requests
    finally:
        receiver.stop()
    assert (stats.delivered, stats.failed, stats.retried) == (1, 0, 1)
    assert logs.matching("it waits in the outbox and tries again in 0.50s (attempts spent: 0 of 3)")
    assert got.header("X-Callflowd-Attempt") == "1"  # a host that wasn't there spent no attempt


def test_a_host_that_is_never_available_spends_no_attempt_and_expires_after_max_age(make_dispatcher, logs,
                                                                                   tmp_path):
    uri = "http://127.0.0.1:%d/hook" % free_port()
    dispatcher = make_dispatcher(max_age=0.5)
    dispatcher.submit(webhook(uri, retries=0, call_id="dead-beef", backoff_factor=0.05, backoff_max=0.1))
    stats = settle(dispatcher, logs)

    # with retries 0 (one attempt in all) it was tried again and again, never spending it
    assert (stats.delivered, stats.failed, stats.expired) == (0, 0, 1)
    assert stats.retried >= 3
    [expired] = [r for r in logs.records if "webhook dropped" in r.getMessage()]
    assert expired.levelno == logging.WARNING
    assert expired.getMessage().startswith(
        "call dead-beef: webhook dropped: its receiver was not available for 0.5s (webhooks.max_age): "
        "POST %s (delivery " % uri)
    dispatcher.outbox.flush(5)
    assert rows(tmp_path / "state") == []
    assert metrics.WEBHOOKS_EXPIRED._value.get() >= 1


def test_a_receiver_that_answers_503_fails_after_its_attempts(receiver, make_dispatcher, logs):
    receiver.respond_with(503)
    dispatcher = make_dispatcher()
    dispatcher.submit(webhook(receiver.url("/hook"), retries=2, call_id="dead-beef"))
    stats = settle(dispatcher, logs)

    assert (stats.delivered, stats.failed, stats.retried) == (0, 1, 2)
    assert [r.header("X-Callflowd-Attempt") for r in receiver.requests] == ["1", "2", "3"]
    [failure] = [r for r in logs.records if "webhook failed" in r.getMessage()]
    assert failure.levelno == logging.WARNING
    assert failure.getMessage().startswith(
        "call dead-beef: webhook failed after 3 attempts: 503 service unavailable (sent, no good answer): "
        "POST %s" % receiver.url("/hook"))


def test_a_read_timeout_is_retried_as_sent_without_an_answer(receiver, make_dispatcher, logs):
    receiver.hold()  # the first request is received but not answered
    dispatcher = make_dispatcher(timeout=0.2)
    dispatcher.submit(webhook(receiver.url("/hook")))
    logs.wait_for("webhook sent, no good answer (read timeout)")
    receiver.release()
    assert settle(dispatcher, logs).delivered == 1


def test_a_connection_closed_without_an_answer_is_sent_without_an_answer():
    def hang_up(sock, address):
        sock.recv(65536)
        sock.close()

    server = gevent.server.StreamServer(("127.0.0.1", 0), hang_up)
    server.start()
    try:
        result = delivery.attempt(delivery.make_client(), webhook("http://127.0.0.1:%d/" % server.server_port), 1.0)
    finally:
        server.stop()
    assert result.outcome is Outcome.NO_ANSWER
    assert result.reason in ("connection closed without an answer", "connection reset")


def test_a_status_line_trickled_in_byte_by_byte_is_cut_off_at_the_attempt_deadline():
    # Each read gets a byte before the read timeout, so only the overall deadline stops it.
    def trickle(sock, address):
        sock.recv(65536)
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
            sock.sendall(bytes([byte]))
            gevent.sleep(0.05)
        sock.close()

    server = gevent.server.StreamServer(("127.0.0.1", 0), trickle)
    server.start()
    try:
        result = delivery.attempt(delivery.make_client(), webhook("http://127.0.0.1:%d/" % server.server_port), 0.1)
    finally:
        server.stop(timeout=0.1)
    assert (result.outcome, result.reason) == (Outcome.NO_ANSWER, "no answer within 0.3s")


def test_a_200_with_a_slow_body_is_counted_once_as_delivered(receiver, make_dispatcher, logs):
    receiver.drip(0.2)  # 200 and headers at once, then a byte every 0.2 s
    dispatcher = make_dispatcher(timeout=0.5)
    dispatcher.submit(webhook(receiver.url("/hook")))
    stats = settle(dispatcher, logs)

    assert (stats.delivered, stats.failed, stats.retried) == (1, 0, 0)
    assert len(receiver.requests) == 1
    assert logs.matching("answered 200 ok after 1 attempt")


def test_waits_between_attempts_follow_the_retry_policy(receiver, make_dispatcher, logs):
    receiver.respond_with(503)
    uri = receiver.url("/")
    dispatcher = make_dispatcher(rand=lambda: 1.0)
    dispatcher.submit(webhook(uri, retries=4, backoff_factor=0.05, backoff_max=0.15, jitter=0.2))
    settle(dispatcher, logs)

    waits = [line.split(" in ")[-1] for line in logs.matching("; retry ")]
    assert waits == ["0.06s", "0.12s", "0.18s", "0.18s"]  # doubled, capped, then +20 % jitter


# -- the outbox ---------------------------------------------------------------------------


def test_a_webhook_stays_in_the_outbox_until_it_is_delivered(receiver, make_dispatcher, logs, tmp_path):
    receiver.hold()
    dispatcher = make_dispatcher(timeout=5)
    request = webhook(receiver.url("/hook"))
    dispatcher.submit(request)
    receiver.wait_for(1)  # sent: so committed first

    assert rows(tmp_path / "state") == [(request.delivery_id, 0)]
    receiver.release()
    settle(dispatcher, logs)
    dispatcher.outbox.flush(5)
    assert rows(tmp_path / "state") == []


def test_a_restarted_dispatcher_resumes_the_outbox_with_the_attempts_left(make_dispatcher, logs, tmp_path):
    receiver = WebhookReceiver(port=free_port()).start()
    receiver.respond_with(503)
    first = make_dispatcher()
    request = webhook(receiver.url("/hook"), retries=2, backoff_factor=60)
    first.submit(request)
    logs.wait_for("retry 1 of 2 in")
    assert first.stop(timeout=1) == 1
    assert logs.matching("1 undelivered webhooks stay in the outbox")
    assert rows(tmp_path / "state") == [(request.delivery_id, 1)]

    receiver.respond_with(200)
    try:
        later = make_dispatcher(clock=lambda: time.time() + 120)  # the retry is due
        stats = settle(later, logs)
    finally:
        receiver.stop()
    assert stats.delivered == 1
    assert logs.matching("resuming 1 undelivered webhooks")
    [_, got] = receiver.requests
    assert got.header("X-Callflowd-Delivery") == request.delivery_id
    assert got.header("X-Callflowd-Attempt") == "2"  # the one it had left, not a fresh start


def test_stop_delivers_what_is_due_and_keeps_the_rest_in_the_outbox(receiver, make_dispatcher, logs, tmp_path):
    receiver.hold()
    dispatcher = make_dispatcher(timeout=30, concurrency_per_endpoint=2)
    for n in range(5):
        dispatcher.submit(webhook(receiver.url("/hook/%d" % n)))
    receiver.wait_for(2)

    assert dispatcher.stop(timeout=0.2) == 5
    assert logs.matching("5 undelivered webhooks stay in the outbox")
    assert len(rows(tmp_path / "state")) == 5


def test_a_full_outbox_drops_at_once_and_keeps_a_total(receiver, make_dispatcher, logs):
    receiver.hold()
    dispatcher = make_dispatcher(outbox_max=2)
    results = [dispatcher.submit(webhook(receiver.url("/hook"), call_id="call-%d" % n)) for n in range(5)]

    assert results == [True, True, False, False, False]
    assert dispatcher.stats.dropped == 3
    drops = [r for r in logs.records if "webhook dropped" in r.getMessage()]
    assert [r.levelno for r in drops] == [logging.ERROR] * 3
    assert drops[-1].getMessage().startswith("call call-4: webhook dropped (outbox full: 2 webhooks")
    assert drops[-1].getMessage().endswith("; 3 dropped since start")
    receiver.release()


def test_a_commit_the_disk_refuses_is_logged_loudly_and_counted(receiver, make_dispatcher, logs):
    dispatcher = make_dispatcher()
    store = dispatcher.outbox.store
    # A real SQLITE_FULL: the database may not grow past the pages it has.
    store._run(lambda: store._db.execute(
        "PRAGMA max_page_count = %d" % store._db.execute("PRAGMA page_count").fetchone()[0]))
    big = [("blob", "x" * 100000)]
    assert dispatcher.submit(webhook(receiver.url("/hook"), fields=big))
    logs.wait_until(lambda: dispatcher.stats.lost == 1, what="the commit failing")

    assert logs.matching("outbox write failed")
    assert [r.levelno for r in logs.records if "webhook lost" in r.getMessage()] == [logging.ERROR]
    assert receiver.requests == []


def test_a_stopped_dispatcher_drops_new_requests(receiver, make_dispatcher, logs):
    dispatcher = make_dispatcher()
    dispatcher.stop(timeout=1)
    assert not dispatcher.submit(webhook(receiver.url("/hook")))
    assert dispatcher.stats.dropped == 1
    assert logs.matching("webhook dropped (dispatcher stopped)")


def test_a_crashing_attempt_is_logged_and_the_webhook_is_retried_not_lost(receiver, make_dispatcher,
                                                                           logs, monkeypatch):
    real_send = delivery.send
    crashes = []

    def send_crashing_once(*args, **kwargs):
        if not crashes:
            crashes.append(1)
            raise RuntimeError("boom")
        return real_send(*args, **kwargs)

    monkeypatch.setattr(dispatcher_module.delivery, "send", send_crashing_once)
    dispatcher = make_dispatcher()
    dispatcher.submit(webhook(receiver.url("/hook")))
    assert settle(dispatcher, logs).delivered == 1
    [crash] = [r for r in logs.records if "webhook attempt crashed" in r.getMessage()]
    assert crash.levelno == logging.ERROR and crash.exc_info


# -- one endpoint can't hurt another ---------------------------------------------------


def test_the_breaker_opens_and_closes_while_another_endpoint_keeps_receiving(make_dispatcher, logs):
    dead = WebhookReceiver(port=free_port())  # refuses until started
    healthy = WebhookReceiver().start()
    try:
        dispatcher = make_dispatcher(breaker=BreakerSettings(failures=3, pause=0.3, pause_max=0.3))
        for n in range(6):
            dispatcher.submit(webhook(dead.url("/hook"), retries=4, call_id="dead-%d" % n, backoff_factor=0.01))
        logs.wait_for("breaker open (3 failures in a row)")
        dispatcher.submit(webhook(healthy.url("/hook"), call_id="healthy"))
        healthy.wait_for(1)  # while the other endpoint is paused

        dead.start()
        logs.wait_for("breaker closed")
        stats = settle(dispatcher, logs, count=7)
    finally:
        dead.stop()
        healthy.stop()
    assert stats.delivered == 7  # paused webhooks waited in the outbox; none spent all its retries
    assert len({r.header("X-Callflowd-Delivery") for r in dead.requests}) == 6


def test_a_hanging_receiver_does_not_delay_webhooks_to_another(make_dispatcher, logs):
    hanging = WebhookReceiver().start()
    hanging.hold()
    healthy = WebhookReceiver().start()
    try:
        dispatcher = make_dispatcher(timeout=10, concurrency=50, concurrency_per_endpoint=10)
        for n in range(40):
            dispatcher.submit(webhook(hanging.url("/slow/%d" % n)))
        hanging.wait_for(10)
        dispatcher.submit(webhook(healthy.url("/fast")))
        healthy.wait_for(1, timeout=2)
        assert len(hanging.requests) == 10  # its own limit, not everyone's
    finally:
        hanging.stop()
        healthy.stop()


def test_a_receiver_taking_a_second_gets_many_webhooks_at_once(receiver, make_dispatcher, logs):
    receiver.delay(1.0)
    dispatcher = make_dispatcher()
    start = time.monotonic()
    for n in range(100):
        dispatcher.submit(webhook(receiver.url("/hook/%d" % n)))
    settle(dispatcher, logs, count=100)
    # 100 attempts of 1 s each, in flight together: a fixed pool of 4 would take 25 s.
    assert time.monotonic() - start < 3


def test_the_client_keeps_connections_alive_ignores_the_environment_and_sets_tcp_nodelay(
        receiver, monkeypatch):
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # would break every request if read
    client = make_session(WebhookSettings(concurrency_per_endpoint=77))
    for n in range(3):
        assert delivery.attempt(client, webhook(receiver.url("/hook/%d" % n)), 2.0).outcome is Outcome.DELIVERED
    assert client.connections_made == 1  # one connection, kept alive for all three
    assert client.maxsize == 77
    [kept] = client.idle("http", "127.0.0.1", receiver.port)
    assert kept.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_with_a_proxy_configured_webhooks_go_through_it(receiver):
    # The receiver stands in for the proxy: the webhook names a host nothing listens on, so only
    # a request sent to the proxy (absolute URI in the request line) can arrive.
    client = delivery.make_client(proxy=receiver.url("/"))
    result = delivery.attempt(client, webhook("http://127.0.0.1:9/through/proxy"), 2.0)
    assert result.outcome is Outcome.DELIVERED
    [got] = receiver.requests
    assert got.path.endswith("/through/proxy") and got.form["call_id"]


def test_credentials_in_the_uri_are_sent_as_basic_auth_not_in_the_request_line(receiver):
    uri = receiver.url("/hook").replace("http://", "http://hook%20user:p%40ss@")
    assert delivery.attempt(delivery.make_client(), webhook(uri), 2.0).outcome is Outcome.DELIVERED
    [got] = receiver.requests
    assert got.header("Authorization") == "Basic " + base64.b64encode(b"hook user:p@ss").decode()


# -- signing ----------------------------------------------------------------------------


def _verify(secret, got, now, tolerance=300, body=None):
    """An independent verifier, as a receiver would write it (docs/webhooks.md, "Signing"):
    HMAC-SHA256 over t, method, Host, the request target and the body, LF-separated."""
    parts = dict(item.split("=", 1) for item in got.header("X-Callflowd-Signature").split(","))
    target = got.path + ("?" + got.query_string if got.query_string else "")
    message = "\n".join([parts["t"], got.method, got.header("Host"), target, ""]).encode()
    message += got.body if body is None else body
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v2"]) and abs(now - int(parts["t"])) <= tolerance


def test_a_signed_post_verifies_with_an_independent_hmac(receiver, make_dispatcher):
    dispatcher = make_dispatcher(secrets={"": "whsec-global", "crm": "whsec-crm"})
    dispatcher.submit(webhook(receiver.url("/a")))
    dispatcher.submit(webhook(receiver.url("/b"), secret="crm", format="json"))
    received = {r.path: r for r in receiver.wait_for(2)}

    now = time.time()
    assert _verify("whsec-global", received["/a"], now)
    assert _verify("whsec-crm", received["/b"], now)
    assert not _verify("whsec-global", received["/b"], now)
    assert not _verify("whsec-global", received["/a"], now, body=received["/a"].body + b"&tampered=1")


def test_a_signed_get_signs_its_method_host_and_target(receiver, make_dispatcher):
    dispatcher = make_dispatcher(secrets={"": "whsec-global"})
    dispatcher.submit(webhook(receiver.url("/hook?k=v"), method="get"))
    [got] = receiver.wait_for(1)
    assert _verify("whsec-global", got, time.time())
    replayed = dataclasses.replace(got, path="/other")  # the same request sent to another path
    assert not _verify("whsec-global", replayed, time.time())


# -- logs an operator can trust -----------------------------------------------------------


def test_secrets_in_a_webhook_uri_never_reach_the_log(make_dispatcher, logs):
    receiver = WebhookReceiver().start()
    down = "http://hookuser:hunter2@127.0.0.1:%d/dead?token=tok-down-777" % free_port()
    try:
        port = receiver.port
        receiver.fail_next(1, 503)
        dispatcher = make_dispatcher(outbox_max=3, max_age=0.3)
        dispatcher.submit(webhook("http://hookuser:hunter2@127.0.0.1:%d/x?token=tok-123-secret" % port))
        dispatcher.submit(webhook(down, retries=1))
        dispatcher.submit(webhook("http://127.0.0.1:%d/y?api_key=key-456-secret" % port, method="get"))
        dispatcher.submit(webhook("http://127.0.0.1:%d/z?token=tok-dropped-999" % port))  # outbox full
        dispatcher.submit(webhook("http://127.0.0.1:%d/z?token=tok-dropped-999" % port))
        settle(dispatcher, logs, count=3)
    finally:
        receiver.stop()
    text = "\n".join(logs.lines())
    for secret in ("hunter2", "hookuser", "tok-123-secret", "tok-down-777", "key-456-secret", "tok-dropped-999"):
        assert secret not in text
    assert "http://***@127.0.0.1:%d/x?token=***" % port in text


def test_caller_controlled_text_cannot_break_a_log_line(receiver, make_dispatcher, logs):
    evil = "Mallory\nINFO callflowd: call 1234: webhook delivered"
    receiver.respond_with(404)
    dispatcher = make_dispatcher()
    dispatcher.submit(webhook(receiver.url("/hook"), fields=[("caller_id_name", evil)], call_id="c0ffee\nforged"))
    settle(dispatcher, logs)

    assert receiver.requests[0].form["caller_id_name"] == [evil]  # delivered intact...
    lines = logs.lines()
    assert all("\n" not in line for line in lines)  # ...but never logged raw
    assert not any("Mallory" in line for line in lines)
    assert any(line.startswith("call c0ffee\\nforged: webhook failed") for line in lines)


# -- classification of failures that loopback can't produce ---------------------------


def test_a_dns_failure_is_never_sent():
    error = client_module.NotSent("dns", "dns failure")
    error.__cause__ = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    result = delivery.classify_error(error)
    assert (result.outcome, result.reason) == (Outcome.NOT_SENT, "dns failure")


def test_an_untrusted_certificate_is_not_retried_but_a_cut_handshake_is():
    untrusted = client_module.NotSent("tls", "certificate verify failed")
    untrusted.__cause__ = ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed certificate")
    result = delivery.classify_error(untrusted)
    assert result.outcome is Outcome.REJECTED and result.reason.startswith("tls error")
    cut = client_module.NotSent("tls", "EOF")
    cut.__cause__ = ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
    assert delivery.classify_error(cut).outcome is Outcome.NOT_SENT


def test_an_invalid_settings_value_is_refused(tmp_path):
    with pytest.raises(ValueError):
        WebhookDispatcher(WebhookSettings(concurrency=0), str(tmp_path))
    with pytest.raises(ValueError):
        WebhookDispatcher(WebhookSettings(outbox_max=0), str(tmp_path))


@pytest.mark.needs_the_machine  # a burst: never beside the other tier's (tests/tiers.py)
@pytest.mark.timeout(60)
def test_100_webhooks_a_second_for_10_seconds_to_a_receiver_taking_1s_each_arrive_within_2s(
        receiver, make_dispatcher, logs):
    # The "100 calls/s for 10 s": submitted at the call path's rate, at the dispatcher
    # (the simulator can't place 100 calls/s on this machine); 100 webhooks stay in flight at once.
    receiver.delay(1.0)
    dispatcher = make_dispatcher(timeout=5)
    submitted = {}
    start = time.monotonic()
    for n in range(1000):
        gevent.sleep(max(0.0, start + n / 100.0 - time.monotonic()))  # pacing the load, not syncing
        request = webhook(receiver.url("/hook"), call_id="call-%d" % n)
        submitted[request.delivery_id] = time.monotonic()
        assert dispatcher.submit(request)
    stats = settle(dispatcher, logs, count=1000, timeout=15)

    assert (stats.delivered, stats.failed, stats.retried) == (1000, 0, 0)
    lags = sorted(r.received_at - submitted[r.header("X-Callflowd-Delivery")] for r in receiver.requests)
    assert len(lags) == 1000
    assert lags[-1] < 2.0, "slowest arrival %.2fs after its step (p50 %.3fs)" % (lags[-1], lags[500])


# -- our HTTP/1.1 client on the wire (webhooks/client.py) ----------------------------------


class ScriptedServer:
    """A TCP server on 127.0.0.1:0 that answers each request (read up to its framing) with the
    next of ``answers`` (raw bytes, or None to close the connection), recording what it got."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests = []
        self.connections = 0
        self.server = gevent.server.StreamServer(("127.0.0.1", 0), self._serve)
        self.server.start()

    def url(self, path="/hook"):
        return "http://127.0.0.1:%d%s" % (self.server.server_port, path)

    def _serve(self, sock, address):
        self.connections += 1
        reader = sock.makefile("rb")
        while True:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = reader.readline()
                if not line:
                    return
                head += line
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            self.requests.append(head + reader.read(length))
            answer = self.answers.pop(0) if self.answers else b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
            if answer is None:
                sock.close()
                return
            sock.sendall(answer)

    def stop(self):
        self.server.stop(timeout=0.1)


@pytest.fixture
def scripted():
    made = []

    def make(*answers):
        server = ScriptedServer(answers)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


def test_a_request_is_one_http11_message_with_its_host_length_and_headers(scripted):
    server = scripted()
    client = delivery.make_client()
    assert delivery.attempt(client, webhook(server.url("/a[b]|ç?x=1"), fields=[("k", "v w")]), 2.0).outcome \
        is Outcome.DELIVERED
    [raw] = server.requests
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /a%5Bb%5D%7C%C3%A7?x=1 HTTP/1.1"  # what a request line can't carry is escaped
    assert "Host: 127.0.0.1:%d" % server.server.server_port in lines
    assert "Content-Length: %d" % len(body) in lines
    assert body == b"k=v+w"


def test_chunked_and_interim_answers_are_read_whole_and_the_connection_reused(scripted):
    server = scripted(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n",
                      b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
    client = delivery.make_client()
    first = delivery.attempt(client, webhook(server.url()), 2.0)
    second = delivery.attempt(client, webhook(server.url()), 2.0)
    assert (first.outcome, first.status, second.status) == (Outcome.DELIVERED, 201, 200)
    assert (client.connections_made, server.connections) == (1, 1)


def test_an_answer_with_connection_close_or_no_length_is_not_reused(scripted):
    server = scripted(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                      b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
                      b"HTTP/1.1 200 OK\r\n\r\nuntil the end", None)
    client = delivery.make_client()
    for _ in range(3):
        assert delivery.attempt(client, webhook(server.url()), 2.0).outcome is Outcome.DELIVERED
    assert client.connections_made == 3


def test_a_kept_alive_connection_the_server_closed_while_idle_is_not_written_to(scripted):
    server = scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", None)
    client = delivery.make_client()
    assert delivery.attempt(client, webhook(server.url()), 2.0).outcome is Outcome.DELIVERED
    # The server's handler closes the connection when it reads the next request: here it is an
    # idle close seen before any write, so the next webhook goes on a new connection, once.
    [kept] = client.idle("http", "127.0.0.1", server.server.server_port)
    kept.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # makes the server close it
    gevent.wait([gevent.spawn(lambda: kept.sock.recv(100))], timeout=2)  # the close arrived
    assert delivery.attempt(client, webhook(server.url()), 2.0).outcome is Outcome.DELIVERED
    assert client.connections_made == 2
    assert len(server.requests) == 3  # the first webhook, our poke, the second webhook: none twice


@pytest.mark.parametrize("answer, reason", [
    (b"SPAM\r\n\r\n", "bad answer: not an HTTP/1.x status line"),
    (b"HTTP/1.1 200 OK\r\nBroken header\r\n\r\n", "bad answer: bad header line"),
    (None, "connection closed without an answer"),
])
def test_a_garbled_or_missing_answer_is_sent_without_an_answer(scripted, answer, reason):
    server = scripted(answer)
    result = delivery.attempt(delivery.make_client(), webhook(server.url()), 2.0)
    assert (result.outcome, result.reason) == (Outcome.NO_ANSWER, reason)


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(scripted):
    server = scripted()
    client = delivery.make_client()
    result, response = delivery.send(client, webhook(server.url()), 2.0, secret=None)
    assert response is not None
    delivery.release(response, 2.0)
    evil = wire.build("POST", server.url(), [], headers={"X-Evil": "a\r\nInjected: 1"})
    with pytest.raises(ValueError):
        client.request(evil, 2.0)
    assert len(server.requests) == 1


def test_refused_and_unresolvable_endpoints_are_never_sent():
    client = delivery.make_client()
    refused = delivery.attempt(client, webhook("http://127.0.0.1:%d/" % free_port()), 1.0)
    assert (refused.outcome, refused.reason) == (Outcome.NOT_SENT, "connection refused")
    unknown = delivery.attempt(client, webhook("http://hooks.invalid/"), 1.0)
    assert (unknown.outcome, unknown.reason) == (Outcome.NOT_SENT, "dns failure")
