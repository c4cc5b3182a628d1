"""Kazoo 4.3 documents that callflows point at, read as Kazoo's API exports them.

A callflow names other documents by id: a ``user`` node a user, a ``menu`` node a menu, a
``play`` node a media, a ``ring_group`` endpoint a device, a user or a group, ``offnet``
the account's carriers (resources), ``temporal_route`` the account's time zone. These are
pasted as they come from the API (``GET /v2/accounts/{id}/users/{id}``: the document
itself or its ``{"data": {...}}`` envelope; ``id`` or ``_id``), in the config
(``users:``, ``devices:``, ``groups:``, ``menus:``, ``media:``, ``resources:``,
``vmboxes:``, ``account:``) or as files beside the callflows (``callflows.d/users/*.json``...,
``callflows.d/account.json``); see docs/actions.md.

Each ``parse_*`` takes one document (already unwrapped) and returns a frozen value, or
raises ``InvalidData`` naming the key. Keys we do not use are accepted: a document carries
many (``pvt_*``, ``music_on_hold``, ``call_restriction``...) that only matter to parts of
Kazoo callflowd doesn't have; docs/actions.md says which are honoured.

Kazoo's own readings are kept: numbers may be strings (``kz_json:get_integer_value``);
booleans may be ``"true"``/``"false"`` (``kz_term:is_true``); ``weight_cost`` is clamped to
1-100 (stepswitch_resources ``resource_weight``), ``enabled: false`` gateways are dropped
(``gateways_from_jobjs``), a gateway's route is ``sip:<prefix><number><suffix>@<server>[:port]``
(``gateway_dialstring``; the port only when not 5060).
"""

import dataclasses
import os
import re
from types import MappingProxyType

from callflowd.config import files
from callflowd.config.documents import check_json_shaped
from callflowd.config.fields import join
from callflowd.config.model import Device, VoicemailBox
from callflowd.errors import ConfigError, InvalidData
from callflowd.config.patterns import PatternError, compile_pattern

# The settings' keys for them (and the folders beside the callflows), in this order.
KINDS = ("account", "users", "groups", "menus", "media", "resources", "vmboxes")
MAX_DIGITS = 18
_INTEGER_TEXT = re.compile(r"[-+]?[0-9]{1,%d}" % MAX_DIGITS)
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-_]{0,127}")
_SIP_NAME = re.compile(r"[A-Za-z0-9_.+\-!~*'()&=$,;?/%]{1,128}")
_CID_NAME = re.compile(r"[^,\[\]{}'\"]{1,128}")
_PROFILE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_SERVER = re.compile(r"[A-Za-z0-9.\-:\[\]]{1,255}")

DEFAULT_RULES = ()  # a resource without rules matches nothing (Kazoo: ``evaluate_rules([], _)``)
DEFAULT_WEIGHT = 50  # stepswitch ?DEFAULT_WEIGHT


# --- values ----------------------------------------------------------------------


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


# --- reading one document -----------------------------------------------------------


def unwrap(raw):
    """Kazoo's API envelope ``{"data": {...}}``: the document inside."""
    if isinstance(raw, dict) and isinstance(raw.get("data"), (dict, list)) and "id" not in raw \
            and "_id" not in raw:
        return raw["data"]
    return raw


def document_id(raw, fallback=None):
    """A document's ``id`` (the API's), else its ``_id`` (CouchDB's), else ``fallback``."""
    for key in ("id", "_id"):
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip() or not value.isprintable():
            raise InvalidData(key, "must be a non-empty one-line string")
        return value
    if fallback is None:
        raise InvalidData("id", "is required (a document's id or _id)")
    return fallback


def aliases(raw):
    """Both ids a document may be named by (``id`` and ``_id``), when it has both."""
    return tuple(raw[key] for key in ("id", "_id") if isinstance(raw.get(key), str) and raw[key])


def integer(raw, key, default, low=None, high=None, clamp=False):
    value = raw.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise InvalidData(key, "must be an integer")
    if isinstance(value, str):
        if not _INTEGER_TEXT.fullmatch(value.strip()):
            raise InvalidData(key, "must be an integer (or a string holding one)")
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise InvalidData(key, "must be an integer")
    if clamp:
        return max(low, min(high, value))
    if (low is not None and value < low) or (high is not None and value > high):
        raise InvalidData(key, "must be between %s and %s" % (low, high))
    return value


def boolean(raw, key, default):
    value = raw.get(key)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise InvalidData(key, "must be true or false")
    return value


def text(raw, key, default="", pattern=None, describe="a one-line string"):
    value = raw.get(key)
    if value is None or value == "":
        return default
    if not isinstance(value, str) or not value.isprintable():
        raise InvalidData(key, "must be %s" % describe)
    if pattern is not None and not pattern.fullmatch(value):
        raise InvalidData(key, "must be %s" % describe)
    return value


def mapping(raw, key):
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidData(key, "must be an object")
    return value


def sip_headers(raw, key="custom_sip_headers"):
    """Kazoo ``custom_sip_headers``: {name: value}, or {"in": {...}, "out": {...}}: the
    headers sent towards the endpoint (``out``, else the plain object without in/out)."""
    table = mapping(raw, key)
    if "in" in table or "out" in table:
        table = mapping(table, "out")
        key = key + ".out"
    headers = []
    for name, value in table.items():
        if not _HEADER_NAME.fullmatch(name):
            raise InvalidData("%s.%s" % (key, name), "a SIP header name is letters, digits, - and _")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.isprintable() or any(c in value for c in ",[]{}'"):
            raise InvalidData("%s.%s" % (key, name),
                              "must be a one-line string without , [ ] { } or ' (it goes into a dial string)")
        headers.append((name, value))
    return tuple(headers)


def _rules(raw, key):
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidData(key, "must be a list of regular expressions")
    out = []
    for index, rule in enumerate(value):
        where = "%s[%d]" % (key, index)
        if not isinstance(rule, str):
            raise InvalidData(where, "must be a string (a regular expression)")
        try:
            out.append((rule, compile_pattern(rule)))
        except PatternError as exc:
            raise InvalidData(where, "invalid or unsafe regular expression: %s" % exc) from None
    return tuple(out)


def _strings(raw, key):
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidData(key, "must be a list of strings")
    return tuple(value)


def _nested(where, parse, raw, *args):
    """``parse(raw, *args)``, its error's key placed under ``where``."""
    try:
        return parse(raw, *args)
    except InvalidData as exc:
        raise InvalidData("%s.%s" % (where, exc.key) if exc.key else where, exc.message) from None


def parse_account(raw):
    caller_ids = []
    for kind, entry in mapping(raw, "caller_id").items():
        if not isinstance(entry, dict):
            raise InvalidData("caller_id.%s" % kind, "must be an object with number and name")
        where = "caller_id.%s" % kind
        number = _nested(where, text, entry, "number", "", _SIP_NAME, "a caller ID number")
        label = _nested(where, text, entry, "name", "", _CID_NAME, "a name without , [ ] { } ' or \"")
        caller_ids.append((kind, number, label))
    timezone = text(raw, "timezone")
    if timezone == "inherit":
        timezone = ""
    return Account(id=document_id(raw, ""), name=text(raw, "name"),
                   realm=text(raw, "realm", pattern=_SERVER, describe="a SIP realm (a host name)"),
                   timezone=timezone, caller_id=tuple(caller_ids))


def parse_device(raw, fallback_id=None, realm=""):
    """A Kazoo device document -> Device (``user/<sip.username>@<realm>``), or one of ours
    (``dial_string``, ``timeout``) with Kazoo's keys beside it."""
    device_id = document_id(raw, fallback_id)
    sip = mapping(raw, "sip")
    username = _nested("sip", text, sip, "username", "", _SIP_NAME, "a SIP user name")
    dial = text(raw, "dial_string")
    if dial:
        if any(c.isspace() for c in dial):
            raise InvalidData("dial_string", "must not contain whitespace")
    else:
        invite = _nested("sip", text, sip, "invite_format", "username")
        route = _nested("sip", text, sip, "route")
        if invite == "route" and route:
            dial = "sofia/external/%s" % route.replace("sip:", "", 1) if route.startswith("sip:") else route
        elif username:
            dial = "user/%s@%s" % (username, realm) if realm else "user/%s" % username
        else:
            raise InvalidData("dial_string", "is required (or sip.username, in a Kazoo device document)")
    return Device(
        id=device_id, dial_string=dial,
        timeout=integer(raw, "timeout", Device.timeout, 1, 3600),
        owner_id=text(raw, "owner_id"),
        enabled=boolean(raw, "enabled", True),
        sip_username=username,
        sip_headers=sip_headers(raw),
        name=text(raw, "name"),
    )


def parse_user(raw, fallback_id=None):
    name = " ".join(part for part in (text(raw, "first_name"), text(raw, "last_name")) if part)
    timezone = text(raw, "timezone")
    return User(id=document_id(raw, fallback_id), name=name or text(raw, "username"),
                enabled=boolean(raw, "enabled", True),
                timezone="" if timezone == "inherit" else timezone)


def parse_group(raw, fallback_id=None):
    members = []
    for member_id, entry in mapping(raw, "endpoints").items():
        where = "endpoints.%s" % member_id
        if not isinstance(entry, dict):
            raise InvalidData(where, "must be an object ({\"type\": \"device\"})")
        kind = _nested(where, text, entry, "type", "device")
        if kind not in ("device", "user"):
            raise InvalidData(where + ".type", "must be device or user")
        members.append(GroupMember(
            id=member_id, type=kind,
            weight=_nested(where, integer, entry, "weight", None, 1, 100, True),
            delay=_nested(where, integer, entry, "delay", None, 0, 3600),
            timeout=_nested(where, integer, entry, "timeout", None, 1, 3600),
        ))
    return Group(id=document_id(raw, fallback_id), name=text(raw, "name"), members=tuple(members))


def _prompt(media, key):
    """A menu's media key: absent -> True (Kazoo's prompt), false -> False, else the reference."""
    value = media.get(key)
    if value is None or value is True:
        return True
    if value is False or (isinstance(value, str) and value.lower() == "false"):
        return False
    return _nested("media", text, media, key)


def parse_menu(raw, fallback_id=None):
    media = mapping(raw, "media")
    for key in ("hunt_allow", "hunt_deny"):
        value = text(raw, key)
        if value:
            try:
                compile_pattern(value)
            except PatternError as exc:
                raise InvalidData(key, "invalid or unsafe regular expression: %s" % exc) from None
    return Menu(
        id=document_id(raw, fallback_id), name=text(raw, "name"),
        retries=integer(raw, "retries", 3, 1, 100),
        timeout=integer(raw, "timeout", 10000, 1, 3600000),
        interdigit_timeout=integer(raw, "interdigit_timeout", None, 1, 600000),
        max_extension_length=integer(raw, "max_extension_length", 4, 1, 64),
        hunt=boolean(raw, "hunt", False),
        hunt_allow=text(raw, "hunt_allow"), hunt_deny=text(raw, "hunt_deny"),
        greeting=_nested("media", text, media, "greeting") or None,
        invalid_media=_prompt(media, "invalid_media"),
        exit_media=_prompt(media, "exit_media"),
        transfer_media=_prompt(media, "transfer_media"),
    )


def parse_media(raw, fallback_id=None):
    """(id, file or URL). Kazoo keeps the sound as an attachment, which an export leaves out:
    say where the file is with ``file`` (a path FreeSWITCH can read) or ``url``; a media file
    ``media/<id>.<ext>`` beside the callflows is found without either."""
    media_id = document_id(raw, fallback_id)
    where = text(raw, "file") or text(raw, "url")
    return media_id, where


def parse_gateway(raw):
    port = integer(raw, "port", None, 1, 65535)
    return Gateway(
        server=text(raw, "server", pattern=_SERVER, describe="a host name or address"),
        port=port,
        realm=text(raw, "realm"),
        username=text(raw, "username"),
        password=text(raw, "password"),
        route=text(raw, "route"),
        prefix=text(raw, "prefix", pattern=_SIP_NAME, describe="digits or SIP user characters"),
        suffix=text(raw, "suffix", pattern=_SIP_NAME, describe="digits or SIP user characters"),
        emergency=boolean(raw, "emergency", False),
        sip_headers=sip_headers(raw),
        progress_timeout=integer(raw, "progress_timeout", None, 1, 3600),
        caller_id_type=text(raw, "caller_id_type"),
        interface=text(raw, "custom_sip_interface", pattern=_PROFILE, describe="a sofia profile name"),
        freeswitch_gateway=text(raw, "freeswitch_gateway", pattern=_PROFILE, describe="a gateway name"),
    )


def parse_resource(raw, fallback_id=None):
    options = mapping(raw, "caller_id_options")
    cid_type = _nested("caller_id_options", text, options, "type")
    gateways = []
    listed = raw.get("gateways") or []
    if not isinstance(listed, list):
        raise InvalidData("gateways", "must be a list of gateways")
    for index, entry in enumerate(listed):
        where = "gateways[%d]" % index
        if not isinstance(entry, dict):
            raise InvalidData(where, "must be an object")
        if not _nested(where, boolean, entry, "enabled", True):
            continue
        gateway = _nested(where, parse_gateway, entry)
        if not gateway.server and not gateway.route and not gateway.freeswitch_gateway:
            raise InvalidData(where + ".server", "is required (or route, or freeswitch_gateway)")
        gateways.append(gateway)
    emergency = boolean(raw, "emergency", False) or cid_type == "emergency"
    if emergency:
        gateways = [dataclasses.replace(gateway, emergency=True) for gateway in gateways]
    return Resource(
        id=document_id(raw, fallback_id), name=text(raw, "name"),
        enabled=boolean(raw, "enabled", True),
        weight=integer(raw, "weight_cost", DEFAULT_WEIGHT, 1, 100, clamp=True),
        rules=_rules(raw, "rules"), cid_rules=_rules(raw, "cid_rules"),
        flags=_strings(raw, "flags"),
        require_flags=boolean(raw, "require_flags", False),
        ignore_flags=boolean(raw, "ignore_flags", False),
        emergency=emergency,
        gateways=tuple(gateways),
        caller_id_type=cid_type,
    )


def parse_vmbox(raw, fallback_id=None, realm=""):
    """A Kazoo vmbox document -> mod_voicemail box ``default <realm> <mailbox>``."""
    mailbox = raw.get("mailbox")
    if isinstance(mailbox, int) and not isinstance(mailbox, bool):
        mailbox = str(mailbox)
    if not isinstance(mailbox, str) or not _SIP_NAME.fullmatch(mailbox or ""):
        raise InvalidData("mailbox", "is required: the box number")
    return VoicemailBox(id=document_id(raw, fallback_id), profile="default",
                        domain=realm or "${domain}", mailbox=mailbox)


# --- reading them from the settings and from the folder beside the callflows ----------------

# Config key (and folder beside the callflows) -> its parser.
PARSERS = {
    "devices": parse_device, "users": parse_user, "groups": parse_group, "menus": parse_menu,
    "media": parse_media, "resources": parse_resource, "vmboxes": parse_vmbox,
}
_NAMES = {"devices": "device", "users": "user", "groups": "group", "menus": "menu", "media": "media",
          "resources": "resource", "vmboxes": "vmbox"}
MEDIA_EXTENSIONS = (".wav", ".mp3", ".ogg", ".flac", ".au", ".raw")


def read_all(top, base, ours=lambda kind, entry: False):
    """``{kind: table}`` of every Kazoo document: ``account`` (an Account or None), then each
    kind of ``PARSERS`` from the settings (``top``, a ``config.fields.Section``) and from
    ``<callflows_dir>/<kind>/*.json``; ``resources`` a tuple in the order read. Ids are unique
    per kind; a document is found by its ``id`` and by its ``_id``. ``ours(kind, entry)`` says
    which entries of a settings table are callflowd's own (``devices:`` with a dial string),
    read elsewhere. Raises ConfigError naming the file and the path."""
    folder = os.path.join(base, top.string("callflows_dir")) if top.given("callflows_dir") else None
    account = None
    given = []
    if top.given("account"):
        check_json_shaped(top.raw["account"], top.source, "account", 0)
        given.append((top.raw["account"], top.source, "account"))
    if folder is not None and os.path.isfile(os.path.join(folder, "account.json")):
        source = os.path.normpath(os.path.join(top.string("callflows_dir"), "account.json"))
        text = files.read_text(os.path.join(folder, "account.json"), source)
        given.append((files.parse_json(text, source), source, ""))
    for raw, source, path in given:
        raw, path = _unwrapped(raw, path)
        if not isinstance(raw, dict):
            raise ConfigError("must be an object (an account document)", source, path or None)
        account = _parse(parse_account, raw, source, path)
    realm = account.realm if account is not None else ""
    found = {"account": account}
    for kind, parse in PARSERS.items():
        table = {}
        for raw, source, path, fallback in _raw_documents(top, folder, kind, ours):
            raw, path = _unwrapped(raw, path)
            if isinstance(raw, str) and kind == "media":  # media: {id: "/path/file.wav"}
                value, names = raw, (fallback,)
            else:
                if not isinstance(raw, dict):
                    raise ConfigError("must be an object (a %s document)" % _NAMES[kind], source, path or None)
                extra = (realm,) if kind in ("devices", "vmboxes") else ()
                value = _parse(parse, raw, source, path, fallback, *extra)
                if kind == "media":
                    value = value[1] or _media_file(folder, value[0])
                    if not value:
                        raise ConfigError("no sound for this media: give file (a path FreeSWITCH reads) or "
                                          "url, or put media/<id>.wav beside the callflows",
                                          source, path or None)
                names = aliases(raw) or (fallback,)
            for name in names:
                if name in table:
                    raise ConfigError("%s id %r is given twice" % (_NAMES[kind], name), source, path or None)
                table[name] = value
        if kind == "resources":
            found[kind] = tuple(dict.fromkeys(table.values()))  # one entry per document, in order
        else:
            found[kind] = MappingProxyType(table)
    return found


def _media_file(folder, media_id):
    """``<callflows_dir>/media/<id>.<ext>``, if there is one."""
    if folder is None:
        return None
    for extension in MEDIA_EXTENSIONS:
        candidate = os.path.join(folder, "media", media_id + extension)
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    return None


def _unwrapped(raw, path):
    inner = unwrap(raw)
    if inner is not raw:
        return inner, join(path, "data")
    return raw, path


def _parse(parse, raw, source, path, *args):
    try:
        return parse(raw, *args)
    except InvalidData as exc:
        raise ConfigError(exc.message, source, join(path, exc.key) if exc.key else path or None) from None


def _raw_documents(top, folder, kind, ours):
    """(raw document, source, path, fallback id) of one kind: the settings', then the folder's."""
    raw = top.raw.get(kind)
    if raw is not None:
        check_json_shaped(raw, top.source, kind, 0)
        if isinstance(raw, list):
            for index, entry in enumerate(raw):
                yield entry, top.source, "%s[%d]" % (kind, index), None
        elif isinstance(raw, dict):
            for key, entry in raw.items():
                if not ours(kind, entry):
                    yield entry, top.source, join(kind, key), key
        else:
            top.fail(kind, "must be a list of %s documents (or a table of them by id)" % _NAMES[kind])
    if folder is None or not os.path.isdir(os.path.join(folder, kind)):
        return
    written = top.string("callflows_dir")
    for name in sorted(os.listdir(os.path.join(folder, kind))):
        if not name.endswith(".json") or name.startswith("."):
            continue
        source = os.path.normpath(os.path.join(written, kind, name))
        document = files.parse_json(files.read_text(os.path.join(folder, kind, name), source), source)
        yield document, source, "", name[: -len(".json")]


# Keys a Kazoo temporal rule document carries beside the rule itself.
_RULE_DOCUMENT_KEYS = ("id", "_id", "flags", "ui_metadata", "metadata")


def temporal_rule_files(top, base):
    """``(rule id, rule mapping, source, path)`` of each ``<callflows_dir>/temporal_rules/*.json``,
    a Kazoo temporal rule document (its envelope, ids and ``pvt_*`` keys taken off)."""
    if not top.given("callflows_dir"):
        return
    folder = os.path.join(base, top.string("callflows_dir"))
    for raw, source, path, fallback in _raw_documents(top, folder, "temporal_rules", lambda *_: True):
        raw, path = _unwrapped(raw, path)
        if not isinstance(raw, dict):
            raise ConfigError("must be an object (a temporal rule document)", source, path or None)
        rule_id = _parse(document_id, raw, source, path, fallback)
        rule = {key: value for key, value in raw.items()
                if key not in _RULE_DOCUMENT_KEYS and not key.startswith("pvt_")}
        yield rule_id, rule, source, path
