"""``X-Callflowd-Signature``: proof that a webhook came from us, for this receiver, unaltered.

``t=<unix time>,v2=<hex HMAC-SHA256(secret, message)>`` where ``message`` is, as bytes::

    <t> LF <METHOD> LF <Host header> LF <request target> LF <body>

exactly as they were sent: the method (``POST``, ``GET``), the ``Host`` header
(IDNA host, ``:port`` unless the scheme's default), the request target (path
and query, percent-encoded as on the request line) and the body (empty for a
GET). Covering the host and path means a signed request can't be replayed to
another receiver, or to another path of the same one; the time lets a receiver
refuse replays older than a few minutes. ``v1`` (body or query only) is gone:
it could be replayed elsewhere. Verification recipes: docs/webhooks.md.

``sign()`` is called by ``client`` while it writes the request, from the very
strings it writes: nothing between the signature and the wire can change them.
"""

import hashlib
import hmac

HEADER = "X-Callflowd-Signature"
VERSION = "v2"


def message(timestamp, method, host, target, body):
    """The bytes signed: ``t``, method, Host, target and body, LF-separated."""
    head = "%d\n%s\n%s\n%s\n" % (int(timestamp), method, host, target)
    return head.encode("ascii") + (body or b"")


def sign(secret, timestamp, method, host, target, body):
    """The header value for one request, signed with ``secret`` (str) at ``timestamp``."""
    t = int(timestamp)
    mac = hmac.new(secret.encode("utf-8"), message(t, method, host, target, body), hashlib.sha256)
    return "t=%d,%s=%s" % (t, VERSION, mac.hexdigest())


def verify(secret, header, method, host, target, body, now, tolerance=300):
    """True if ``header`` is a valid v2 signature of this request made within ``tolerance`` s
    of ``now``: what a receiver written in Python does (docs/webhooks.md)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = sign(secret, t, method, host, target, body).rpartition("=")[2]
    return hmac.compare_digest(expected, parts.get(VERSION, "")) and abs(now - t) <= tolerance
