"""What goes on the wire for one attempt: method, URL, headers and body.

Formats (``request.format``):

``form``  Kazoo's: POST sends the fields as an ``application/x-www-form-urlencoded``
          body; GET appends the same string to the URI's query string (after any
          query already there: Kazoo would add a second ``?``). The string is Kazoo's
          ``json_to_querystring`` (``webhooks.querystring``): nested ``custom_data`` as
          ``crm[account]=ACME&crm[tags][]=vip``. The default.
``json``  POST sends the fields as one JSON object (``application/json``, UTF-8).
          A GET has no body, so it sends a query string whatever the format.

Every request carries ``X-Callflowd-Delivery`` (the delivery id, the same on
every attempt, so a receiver can drop duplicates) and, with a secret,
``X-Callflowd-Signature`` (see ``signing``) over exactly the bytes sent.
"""

import dataclasses
import json
import urllib.parse

from callflowd import __version__
from callflowd.webhooks import querystring, signing

USER_AGENT = "callflowd/%s" % __version__
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"
DELIVERY_HEADER = "X-Callflowd-Delivery"
ATTEMPT_HEADER = "X-Callflowd-Attempt"


@dataclasses.dataclass(frozen=True)
class Wire:
    method: str  # "POST" or "GET"
    url: str
    headers: dict
    body: bytes | None


def encode(request, attempt=1, secret=None, now=0.0):
    """The ``Wire`` for ``request``; signed with ``secret`` (a str) at ``now`` if given."""
    headers = {"User-Agent": USER_AGENT, DELIVERY_HEADER: request.delivery_id,
               ATTEMPT_HEADER: str(attempt)}
    encoded = querystring.encode(request.fields)
    if request.method.lower() == "get":
        url = with_query(request.uri, encoded)
        body = None
        signed = urllib.parse.urlsplit(url).query.encode("ascii")
    else:
        url = request.uri
        if request.format == "json":
            headers["Content-Type"] = JSON_CONTENT_TYPE
            body = json.dumps(dict(request.fields), ensure_ascii=False,
                              separators=(",", ":")).encode("utf-8")
        else:
            headers["Content-Type"] = FORM_CONTENT_TYPE
            body = encoded.encode("ascii")  # percent-encoded: ASCII
        signed = body
    if secret:
        headers[signing.HEADER] = signing.signature(secret, now, signed)
    return Wire(request.method.upper(), url, headers, body)


def with_query(uri, encoded):
    """``uri`` with ``encoded`` appended to its query string (the fragment is dropped)."""
    parts = urllib.parse.urlsplit(uri)
    if not encoded:
        query = parts.query
    elif parts.query:
        query = "%s&%s" % (parts.query, encoded)
    else:
        query = encoded
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
