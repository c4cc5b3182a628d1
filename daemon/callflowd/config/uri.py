"""The one check of an outbound http:// or https:// URI, and its one encoder.

Every URI callflowd sends a request to (a ``webhook`` node, a lifecycle hook,
a ``pivot`` ``voice_url``, ``webhooks.proxy``) goes through ``parse()``, at
load time to refuse what can't be sent, and again at send time to build what
goes on the wire: ``HttpURI`` holds the request target, the ``Host`` header and
the credentials exactly as they are written, so what is signed is what is sent.

- scheme ``http`` or ``https``; a port in 1-65535 (default 80/443);
- the host: an IP address (``[v6]`` in brackets), or a name, IDNA-encoded
  (UTS #46, as browsers and urllib3 do: ``bücher.example`` is sent as
  ``xn--bcher-kva.example``);
- ``user:password@`` (percent-decoded, then UTF-8) becomes a Basic
  ``Authorization`` header and never goes in the request line;
- the path and query: UTF-8 first, then every byte a request target can't carry
  as is (RFC 3986 ``pchar``, ``/`` and ``?``) percent-encoded; a valid ``%XX``
  escape is kept, a lone ``%`` becomes ``%25``; the fragment is dropped.
"""

import base64
import dataclasses
import functools
import ipaddress
import re
import urllib.parse

try:
    import idna
except ImportError:  # pragma: no cover - a dependency; the stdlib codec (IDNA 2003) as a fallback
    idna = None

# RFC 3986: pchar = unreserved / pct-encoded / sub-delims / ":" / "@"; a path adds "/", a query "?".
# urllib.parse.quote always keeps letters, digits and "_.-~".
_PATH_SAFE = "!$&'()*+,;=:@/%"
_QUERY_SAFE = _PATH_SAFE + "?"
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_NEEDS_QUOTING = re.compile(r"[^A-Za-z0-9_.~!$&'()*+,;=:@/?-]|%(?![0-9A-Fa-f]{2})")
DEFAULT_PORTS = {"http": 80, "https": 443}


class InvalidURI(ValueError):
    """Not a URI callflowd can send a request to; the message says why, without the URI."""


@dataclasses.dataclass(frozen=True)
class HttpURI:
    """A checked http(s) URI, as it goes on the wire."""

    scheme: str  # "http" or "https"
    host: str  # ASCII: an IP address (no brackets) or an IDNA-encoded, lower-case name
    port: int
    target: str  # origin-form request target: "/path?query", percent-encoded, ASCII
    authorization: str | None = dataclasses.field(default=None, repr=False)  # "Basic ..." from userinfo

    @property
    def origin(self):
        """``(scheme, host, port)``: what connections are kept and counted by."""
        return (self.scheme, self.host, self.port)

    @property
    def host_header(self):
        """The ``Host`` header: ``host``, ``host:port``, ``[v6]:port``."""
        name = "[%s]" % self.host if ":" in self.host else self.host
        return name if self.port == DEFAULT_PORTS[self.scheme] else "%s:%d" % (name, self.port)

    @property
    def absolute(self):
        """The absolute-form target (a request through a proxy), without credentials."""
        return "%s://%s%s" % (self.scheme, self.host_header, self.target)

    def with_query(self, encoded):
        """This URI with ``encoded`` (already percent-encoded ASCII) appended to its query."""
        if not encoded:
            return self
        sep = "&" if "?" in self.target else "?"
        if self.target.endswith(("?", "&")):
            sep = ""
        return dataclasses.replace(self, target=self.target + sep + quote_query(encoded))


def parse_proxy(uri):
    """``webhooks.proxy``: an ``http://[user:password@]host:port`` URI (the tunnel to an
    ``https://`` receiver is a ``CONNECT`` through it); InvalidURI otherwise."""
    proxy = parse(uri)
    if proxy.scheme != "http":
        raise InvalidURI("must be an http:// proxy (https:// receivers are reached through a CONNECT tunnel)")
    return proxy


def check(uri):
    """Raise ``InvalidURI`` unless ``uri`` is an http(s) URI callflowd can send to."""
    parse(uri)


@functools.lru_cache(maxsize=1024)
def parse(uri):
    """``uri`` (a str) as an ``HttpURI``; ``InvalidURI`` saying what is wrong with it."""
    if not isinstance(uri, str):
        raise InvalidURI("must be a string")
    if not uri.isprintable() or " " in uri:
        raise InvalidURI("must not contain spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError as exc:
        raise InvalidURI("is not a valid URI: %s" % exc) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.netloc:
        raise InvalidURI("must be an http:// or https:// URI")
    try:
        port = parts.port
    except ValueError:
        raise InvalidURI("has an invalid port (1-65535)") from None
    if port is None:  # none given, or "host:" (RFC 3986 allows an empty port: the default)
        port = DEFAULT_PORTS[scheme]
    elif not 1 <= port <= 65535:
        raise InvalidURI("has an invalid port (1-65535)")
    host = _host(parts)
    authorization = None
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        user, _, password = userinfo.partition(":")
        token = "%s:%s" % (urllib.parse.unquote(user), urllib.parse.unquote(password))
        authorization = "Basic " + base64.b64encode(token.encode("utf-8")).decode("ascii")
    target = quote_path(parts.path or "/")
    if parts.query or uri.split("#", 1)[0].endswith("?"):
        target += "?" + quote_query(parts.query)
    return HttpURI(scheme, host, port, target, authorization)


def _host(parts):
    netloc = parts.netloc.rpartition("@")[2]
    if netloc.startswith("["):
        literal = netloc[1:].partition("]")[0]
        try:
            return str(ipaddress.IPv6Address(literal.split("%", 1)[0]))
        except ValueError:
            raise InvalidURI("has an invalid IPv6 address") from None
    host = parts.hostname
    if not host:
        raise InvalidURI("has no host")
    if "%" in host:
        raise InvalidURI("has a percent-encoded host name")
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    return idna_host(host)


def idna_host(host):
    """``host`` (a name) as the ASCII name a request carries: IDNA (UTS #46); InvalidURI if it
    can't be one."""
    host = host.rstrip(".").lower()
    if not host.isascii():
        try:
            if idna is not None:
                host = idna.encode(host, uts46=True).decode("ascii")
            else:
                host = host.encode("idna").decode("ascii")
        except (UnicodeError, ValueError):  # idna.IDNAError is a UnicodeError
            raise InvalidURI("has a host name that is not a valid international domain name") from None
    if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in host.split(".")):
        raise InvalidURI("has an invalid host name")
    return host


def quote_path(text):
    """``text`` (a path) percent-encoded as a request target carries it: UTF-8, then every byte
    outside RFC 3986 ``pchar``/``/``; valid ``%XX`` escapes kept, a lone ``%`` encoded."""
    if not _NEEDS_QUOTING.search(text) and "?" not in text:
        return text
    return urllib.parse.quote(_LONE_PERCENT.sub("%25", text), safe=_PATH_SAFE)


def quote_query(text):
    """``text`` (a query, without its ``?``) percent-encoded as for ``quote_path``, ``?`` kept."""
    if not _NEEDS_QUOTING.search(text):
        return text
    return urllib.parse.quote(_LONE_PERCENT.sub("%25", text), safe=_QUERY_SAFE)
