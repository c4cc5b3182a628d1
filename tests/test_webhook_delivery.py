"""Webhook delivery against a real receiver over loopback: wire format, retries, queue, stop.

Nothing here mocks requests. Waits between attempts go through the injected
``sleep`` (recorded, and used to change the world between attempts); the tests
synchronise on the receiver's arrivals and on ``stop()``'s drain, never on sleeps.
"""

import logging
import socket
import urllib.parse

import gevent
import gevent.server
import pytest
import requests
import urllib3.exceptions

from callflowd import __version__
from callflowd.config.model import WebhookSettings
from callflowd.demo.receiver import WebhookReceiver, free_port
from callflowd.retry import Retry
from callflowd.webhooks import delivery, dispatcher as dispatcher_module
from callflowd.webhooks.delivery import Outcome
from callflowd.webhooks.dispatcher import WebhookDispatcher
from callflowd.webhooks.request import WebhookRequest

pytestmark = pytest.mark.timeout(15)

FIELDS = (
    ("call_id", "c0ffee"),
    ("caller_id_name", "Ann & Bob = friends"),
    ("caller_id_number", "+15551234567"),
    ("empty", ""),
    ("accent", "Zoë"),
)


@pytest.fixture(autouse=True)
def _loopback_bypasses_proxies(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")


@pytest.fixture(autouse=True)
def _logs(caplog):
    caplog.set_level(logging.DEBUG, logger="callflowd")
    return caplog


@pytest.fixture
def receiver():
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


class RecordingSleep:
    """Records each wait; ``then`` runs between attempts (bring a receiver up...)."""

    def __init__(self, then=None):
        self.calls = []
        self.then = then

    def __call__(self, seconds):
        self.calls.append(seconds)
        if self.then is not None:
            self.then()


@pytest.fixture
def make_dispatcher():
    made = []

    def make(sleep=None, rand=lambda: 0.5, **settings):
        settings.setdefault("timeout", 2.0)
        dispatcher = WebhookDispatcher(WebhookSettings(**settings), sleep=sleep or RecordingSleep(),
                                       rand=rand)
        dispatcher.start()
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.stop(timeout=1)


def webhook(uri, method="post", fields=FIELDS, retries=2, call_id="c0ffee", **retry):
    retry.setdefault("backoff_factor", 0.5)
    return WebhookRequest(call_id=call_id, uri=uri, method=method, fields=tuple(fields),
                          retry=Retry(total=retries, **retry))


def drain(dispatcher):
    """Let the workers finish everything queued (stop is a bounded drain)."""
    assert dispatcher.stop(timeout=5) == 0


def messages(caplog, level=logging.DEBUG):
    return [r.getMessage() for r in caplog.records if r.levelno >= level]


# -- the wire format ----------------------------------------------------------------


def test_post_sends_the_fields_as_a_form_body(receiver, make_dispatcher):
    dispatcher = make_dispatcher()
    assert dispatcher.submit(webhook(receiver.url("/hooks/front-desk")))

    [got] = receiver.wait_for(1)
    assert got.method == "POST"
    assert got.path == "/hooks/front-desk"
    assert got.header("Content-Type") == "application/x-www-form-urlencoded"
    assert got.body == urllib.parse.urlencode(FIELDS).encode("ascii")
    assert got.form == {name: [value] for name, value in FIELDS}
    assert got.query == {}
    assert got.header("User-Agent") == "callflowd/%s" % __version__


def test_get_sends_the_fields_as_a_query_string_after_any_query_in_the_uri(receiver, make_dispatcher):
    dispatcher = make_dispatcher()
    assert dispatcher.submit(webhook(receiver.url("/hook?token=s3cret"), method="get"))

    [got] = receiver.wait_for(1)
    assert got.method == "GET"
    assert got.path == "/hook"
    assert got.query_string == "token=s3cret&" + urllib.parse.urlencode(FIELDS)
    assert got.query == {"token": ["s3cret"], **{name: [value] for name, value in FIELDS}}
    assert got.body == b""
    assert got.form == {}
    assert got.header("User-Agent") == "callflowd/%s" % __version__


def test_a_get_without_a_query_in_the_uri_gets_one(receiver, make_dispatcher):
    dispatcher = make_dispatcher()
    dispatcher.submit(webhook(receiver.url("/hook"), method="get", fields=[("a", "1")]))
    [got] = receiver.wait_for(1)
    assert got.query_string == "a=1"


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_answer_is_a_delivery(receiver, make_dispatcher, status, caplog):
    receiver.respond_with(status)
    sleep = RecordingSleep()
    dispatcher = make_dispatcher(sleep=sleep)
    dispatcher.submit(webhook(receiver.url("/hook")))
    drain(dispatcher)

    assert len(receiver.requests) == 1
    assert sleep.calls == []
    stats = dispatcher.stats
    assert (stats.delivered, stats.failed, stats.retried) == (1, 0, 0)
    [line] = [m for m in messages(caplog, logging.INFO) if "webhook delivered" in m]
    assert "call c0ffee:" in line
    assert receiver.url("/hook") in line
    assert "answered %d" % status in line
    assert "after 1 attempt" in line


# -- retries: never sent ---------------------------------------------------------------


def test_a_receiver_that_comes_up_between_attempts_gets_the_retry(make_dispatcher, caplog):
    receiver = WebhookReceiver(port=free_port())  # down: its port is closed
    sleep = RecordingSleep(then=lambda: receiver.running or receiver.start())
    try:
        dispatcher = make_dispatcher(sleep=sleep)
        dispatcher.submit(webhook(receiver.url("/hook"), retries=2, backoff_factor=0.5))
        drain(dispatcher)

        assert len(receiver.requests) == 1
        assert receiver.requests[0].form["call_id"] == ["c0ffee"]
    finally:
        receiver.stop()
    assert sleep.calls == [0.5]
    stats = dispatcher.stats
    assert (stats.delivered, stats.failed, stats.retried) == (1, 0, 1)
    assert any("webhook not sent (connection refused)" in m and "retry 1 of 2" in m
               for m in messages(caplog, logging.INFO))
    assert any("webhook delivered" in m and "after 2 attempts" in m for m in messages(caplog))


def test_a_receiver_that_stays_down_fails_after_one_plus_retries_attempts(make_dispatcher, caplog):
    uri = "http://127.0.0.1:%d/hook" % free_port()
    sleep = RecordingSleep()
    dispatcher = make_dispatcher(sleep=sleep)
    dispatcher.submit(webhook(uri, retries=2, call_id="dead-beef"))
    drain(dispatcher)

    assert len(sleep.calls) == 2
    stats = dispatcher.stats
    assert (stats.delivered, stats.failed, stats.retried) == (0, 1, 2)
    [failure] = [r for r in caplog.records if "webhook failed" in r.getMessage()]
    assert failure.levelno == logging.WARNING
    text = failure.getMessage()
    assert text.startswith("call dead-beef: webhook failed after 3 attempts: connection refused")
    assert uri in text


def test_a_receiver_that_stops_is_refused_like_one_never_started(receiver, make_dispatcher):
    uri = receiver.url("/hook")
    dispatcher = make_dispatcher()
    dispatcher.submit(webhook(uri))
    receiver.wait_for(1)
    receiver.stop()

    session = requests.Session()
    result = dispatcher.deliver(session, webhook(uri, retries=0))
    session.close()
    assert (result.outcome, result.reason) == (Outcome.NOT_SENT, "connection refused")


# -- retries: sent, no good answer ----------------------------------------------------


@pytest.mark.parametrize("status", [503, 500, 429])
def test_a_5xx_or_429_answer_is_retried(receiver, make_dispatcher, status, caplog):
    receiver.fail_next(1, status=status)
    sleep = RecordingSleep()
    dispatcher = make_dispatcher(sleep=sleep)
    dispatcher.submit(webhook(receiver.url("/hook")))
    drain(dispatcher)

    assert [r.form for r in receiver.requests] == [dict((n, [v]) for n, v in FIELDS)] * 2
    assert sleep.calls == [0.5]
    stats = dispatcher.stats
    assert (stats.delivered, stats.failed, stats.retried) == (1, 0, 1)
    assert any(m.startswith("call c0ffee: webhook sent, no good answer (%d " % status)
               for m in messages(caplog, logging.INFO))


def test_a_receiver_answering_5xx_for_good_fails_after_all_retries(receiver, make_dispatcher, caplog):
    receiver.respond_with(502)
    dispatcher = make_dispatcher()
    dispatcher.submit(webhook(receiver.url("/hook"), retries=1))
    drain(dispatcher)

    assert len(receiver.requests) == 2
    assert any("webhook failed after 2 attempts: 502 bad gateway (sent, no good answer)" in m
               for m in messages(caplog, logging.WARNING))


def test_a_read_timeout_is_retried_as_sent_without_an_answer(receiver, make_dispatcher, caplog):
    receiver.hold()  # the first request is received but not answered
    sleep = RecordingSleep(then=receiver.release)
    dispatcher = make_dispatcher(sleep=sleep, timeout=0.2)
    dispatcher.submit(webhook(receiver.url("/hook")))
    drain(dispatcher)

    assert len(receiver.requests) == 2
    assert dispatcher.stats.delivered == 1
    assert any("webhook sent, no good answer (read timeout)" in m for m in messages(caplog, logging.INFO))


def test_a_connection_closed_without_an_answer_is_retried_as_sent_without_an_answer(make_dispatcher):
    def hang_up(sock, address):
        sock.recv(65536)
        sock.close()

    server = gevent.server.StreamServer(("127.0.0.1", 0), hang_up)
    server.start()
    try:
        dispatcher = make_dispatcher()
        session = requests.Session()
        result = dispatcher.deliver(session, webhook("http://127.0.0.1:%d/" % server.server_port, retries=0))
        session.close()
    finally:
        server.stop()
    assert result.outcome is Outcome.NO_ANSWER
    assert result.reason in ("connection closed without an answer", "connection reset")


def test_an_answer_trickled_in_byte_by_byte_is_cut_off_at_the_attempt_deadline(make_dispatcher):
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
        dispatcher = make_dispatcher(timeout=0.1)
        session = requests.Session()
        result = dispatcher.deliver(session, webhook("http://127.0.0.1:%d/" % server.server_port, retries=0))
        session.close()
    finally:
        server.stop(timeout=0.1)
    assert (result.outcome, result.reason) == (Outcome.NO_ANSWER, "no answer within 0.3s")


# -- no retry ---------------------------------------------------------------------------


@pytest.mark.parametrize("status, phrase", [(404, "not found"), (400, "bad request"), (410, "gone")])
def test_a_4xx_answer_other_than_429_fails_at_once(receiver, make_dispatcher, status, phrase, caplog):
    receiver.respond_with(status)
    sleep = RecordingSleep()
    dispatcher = make_dispatcher(sleep=sleep)
    dispatcher.submit(webhook(receiver.url("/missing"), retries=4))
    drain(dispatcher)

    assert len(receiver.requests) == 1
    assert sleep.calls == []
    stats = dispatcher.stats
    assert (stats.delivered, stats.failed, stats.retried) == (0, 1, 0)
    assert any(m.startswith("call c0ffee: webhook failed after 1 attempt: %d %s (rejected)" % (status, phrase))
               for m in messages(caplog, logging.WARNING))


def test_a_redirect_is_not_followed(receiver, make_dispatcher):
    receiver.respond_with(302)
    dispatcher = make_dispatcher()
    dispatcher.submit(webhook(receiver.url("/hook")))
    drain(dispatcher)

    assert len(receiver.requests) == 1
    assert dispatcher.stats.failed == 1


# -- back-off -------------------------------------------------------------------------


def test_waits_between_attempts_follow_the_retry_policy(make_dispatcher):
    policy = Retry(total=4, backoff_factor=0.5, backoff_max=1.5, jitter=0.2)
    sleep = RecordingSleep()
    dispatcher = make_dispatcher(sleep=sleep, rand=lambda: 1.0)
    dispatcher.submit(WebhookRequest(call_id="c0ffee", uri="http://127.0.0.1:%d/" % free_port(),
                                     method="post", fields=FIELDS, retry=policy))
    drain(dispatcher)

    expected = []
    retry = policy
    for _ in range(4):
        retry = retry.increment()
        expected.append(retry.backoff(rand=lambda: 1.0))
    assert sleep.calls == pytest.approx(expected)
    assert sleep.calls == pytest.approx([0.6, 1.2, 1.8, 1.8])  # doubled, capped at 1.5, +20%


# -- the queue --------------------------------------------------------------------------


def test_a_full_queue_drops_at_once_and_says_so(receiver, make_dispatcher, caplog):
    receiver.hold()  # keeps the only worker busy with the first request
    dispatcher = make_dispatcher(workers=1, queue_size=2)
    assert dispatcher.submit(webhook(receiver.url("/hook"), call_id="first"))
    receiver.wait_for(1)
    assert dispatcher.submit(webhook(receiver.url("/hook"), call_id="second"))
    assert dispatcher.submit(webhook(receiver.url("/hook"), call_id="third"))

    ran = []
    gevent.spawn(ran.append, True)  # runs only if submit() yields to the hub
    assert dispatcher.submit(webhook(receiver.url("/hook"), call_id="fourth")) is False
    assert ran == []

    stats = dispatcher.stats
    assert (stats.dropped, stats.queued) == (1, 2)
    [drop] = [r for r in caplog.records if "webhook dropped" in r.getMessage()]
    assert drop.levelno == logging.WARNING
    assert drop.getMessage().startswith("call fourth: webhook dropped (queue full")
    assert receiver.url("/hook") in drop.getMessage()

    receiver.release()
    drain(dispatcher)
    assert [r.form["call_id"] for r in receiver.requests] == [["c0ffee"]] * 3
    assert dispatcher.stats.delivered == 3


def test_a_stopped_dispatcher_drops_new_requests(receiver, make_dispatcher, caplog):
    dispatcher = make_dispatcher()
    drain(dispatcher)
    assert dispatcher.submit(webhook(receiver.url("/hook"), call_id="late")) is False
    assert dispatcher.stats.dropped == 1
    assert any(m.startswith("call late: webhook dropped (dispatcher stopped)")
               for m in messages(caplog, logging.WARNING))


def test_stop_lets_the_workers_finish_what_is_queued(receiver, make_dispatcher):
    receiver.hold()
    dispatcher = make_dispatcher(workers=1, queue_size=10)
    for n in range(5):
        assert dispatcher.submit(webhook(receiver.url("/hook/%d" % n)))
    receiver.wait_for(1)
    assert dispatcher.stats.queued == 4

    receiver.release()
    assert dispatcher.stop(timeout=5) == 0

    assert [r.path for r in receiver.requests] == ["/hook/%d" % n for n in range(5)]
    assert dispatcher.stats.delivered == 5


def test_stop_abandons_what_it_cannot_finish_in_time_and_says_so(receiver, make_dispatcher, caplog):
    receiver.hold()
    dispatcher = make_dispatcher(workers=1)
    for n in range(3):
        dispatcher.submit(webhook(receiver.url("/hook"), call_id="call-%d" % n))
    receiver.wait_for(1)

    assert dispatcher.stop(timeout=0.2) == 3

    assert dispatcher.stats.abandoned == 3
    abandoned = [m for m in messages(caplog, logging.WARNING) if "webhook abandoned" in m]
    assert sorted(m.split(":")[0] for m in abandoned) == ["call call-0", "call call-1", "call call-2"]
    assert any("3 requests abandoned" in m for m in messages(caplog, logging.WARNING))


# -- supervision -------------------------------------------------------------------------


def test_a_crashing_delivery_is_logged_and_the_worker_goes_on(receiver, caplog):
    class ExplodesOnce(requests.Session):
        exploded = False

        def request(self, *args, **kwargs):
            if not ExplodesOnce.exploded:
                ExplodesOnce.exploded = True
                raise RuntimeError("boom")
            return super().request(*args, **kwargs)

    dispatcher = WebhookDispatcher(WebhookSettings(workers=1), session=ExplodesOnce,
                                   sleep=RecordingSleep())
    dispatcher.start()
    dispatcher.submit(webhook(receiver.url("/hook"), call_id="first"))
    dispatcher.submit(webhook(receiver.url("/hook"), call_id="second"))
    drain(dispatcher)

    assert len(receiver.requests) == 1
    assert (dispatcher.stats.failed, dispatcher.stats.delivered) == (1, 1)
    [crash] = [r for r in caplog.records if "crashed" in r.getMessage()]
    assert crash.levelno == logging.ERROR
    assert crash.getMessage().startswith("call first: webhook delivery crashed")
    assert crash.exc_info is not None


def test_a_crashed_worker_is_logged_and_replaced(receiver, monkeypatch, caplog):
    monkeypatch.setattr(dispatcher_module, "WORKER_RESTART_DELAY", 0.01)
    sessions = []

    def session():
        sessions.append(None)
        if len(sessions) == 1:
            raise RuntimeError("no session for you")
        return requests.Session()

    dispatcher = WebhookDispatcher(WebhookSettings(workers=1), session=session, sleep=RecordingSleep())
    dispatcher.start()
    dispatcher.submit(webhook(receiver.url("/hook")))
    receiver.wait_for(1)
    drain(dispatcher)

    assert dispatcher.stats.delivered == 1
    [crash] = [r for r in caplog.records if "webhook worker crashed" in r.getMessage()]
    assert crash.levelno == logging.ERROR
    assert crash.exc_info and "no session for you" in caplog.text


# -- logs an operator can trust ----------------------------------------------------------


def test_caller_controlled_text_cannot_break_a_log_line(receiver, make_dispatcher, caplog):
    evil = "Mallory\nINFO callflowd: call 1234: webhook delivered"
    receiver.respond_with(404)
    dispatcher = make_dispatcher()
    dispatcher.submit(webhook(receiver.url("/hook"), fields=[("caller_id_name", evil)],
                              call_id="c0ffee\nforged"))
    dispatcher.submit(webhook(receiver.url("/hook"), method="get", fields=[("caller_id_name", evil)]))
    drain(dispatcher)

    by_method = {request.method: request for request in receiver.requests}  # workers race
    assert by_method["POST"].form["caller_id_name"] == [evil]  # delivered intact...
    assert by_method["GET"].query["caller_id_name"] == [evil]
    lines = messages(caplog)
    assert lines
    assert all("\n" not in line for line in lines)  # ...but never logged raw
    assert not any("Mallory" in line for line in lines)  # field values aren't logged at all
    assert any(line.startswith("call c0ffee\\nforged: webhook failed") for line in lines)


# -- classification of failures that loopback can't produce ---------------------------


def test_a_dns_failure_is_never_sent():
    reason = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    error = requests.ConnectionError(urllib3.exceptions.MaxRetryError(
        None, "/", urllib3.exceptions.NameResolutionError("hooks.invalid", None, reason)))
    result = delivery.classify_error(error)
    assert (result.outcome, result.reason) == (Outcome.NOT_SENT, "dns failure")


def test_a_tls_error_is_not_retried():
    result = delivery.classify_error(requests.exceptions.SSLError("certificate verify failed"))
    assert result.outcome is Outcome.REJECTED
    assert result.reason.startswith("tls error")


def test_an_invalid_settings_value_is_refused():
    with pytest.raises(ValueError):
        WebhookDispatcher(WebhookSettings(workers=0))
    with pytest.raises(ValueError):
        WebhookDispatcher(WebhookSettings(queue_size=0))
