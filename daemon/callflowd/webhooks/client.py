"""Our HTTP/1.1 client: keep-alive connections per endpoint, one write per request, answers
parsed by h11.

Why h11 parses the answers: the outbox's rule is "the status line decides", so
the status line read must be this request's own. A hand-written parser got it
wrong in ways a hostile receiver found at once (a ``103`` taken as the final
answer and the real one left for the next webhook; bytes left after a ``204``
read as the next answer; an obs-folded header refused after the receiver had
acted). h11 (python-hyper/h11) is sans-I/O, so it sits on our gevent sockets
unchanged, it is strict where RFC 9112 says a recipient must reject (conflicting
``Content-Length``, a bad chunk, a bad header line) and lenient where it says it
must accept (obs-fold, chunk extensions, trailers), and its state machine says
when a connection may carry the next request. urllib3 as a drop-in did not fit:
``http.client`` under it hands back a ``103`` as the final answer, and nothing
resends after a kept connection closes under a request.

Figures measured here (2-core shared sandbox, Python 3.11, h11 0.16.0; the
command is in docs/benchmarks.md): parsing a short answer with h11 costs about
20-25 µs of CPU a request on a kept-alive connection. Writing the request with
h11 as well (``Connection.send(Request)`` validates every header) cost 67 µs
against 5 µs for our one-``sendall`` writer (``wire.Wire.to_bytes``), so we
keep ours and tell h11 only what it needs to frame the answer: the method, via a
constant stand-in request whose bytes are never written (``_STAND_IN``). One at a
time against a keep-alive receiver, in the same runs (load average 2.5-3 on this
shared machine): this client 2,437-6,218 requests/s, urllib3's ``PoolManager``
1,329-2,616/s; the durable outbox on it 2,486-4,298 deliveries/s at 0.23-0.30 ms
of CPU each, against 0.19-0.24 ms for the hand-written parser it replaces
(docs/benchmarks.md, 2026-12-06).

What holds (tests/test_http_conformance.py is the corpus):

* every 1xx before the final answer is skipped; a ``101`` (we never ask for an
  upgrade) ends the connection and the attempt has no answer;
* a connection goes back to the pool only if h11 says both sides are done and
  nothing is left unread: bytes after a ``204``/``304``, a stray CRLF after a
  body, an answer framed by the connection's end, ``Connection: close``, an
  HTTP/1.0 answer, or a framing conflict (``Content-Length`` beside
  ``Transfer-Encoding``) all close it. An idle kept connection that became
  readable (the server closed it, or sent something) is dropped, not reused;
* a kept-alive connection that is closed or reset before any byte of the
  answer came (or before the request could be written) is, once, resent at
  once on a new connection: the receiver never saw it, and the delivery id
  makes a resend safe anyway;
* destinations are checked after DNS resolution (``webhooks.allow``/``deny``),
  and only a checked address is connected to;
* ``https://`` goes through ``ssl.create_default_context()``; through
  ``webhooks.proxy`` an ``http://`` request goes to the proxy in absolute form,
  an ``https://`` one through a ``CONNECT`` tunnel;
* no environment is read: no proxy variables, no ``.netrc``.

Errors: ``NotSent`` (nothing was written: DNS, refused, connect or TLS handshake
failure, a refused destination) or, once the request was written, ``NoAnswer``
(``Closed``, ``BadAnswer``) and the socket's ``OSError``/timeouts.
``delivery.classify_error`` turns them into outcomes.
"""

import collections
import socket
import ssl

import h11
from gevent import monkey

from callflowd.config import uri as uris
from callflowd.config.destinations import Destinations

# The real select(), not gevent's: the liveness check of an idle connection must not wait.
_select = monkey.get_original("select", "select")

MAX_HEAD = 64 * 1024  # an answer's status line and headers, at most (h11's default is 16 KiB)
RECV = 65536
# What h11 needs to know about our request to frame the answer: its method (HEAD and CONNECT
# answers are framed differently). Never written: our own writer sends the real one.
_STAND_IN = {method: h11.Request(method=method, target="/", headers=[("Host", "x"), ("Content-Length", "0")])
             for method in ("GET", "POST", "PUT", "PATCH", "DELETE")}
_END = h11.EndOfMessage()


class NotSent(Exception):
    """The request was not written. ``stage``: ``"dns"``, ``"connect"``, ``"tls"``, ``"proxy"``,
    ``"send"`` or ``"destination"``; ``__cause__`` says why."""

    def __init__(self, stage, message):
        super().__init__(message)
        self.stage = stage


class Refused(NotSent):
    """``webhooks.allow``/``deny`` (or the default for fetched flows) refuses the destination."""

    def __init__(self, message):
        super().__init__("destination", message)


class NoAnswer(Exception):
    """The request was written; no usable answer came."""


class BadAnswer(NoAnswer):
    """The far end answered something that isn't a valid HTTP/1.1 answer."""


class Closed(NoAnswer):
    """The connection ended (or was reset) before any byte of an answer came."""


class TooLarge(Exception):
    """An answer's body is larger than the caller reads."""


class Connection:
    """One socket to an endpoint and the h11 state of its current exchange."""

    __slots__ = ("key", "sock", "parser", "reused", "address")

    def __init__(self, key, sock, address):
        self.key = key
        self.sock = sock
        self.address = address  # the checked address connected to (the proxy's through one)
        self.parser = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self.reused = False

    def looks_alive(self):
        """An idle kept-alive connection has nothing to read; EOF or stray bytes mean drop it."""
        try:
            readable, _, _ = _select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def close(self):
        self.sock.close()


class Headers:
    """An answer's headers as h11 gives them (lower-case names); ``get()`` takes any case and
    joins a repeated header's values with ", " (RFC 9110 5.3)."""

    __slots__ = ("raw",)

    def __init__(self, raw):
        self.raw = raw

    def get(self, name, default=None):
        wanted = name.lower().encode("ascii")
        values = [value.decode("latin-1") for key, value in self.raw if key == wanted]
        return ", ".join(values) if values else default

    def __contains__(self, name):
        return self.get(name) is not None


class Answer:
    """The status line and headers of an answer; the body stays on the connection until
    ``read_rest()`` or ``read_body()``; then ``release()`` hands the connection back or closes it."""

    __slots__ = ("status", "reason", "version", "headers", "_client", "_conn", "_reusable")

    def __init__(self, client, conn, response):
        self._client = client
        self._conn = conn
        self.status = response.status_code
        self.reason = response.reason.decode("latin-1")
        self.version = "HTTP/" + response.http_version.decode("ascii")
        self.headers = Headers(response.headers)
        # RFC 9112 6.3: Transfer-Encoding beside Content-Length may be smuggling: h11 goes by
        # Transfer-Encoding, and the connection is closed after the answer.
        self._reusable = not ("transfer-encoding" in self.headers and "content-length" in self.headers)

    def read_rest(self, limit):
        """Read and discard the body, ``limit`` bytes at most: True if it was all read and the
        connection can carry the next request. Raises ``OSError``/``NoAnswer`` on a broken body."""
        for _ in self._body(limit):
            pass
        return self.reusable()

    def read_body(self, limit):
        """The whole body (``limit`` bytes at most, else ``TooLarge``); ``reusable()`` then says
        whether the connection can carry the next request."""
        chunks = []
        size = 0
        for chunk in self._body(limit):
            size += len(chunk)
            chunks.append(chunk)
        if size > limit:
            raise TooLarge("the answer is larger than %d bytes" % limit)
        return b"".join(chunks)

    def _body(self, limit):
        parser = self._conn.parser
        size = 0
        while True:
            event = _next_event(parser)
            kind = type(event)
            if kind is h11.Data:
                size += len(event.data)
                yield event.data
                if size > limit:
                    self._reusable = False
                    return
            elif event is h11.NEED_DATA:
                parser.receive_data(self._conn.sock.recv(RECV))
            elif kind is h11.EndOfMessage:
                return
            else:  # ConnectionClosed: a body framed by the connection's end came whole
                self._reusable = False
                return

    def reusable(self):
        """True if the connection can carry the next request (and it is readied for it)."""
        parser = self._conn.parser
        if not self._reusable or parser.our_state is not h11.DONE or parser.their_state is not h11.DONE:
            return False
        if parser.trailing_data[0]:  # bytes beyond the answer: not ours to guess at
            return False
        parser.start_next_cycle()
        return True

    def release(self, reuse):
        """The connection back to its endpoint's idle ones (``reuse``), or closed."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if reuse:
            self._client.put(conn)
        else:
            conn.close()

    def close(self):
        self.release(False)


class Proxy:
    """``webhooks.proxy``: where requests go instead, and its credentials."""

    def __init__(self, uri):
        parsed = uris.parse_proxy(uri)
        self.host, self.port = parsed.host, parsed.port
        self.headers = {"Proxy-Authorization": parsed.authorization} if parsed.authorization else {}


class Client:
    """Keep-alive connections to every endpoint requests go to.

    ``maxsize`` idle connections are kept per endpoint (more may be open at once:
    an attempt never waits for a connection); at most ``pools`` endpoints keep
    idle ones, the least recently used losing theirs first.
    """

    def __init__(self, maxsize=125, pools=64, ssl_context=None, proxy=None, destinations=None):
        self.maxsize = maxsize
        self.destinations = destinations or Destinations()
        self._checks = {fetched: self.destinations.for_flow(fetched) for fetched in (False, True)}
        self.pools = pools
        self.connections_made = 0
        self._ssl_context = ssl_context
        self._proxy = Proxy(proxy) if proxy else None
        self._idle = collections.OrderedDict()  # (scheme, host, port) -> [Connection]

    def request(self, wire, timeout, fetched=False):
        """Send ``wire`` (a ``wire.Wire``) once; the ``Answer`` once its status line and headers
        are in. ``fetched``: it comes from a fetched flow (``config.destinations``).

        Raises ``NotSent``, ``ValueError`` (a header that can't be carried), or, once the request
        was written, ``NoAnswer`` or ``OSError`` (a read timeout, a reset).
        """
        proxy = self._proxy
        absolute = proxy is not None and wire.uri.scheme == "http"
        data = wire.to_bytes(absolute=absolute, extra=proxy.headers if absolute else None)
        key = wire.uri.origin
        destinations = self._checks[bool(fetched)]
        conn = self._take(key, wire.uri, timeout, destinations)
        if not conn.reused:
            return self._exchange(conn, wire.method, data, timeout)
        try:
            return self._exchange(conn, wire.method, data, timeout)
        except (Closed, NotSent) as exc:
            if isinstance(exc, NotSent) and exc.stage != "send":
                raise
        # The kept-alive connection was closed under the request, before any byte of an answer:
        # the receiver never acted on it. Once more, at once, on a new connection.
        conn = self._connect(key, wire.uri, timeout, destinations)
        return self._exchange(conn, wire.method, data, timeout)

    def _exchange(self, conn, method, data, timeout):
        try:
            conn.sock.settimeout(timeout)
            try:
                conn.sock.sendall(data)
            except OSError as exc:
                raise NotSent("send", str(exc) or type(exc).__name__) from exc
            parser = conn.parser
            parser.send(_STAND_IN.get(method) or h11.Request(
                method=method, target="/", headers=[("Host", "x"), ("Content-Length", "0")]))
            parser.send(_END)
            return self._read_head(conn)
        except BaseException:  # a gevent.Timeout too: a half-used connection can't be reused
            conn.close()
            raise

    def _read_head(self, conn):
        parser = conn.parser
        received = 0  # bytes of this answer so far: its 1xx answers and its head, at most MAX_HEAD
        while True:
            # Read first: nothing is buffered when a request goes out (a connection with anything
            # left over is never reused), so asking h11 before any byte came would be wasted.
            if received > MAX_HEAD:
                raise BadAnswer("answer head larger than %d bytes" % MAX_HEAD)
            try:
                data = conn.sock.recv(min(RECV, MAX_HEAD + 1 - received))
            except ConnectionResetError as exc:
                if not received:
                    raise Closed("connection reset without an answer") from exc
                raise
            if not data and not received:
                raise Closed("connection closed without an answer")
            if not received and data[:1] in (b"\r", b"\n"):
                # Empty lines before a status line: a stray CRLF that trailed the previous
                # answer after this connection was reused (RFC 9112 2.2's robustness rule).
                data = data.lstrip(b"\r\n")
                if not data:
                    continue
            received += len(data)
            parser.receive_data(data)
            while True:
                event = _next_event(parser)
                kind = type(event)
                if kind is h11.Response:
                    return Answer(self, conn, event)
                if event is h11.NEED_DATA:
                    break
                if kind is not h11.InformationalResponse:  # ConnectionClosed
                    raise BadAnswer("answer cut off")
                # 100 Continue, 102, 103 Early Hints...: the final answer follows

    def put(self, conn):
        conn.reused = True
        idle = self._idle.get(conn.key)
        if idle is None:
            idle = self._idle[conn.key] = []
            while len(self._idle) > self.pools:
                _, dropped = self._idle.popitem(last=False)
                for old in dropped:
                    old.close()
        else:
            self._idle.move_to_end(conn.key)
        if len(idle) < self.maxsize:
            idle.append(conn)
        else:
            conn.close()

    def idle(self, scheme, host, port):
        """Idle connections kept for an endpoint (for tests and the curious)."""
        return list(self._idle.get((scheme, host, port), ()))

    def close(self):
        while self._idle:
            _, idle = self._idle.popitem()
            for conn in idle:
                conn.close()

    def _take(self, key, uri, timeout, destinations):
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not destinations.allows(uri.host, conn.address):
                idle.append(conn)  # kept for the requests that may use it; this one connects anew
                break
            if conn.looks_alive():
                return conn
            conn.close()
        return self._connect(key, uri, timeout, destinations)

    def _connect(self, key, uri, timeout, destinations):
        proxy = self._proxy
        if proxy is None:
            sock, address = self._open(uri.host, uri.port, timeout, destinations)
        else:
            # Checked here; the proxy resolves the name again (and may be told its own rules).
            address = None
            if destinations.active:
                address = _resolve(uri.host, uri.port, destinations)[0][1][0]
            sock, _ = self._open(proxy.host, proxy.port, timeout, None, stage="proxy")
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if uri.scheme == "https":
                if proxy is not None:
                    _tunnel(sock, uri, proxy, timeout)
                sock = self._tls(sock, uri.host, timeout)
        except BaseException:
            sock.close()
            raise
        self.connections_made += 1
        return Connection(key, sock, address)

    def _open(self, host, port, timeout, destinations, stage="connect"):
        addresses = _resolve(host, port, destinations)
        error = None
        for family, address in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(address)
                return sock, address[0]
            except OSError as exc:
                sock.close()
                error = exc
        raise NotSent(stage, str(error) or type(error).__name__) from error

    def _tls(self, sock, host, timeout):
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        try:
            sock.settimeout(timeout)
            return self._ssl_context.wrap_socket(sock, server_hostname=host)
        except (OSError, ssl.SSLError) as exc:  # SSLError is an OSError; a cert error too
            raise NotSent("tls", str(exc) or type(exc).__name__) from exc


def _resolve(host, port, destinations):
    """``[(family, sockaddr)]`` for ``host``, only the addresses ``destinations`` allows."""
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise NotSent("dns", "dns failure") from exc
    addresses = [(family, sockaddr) for family, _, _, _, sockaddr in infos]
    if destinations is not None and destinations.active:
        allowed = [(family, sockaddr) for family, sockaddr in addresses
                   if destinations.allows(host, sockaddr[0])]
        if not allowed:
            raise Refused(destinations.why_not(host, addresses[0][1][0]))
        addresses = allowed
    return addresses


def _tunnel(sock, uri, proxy, timeout):
    """``CONNECT host:port`` through ``proxy`` on ``sock``: NotSent unless it answers 2xx."""
    authority = "%s:%d" % ("[%s]" % uri.host if ":" in uri.host else uri.host, uri.port)
    lines = ["CONNECT %s HTTP/1.1" % authority, "Host: " + authority]
    lines += ["%s: %s" % item for item in proxy.headers.items()]
    parser = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
    parser.send(h11.Request(method="CONNECT", target=authority, headers=[("Host", authority)]))
    parser.send(_END)  # only what h11 needs to frame the proxy's answer; our bytes are the ones above
    try:
        sock.settimeout(timeout)
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
        while True:
            event = parser.next_event()
            if event is h11.NEED_DATA:
                parser.receive_data(sock.recv(RECV))
            elif type(event) is h11.Response:
                break
            elif type(event) is not h11.InformationalResponse:
                raise NotSent("proxy", "the proxy closed the tunnel")
    except (OSError, h11.RemoteProtocolError) as exc:
        raise NotSent("proxy", "tunnel: %s" % (str(exc) or type(exc).__name__)) from exc
    if not 200 <= event.status_code < 300:
        raise NotSent("proxy", "the proxy refused the tunnel: %d" % event.status_code)
    if parser.trailing_data[0]:
        raise NotSent("proxy", "the proxy sent bytes before the tunnel opened")


# h11's messages quote what the far end sent; the log gets ours.
_REASONS = (
    ("illegal status line", "not an HTTP/1.x status line"),
    ("illegal request line", "not an HTTP/1.x status line"),  # h11's name when the first byte is binary
    ("no response line", "not an HTTP/1.x status line"),
    ("illegal header line", "bad header line"),
    ("continuation line at start", "bad header line"),
    ("Illegal header", "bad header line"),
    ("conflicting Content-Length", "conflicting Content-Length headers"),
    ("bad Content-Length", "bad Content-Length"),
    ("multiple Transfer-Encoding", "more than one Transfer-Encoding header"),
    ("Only Transfer-Encoding: chunked", "a Transfer-Encoding other than chunked"),
    ("illegal chunk", "bad chunk"),
    ("malformed chunk", "bad chunk"),
    ("peer closed connection without sending complete", "body cut off"),
    ("peer unexpectedly closed", "answer cut off"),
    ("Received server _SWITCH_UPGRADE", "101 switching protocols, which was not asked for"),
    ("Receive buffer too long", "answer head larger than %d bytes" % MAX_HEAD),
)


def _next_event(parser):
    """h11's next event of an answer; what it refuses is a ``BadAnswer`` naming why."""
    try:
        return parser.next_event()
    except h11.RemoteProtocolError as exc:
        raise BadAnswer(_h11_reason(exc)) from None


def _h11_reason(exc):
    text = str(exc)
    for prefix, reason in _REASONS:
        if text.startswith(prefix):
            return reason
    return "invalid answer (%s)" % type(exc).__name__
