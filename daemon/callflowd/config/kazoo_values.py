"""The frozen values of the Kazoo 4.3 documents callflows point at: ``Account``, ``User``,
``Group`` (of ``GroupMember``), ``Menu``, ``Resource`` (a carrier, with its gateways: ``Gateway``).

``kazoo_documents`` parses one document into these; ``kazoo_files`` reads them all from the
settings and the folder beside the callflows.
"""

import dataclasses

DEFAULT_RULES = ()  # a resource without rules matches nothing (Kazoo: ``evaluate_rules([], _)``)
DEFAULT_WEIGHT = 50  # stepswitch ?DEFAULT_WEIGHT


@dataclasses.dataclass(frozen=True)
class Account:
    """The account document: its SIP realm, time zone and caller ids."""

    id: str = ""
    name: str = ""
    realm: str = ""
    timezone: str = ""  # an IANA name; "" none given
    caller_id: tuple = ()  # of (type, number, name): ("external", "+1415...", "ACME")

    def caller_id_of(self, kind):
        for name, number, label in self.caller_id:
            if name == kind:
                return number, label
        return "", ""


@dataclasses.dataclass(frozen=True)
class User:
    """A user document: the ``user`` module and ``endpoint_type: user`` ring its devices."""

    id: str
    name: str = ""
    enabled: bool = True
    timezone: str = ""


@dataclasses.dataclass(frozen=True)
class GroupMember:
    id: str
    type: str = "device"  # device or user
    weight: int | None = None
    delay: int | None = None
    timeout: int | None = None


@dataclasses.dataclass(frozen=True)
class Group:
    """A group document: ``endpoints`` (id -> {type, weight, delay, timeout}), in document order."""

    id: str
    name: str = ""
    members: tuple = ()  # of GroupMember


@dataclasses.dataclass(frozen=True)
class Menu:
    """A menu document, with cf_menu's defaults (``#cf_menu_data{}``).

    ``invalid_media`` / ``exit_media`` / ``transfer_media``: a media reference, True (Kazoo's
    default prompt) or False (none).
    """

    id: str
    name: str = ""
    retries: int = 3
    timeout: int = 10000  # ms
    interdigit_timeout: int | None = None  # ms; None: the node's, else Kazoo's 2000
    max_extension_length: int = 4
    hunt: bool = False
    hunt_allow: str = ""
    hunt_deny: str = ""
    greeting: str | None = None
    invalid_media: object = True
    exit_media: object = True
    transfer_media: object = True


@dataclasses.dataclass(frozen=True)
class Gateway:
    """One gateway of a resource: where a call to the carrier goes."""

    server: str = ""
    port: int | None = None
    realm: str = ""
    username: str = ""
    password: str = dataclasses.field(default="", repr=False)
    route: str = ""  # a statically configured SIP URI (Kazoo ``route``)
    prefix: str = ""
    suffix: str = ""
    emergency: bool = False
    sip_headers: tuple = ()
    progress_timeout: int | None = None
    caller_id_type: str = ""
    interface: str = ""  # custom_sip_interface: the sofia profile to send from (default external)
    freeswitch_gateway: str = ""  # ours: a gateway configured in FreeSWITCH (sofia/gateway/<name>/...)

    def uri(self, number):
        """stepswitch ``gateway_dialstring``: the route, else sip:<prefix><number><suffix>@server[:port]."""
        if self.route:
            return self.route
        port = ":%d" % self.port if self.port and self.port != 5060 else ""
        return "sip:%s%s%s@%s%s" % (self.prefix, number, self.suffix, self.server, port)


@dataclasses.dataclass(frozen=True)
class Resource:
    """A resource (carrier) document."""

    id: str
    name: str = ""
    enabled: bool = True
    weight: int = DEFAULT_WEIGHT  # weight_cost, 1-100: lower is tried first
    rules: tuple = ()  # of (text, compiled RE2)
    cid_rules: tuple = ()
    flags: tuple = ()
    require_flags: bool = False
    ignore_flags: bool = False
    emergency: bool = False
    gateways: tuple = ()  # of Gateway, enabled ones only, in order
    caller_id_type: str = ""  # caller_id_options.type

    def match(self, number):
        """The part of ``number`` a rule matched (the largest capture group, else the whole
        match; stepswitch ``evaluate_rules``), or None when no rule matches. The last rule listed
        is tried first: stepswitch's ``resource_rules`` compiles them onto the front of a list."""
        for _, rule in reversed(self.rules):
            found = rule.search(number)
            if found is None:
                continue
            groups = [(found.start(i), found.end(i)) for i in range(1, (rule.groups or 0) + 1)
                      if found.start(i) >= 0]
            if not groups:
                return found.group(0)
            start, end = max(groups, key=lambda span: span[1] - span[0])
            return number[start:end]
        return None

    def caller_matches(self, caller_number):
        if not self.cid_rules:
            return True
        return any(rule.search(caller_number or "") for _, rule in self.cid_rules)
