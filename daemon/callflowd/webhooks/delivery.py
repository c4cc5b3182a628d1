"""One webhook attempt, and what its outcome means for retrying.

``send()`` sends a ``WebhookRequest`` once and never raises for network
trouble: it returns an ``AttemptResult`` whose ``outcome`` says what happened,
as soon as the status line and headers are in, and the response, which the
caller hands to ``release()`` once it has recorded the outcome. **The status
line decides**: a 2xx is a delivery even if the body then comes slowly or
never (a receiver that answers ``200`` and drips its body got the webhook;
retrying would send it again). As in urllib3's ``Retry``, "never sent" and "sent, no good
answer" are different outcomes:

``DELIVERED``  any 2xx answer.
``NOT_SENT``   the request never left: connection refused, DNS failure,
               connect timeout, TLS handshake failed (other than an untrusted
               certificate). Retried.
``NO_ANSWER``  the request was (or may have been) sent but no good answer came:
               408, 429, any 5xx (``Retry.retry_statuses``; their
               ``Retry-After`` is kept), read timeout before the status line,
               connection reset or closed before an answer, the attempt's
               deadline. Retried, but the far end may have acted on it, so a
               receiver may see it more than once (same delivery id).
``REJECTED``   retrying cannot help: any other status (other 4xx, 3xx), a
               certificate we don't trust, a destination refused by
               ``webhooks.allow``/``deny``, an invalid URI or method. Not retried.

Redirects are never followed, for either method: a redirected POST turned into
a GET would silently drop the fields, and a webhook URI is configuration the
operator should fix, so a 3xx is ``REJECTED``.

The client (``make_client``) is ours (``client.Client``): a request is one
``sendall`` of the bytes ``wire`` built (and signed), its answer is parsed by
h11, and the same client goes through ``webhooks.proxy`` when one is set (see
``client`` for why and the figures). Webhooks, lifecycle hooks and ``pivot``
(``fetch()``) all send through here, and ``classify_error`` is the one place
an error becomes "never sent", "sent, no answer" or hopeless: a TLS handshake
cut short is never sent; a certificate the system doesn't trust, a destination
``webhooks.allow``/``deny`` refuses, or an invalid request is hopeless.

Timeouts: ``timeout`` seconds to connect and ``timeout`` seconds for each read;
on top of that a gevent deadline of ``DEADLINE_FACTOR * timeout`` bounds the
wait for the status line (DNS resolution, which the socket timeout doesn't
cover, and a status line trickled in byte by byte). ``release()`` reads what is
left of a short answer within ``timeout`` so the connection goes back to the
keep-alive pool, or closes it.
"""

import dataclasses
import enum
import http
import logging
import ssl
import time

import gevent

from callflowd.logfmt import safe
from callflowd.retry import RETRY_STATUSES, parse_retry_after
from callflowd.webhooks import client as http11
from callflowd.webhooks import wire

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


def make_client(concurrency_per_endpoint=125, proxy=None, pools=64, destinations=None):
    """The HTTP client every attempt shares: keep-alive pools, TCP_NODELAY, no environment;
    through ``proxy`` if given; sending only where ``destinations`` allows."""
    return http11.Client(maxsize=concurrency_per_endpoint, pools=pools, proxy=proxy,
                         destinations=destinations)


def send(client, request, timeout, *, attempt=1, secret=None, clock=time.time):
    """Send ``request`` once; ``(AttemptResult, response or None)`` once the status line is in."""
    if request.method.lower() not in ("post", "get"):
        return AttemptResult(Outcome.REJECTED, "unsupported method %s" % safe(request.method)), None
    try:
        out = wire.encode(request, attempt=attempt, secret=secret, now=clock())
    except ValueError as exc:
        return classify_error(exc), None
    deadline = gevent.Timeout(DEADLINE_FACTOR * timeout)
    deadline.start()
    try:
        response = client.request(out, timeout, fetched=getattr(request, "fetched", False))
    except gevent.Timeout as exc:
        if exc is not deadline:
            raise
        return AttemptResult(Outcome.NO_ANSWER, "no answer within %gs" % (DEADLINE_FACTOR * timeout)), None
    except (http11.NotSent, http11.NoAnswer, ValueError, OSError) as exc:
        return classify_error(exc), None
    finally:
        deadline.close()
    return classify_status(response, request.retry.retry_statuses, clock()), response


def fetch(client, out, timeout, limit, fetched=False):
    """Send ``out`` (a ``wire.Wire``) once and read its whole answer, all within ``timeout``:
    ``(AttemptResult, body)``; the body (at most ``limit`` bytes) only with a 2xx. For a caller
    that needs what the answer says (``pivot``)."""
    deadline = gevent.Timeout(timeout)
    deadline.start()
    try:
        answer = client.request(out, timeout, fetched=fetched)
        reuse = False
        try:
            result = classify_status(answer)
            if result.outcome is not Outcome.DELIVERED:
                return result, None
            body = answer.read_body(limit)
            reuse = answer.reusable()
            return result, body
        finally:
            answer.release(reuse)
    except gevent.Timeout as exc:
        if exc is not deadline:
            raise
        return AttemptResult(Outcome.NO_ANSWER, "no answer within %gs" % timeout), None
    except http11.TooLarge as exc:
        return AttemptResult(Outcome.REJECTED, str(exc)), None
    except (http11.NotSent, http11.NoAnswer, ValueError, OSError) as exc:
        return classify_error(exc), None
    finally:
        deadline.close()


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
    """An error from sending as an outcome: never sent, sent without an answer, or hopeless.

    The reasons are ours (the client quotes no URI), escaped for the log. ``uri`` is accepted
    for old callers and unused.
    """
    if isinstance(exc, http11.NotSent):
        return _not_sent(exc)
    if isinstance(exc, http11.Closed):
        return AttemptResult(Outcome.NO_ANSWER, str(safe(exc)))
    if isinstance(exc, http11.BadAnswer):
        return AttemptResult(Outcome.NO_ANSWER, "bad answer: %s" % safe(exc))
    if isinstance(exc, http11.NoAnswer):
        return AttemptResult(Outcome.NO_ANSWER, str(safe(exc)))
    if isinstance(exc, TimeoutError):
        return AttemptResult(Outcome.NO_ANSWER, "read timeout")
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return AttemptResult(Outcome.NO_ANSWER, "connection reset")
    if isinstance(exc, ValueError):  # an invalid URI (config.uri.InvalidURI) or header
        return AttemptResult(Outcome.REJECTED, "invalid request: %s" % safe(exc))
    if isinstance(exc, OSError):
        return AttemptResult(Outcome.NO_ANSWER, "connection error: %s" % _text(exc))
    return AttemptResult(Outcome.NO_ANSWER, "%s: %s" % (type(exc).__name__, _text(exc)))


def _not_sent(exc):
    """What kept the request from being written (``client.NotSent``): retried, unless retrying
    can't help (a refused destination, a certificate we don't trust)."""
    cause = exc.__cause__
    if isinstance(exc, http11.Refused):
        return AttemptResult(Outcome.REJECTED, str(safe(exc)))
    if exc.stage == "dns":
        return AttemptResult(Outcome.NOT_SENT, "dns failure")
    if isinstance(cause, ssl.SSLCertVerificationError):
        return AttemptResult(Outcome.REJECTED, "tls error: %s" % _text(cause))
    if exc.stage == "tls":  # a handshake cut or refused: the receiver never saw the request
        return AttemptResult(Outcome.NOT_SENT, "tls handshake failed: %s" % _text(cause or exc))
    prefix = "proxy: " if exc.stage == "proxy" else ""
    if isinstance(cause, ConnectionRefusedError):
        return AttemptResult(Outcome.NOT_SENT, prefix + "connection refused")
    if isinstance(cause, TimeoutError):
        return AttemptResult(Outcome.NOT_SENT, prefix + "%s timeout" % ("connect" if exc.stage == "proxy"
                                                                        else exc.stage))
    if isinstance(cause, (ConnectionResetError, BrokenPipeError)):
        return AttemptResult(Outcome.NOT_SENT, prefix + "connection reset before the request was sent")
    if exc.stage == "proxy" and cause is None:
        return AttemptResult(Outcome.NOT_SENT, "proxy: %s" % _text(exc))
    return AttemptResult(Outcome.NOT_SENT, "cannot %s: %s" % (exc.stage, _text(cause or exc)))


def _text(exc):
    """An exception's message, escaped; its type when it has none."""
    text = str(exc).strip()
    return str(safe(text)) if text else type(exc).__name__


def _drain(response, request):
    """Read (a bounded part of) the answer so the connection can go back to the pool.

    True if the whole answer was read. The status is what counts: a broken body
    after a status line is logged and ignored.
    """
    try:
        return response.read_rest(MAX_ANSWER_BYTES)
    except (http11.NoAnswer, OSError) as exc:
        log.debug("call %s: webhook answer body unreadable (%s); status %d stands",
                  safe(request.call_id if request else "?"), _text(exc), response.status)
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
