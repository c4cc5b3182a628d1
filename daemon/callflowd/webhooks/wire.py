"""What goes on the wire for one request: method, URI, headers, body, and the bytes themselves.

Formats (``request.format``):

``form``  Kazoo's: POST sends the fields as an ``application/x-www-form-urlencoded``
          body; GET appends the same string to the URI's query string (after any
          query already there: Kazoo would add a second ``?``). The string is Kazoo's
          ``json_to_querystring`` (``webhooks.querystring``): nested ``custom_data`` as
          ``crm[account]=ACME&crm[tags][]=vip`` (in a GET's request target the brackets go
          percent-encoded, ``crm%5Baccount%5D``, as RFC 3986 wants; every query parser reads
          the same keys). The default.
``json``  POST sends the fields as one JSON object (``application/json``, UTF-8).
          A GET has no body, so it sends a query string whatever the format.

Every webhook carries ``X-Callflowd-Delivery`` (the delivery id, the same on
every attempt, so a receiver can drop duplicates) and, with a secret,
``X-Callflowd-Signature`` (see ``signing``). ``Wire.to_bytes()`` is the one
place a request becomes bytes, for webhooks, lifecycle hooks and pivot alike,
and the signature is computed there from the very strings written: the method,
the ``Host`` header, the request target and the body.
"""

import dataclasses
import json
import re
import urllib.parse

from callflowd import __version__
from callflowd.config import uri as uris
from callflowd.webhooks import querystring, signing

USER_AGENT = "callflowd/%s" % __version__
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"
DELIVERY_HEADER = "X-Callflowd-Delivery"
ATTEMPT_HEADER = "X-Callflowd-Attempt"
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 field-name
_GOOD_NAMES = set()  # header names already found to be tokens (the few the code uses)


@dataclasses.dataclass(frozen=True)
class Wire:
    """One request, ready to write. ``uri`` is a checked ``config.uri.HttpURI``; ``headers`` a
    dict of str; ``body`` bytes (None for a GET); with ``secret`` it is signed at ``timestamp``."""

    method: str  # "POST" or "GET"
    uri: uris.HttpURI
    headers: dict
    body: bytes | None
    secret: str | None = dataclasses.field(default=None, repr=False)
    timestamp: float = 0.0

    @property
    def url(self):
        """The URL as sent (percent-encoded, IDNA host, no credentials)."""
        return self.uri.absolute

    def signature(self):
        """The ``X-Callflowd-Signature`` value, or None when unsigned."""
        if not self.secret:
            return None
        return signing.sign(self.secret, self.timestamp, self.method, self.uri.host_header,
                            self.uri.target, self.body)

    def to_bytes(self, absolute=False, extra=None):
        """The request as one buffer (written with one ``sendall``). ``absolute``: the request
        line carries the absolute URI (through a proxy); ``extra``: headers for the hop (a proxy's
        credentials). ValueError if a header can't be carried (CR, LF, NUL, not Latin-1)."""
        uri = self.uri
        lines = ["%s %s HTTP/1.1" % (self.method, uri.absolute if absolute else uri.target),
                 "Host: " + uri.host_header]
        lines += ["%s: %s" % item for item in self.headers.items()]
        if uri.authorization:
            lines.append("Authorization: " + uri.authorization)
        if extra:
            lines += ["%s: %s" % item for item in extra.items()]
        signature = self.signature()
        if signature:
            lines.append("%s: %s" % (signing.HEADER, signature))
        if self.body is not None:
            lines.append("Content-Length: %d" % len(self.body))
        _check_headers(lines, self.headers, extra)
        lines.append("\r\n")
        head = "\r\n".join(lines).encode("latin-1")  # UnicodeEncodeError is a ValueError
        return head + self.body if self.body else head


def _check_headers(lines, *headers):
    """ValueError if a header would break the request: a CR, LF or NUL anywhere (one count over
    the whole head, not a search per header), or a name that is not an RFC 9110 token."""
    text = "".join(lines)
    if "\0" in text or "\r" in text or "\n" in text:
        raise ValueError("invalid header: it holds a CR, LF or NUL")
    for table in headers:
        for name in table or ():
            if name not in _GOOD_NAMES:
                if not _TOKEN.match(name):
                    raise ValueError("invalid header name %r" % name[:40])
                if len(_GOOD_NAMES) < 256:
                    _GOOD_NAMES.add(name)


def encode(request, attempt=1, secret=None, now=0.0):
    """The ``Wire`` for a webhook ``request``; signed with ``secret`` (a str) at ``now`` if given.
    ``config.uri.InvalidURI`` (a ValueError) if its URI can't be sent."""
    headers = dict(request.headers)
    headers.update({"User-Agent": USER_AGENT, DELIVERY_HEADER: request.delivery_id,
                    ATTEMPT_HEADER: str(attempt)})
    return build(request.method, request.uri, request.fields, request.format, headers, secret, now)


def build(method, uri, fields, body_format="form", headers=None, secret=None, now=0.0):
    """A ``Wire`` sending ``fields`` (``(name, text)`` pairs) to ``uri``: in the query string
    (GET) or as a ``body_format`` body (POST). Webhooks and ``pivot`` both come here."""
    headers = dict(headers or {})
    headers.setdefault("User-Agent", USER_AGENT)
    target = uris.parse(uri)
    method = method.upper()
    if method == "GET":
        target = target.with_query(form(fields))
        body = None
    elif body_format == "json":
        headers["Content-Type"] = JSON_CONTENT_TYPE
        body = json.dumps(dict(fields), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    else:
        headers["Content-Type"] = FORM_CONTENT_TYPE
        body = form(fields).encode("ascii")
    return Wire(method, target, headers, body, secret, now)


def form(fields):
    """``fields`` as ``application/x-www-form-urlencoded`` text, as Kazoo writes it
    (``webhooks.querystring``: UTF-8, then percent-encoded; nested values in brackets)."""
    return querystring.encode(fields)


def with_query(uri, encoded):
    """``uri`` (text) with ``encoded`` appended to its query string (the fragment is dropped),
    for showing a GET (``callflowd simulate``)."""
    parts = urllib.parse.urlsplit(uri)
    if not encoded:
        query = parts.query
    elif parts.query:
        query = "%s&%s" % (parts.query, encoded)
    else:
        query = encoded
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
