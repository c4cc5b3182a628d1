"""Where requests may go: ``webhooks.allow`` / ``webhooks.deny``, checked after DNS resolution.

Each list holds networks (``10.0.0.0/8``, ``2001:db8::/32``, a single address)
and host patterns (``hooks.example.com``, ``*.example.com`` for any name under
it). A destination is the host name of the URI and every address it resolves
to; only an address that passes is connected to (so a name that resolves to a
permitted and a refused address reaches the permitted one only, and a name
can't be re-resolved to something else between the check and the connect).

- ``deny``: a name or address it matches is refused, for every request.
- ``allow``: when set, only a name or address it matches is permitted.
- a flow fetched at run time (``pivot``) is written by whoever answers the
  pivot, not by the operator: its webhooks and pivots are also refused the
  loopback, link-local (169.254.0.0/16, fe80::/10, so the cloud metadata
  address 169.254.169.254), unspecified and metadata addresses (``FETCHED_REFUSED``),
  unless a network in ``allow`` names them.

A refused destination is never sent and never retried: its webhook fails at
once ("destination refused"), and pivot goes on at ``_``.
"""

import dataclasses
import ipaddress

from callflowd.config.uri import InvalidURI, idna_host

FETCHED_REFUSED = tuple(ipaddress.ip_network(text) for text in (
    "127.0.0.0/8", "::1/128",  # loopback
    "169.254.0.0/16", "fe80::/10",  # link-local, 169.254.169.254 (cloud metadata) among them
    "0.0.0.0/8", "::/128",  # unspecified: connecting to it reaches this host
    "fd00:ec2::254/128",  # AWS's IPv6 metadata address
))


class InvalidRule(ValueError):
    """An entry of ``webhooks.allow``/``deny`` that is neither a network nor a host pattern."""


@dataclasses.dataclass(frozen=True)
class Rules:
    """One list: networks and host patterns (lower-case, IDNA)."""

    networks: tuple = ()
    patterns: tuple = ()

    @classmethod
    def parse(cls, entries):
        networks, patterns = [], []
        for entry in entries:
            if not isinstance(entry, str) or not entry.strip():
                raise InvalidRule("must be a network (10.0.0.0/8) or a host pattern (*.example.com)")
            text = entry.strip().lower()
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
                continue
            except ValueError:
                pass
            wildcard = text.startswith("*.")
            try:
                name = idna_host(text[2:] if wildcard else text)
            except InvalidURI:
                raise InvalidRule("%r is neither a network (10.0.0.0/8) nor a host pattern "
                                  "(hooks.example.com, *.example.com)" % entry[:60]) from None
            patterns.append("*." + name if wildcard else name)
        return cls(tuple(networks), tuple(patterns))

    def __bool__(self):
        return bool(self.networks or self.patterns)

    def matches_host(self, host):
        return any(_host_matches(pattern, host) for pattern in self.patterns)

    def matches_address(self, address):
        return any(address in network for network in self.networks
                   if network.version == address.version)


@dataclasses.dataclass(frozen=True)
class Destinations:
    """The policy: ``allows(host, address, fetched)``; ``why_not()`` for the log line."""

    allow: Rules = Rules()
    deny: Rules = Rules()

    @classmethod
    def parse(cls, allow=(), deny=()):
        return cls(Rules.parse(allow), Rules.parse(deny))

    def for_flow(self, fetched):
        """The check for one request: a ``Check`` (``allows(host, address)``)."""
        return Check(self, fetched)

    def active(self, fetched):
        """False when nothing is ever refused (no rules, not a fetched flow): nothing to check."""
        return bool(fetched or self.allow or self.deny)

    def verdict(self, host, address, fetched):
        """None if ``host`` at ``address`` (text) may be sent to, else the reason."""
        if not (fetched or self.allow or self.deny):
            return None
        ip = _address(address) if address else None
        if self.deny.matches_host(host) or (ip is not None and self.deny.matches_address(ip)):
            return "denied by webhooks.deny"
        if self.allow and not (self.allow.matches_host(host)
                               or (ip is not None and self.allow.matches_address(ip))):
            return "not in webhooks.allow"
        if fetched and ip is not None and any(ip in network for network in FETCHED_REFUSED
                                              if network.version == ip.version):
            if not self.allow.matches_address(ip):
                return "a fetched flow may not send to a loopback, link-local or metadata address"
        return None


@dataclasses.dataclass(frozen=True)
class Check:
    """``Destinations`` for one request (from a fetched flow or not), as the client asks it."""

    destinations: Destinations
    fetched: bool = False

    @property
    def active(self):
        return self.destinations.active(self.fetched)

    def allows(self, host, address):
        return self.destinations.verdict(host, address, self.fetched) is None

    def why_not(self, host, address):
        reason = self.destinations.verdict(host, address, self.fetched) or "refused"
        return "destination %s refused: %s" % (address, reason)


def _address(text):
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:  # ::ffff:127.0.0.1 is 127.0.0.1
        return ip.ipv4_mapped
    return ip


def _host_matches(pattern, host):
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern
