"""One webhook attempt, and what its outcome means for retrying.

``send()`` sends a ``WebhookRequest`` once and never raises for network
trouble: it returns an ``AttemptResult`` whose ``outcome`` says what happened,
as soon as the status line and headers are in, and the response, which the
caller hands to ``release()`` once it has recorded the outcome. **The status
line decides**: a 2xx is a delivery even if the body then comes slowly or
never (a receiver that answers ``200`` and drips its body got the webhook;
retrying would send it again). After urllib3, "never sent" and "sent, no good
answer" are different outcomes:

``DELIVERED``  any 2xx answer.
``NOT_SENT``   the request never left: connection refused, DNS failure,
               connect timeout. Retried.
``NO_ANSWER``  the request was (or may have been) sent but no good answer came:
               408, 429, any 5xx (``Retry.retry_statuses``; their
               ``Retry-After`` is kept), read timeout before the status line,
               connection reset or closed before an answer, the attempt's
               deadline. Retried, but the far end may have acted on it, so a
               receiver may see it more than once (same delivery id).
``REJECTED``   retrying cannot help: any other status (other 4xx,
               3xx, 1xx), a TLS error, an invalid URI or method. Not retried.

Redirects are never followed, for either method: a redirected POST turned into
a GET would silently drop the fields, and a webhook URI is configuration the
operator should fix, so a 3xx is ``REJECTED``.

The client (``make_client``) is our own keep-alive HTTP/1.1 client
(``client.Client``): a request is one ``sendall``, its answer's head is parsed
by hand, and a delivery costs a fraction of what urllib3's layers cost (see
``client`` for the figures). Through a proxy (``webhooks.proxy``) it is
urllib3's ``ProxyManager``, as before. Either way: keep-alive connections kept
up to the per-endpoint concurrency, TCP_NODELAY, no environment read, and
credentials in the URI sent as a Basic ``Authorization`` header (as requests
would), never in the request line.

Timeouts: ``timeout`` seconds to connect and ``timeout`` seconds for each read;
on top of that a gevent deadline of ``DEADLINE_FACTOR * timeout`` bounds the
wait for the status line (DNS resolution, which requests' timeout doesn't
cover, and a status line trickled in byte by byte). ``release()`` reads what is
left of a short answer within ``timeout`` so the connection goes back to the
keep-alive pool, or closes it.
"""

import base64
import dataclasses
import enum
import http.client
import logging
import socket
import ssl
import time
import urllib.parse

import gevent
import requests
import urllib3
import urllib3.exceptions

from callflowd.logfmt import safe
from callflowd.retry import RETRY_STATUSES, parse_retry_after
from callflowd.webhooks import client as http11
from callflowd.webhooks import wire
from callflowd.webhooks.redact import scrub

log = logging.getLogger(__name__)

DEADLINE_FACTOR = 3
# Read at most this much of an answer: enough to reuse the connection after a
# normal short answer, never enough to let a receiver fill our memory.
MAX_ANSWER_BYTES = 64 * 1024


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    NOT_SENT = "not sent"
    NO_ANSWER = "sent, no good answer"
    REJECTED = "rejected"

    @property
    def retryable(self):
        return self in (Outcome.NOT_SENT, Outcome.NO_ANSWER)


@dataclasses.dataclass(frozen=True)
class AttemptResult:
    """What one attempt came to; ``reason`` is short, lowercase, safe to log."""

    outcome: Outcome
    reason: str
    status: int | None = None  # the HTTP status, when an answer came
    retry_after: float | None = None  # seconds, from a Retry-After header

    @property
    def retryable(self):
        return self.outcome.retryable


def make_client(concurrency_per_endpoint=125, proxy=None, pools=64):
    """The HTTP client every attempt shares: keep-alive pools, TCP_NODELAY, no environment.

    Ours (``client.Client``), or urllib3's ``ProxyManager`` when webhooks go through a proxy.
    """
    if proxy:
        return _ThroughProxy(proxy, concurrency_per_endpoint, pools)
    return http11.Client(maxsize=concurrency_per_endpoint, pools=pools)


class _ThroughProxy:
    """urllib3's ``ProxyManager`` behind our client's interface (``request()`` returning an
    answer with ``read_rest()`` and ``release()``), so one attempt path serves both."""

    def __init__(self, proxy, maxsize, pools):
        self._manager = urllib3.ProxyManager(proxy, num_pools=pools, maxsize=maxsize, block=False,
                                             retries=False,
                                             socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])

    def request(self, method, url, headers, body, timeout):
        return _ProxiedAnswer(self._manager.urlopen(
            method, url, body=body, headers=headers, retries=False, redirect=False,
            preload_content=False, timeout=urllib3.Timeout(connect=timeout, read=timeout)))


class _ProxiedAnswer:
    """A urllib3 response as our client's ``Answer``: status line and headers now, body later."""

    def __init__(self, response):
        self._response = response
        self.status, self.reason, self.headers = response.status, response.reason, response.headers

    def read_rest(self, limit):
        for chunk in self._response.stream(8192, decode_content=False):
            limit -= len(chunk)
            if limit <= 0:
                return False
        return True

    def release(self, reuse):
        if not reuse:
            self._response.close()  # a half-read answer: the connection can't be reused
        self._response.release_conn()


def send(client, request, timeout, *, attempt=1, secret=None, clock=time.time):
    """Send ``request`` once; ``(AttemptResult, response or None)`` once the status line is in."""
    if request.method.lower() not in ("post", "get"):
        return AttemptResult(Outcome.REJECTED, "unsupported method %s" % safe(request.method)), None
    out = wire.encode(request, attempt=attempt, secret=secret, now=clock())
    url, headers = _credentials_as_header(out.url, out.headers)
    deadline = gevent.Timeout(DEADLINE_FACTOR * timeout)
    deadline.start()
    try:
        response = client.request(out.method, url, headers, out.body, timeout)
    except gevent.Timeout as exc:
        if exc is not deadline:
            raise
        return AttemptResult(Outcome.NO_ANSWER, "no answer within %gs" % (DEADLINE_FACTOR * timeout)), None
    except (http11.Sending, http11.BadAnswer, urllib3.exceptions.HTTPError, requests.RequestException,
            ValueError, OSError) as exc:
        return classify_error(exc, request.uri), None
    finally:
        deadline.close()
    return classify_status(response, request.retry.retry_statuses, clock()), response


def _credentials_as_header(url, headers):
    """``user:pass@`` in ``url`` becomes ``Authorization: Basic ...`` (and leaves the URL)."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url, headers
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    token = "%s:%s" % (urllib.parse.unquote(user), urllib.parse.unquote(password))
    headers = dict(headers, Authorization="Basic " + base64.b64encode(token.encode("utf-8")).decode("ascii"))
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, "")), headers


def release(response, timeout, request=None):
    """Read what is left of a short answer (bounded in time and size), then let the connection go.

    Fully read, the connection returns to the keep-alive pool; otherwise it is
    closed. Never changes the outcome: the status line already decided it.
    """
    if response is None:
        return
    limit = gevent.Timeout(timeout)
    limit.start()
    done = False
    try:
        done = _drain(response, request)
    except gevent.Timeout as exc:
        if exc is not limit:
            raise
        log.debug("call %s: webhook answer body still coming after %gs; closing the connection",
                  safe(request.call_id if request else "?"), timeout)
    finally:
        limit.close()
        response.release(reuse=done)  # kept alive, or closed when half read


def attempt(client, request, timeout, *, secret=None, clock=time.time):
    """``send()`` then ``release()``: one whole attempt, for callers with nothing to record between."""
    result, response = send(client, request, timeout, secret=secret, clock=clock)
    release(response, timeout, request)
    return result


def classify_status(response, retry_statuses=RETRY_STATUSES, now=None):
    status = response.status
    phrase = _phrase(response)
    if 200 <= status < 300:
        return AttemptResult(Outcome.DELIVERED, "%d %s" % (status, phrase), status)
    if status in retry_statuses:
        retry_after = parse_retry_after(response.headers.get("Retry-After"),
                                        time.time() if now is None else now)
        return AttemptResult(Outcome.NO_ANSWER, "%d %s" % (status, phrase), status, retry_after)
    if 300 <= status < 400:
        return AttemptResult(Outcome.REJECTED, "%d %s (redirect not followed)" % (status, phrase), status)
    return AttemptResult(Outcome.REJECTED, "%d %s" % (status, phrase), status)


def classify_error(exc, uri=None):
    """Turn a requests exception into an outcome: never sent, sent without answer, or hopeless.

    Reasons quote library messages, which may hold the URI: ``scrub`` masks its secrets.
    """
    result = _classify_error(exc)
    return dataclasses.replace(result, reason=scrub(result.reason, uri))


def _classify_error(exc):
    if isinstance(exc, http11.Sending):
        return _not_sent(exc)
    if isinstance(exc, ssl.SSLError):
        return AttemptResult(Outcome.REJECTED, "tls error: %s" % _innermost([exc]))
    if isinstance(exc, http11.Closed):
        return AttemptResult(Outcome.NO_ANSWER, "connection closed without an answer")
    if isinstance(exc, http11.BadAnswer):
        return AttemptResult(Outcome.NO_ANSWER, "bad answer: %s" % _innermost([exc]))
    if isinstance(exc, TimeoutError):
        return AttemptResult(Outcome.NO_ANSWER, "read timeout")
    chain = list(_causes(exc))
    if isinstance(exc, requests.exceptions.SSLError) or _has(chain, urllib3.exceptions.SSLError):
        return AttemptResult(Outcome.REJECTED, "tls error: %s" % _innermost(chain))
    if _has(chain, socket.gaierror) or _has(chain, urllib3.exceptions.NameResolutionError):
        return AttemptResult(Outcome.NOT_SENT, "dns failure")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return AttemptResult(Outcome.NOT_SENT, "connect timeout")
    if isinstance(exc, requests.exceptions.ReadTimeout) or _has(chain, urllib3.exceptions.ReadTimeoutError):
        return AttemptResult(Outcome.NO_ANSWER, "read timeout")
    if _has(chain, ConnectionRefusedError):
        return AttemptResult(Outcome.NOT_SENT, "connection refused")
    # urllib3's NewConnectionError subclasses ConnectTimeoutError: test it first.
    if _has(chain, urllib3.exceptions.NewConnectionError):
        return AttemptResult(Outcome.NOT_SENT, "cannot connect: %s" % _innermost(chain))
    if _has(chain, urllib3.exceptions.ConnectTimeoutError):
        return AttemptResult(Outcome.NOT_SENT, "connect timeout")
    if isinstance(exc, requests.exceptions.ProxyError) or _has(chain, urllib3.exceptions.ProxyError):
        return AttemptResult(Outcome.NOT_SENT, "proxy error: %s" % _innermost(chain))
    if _has(chain, ConnectionResetError) or _has(chain, BrokenPipeError):
        return AttemptResult(Outcome.NO_ANSWER, "connection reset")
    if _has(chain, http.client.RemoteDisconnected):
        return AttemptResult(Outcome.NO_ANSWER, "connection closed without an answer")
    if isinstance(exc, (requests.ConnectionError, urllib3.exceptions.ProtocolError)):
        return AttemptResult(Outcome.NO_ANSWER, "connection error: %s" % _innermost(chain))
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema, requests.exceptions.InvalidHeader,
                        urllib3.exceptions.LocationValueError, ValueError)):
        return AttemptResult(Outcome.REJECTED, "invalid request: %s" % _innermost(chain))
    # Anything else requests raises (a malformed answer, a content-decoding
    # error...) came after sending: worth another try.
    return AttemptResult(Outcome.NO_ANSWER, "%s: %s" % (type(exc).__name__, _innermost(chain)))


def _not_sent(exc):
    """What kept our client's request from being written (``client.Sending``)."""
    cause = exc.__cause__
    if isinstance(cause, ssl.SSLError):
        return AttemptResult(Outcome.REJECTED, "tls error: %s" % _innermost([cause]))
    if isinstance(cause, socket.gaierror):
        return AttemptResult(Outcome.NOT_SENT, "dns failure")
    if isinstance(cause, ConnectionRefusedError):
        return AttemptResult(Outcome.NOT_SENT, "connection refused")
    if isinstance(cause, TimeoutError):
        return AttemptResult(Outcome.NOT_SENT, "%s timeout" % exc.stage)
    if isinstance(cause, (ConnectionResetError, BrokenPipeError)):
        return AttemptResult(Outcome.NOT_SENT, "connection reset before the request was sent")
    return AttemptResult(Outcome.NOT_SENT, "cannot %s: %s" % (exc.stage, _innermost([cause or exc])))


def _drain(response, request):
    """Read (a bounded part of) the answer so the connection can go back to the pool.

    True if the whole answer was read. The status is what counts: a broken body
    after a status line is logged and ignored.
    """
    try:
        return response.read_rest(MAX_ANSWER_BYTES)
    except (urllib3.exceptions.HTTPError, http11.BadAnswer, OSError) as exc:
        log.debug("call %s: webhook answer body unreadable (%s); status %d stands",
                  safe(request.call_id if request else "?"), safe(scrub(exc)), response.status)
        return False


def _phrase(response):
    phrase = response.reason
    if isinstance(phrase, bytes):
        phrase = phrase.decode("latin-1")
    if not phrase:
        try:
            phrase = http.HTTPStatus(response.status).phrase
        except ValueError:
            phrase = ""
    return str(safe(phrase.lower()))


def _causes(exc, limit=10):
    """``exc`` and what it wraps: ``args[0]``, urllib3's ``.reason``, ``__cause__``, ``__context__``."""
    seen = set()
    pending = [exc]
    while pending and len(seen) < limit:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        candidates = [getattr(current, "reason", None), current.__cause__, current.__context__]
        if current.args and isinstance(current.args[0], BaseException):
            candidates.insert(0, current.args[0])
        pending.extend(c for c in candidates if isinstance(c, BaseException))


def _has(chain, kind):
    return any(isinstance(item, kind) for item in chain)


def _innermost(chain):
    """The most specific message in the chain, escaped, without urllib3's object reprs."""
    for item in reversed(chain):
        text = str(item).strip()
        if text:
            if ": " in text and text.startswith("<"):
                text = text.split(": ", 1)[1]
            return str(safe(text))
    return type(chain[-1]).__name__ if chain else "unknown error"
