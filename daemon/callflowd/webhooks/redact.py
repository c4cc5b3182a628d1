"""Keep webhook secrets out of log lines.

A webhook URI may carry credentials (``https://user:pass@host/``) or a token in
its query string (``?token=...``): operators paste them from their provider's
docs. Every log line that names a URI shows ``redact(uri)`` instead
(``https://***@host/path?***``), and text from a library that may quote the
URI (requests puts the path and query in its messages) goes through ``scrub``.
"""

import re
import urllib.parse

MASK = "***"
# requests/urllib3 messages quote the request target: "... with url: /path?token=x (Caused by ...)".
_QUERY_IN_TEXT = re.compile(r"\?[^\s'\")]*")
_USERINFO_IN_TEXT = re.compile(r"(://)[^/\s@]*@")


def redact(uri):
    """``uri`` with its userinfo and query replaced by ``***``; the fragment dropped."""
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "%s@%s" % (MASK, netloc.rsplit("@", 1)[1])
    query = MASK if parts.query else ""
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def scrub(text, uri=None):
    """``text`` with any query string, userinfo, or the secret parts of ``uri`` masked."""
    text = str(text)
    if uri:
        try:
            parts = urllib.parse.urlsplit(uri)
        except ValueError:
            parts = None
        if parts is not None:
            for secret in (parts.query, parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""):
                if secret:
                    text = text.replace(secret, MASK)
                    text = text.replace(urllib.parse.unquote(secret), MASK)
    text = _USERINFO_IN_TEXT.sub(r"\1%s@" % MASK, text)
    return _QUERY_IN_TEXT.sub("?" + MASK, text)
