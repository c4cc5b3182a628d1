"""The webhook HTTP conformance corpus: hostile and odd receivers, byte for byte.

Each case scripts what a raw TCP receiver answers to a first webhook, and checks two things:
the outcome the outbox records for it (``delivery.send`` then ``delivery.release``, exactly
what the dispatcher does per attempt), and what the *next* webhook, sent with the same client,
records: it must be its own answer (the receiver answers it ``202``), on the same connection
only when nothing of the first answer could be left on it. The rule under test is the outbox's:
the status line that decides is always this request's own.
"""

import socket

import gevent
import gevent.event
import pytest

from callflowd.config.destinations import Destinations
from callflowd.retry import Retry
from callflowd.webhooks import delivery, signing
from callflowd.webhooks.delivery import Outcome
from callflowd.webhooks.request import WebhookRequest
from tests.doubles.raw_http import CLOSE, RESET, RawReceiver

pytestmark = pytest.mark.timeout(30)

TIMEOUT = 0.5  # seconds per read; the attempt's deadline is 3x this
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
SAME, NEW, EITHER = "same connection", "new connection", "either"


def webhook(uri, method="post", fields=(("call_id", "c0ffee"),), **options):
    return WebhookRequest(call_id="c0ffee", uri=uri, method=method, fields=tuple(fields),
                          retry=Retry(total=0), **options)


def attempt(client, request, secret=None):
    """One attempt, as the dispatcher makes it: the outcome, then the answer's release."""
    result, response = delivery.send(client, request, TIMEOUT, secret=secret)
    delivery.release(response, TIMEOUT, request)
    return result


@pytest.fixture
def raw():
    made = []

    def make(*answers):
        server = RawReceiver(*answers)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


def trickle(data, gap):
    """``data`` sent a byte at a time, ``gap`` seconds apart (a slow receiver)."""
    steps = []
    for byte in data:
        steps += [bytes([byte]), ("pause", gap)]
    return steps


CASES = {
    # -- interim answers ------------------------------------------------------------------------
    "103 early hints then 503": (
        [b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
         b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"],
        (Outcome.NO_ANSWER, 503, "503 service unavailable"), SAME),
    "100 continue then 200": (
        [b"HTTP/1.1 100 Continue\r\n\r\n", OK], (Outcome.DELIVERED, 200, "200 ok"), SAME),
    "102 and 103 then 201, in pieces": (
        [b"HTTP/1.1 102 Processing\r\n\r\n", ("pause", 0.05), b"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 20",
         ("pause", 0.05), b"1 Created\r\nContent-Length: 2\r\n\r\nok"],
        (Outcome.DELIVERED, 201, "201 created"), SAME),
    "101 switching protocols, not asked for": (
        [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
         b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"],
        (Outcome.NO_ANSWER, None, "bad answer: 101 switching protocols, which was not asked for"), NEW),
    # -- bytes left over after an answer ----------------------------------------------------------
    "204 with a body": (
        [b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"],
        (Outcome.DELIVERED, 204, "204 no content"), NEW),
    "304 with a body": (
        [b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nhello"],
        (Outcome.REJECTED, 304, "304 not modified (redirect not followed)"), NEW),
    "a stray CRLF after the body": (
        [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok\r\n"], (Outcome.DELIVERED, 200, "200 ok"), NEW),
    "a second answer after the first": (
        [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 500 Internal Server Error\r\n"
         b"Content-Length: 0\r\n\r\n"], (Outcome.DELIVERED, 200, "200 ok"), NEW),
    # Still on its way when the connection is reused (or seen first, if this machine is slow):
    # either way the next webhook reads its own answer.
    "a stray CRLF a moment after the body": (
        [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", ("pause", 0.2), b"\r\n"],
        (Outcome.DELIVERED, 200, "200 ok"), EITHER),
    "more body than its Content-Length": (
        [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 503 Service Unavailable\r\n\r\n"],
        (Outcome.DELIVERED, 200, "200 ok"), NEW),
    # -- headers ----------------------------------------------------------------------------------
    "an obs-folded header": (
        [b"HTTP/1.1 200 OK\r\nX-Folded: first\r\n  second\r\n\tthird\r\nContent-Length: 2\r\n\r\nok"],
        (Outcome.DELIVERED, 200, "200 ok"), SAME),
    "a header line without a colon": (
        [b"HTTP/1.1 200 OK\r\nBroken header\r\nContent-Length: 0\r\n\r\n"],
        (Outcome.NO_ANSWER, None, "bad answer: bad header line"), NEW),
    "a huge header": (
        [b"HTTP/1.1 200 OK\r\nX-Huge: " + b"a" * 100000 + b"\r\nContent-Length: 0\r\n\r\n"],
        (Outcome.NO_ANSWER, None, "bad answer: answer head larger than 65536 bytes"), NEW),
    "no reason phrase": (
        [b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"], (Outcome.DELIVERED, 200, "200 ok"), SAME),
    "a bare LF between header lines": (
        [b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"], (Outcome.DELIVERED, 200, "200 ok"), SAME),
    "a NUL in a header value": (
        [b"HTTP/1.1 200 OK\r\nX-Evil: a\x00b\r\nContent-Length: 0\r\n\r\n"],
        (Outcome.NO_ANSWER, None, "bad answer: bad header line"), NEW),
    "a status code of four digits": (
        [b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"],
        (Outcome.NO_ANSWER, None, "bad answer: not an HTTP/1.x status line"), NEW),
    "a negative Content-Length": (
        [b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"],
        (Outcome.NO_ANSWER, None, "bad answer: bad Content-Length"), NEW),
    # -- framing ----------------------------------------------------------------------------------
    "chunked with extensions and trailers": (
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"5;name=value;quoted=\"x\"\r\nhello\r\n6\r\n world\r\n0;last\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n"],
        (Outcome.DELIVERED, 200, "200 ok"), SAME),
    "Content-Length beside Transfer-Encoding": (
        [b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"],
        (Outcome.DELIVERED, 200, "200 ok"), NEW),
    "two different Content-Lengths": (
        [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 7\r\n\r\nok"],
        (Outcome.NO_ANSWER, None, "bad answer: conflicting Content-Length headers"), NEW),
    "one Content-Length listing two lengths": (
        [b"HTTP/1.1 200 OK\r\nContent-Length: 2, 7\r\n\r\nok"],
        (Outcome.NO_ANSWER, None, "bad answer: conflicting Content-Length headers"), NEW),
    "the same Content-Length twice": (
        [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"],
        (Outcome.DELIVERED, 200, "200 ok"), SAME),
    "a Transfer-Encoding other than chunked": (
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx", CLOSE],
        (Outcome.NO_ANSWER, None, "bad answer: a Transfer-Encoding other than chunked"), NEW),
    "a bad chunk after the status line": (
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n"],
        (Outcome.DELIVERED, 200, "200 ok"), NEW),
    "a body cut off after the status line": (
        [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", CLOSE], (Outcome.DELIVERED, 200, "200 ok"), NEW),
    "a body framed by the connection's end": (
        [b"HTTP/1.1 200 OK\r\n\r\nuntil the end", CLOSE], (Outcome.DELIVERED, 200, "200 ok"), NEW),
    "HTTP/1.0 with a length": (
        [b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"], (Outcome.DELIVERED, 200, "200 ok"), NEW),
    "HTTP/1.0 asking for keep-alive": (
        [b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"],
        (Outcome.DELIVERED, 200, "200 ok"), NEW),
    "Connection: close": (
        [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"],
        (Outcome.DELIVERED, 200, "200 ok"), NEW),
    # -- time -------------------------------------------------------------------------------------
    "a slow head": (
        trickle(b"HTTP/1.1 200 OK\r\n", 0.2),
        (Outcome.NO_ANSWER, None, "no answer within 1.5s"), NEW),
    "a slow body after a 2xx": (
        [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"] + trickle(b"x" * 20, 0.2),
        (Outcome.DELIVERED, 200, "200 ok"), NEW),
    "no answer at all within the read timeout": (
        [("pause", 2 * TIMEOUT)], (Outcome.NO_ANSWER, None, "read timeout"), NEW),
    # -- not HTTP/1.x -------------------------------------------------------------------------------
    "an HTTP/2 connection preface": (
        [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"], (Outcome.NO_ANSWER, None, "bad answer: not an HTTP/1.x status line"),
        NEW),
    "an HTTP/2 SETTINGS frame": (
        [b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64"],
        (Outcome.NO_ANSWER, None, "bad answer: not an HTTP/1.x status line"), NEW),
    "garbage": ([b"SPAM\r\n\r\n"], (Outcome.NO_ANSWER, None, "bad answer: not an HTTP/1.x status line"), NEW),
    # -- no answer ----------------------------------------------------------------------------------
    "closed without an answer": ([CLOSE], (Outcome.NO_ANSWER, None, "connection closed without an answer"), NEW),
    "reset without an answer": ([RESET], (Outcome.NO_ANSWER, None, "connection reset without an answer"), NEW),
    "closed in the middle of the status line": (
        [b"HTTP/1.1 2", CLOSE], (Outcome.NO_ANSWER, None, "bad answer: answer cut off"), NEW),
    # -- statuses -----------------------------------------------------------------------------------
    "429 with Retry-After": (
        [b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n"],
        (Outcome.NO_ANSWER, 429, "429 too many requests"), SAME),
    "a 404 with a chunked body": (
        [b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnope\r\n0\r\n\r\n"],
        (Outcome.REJECTED, 404, "404 not found"), SAME),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_answer_is_recorded_against_its_own_webhook_and_the_next_gets_its_own(raw, name):
    script, (outcome, status, reason), connection = CASES[name]
    server = raw(script)
    client = delivery.make_client()

    first = attempt(client, webhook(server.url("/first")))
    assert (first.outcome, first.status, first.reason) == (outcome, status, reason)
    second = attempt(client, webhook(server.url("/second")))
    assert (second.outcome, second.status) == (Outcome.DELIVERED, 202)  # its own answer, not a leftover

    by_path = {r.request_line.split()[1]: r for r in server.requests}
    assert set(by_path) == {"/first", "/second"}  # each sent once: nothing resent, nothing lost
    same = by_path["/second"].connection == by_path["/first"].connection
    assert connection in (EITHER, SAME if same else NEW)


def test_a_kept_alive_connection_closed_before_any_byte_of_the_answer_is_resent_once_at_once(raw):
    # The receiver closes the kept connection as the second webhook arrives (as a server whose
    # keep-alive timer fired does): it never saw it, so it goes again at once on a new connection.
    server = raw([OK], [CLOSE])
    client = delivery.make_client()
    assert attempt(client, webhook(server.url("/first"))).outcome is Outcome.DELIVERED
    second = attempt(client, webhook(server.url("/second")))
    assert (second.outcome, second.status) == (Outcome.DELIVERED, 202)
    assert [(r.request_line.split()[1], r.connection) for r in server.requests] == [
        ("/first", 1), ("/second", 1), ("/second", 2)]
    assert server.requests[1].header("X-Callflowd-Delivery") == server.requests[2].header("X-Callflowd-Delivery")


def test_a_kept_alive_connection_reset_under_the_request_is_resent_once_then_counted(raw):
    server = raw([OK], [RESET], [RESET])
    client = delivery.make_client()
    assert attempt(client, webhook(server.url("/first"))).outcome is Outcome.DELIVERED
    second = attempt(client, webhook(server.url("/second")))
    # Resent once, on a new connection; reset there too: that one counts (sent, no answer).
    assert (second.outcome, second.reason) == (Outcome.NO_ANSWER, "connection reset without an answer")
    assert [r.connection for r in server.requests] == [1, 1, 2]


def test_a_kept_alive_connection_that_answered_part_of_a_status_line_is_not_resent(raw):
    server = raw([OK], [b"HTTP/1.1 5", CLOSE])
    client = delivery.make_client()
    attempt(client, webhook(server.url("/first")))
    second = attempt(client, webhook(server.url("/second")))
    assert (second.outcome, second.reason) == (Outcome.NO_ANSWER, "bad answer: answer cut off")
    assert len(server.requests) == 2  # the receiver had begun to answer: it may have acted


@pytest.mark.parametrize("first_answer", [
    b"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
], ids=["103 then 503", "204 with a body"])
def test_through_the_outbox_each_webhook_is_recorded_with_its_own_answer(raw, tmp_path, first_answer):
    # The case end to end: the dispatcher, one connection per receiver, two webhooks one
    # after the other. Before, the second was logged "delivered 200" with the first's leftovers.
    from callflowd.config.model import WebhookSettings
    from callflowd.webhooks.dispatcher import WebhookDispatcher

    server = raw([first_answer], [b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"])
    recorded = []
    attempted = gevent.event.Event()

    def observe(request, result):
        recorded.append(result)
        attempted.set()

    dispatcher = WebhookDispatcher(WebhookSettings(timeout=1.0, concurrency_per_endpoint=1),
                                   str(tmp_path / "state"), on_attempt=[observe])
    dispatcher.start()
    try:
        for call_id in ("first", "second"):  # one after the other, as two calls' steps would be
            attempted.clear()
            dispatcher.submit(WebhookRequest(call_id=call_id, uri=server.url("/" + call_id), method="post",
                                             fields=(("n", call_id),), retry=Retry(total=0)))
            assert attempted.wait(5)
    finally:
        dispatcher.stop(timeout=1)
    first, second = recorded
    expected_first = (Outcome.NO_ANSWER, 503) if b"503" in first_answer else (Outcome.DELIVERED, 204)
    assert (first.outcome, first.status) == expected_first
    assert (second.outcome, second.status) == (Outcome.NO_ANSWER, 500)  # its own answer (a 5xx: retryable)


# -- the request line and Host -------------------------------------------------------------------


def test_non_ascii_in_a_get_query_is_utf8_percent_encoded_and_a_lone_percent_escaped(raw):
    server = raw()
    client = delivery.make_client()
    request = webhook(server.url("/hook?tag=50%&ok=%41&list=[a]|b"), method="get",
                      fields=[("caller_id_name", "Zoë Ünal"), ("custom", "ok=1&x")])
    result = attempt(client, request)
    assert result.outcome is Outcome.DELIVERED
    [got] = server.requests
    assert got.request_line == ("GET /hook?tag=50%25&ok=%41&list=%5Ba%5D%7Cb"
                                "&caller_id_name=Zo%C3%AB+%C3%9Cnal&custom=ok%3D1%26x HTTP/1.1")


def test_the_signature_verifies_over_the_target_exactly_as_sent(raw):
    server = raw()
    request = webhook(server.url("/hook?list=[a]|b&name=Zoë"), method="get", fields=[("n", "1")])
    assert attempt(delivery.make_client(), request, secret="whsec").outcome is Outcome.DELIVERED
    [got] = server.requests
    target = got.request_line.split()[1]
    assert signing.verify("whsec", got.header("X-Callflowd-Signature"), "GET", got.header("Host"),
                          target, b"", now=int(got.header("X-Callflowd-Signature")[2:12]))


def test_an_international_host_goes_out_idna_encoded(raw):
    # Through a proxy (the raw receiver): the name needs no DNS, and the request line shows it.
    proxy = raw()
    client = delivery.make_client(proxy=proxy.url("/"))
    result = attempt(client, webhook("http://Bücher.example:8080/straße?q=ß"))
    assert result.outcome is Outcome.DELIVERED
    [got] = proxy.requests
    assert got.request_line == "POST http://xn--bcher-kva.example:8080/stra%C3%9Fe?q=%C3%9F HTTP/1.1"
    assert got.header("Host") == "xn--bcher-kva.example:8080"


def test_credentials_in_the_uri_go_as_basic_auth_never_in_the_request_line(raw):
    server = raw()
    uri = server.url("/hook").replace("http://", "http://us%C3%A9r:p%40ss:w@")
    assert attempt(delivery.make_client(), webhook(uri)).outcome is Outcome.DELIVERED
    [got] = server.requests
    assert got.request_line == "POST /hook HTTP/1.1"
    assert got.header("Authorization") == "Basic dXPDqXI6cEBzczp3"  # base64("usér:p@ss:w")


# -- never sent ----------------------------------------------------------------------------------


def test_a_tls_handshake_the_server_cuts_is_never_sent():
    # A server that accepts, reads the ClientHello's first bytes and closes: the handshake is cut.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def cut():
        sock, _ = listener.accept()
        sock.recv(10)
        sock.close()

    gevent.spawn(cut)
    port = listener.getsockname()[1]
    result = attempt(delivery.make_client(), webhook("https://127.0.0.1:%d/hook" % port))
    listener.close()
    assert result.outcome is Outcome.NOT_SENT and result.reason.startswith("tls handshake failed")


def test_a_destination_the_policy_refuses_is_never_sent_and_never_retried(raw):
    server = raw()
    client = delivery.make_client(destinations=Destinations.parse(deny=["127.0.0.0/8"]))
    result = attempt(client, webhook(server.url()))
    assert (result.outcome, result.reason) == (
        Outcome.REJECTED, "destination 127.0.0.1 refused: denied by webhooks.deny")
    assert server.requests == []


def test_a_fetched_flows_webhook_may_not_reach_loopback_unless_allowed(raw):
    server = raw()
    client = delivery.make_client()
    refused = attempt(client, webhook(server.url("/configured")))  # a configured webhook: fine
    assert refused.outcome is Outcome.DELIVERED
    fetched = attempt(client, webhook(server.url("/fetched"), fetched=True))
    assert fetched.outcome is Outcome.REJECTED  # not even over the kept-alive connection
    assert "loopback, link-local or metadata" in fetched.reason
    allowed = delivery.make_client(destinations=Destinations.parse(allow=["127.0.0.1/32"]))
    assert attempt(allowed, webhook(server.url("/fetched"), fetched=True)).outcome is Outcome.DELIVERED
    assert [r.request_line.split()[1] for r in server.requests] == ["/configured", "/fetched"]


def test_an_https_webhook_through_a_proxy_opens_a_connect_tunnel_with_the_proxys_credentials(raw):
    refusing = raw([b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"])
    client = delivery.make_client(proxy=refusing.url("/").replace("http://", "http://pr%C3%B6xy:pw@"))
    result = attempt(client, webhook("https://hooks.example/in"))
    assert (result.outcome, result.reason) == (Outcome.NOT_SENT, "proxy: the proxy refused the tunnel: 407")
    [got] = refusing.requests
    assert got.request_line == "CONNECT hooks.example:443 HTTP/1.1"
    assert got.header("Proxy-Authorization") == "Basic cHLDtnh5OnB3"  # base64("pröxy:pw")
    # A tunnel opened to something that doesn't speak TLS: the handshake fails, nothing was sent.
    opening = raw([b"HTTP/1.1 200 Connection established\r\n\r\n", ("pause", 0.1), CLOSE])
    result = attempt(delivery.make_client(proxy=opening.url("/")), webhook("https://hooks.example/in"))
    assert result.outcome is Outcome.NOT_SENT and result.reason.startswith("tls handshake failed")
