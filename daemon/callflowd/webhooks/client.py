"""Our HTTP/1.1 client for webhooks: keep-alive connections per endpoint, one send per request.

Why not urllib3 (which sent every webhook before this, and still does through a
``webhooks.proxy``): a webhook is one small request whose status line decides,
and urllib3's layers (``PoolManager`` → ``HTTPConnectionPool`` → ``HTTPConnection``
→ ``http.client`` → ``HTTPResponse``, its URL parsing, its header dicts, the
``email`` parser for the answer's headers, and a patched ``poll()`` per reuse)
cost more CPU than the rest of a durable delivery. Measured in one process on
this 2-core sandbox against the same keep-alive receiver, one request at a time:
urllib3 2,300 requests/s, ``http.client`` 3,600/s, a request written in one
``sendall`` and its answer parsed by hand 5,800-6,300/s (docs/benchmarks.md).

What it does (RFC 9112):

* a connection per attempt in flight; idle ones are kept per endpoint, up to
  ``maxsize`` (the per-endpoint concurrency), the most recently used first. A
  kept-alive connection is checked before reuse: readable while idle means the
  server closed it (or sent what it shouldn't): it is dropped, not written to.
* the request line, ``Host``, the headers, ``Content-Length`` and the body go
  out in one ``sendall`` (TCP_NODELAY: no waiting for a delayed ACK). The
  request target is percent-encoded where the URI holds characters a request
  line can't carry (as urllib3 did); a header holding CR, LF or NUL is refused.
* the answer's status line and headers are read (a ``100 Continue`` skipped),
  at most ``MAX_LINE`` bytes a line and ``MAX_HEADERS`` headers; that is when
  ``request()`` returns. The body is read later, by ``Answer.read_rest()``, framed
  by ``Transfer-Encoding: chunked``, ``Content-Length``, or the connection's end
  (then never reused); an answer with ``Connection: close`` (or an HTTP/1.0 one
  without ``keep-alive``) closes the connection after it.
* ``https://`` goes through ``ssl.create_default_context()`` (certificates and
  host name verified against the system's CAs, as urllib3 did).
* no environment is read: no proxy variables, no ``.netrc``.

Errors are the socket's own (``OSError`` and friends, ``ssl.SSLError``) plus
``BadAnswer``; ``Sending`` wraps what went wrong before the whole request was
written, so the caller can tell "never sent" from "sent, no answer".
"""

import collections
import re
import select
import socket
import ssl
import urllib.parse

from gevent import monkey

# The real select(), not gevent's: the liveness check of an idle connection must not wait.
_select = monkey.get_original("select", "select")

MAX_LINE = 65536  # as http.client
MAX_HEADERS = 100  # as http.client
_BAD_HEADER = re.compile(r"[\r\n\0]")
# What a request target may carry as is (RFC 3986 pchar, "/", "?", and "%" of an escape).
_TARGET_SAFE = "!$&'()*+,;=:@/?%~-._"


class BadAnswer(Exception):
    """The far end answered something that isn't HTTP/1.x."""


class Closed(BadAnswer):
    """The connection ended before a status line came."""


class Sending(Exception):
    """Raised from ``request()`` when the request could not be written; ``__cause__`` says why
    and ``stage`` when: ``"connect"`` or ``"send"``."""

    def __init__(self, stage, message):
        super().__init__(message)
        self.stage = stage


class Connection:
    """One socket to an endpoint and its buffered reader."""

    __slots__ = ("key", "sock", "reader")

    def __init__(self, key, sock):
        self.key = key
        self.sock = sock
        self.reader = sock.makefile("rb")

    def looks_alive(self):
        """An idle kept-alive connection has nothing to read; EOF or stray bytes mean drop it."""
        try:
            readable, _, _ = _select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def close(self):
        try:
            self.reader.close()
        finally:
            self.sock.close()


class Headers(dict):
    """An answer's headers: lower-case names; ``get()`` takes any case. A repeated header's
    values are joined with ", " (RFC 9110 5.3)."""

    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)


class Answer:
    """The status line and headers of an answer; the body stays on the connection until
    ``read_rest()``; then ``release()`` hands the connection back or closes it."""

    __slots__ = ("status", "reason", "version", "headers", "_client", "_conn", "_reusable")

    def __init__(self, client, conn, version, status, reason, headers):
        self._client = client
        self._conn = conn
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.0":
            self._reusable = "keep-alive" in connection
        else:
            self._reusable = "close" not in connection

    def read_rest(self, limit):
        """Read and discard the body, ``limit`` bytes at most: True if it was all read and the
        connection can carry the next request. Raises ``OSError``/``BadAnswer`` on a broken body."""
        reader = self._conn.reader
        if self.status in (204, 304) or 100 <= self.status < 200:
            return self._reusable
        encoding = self.headers.get("transfer-encoding")
        if encoding is not None:
            if encoding.lower().rsplit(",", 1)[-1].strip() != "chunked":
                return self._until_closed(limit)  # RFC 9112 6.3: read until the connection ends
            return self._chunked(reader, limit) and self._reusable
        length = self.headers.get("content-length")
        if length is None:
            return self._until_closed(limit)
        try:
            length = int(length)
        except ValueError:
            raise BadAnswer("bad Content-Length %r" % length[:40]) from None
        if length < 0 or length > limit:
            return False
        if length and len(reader.read(length)) != length:
            return False
        return self._reusable

    def _until_closed(self, limit):
        self._reusable = False
        reader = self._conn.reader
        while limit > 0:
            chunk = reader.read1(min(limit, 65536))
            if not chunk:
                return False  # read it all; the connection is done either way
            limit -= len(chunk)
        return False

    def _chunked(self, reader, limit):
        while True:
            line = reader.readline(MAX_LINE + 1)
            if not line.endswith(b"\n"):
                raise BadAnswer("chunk size line cut off")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadAnswer("bad chunk size") from None
            if size == 0:
                break
            limit -= size
            if limit < 0:
                return False
            if len(reader.read(size + 2)) != size + 2:  # the data and its CRLF
                return False
        for _ in range(MAX_HEADERS + 1):  # the trailer, up to its empty line
            line = reader.readline(MAX_LINE + 1)
            if not line.endswith(b"\n"):
                return False
            if line in (b"\r\n", b"\n"):
                return True
        return False

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


class Client:
    """Keep-alive connections to every endpoint webhooks go to.

    ``maxsize`` idle connections are kept per endpoint (more may be open at once:
    an attempt never waits for a connection); at most ``pools`` endpoints keep
    idle ones, the least recently used losing theirs first.
    """

    def __init__(self, maxsize=125, pools=64, ssl_context=None):
        self.maxsize = maxsize
        self.pools = pools
        self.connections_made = 0
        self._ssl_context = ssl_context
        self._idle = collections.OrderedDict()  # (scheme, host, port) -> [Connection]

    def request(self, method, url, headers, body, timeout):
        """Send one request; the ``Answer`` once its status line and headers are in.

        Raises ``Sending`` (the request was not written: refused, DNS, connect timeout,
        TLS, reset), ``ValueError`` (an invalid URI or header), or, once the request was
        written, ``OSError`` (timeout, reset) or ``BadAnswer`` (``Closed``: no answer).
        """
        key, target, host_header = _split(url)
        data = _encode(method, target, host_header, headers, body)
        try:
            conn = self._take(key, timeout)
        except (OSError, ssl.SSLError) as exc:
            raise Sending("connect", str(exc)) from exc
        try:
            conn.sock.settimeout(timeout)
            try:
                conn.sock.sendall(data)
            except OSError as exc:
                raise Sending("send", str(exc)) from exc
            return self._read_head(conn)
        except BaseException:  # a gevent.Timeout too: a half-used connection can't be reused
            conn.close()
            raise

    def put(self, conn):
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

    def _take(self, key, timeout):
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.looks_alive():
                return conn
            conn.close()
        return self._connect(key, timeout)

    def _connect(self, key, timeout):
        scheme, host, port = key
        sock = socket.create_connection((host, port), timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                if self._ssl_context is None:
                    self._ssl_context = ssl.create_default_context()
                sock = self._ssl_context.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        self.connections_made += 1
        return Connection(key, sock)

    def _read_head(self, conn):
        reader = conn.reader
        while True:
            line = reader.readline(MAX_LINE + 1)
            if not line:
                raise Closed("connection closed without an answer")
            if len(line) > MAX_LINE:
                raise BadAnswer("status line too long")
            version, status, reason = _status_line(line)
            headers = _headers(reader)
            if status != 100:  # 100 Continue: the real answer follows (http.client does the same)
                return Answer(self, conn, version, status, reason, headers)


def _split(url):
    """``((scheme, host, port), request target, Host header)`` for ``url``; ValueError if unusable."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError("unsupported scheme %r" % scheme[:20])
    host = parts.hostname
    if not host:
        raise ValueError("no host in the URI")
    port = parts.port or (443 if scheme == "https" else 80)  # ValueError for a bad port
    target = urllib.parse.quote(parts.path or "/", safe=_TARGET_SAFE)
    if parts.query:
        target += "?" + urllib.parse.quote(parts.query, safe=_TARGET_SAFE)
    name = "[%s]" % host if ":" in host else host
    host_header = name if port == (443 if scheme == "https" else 80) else "%s:%d" % (name, port)
    return (scheme, host, port), target, host_header


def _encode(method, target, host_header, headers, body):
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: " + host_header]
    for name, value in headers.items():
        if _BAD_HEADER.search(name) or _BAD_HEADER.search(value) or ":" in name:
            raise ValueError("invalid header %r" % name[:40])
        lines.append("%s: %s" % (name, value))
    if body is not None:
        lines.append("Content-Length: %d" % len(body))
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")  # UnicodeError is a ValueError
    return head + body if body else head


def _status_line(line):
    try:
        text = line.decode("latin-1").rstrip("\r\n")
        version, status, *reason = text.split(" ", 2)
        if not version.startswith("HTTP/1.") or len(status) != 3:
            raise ValueError
        return version, int(status), reason[0] if reason else ""
    except ValueError:
        raise BadAnswer("not an HTTP/1.x status line") from None


def _headers(reader):
    headers = Headers()
    for _ in range(MAX_HEADERS + 1):
        line = reader.readline(MAX_LINE + 1)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line.endswith(b"\n"):
            raise BadAnswer("headers cut off" if len(line) <= MAX_LINE else "header line too long")
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise BadAnswer("bad header line")
        name = name.strip().lower()
        value = value.strip()
        headers[name] = "%s, %s" % (headers[name], value) if name in headers else value
    raise BadAnswer("more than %d headers" % MAX_HEADERS)
