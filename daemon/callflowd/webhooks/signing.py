"""``X-Callflowd-Signature``: proof that a webhook came from us and was not altered.

After Stripe's scheme: ``t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>." + payload)>``.
The payload is the request body for POST, the query string (everything after
``?``, as sent) for GET. The time lets a receiver refuse replays older than a
few minutes; ``v1`` names the scheme so a later one can be added beside it.
"""

import hashlib
import hmac

HEADER = "X-Callflowd-Signature"


def signature(secret, timestamp, payload):
    """The header value for ``payload`` (bytes) signed with ``secret`` (str) at ``timestamp``."""
    t = int(timestamp)
    mac = hmac.new(secret.encode("utf-8"), b"%d." % t + payload, hashlib.sha256)
    return "t=%d,v1=%s" % (t, mac.hexdigest())
