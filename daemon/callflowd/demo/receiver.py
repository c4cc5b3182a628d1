"""An in-process webhook receiver on 127.0.0.1, for ``callflowd demo`` and the tests.

It records every request it gets and answers with a status that can be
scripted (``respond_with``, ``fail_next``, with headers such as
``Retry-After``), or plays the receivers webhooks meet in the wild: refusing
(``stop``), hanging (``hold``/``release``), slow to answer (``delay``), or
answering ``200`` at once and dripping its body (``drip``). It serves with
``gevent.pywsgi`` so it never blocks the hub.

A receiver keeps its port across ``stop()``/``start()``: give it a port picked
earlier with ``free_port()`` (or let the first ``start()`` pick one) and a test
can have "receiver down, then up" at one URL. While stopped the port is closed,
so connections to it are refused.
"""

import dataclasses
import http
import logging
import socket
import time
import urllib.parse

import gevent.event
import gevent.pool
import gevent.pywsgi

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
HOLD_LIMIT = 60.0  # seconds a held request waits at most


def free_port(host=HOST):
    """A TCP port on ``host`` that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclasses.dataclass(frozen=True)
class ReceivedRequest:
    """One request as the receiver saw it.

    ``query`` and ``form`` map names to lists of values (``parse_qs`` with blank
    values kept); ``form`` is filled only for a form-encoded body. ``headers``
    has lower-case names.
    """

    method: str
    path: str
    query: dict
    form: dict
    headers: dict
    body: bytes
    query_string: str = ""
    received_at: float = 0.0  # time.monotonic() when it arrived

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    @property
    def fields(self):
        """The webhook's fields wherever they came: the form body of a POST, else the query."""
        return self.form if self.form else self.query


class WebhookReceiver:
    """Records requests to ``http://127.0.0.1:<port>/...``; answers 200 unless told otherwise."""

    def __init__(self, port=0, host=HOST):
        self.host = host
        self.port = port  # 0 until the first start() picks one
        self.requests = []
        self._status = 200
        self._failures = []  # (status, headers) to answer with next, first first
        self._delay = 0.0  # seconds before answering
        self._drip = None  # seconds between body bytes, when dripping
        self._server = None
        self._arrived = gevent.event.Event()
        self._released = gevent.event.Event()
        self._released.set()

    # -- lifecycle -----------------------------------------------------------------

    def start(self):
        if self._server is not None:
            raise RuntimeError("receiver already started on port %d" % self.port)
        server = _Server(
            (self.host, self.port), self._app, spawn=gevent.pool.Pool(),
            log=None, error_log=log,
        )
        server.start()
        self._server = server
        self.port = server.server_port
        log.debug("webhook receiver listening on %s:%d", self.host, self.port)
        return self

    def stop(self):
        """Close the port (new connections are refused) and end open connections."""
        if self._server is None:
            return
        server, self._server = self._server, None
        self._released.set()  # let held handlers finish
        server.stop(timeout=0.1)
        log.debug("webhook receiver on port %d stopped", self.port)

    @property
    def running(self):
        return self._server is not None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def url(self, path="/"):
        if not self.port:
            raise RuntimeError("receiver has no port yet: give one or start() it first")
        return "http://%s:%d%s" % (self.host, self.port, path)

    # -- scripting -----------------------------------------------------------------

    def respond_with(self, status):
        """Answer every later request with ``status`` (after any ``fail_next``)."""
        self._status = int(status)

    def fail_next(self, n, status=503, headers=()):
        """Answer the next ``n`` requests with ``status`` (and ``headers``, e.g. Retry-After)."""
        self._failures.extend([(int(status), list(headers))] * n)

    def delay(self, seconds):
        """Answer every later request ``seconds`` after it arrived (an ordinary slow web app)."""
        self._delay = float(seconds)

    def drip(self, seconds_per_byte):
        """Answer ``200`` with its headers at once, then send the body a byte at a time."""
        self._drip = float(seconds_per_byte)

    def hold(self):
        """Record requests but don't answer them until ``release()`` (a slow server)."""
        self._released.clear()

    def release(self):
        self._released.set()

    def wait_for(self, count, timeout=5.0):
        """Wait until ``count`` requests have arrived; returns all received so far.

        Raises TimeoutError after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._arrived.wait(remaining):
                raise TimeoutError("receiver got %d requests, not %d, within %gs"
                                   % (len(self.requests), count, timeout))
        return list(self.requests)

    # -- serving -------------------------------------------------------------------

    def _app(self, environ, start_response):
        self._record(environ)
        status, headers = self._failures.pop(0) if self._failures else (self._status, [])
        # A held answer waits for release(); stop() releases, HOLD_LIMIT is a backstop.
        self._released.wait(HOLD_LIMIT)
        if self._delay:
            gevent.sleep(self._delay)  # playing a slow server, not synchronising a test
        if status < 200 or status in (204, 304):  # answers that must not have a body
            start_response(_status_line(status), headers)
            return []
        if self._drip is not None and 200 <= status < 300:
            body = b"delivered, slowly\n"
            start_response(_status_line(status), headers + [
                ("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return self._dripping(body, self._drip)
        start_response(_status_line(status), headers + [("Content-Type", "text/plain")])
        return [b"%d\n" % status]

    def _dripping(self, body, seconds_per_byte):
        for index in range(len(body)):
            yield body[index:index + 1]
            if not self.running:
                return
            gevent.sleep(seconds_per_byte)

    def _record(self, environ):
        body = environ["wsgi.input"].read()
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items() if key.startswith("HTTP_")
        }
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").lower()] = environ[key]
        query_string = environ.get("QUERY_STRING", "")
        form = {}
        if headers.get("content-type", "").split(";")[0].strip() == FORM_CONTENT_TYPE:
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        self.requests.append(ReceivedRequest(
            method=environ["REQUEST_METHOD"],
            path=environ.get("PATH_INFO", "/"),
            query=urllib.parse.parse_qs(query_string, keep_blank_values=True),
            form=form,
            headers=headers,
            body=body,
            query_string=query_string,
            received_at=time.monotonic(),
        ))
        # Wake every waiter, then arm a fresh event for the next arrival.
        arrived, self._arrived = self._arrived, gevent.event.Event()
        arrived.set()


class _Server(gevent.pywsgi.WSGIServer):
    def handle(self, sock, address):
        # pywsgi writes the status line and headers, then the body, in two
        # sends: with Nagle's algorithm on, the body waits for the client's
        # delayed ACK (40 ms on Linux) on every kept-alive connection.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle(sock, address)


def _status_line(status):
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return "%d %s" % (status, phrase)
