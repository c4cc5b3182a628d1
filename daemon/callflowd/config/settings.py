"""The settings file's schema: each top-level section read into its frozen value (``config.model``).

``read_settings(path)`` reads the YAML file (``config.files``: bounded, strict), checks
every key of every section with the rules of ``config.fields``, and returns the
``Config`` without its callflows, plus the top section the callflow documents are
then read from (``config.documents``). A problem is a ``ConfigError`` naming the file
and the path (``webhooks.retries: must be between 1 and 5``); see ``read_settings`` for
which stop the read and which are collected.

To add a section: its frozen value in ``config.model`` (a field of ``Config``, or of
``Directory`` if callflow nodes refer to its entries by id), a function below that
reads it from its ``Section``, its key in ``TOP_KEYS``, and one line in
``read_settings``. Webhook and hook settings are in ``config.webhook_settings``.
"""

import os
import re
import urllib.parse
from types import MappingProxyType

from callflowd.config import files, kazoo_documents, kazoo_files, temporal
from callflowd.config.fields import REQUIRED, Section, has_whitespace, join, kind
from callflowd.config.model import (
    DEFAULT_BRANCH,
    ClusterSettings,
    Config,
    Converter,
    Device,
    Directory,
    FreeswitchSettings,
    MetricsSettings,
    RoutingSettings,
    VoicemailBox,
)
from callflowd.config.patterns import PatternError, compile_pattern
from callflowd.config.problems import ALL, Problems
from callflowd.config.webhook_settings import read_hooks, read_webhooks
from callflowd.errors import ConfigError, InvalidData
from callflowd.esl.limits import FrameLimits
from callflowd.retry import Retry

LOG_LEVELS = ("debug", "info", "warning", "error")
PASSWORD_KEYS = ("password", "password_file", "password_env")
RECONNECT_JITTER = 0.2
MAX_SHUTDOWN_GRACE = 3600
MAX_CALLFLOW_JUMPS = 1000
DEFAULT_STATE_DIR = "/var/lib/callflowd"

TOP_KEYS = ("freeswitch", "switches", "log_level", "devices", "voicemail_boxes", "webhooks",
            "callflows_dir", "callflows", "shutdown_grace", "metrics", "state_dir", "hooks", "routing",
            "temporal_rules", "account_id", "cluster") + kazoo_documents.KINDS + ("recordings_dir", "prompts_dir")
_FREESWITCH_KEYS = ("name", "host", "port", "connect_timeout", "command_timeout", "idle_timeout",
                    "reconnect", "limits", "switch_nodename") + PASSWORD_KEYS
_RECONNECT_KEYS = ("backoff_factor", "backoff_max")
_LIMIT_KEYS = ("max_line_bytes", "max_headers", "max_body_bytes")
_DEVICE_KEYS = ("dial_string", "timeout", "owner_id", "enabled", "name", "custom_sip_headers", "id")
_BOX_KEYS = ("profile", "domain", "mailbox")
_METRICS_KEYS = ("host", "port")
_CLUSTER_KEYS = ("claims", "name", "lease", "outbox", "outbox_file")
MIN_LEASE_SECONDS = 1.0
MAX_LEASE_SECONDS = 60.0
_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_ROUTING_KEYS = ("e164_converters", "max_callflow_jumps", "no_match_from_outside")
_CONVERTER_KEYS = ("regex", "prefix", "suffix")
_ACCOUNT_ID = re.compile(r"[0-9a-f]{32}")  # a Kazoo account id


def read_settings(path, problems=None):
    """``(config, top)``: the ``Config`` of the YAML file at ``path`` with no callflows yet,
    and its top ``Section``. Raises ConfigError.

    The core settings (the YAML itself, freeswitch/switches, log_level, shutdown_grace, routing,
    webhooks, hooks, metrics, state_dir, cluster, account_id) raise at their first problem:
    they are few, and what comes after is read against them. The tables of things callflows
    name (devices, voicemail boxes, temporal rules, every Kazoo document) are read whole: each
    bad entry goes to ``problems`` (config/problems.py) and is left out, and the caller raises
    them all once the callflows are checked too; without ``problems`` they are raised here.
    Relative paths inside the file (``callflows_dir``, ``password_file``) are
    taken from the file's own directory, wherever the daemon was started.
    """
    source = os.fspath(path)
    base = base_dir(source)
    raw = files.parse_yaml(files.read_text(source, source, files.MAX_YAML_BYTES), source)
    if raw is None:
        raise ConfigError("the file is empty", source)
    top = Section(raw, source, "", TOP_KEYS, "a mapping of settings")
    switches = read_switches(top, base)
    log_level = top.choice("log_level", LOG_LEVELS, "info").upper()
    # Bounded: systemd's TimeoutStopSec (50 s in our unit) must outlast it and the webhook drain.
    shutdown_grace = top.seconds("shutdown_grace", Config.shutdown_grace)
    if shutdown_grace > MAX_SHUTDOWN_GRACE:
        top.fail("shutdown_grace", "must be at most %d seconds" % MAX_SHUTDOWN_GRACE)
    routing = read_routing(top)
    webhooks = read_webhooks(top, base)
    hooks = read_hooks(top, webhooks)
    metrics = read_metrics(top)
    state_dir = read_state_dir(top, base)
    account_id = read_account_id(top)
    cluster = read_cluster(top, base)
    if cluster.outbox and webhooks.process:
        top.fail("webhooks", "process: true delivers from the local outbox only; it can't be used "
                 "with cluster.outbox (the shared outbox is delivered by each daemon itself)")
    raise_here = problems is None
    if raise_here:
        problems = Problems()
    kazoo = kazoo_files.read_all(top, base, problems,
                                 lambda kind, entry: kind == "devices" and _our_device(entry))
    directory = Directory(
        devices=_one_table(top, problems, "devices", read_devices(top, problems), kazoo.pop("devices")),
        voicemail_boxes=_one_table(top, problems, "voicemail_boxes", read_voicemail_boxes(top, problems),
                                   kazoo.pop("vmboxes")),
        webhooks=webhooks,
        temporal_rules=read_temporal_rules(top, problems),
        converters=routing.converters,
        recordings_dir=os.path.join(base, top.string("recordings_dir")) if top.given("recordings_dir") else "",
        prompts_dir=os.path.join(base, top.string("prompts_dir")) if top.given("prompts_dir") else "",
        **kazoo,
    )
    if raise_here:
        problems.raise_if_any()
    config = Config(switches=switches, directory=directory, callflows=(), log_level=log_level,
                    shutdown_grace=shutdown_grace, source=source, metrics=metrics, state_dir=state_dir,
                    hooks=hooks, routing=routing, cluster=cluster,
                    account_id=account_id or _account_document_id(directory.account))
    return config, top


def read_account_id(top):
    """``account_id``: Kazoo's, 32 lower-case hex digits (webhooks derive ``account_db`` from it)."""
    if not top.given("account_id"):
        return None
    value = top.string("account_id", spaces=False)
    if not _ACCOUNT_ID.fullmatch(value):
        top.fail("account_id", "must be a Kazoo account id: 32 lower-case hex digits")
    return value


def _account_document_id(account):
    """The account document's id, when it is a Kazoo account id (webhooks send it)."""
    if account is not None and _ACCOUNT_ID.fullmatch(account.id or ""):
        return account.id
    return None


def base_dir(source):
    """The directory relative paths in the file at ``source`` start from."""
    return os.path.dirname(os.path.abspath(source))


def read_switches(top, base):
    """``freeswitch:`` (one node) or ``switches:`` (a list of named nodes), not both."""
    if top.given("freeswitch") and top.given("switches"):
        top.fail("switches", "give freeswitch (one node) or switches (a list), not both")
    if not top.given("switches"):
        return (_freeswitch(top.section("freeswitch", _FREESWITCH_KEYS, required=True), base),)
    raw = top.raw["switches"]
    if not isinstance(raw, list) or not raw:
        top.fail("switches", "must be a non-empty list of switches%s"
                 % ("" if isinstance(raw, list) else ", not %s" % kind(raw)))
    switches, names, places = [], set(), set()
    for index, entry in enumerate(raw):
        section = Section(entry, top.source, "switches[%d]" % index, _FREESWITCH_KEYS)
        section.string("name", spaces=False)  # required in a list
        settings = _freeswitch(section, base)
        if settings.name in names:
            section.fail("name", "%r names two switches" % settings.name)
        if (settings.host, settings.port) in places:
            section.fail("port", "%s:%d is given twice" % (settings.host, settings.port))
        names.add(settings.name)
        places.add((settings.host, settings.port))
        switches.append(settings)
    return tuple(switches)


def _limits(section):
    defaults = FrameLimits()
    return FrameLimits(
        max_line=section.integer("max_line_bytes", defaults.max_line, 1024, 1 << 30),
        max_headers=section.integer("max_headers", defaults.max_headers, 16, 100000),
        max_body=section.integer("max_body_bytes", defaults.max_body, 64 * 1024, 1 << 30),
    )


def _freeswitch(section, base):
    defaults = FreeswitchSettings()
    reconnect = section.section("reconnect", _RECONNECT_KEYS)
    return FreeswitchSettings(
        name=section.string("name", defaults.name, spaces=False),
        idle_timeout=section.seconds("idle_timeout", defaults.idle_timeout),
        limits=_limits(section.section("limits", _LIMIT_KEYS)),
        host=section.string("host", defaults.host, spaces=False),
        port=section.integer("port", defaults.port, 1, 65535),
        password=_password(section, base),
        connect_timeout=section.seconds("connect_timeout", defaults.connect_timeout),
        command_timeout=section.seconds("command_timeout", defaults.command_timeout),
        reconnect=Retry(
            total=None,
            backoff_factor=reconnect.seconds("backoff_factor", defaults.reconnect.backoff_factor),
            backoff_max=reconnect.seconds("backoff_max", defaults.reconnect.backoff_max),
            jitter=RECONNECT_JITTER,
        ),
        switch_nodename=section.string("switch_nodename", None, spaces=False),
    )


def _password(section, base):
    """Exactly one of ``password``, ``password_file``, ``password_env``: no silent default."""
    given = [key for key in PASSWORD_KEYS if section.given(key)]
    if len(given) != 1:
        section.fail_here("give exactly one of %s%s" % (
            ", ".join(PASSWORD_KEYS), " (got %s)" % ", ".join(given) if given else ""))
    key = given[0]
    if key == "password":
        return section.string("password")
    if key == "password_file":
        filename = os.path.join(base, section.string("password_file"))
        try:
            password = files.read_regular_file(filename).decode("utf-8").strip()
        except files.Unreadable as exc:
            section.fail(key, "cannot read %s: %s" % (filename, exc))
        except UnicodeDecodeError:
            section.fail(key, "%s is not UTF-8 text" % filename)
        what = filename
    else:
        name = section.string("password_env", spaces=False)
        if name not in os.environ:
            section.fail(key, "environment variable %s is not set" % name)
        password = os.environ[name].strip()
        what = "environment variable %s" % name
    if not password:
        section.fail(key, "%s is empty" % what)
    if "\n" in password or "\r" in password:
        # ESL commands are lines: a line break would end "auth" early.
        section.fail(key, "%s must hold one line" % what)
    return password


def _one_table(top, problems, key, ours, kazoo):
    """Our ``key:`` entries and the Kazoo documents of the same kind, as one table. An id given
    both ways is a problem: neither may silently replace the other."""
    folder = "vmboxes" if key == "voicemail_boxes" else key  # Kazoo's name for the kind
    for name in sorted(set(ours) & set(kazoo)):
        problems.add(ConfigError("id %r is also given by a Kazoo document (%s/ beside the callflows, "
                                 "or %s: in the config); give each one its own id"
                                 % (name, folder, folder), top.source, join(key, name)))
    return MappingProxyType(dict(ours, **kazoo))


def read_devices(top, problems):
    """``devices:`` entries of ours (a ``dial_string``, no ``sip``), checked key by key; Kazoo
    device documents (a list, or entries with ``sip``) and a table of the wrong shape are read
    (and refused) by ``config.kazoo_files``."""
    devices = {}
    raw = top.raw.get("devices")
    if not isinstance(raw, dict):
        return devices
    for device_id, entry in raw.items():
        if not isinstance(device_id, str) or not _our_device(entry):
            continue
        with problems.collecting(kazoo_files.REFERENCE_KINDS["devices"], [device_id]):
            if not device_id.strip():
                top.fail("devices", "id %r must be a non-empty string (quote it)" % (device_id,))
            section = Section(entry, top.source, join("devices", device_id), _DEVICE_KEYS)
            section.string("dial_string", spaces=False)
            section.integer("timeout", Device.timeout, 1, 3600)
            devices[device_id] = section.apply(kazoo_documents.parse_device, device_id)
    return devices


def _our_device(entry):
    """A ``devices:`` entry of callflowd's own shape (a dial string, no Kazoo ``sip``)."""
    return isinstance(entry, dict) and "sip" not in entry and (
        "dial_string" in entry or not set(entry) - set(_DEVICE_KEYS))


def read_voicemail_boxes(top, problems):
    boxes = {}
    what = kazoo_files.REFERENCE_KINDS["vmboxes"]
    for box_id, entry in _table(top, "voicemail_boxes", problems, what):
        with problems.collecting(what, [box_id]):
            section = Section(entry, top.source, join("voicemail_boxes", box_id), _BOX_KEYS)
            # The three are joined by spaces into the voicemail application's argument.
            profile = section.string("profile", spaces=False)
            domain = section.string("domain", spaces=False)
            mailbox = section.value("mailbox", REQUIRED)
            if isinstance(mailbox, int) and not isinstance(mailbox, bool) and mailbox >= 0:
                mailbox = str(mailbox)
            else:
                mailbox = section.string("mailbox", spaces=False)
            boxes[box_id] = VoicemailBox(id=box_id, profile=profile, domain=domain, mailbox=mailbox)
    return boxes


def read_temporal_rules(top, problems):
    """``temporal_rules:``, a table of Kazoo temporal rules by id (config/temporal.py), and the Kazoo
    temporal rule documents beside the callflows (``<callflows_dir>/temporal_rules/*.json``)."""
    rules = {}
    for rule_id, entry in _table(top, "temporal_rules", problems, "temporal rule"):
        with problems.collecting("temporal rule", [rule_id]):
            section = Section(entry, top.source, join("temporal_rules", rule_id), temporal.RULE_KEYS)
            if rule_id == DEFAULT_BRANCH:  # a temporal_route's child key: "no rule holds"
                section.fail_here("%s is the default branch, not a rule id: name the rule" % DEFAULT_BRANCH)
            try:
                rules[rule_id] = temporal.parse_rule(rule_id, section.raw)
            except InvalidData as exc:
                section.fail(exc.key, exc.message)
    for rule_id, rule, source, path in kazoo_files.temporal_rule_files(top, base_dir(top.source), problems):
        with problems.collecting("temporal rule", [rule_id]):
            if rule_id == DEFAULT_BRANCH or rule_id in rules:
                raise ConfigError("temporal rule id %r is the default branch or given twice" % rule_id, source,
                                  path or None)
            try:
                rules[rule_id] = temporal.parse_rule(rule_id, rule)
            except InvalidData as exc:
                raise ConfigError(exc.message, source,
                                  join(path, exc.key) if exc.key else path or None) from None
    return MappingProxyType(rules)


def _table(top, key, problems, what):
    """``(id, entry)`` of a settings table by id (``voicemail_boxes:``), its shape and ids checked
    here (a problem refuses the whole table, or that entry); each entry is the caller's to read."""
    raw = top.raw.get(key)
    if raw is None:
        return
    if not isinstance(raw, dict):
        problems.add(ConfigError("must be a mapping, not %s" % kind(raw), top.source, key), what, ALL)
        return
    for entry_id, entry in raw.items():
        if not isinstance(entry_id, str) or not entry_id.strip():
            problem = ConfigError("id %r must be a non-empty string (quote it)" % (entry_id,), top.source, key)
            problems.add(problem, what, [entry_id] if isinstance(entry_id, str) else ())
            continue
        yield entry_id, entry


def read_metrics(top):
    """Off unless the section is there; then ``port`` is required (0: any free port, for tests)."""
    if not top.given("metrics"):
        return MetricsSettings()
    section = top.section("metrics", _METRICS_KEYS)
    return MetricsSettings(host=section.string("host", MetricsSettings.host, spaces=False),
                           port=section.integer("port", REQUIRED, 0, 65535))


def read_cluster(top, base):
    """``cluster:``: nothing to set for a daemon alone; ``name`` when two share a host."""
    section = top.section("cluster", _CLUSTER_KEYS)
    name = None
    if section.given("name"):
        name = section.string("name", spaces=False)
        if not _CLUSTER_NAME.match(name):
            section.fail("name", "must be 1 to 64 letters, digits, '.', '_' or '-'")
    lease = section.seconds("lease", ClusterSettings.lease)
    if not MIN_LEASE_SECONDS <= lease <= MAX_LEASE_SECONDS:
        section.fail("lease", "must be between %g and %g seconds" % (MIN_LEASE_SECONDS, MAX_LEASE_SECONDS))
    return ClusterSettings(claims=section.flag("claims", ClusterSettings.claims), name=name, lease=lease,
                           outbox=_shared_outbox(section, base))


def _shared_outbox(section, base):
    """``outbox`` or ``outbox_file`` (a file holding it: the URL carries a password): the
    PostgreSQL server whose table the daemons share (webhooks/pgstore.py); None: local SQLite."""
    if section.given("outbox") and section.given("outbox_file"):
        section.fail_here("give at most one of outbox, outbox_file")
    if section.given("outbox"):
        key, url = "outbox", section.string("outbox", spaces=False)
    elif section.given("outbox_file"):
        key, url = "outbox_file", files.one_value_from_file(section, "outbox_file", base,
                                                            "one postgresql:// URL")
    else:
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        section.fail(key, "is not a valid URL: %s" % exc)
    if parts.scheme not in ("postgresql", "postgres"):
        section.fail(key, "must be a postgresql:// URL (the shared webhook outbox)")
    return url


def read_state_dir(top, base):
    """``state_dir``, else systemd's ``$STATE_DIRECTORY`` (``StateDirectory=``), else the default."""
    if top.given("state_dir"):
        return os.path.join(base, top.string("state_dir"))
    return os.environ.get("STATE_DIRECTORY", "").split(":")[0] or DEFAULT_STATE_DIR


def read_routing(top):
    """``routing:``: the E.164 rules (replacing Kazoo's defaults when given) and the jump cap."""
    section = top.section("routing", _ROUTING_KEYS)
    defaults = RoutingSettings()
    jumps = section.integer("max_callflow_jumps", defaults.max_callflow_jumps, 0, MAX_CALLFLOW_JUMPS)
    outside = section.flag("no_match_from_outside", defaults.no_match_from_outside)
    if not section.given("e164_converters"):
        return RoutingSettings(max_callflow_jumps=jumps, no_match_from_outside=outside)
    raw = section.raw["e164_converters"]
    if not isinstance(raw, list):
        section.fail("e164_converters", "must be a list of {regex, prefix, suffix}, not %s" % kind(raw))
    converters = []
    for index, entry in enumerate(raw):
        rule = Section(entry, top.source, "%s[%d]" % (join(section.path, "e164_converters"), index),
                        _CONVERTER_KEYS)
        regex = rule.string("regex")
        try:
            compile_pattern(regex)
        except PatternError as exc:
            rule.fail("regex", "invalid or unsafe regular expression: %s" % exc)
        converters.append(Converter(regex=regex, prefix=_affix(rule, "prefix"), suffix=_affix(rule, "suffix")))
    return RoutingSettings(converters=tuple(converters), max_callflow_jumps=jumps, no_match_from_outside=outside)


def _affix(rule, key):
    value = rule.value(key, "")
    if not isinstance(value, str) or has_whitespace(value):
        rule.fail(key, "must be a string without whitespace")
    return value
