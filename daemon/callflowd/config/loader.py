"""Read callflowd's YAML config and its callflow documents into frozen values.

``load_config(path)`` reads the YAML file, then the callflow documents (the
inline ``callflows:`` list, then every ``*.json`` in ``callflows_dir``), checks
every key and every node, and returns a ``Config``. Any problem raises one
``ConfigError`` naming the file and the place inside it
(``callflows.d/front-desk.json: flow.children._.data.http_verb: must be one of
get, post``). Nothing is kept from a failed load, so a reload can build the new
world first and keep the old one when this raises.

Hazards handled here rather than left to surprise an operator:

- YAML 1.1 reads ``0123`` as octal 83 and ``1:30`` as 90: such numbers are
  refused (quote them); dates stay strings.
- Duplicate keys (YAML or JSON) are refused; both parsers would keep the last.
- Unknown keys are refused everywhere except a callflow document's top level
  (Kazoo documents carry ``id``, ``name``, ``metadata``... that we don't use).
- A value left empty (``port:`` with nothing after it, JSON ``null``) counts as
  not given, as in the actions' ``Data.parse``.

What a config may cost is bounded, so ``check`` and a reload answer in well
under a second whatever the file holds (and ``systemctl start`` cannot hang):

- YAML aliases (``*name``) are refused: nine aliases of the previous node per
  level made 9^levels nodes, and a "billion laughs" ``custom_data`` a billion
  values, from a 2 KB file. Without aliases a config is as big as its text.
- Only regular files are read; a FIFO or a device (as the config,
  ``password_file`` or ``callflows.d/*.json``) is refused from ``stat()``
  without being opened, and opened non-blocking in case it is swapped in
  between. Sizes are capped: the YAML at ``MAX_YAML_BYTES`` (PyYAML parses in
  pure Python: 1 MiB took 12 s and 380 MB), each JSON document at
  ``MAX_FILE_BYTES`` and all of them at ``MAX_TOTAL_BYTES``.
- A callflow has at most ``MAX_FLOW_NODES`` nodes and ``MAX_FLOW_DEPTH`` levels;
  numbers have at most ``MAX_DIGITS`` digits (Python refuses to parse 4,300
  with a traceback); durations are at most ``MAX_SECONDS``.
- ``patterns`` are compiled with RE2 (``callflowd.flow.patterns``), which
  cannot backtrack: dialled numbers are chosen by callers.
"""

import json
import math
import os
import re
import stat
from types import MappingProxyType

import yaml

from callflowd.actions import REGISTRY, webhook
from callflowd.config.model import (
    ClusterSettings,
    Config,
    Converter,
    Device,
    Directory,
    FreeswitchSettings,
    Hook,
    MetricsSettings,
    RoutingSettings,
    VoicemailBox,
    WebhookSettings,
)
from callflowd.errors import ConfigError, InvalidData
from callflowd.esl.limits import FrameLimits
from callflowd.calls.routes import Normalizer
from callflowd.flow.model import Callflow, Node
from callflowd.flow import temporal
from callflowd.flow.patterns import PatternError, compile_pattern
from callflowd.retry import Retry
from callflowd.webhooks.breaker import BreakerSettings
from callflowd.webhooks.request import FORMATS
from callflowd.webhooks.store import SYNCHRONOUS

LOG_LEVELS = ("debug", "info", "warning", "error")
PASSWORD_KEYS = ("password", "password_file", "password_env")
RECONNECT_JITTER = 0.2
# A flow deeper than this is a mistake, not a call plan.
MAX_FLOW_DEPTH = 100
_MAX_NESTING = 4 * MAX_FLOW_DEPTH
MAX_SHUTDOWN_GRACE = 3600
MAX_FLOW_NODES = 1000  # per callflow; Kazoo's own flows have tens
MAX_YAML_BYTES = 64 << 10  # the config file: a few KB is usual; big flows go in JSON documents
MAX_FILE_BYTES = 1 << 20  # a callflow document, a password file
MAX_TOTAL_BYTES = 16 << 20  # all the callflow documents together
MAX_DIGITS = 30  # in any number; the largest setting (outbox.max) has 9
MAX_SECONDS = 3600  # the longest timeout or back-off a setting may ask for

_TOP_KEYS = ("freeswitch", "switches", "log_level", "devices", "voicemail_boxes", "webhooks",
             "callflows_dir", "callflows", "shutdown_grace", "metrics", "state_dir", "hooks", "routing",
             "temporal_rules", "cluster")
_FREESWITCH_KEYS = ("name", "host", "port", "connect_timeout", "command_timeout", "idle_timeout",
                    "reconnect", "limits") + PASSWORD_KEYS
_RECONNECT_KEYS = ("backoff_factor", "backoff_max")
_LIMIT_KEYS = ("max_line_bytes", "max_headers", "max_body_bytes")
_DEVICE_KEYS = ("dial_string", "timeout")
_BOX_KEYS = ("profile", "domain", "mailbox")
_WEBHOOK_KEYS = ("timeout", "retries", "backoff_factor", "backoff_max", "retry_after_max", "format",
                 "concurrency", "concurrency_per_endpoint", "outbox", "breaker", "proxy",
                 "secret", "secret_file", "secrets", "process")
_OUTBOX_KEYS = ("max", "synchronous")
_BREAKER_KEYS = ("failures", "pause", "pause_max")
_HOOK_KEYS = ("events", "uri", "http_verb", "format", "secret", "retries", "callflow_ids",
              "direction", "numbers")
HOOK_EVENTS = ("channel_create", "channel_answer", "channel_bridge", "channel_destroy")
DEFAULT_STATE_DIR = "/var/lib/callflowd"
_NODE_KEYS = ("module", "data", "children")
_METRICS_KEYS = ("host", "port")
_CLUSTER_KEYS = ("claims", "name", "lease")
MIN_LEASE_SECONDS = 1.0
MAX_LEASE_SECONDS = 60.0
_ROUTING_KEYS = ("e164_converters", "max_callflow_jumps")
_CONVERTER_KEYS = ("regex", "prefix", "suffix")
MAX_CALLFLOW_JUMPS = 1000

_REQUIRED = object()
_WHITESPACE = re.compile(r"\s")


def load_config(path):
    """The validated ``Config`` for the YAML file at ``path``; raises ConfigError.

    Relative paths inside the file (``callflows_dir``, ``password_file``) are
    taken from the file's own directory, wherever the daemon was started.
    """
    source = os.fspath(path)
    base = os.path.dirname(os.path.abspath(source))
    raw = _parse_yaml(_read_text(source, source, MAX_YAML_BYTES), source)
    if raw is None:
        raise ConfigError("the file is empty", source)
    top = _Section(raw, source, "", _TOP_KEYS, "a mapping of settings")
    switches = _switches(top, base)
    log_level = top.choice("log_level", LOG_LEVELS, "info").upper()
    # Bounded: systemd's TimeoutStopSec (50 s in our unit) must outlast it and the webhook drain.
    shutdown_grace = top.seconds("shutdown_grace", Config.shutdown_grace)
    if shutdown_grace > MAX_SHUTDOWN_GRACE:
        top.fail("shutdown_grace", "must be at most %d seconds" % MAX_SHUTDOWN_GRACE)
    directory = Directory(
        devices=_devices(top),
        voicemail_boxes=_voicemail_boxes(top),
        webhooks=_webhooks(top.section("webhooks", _WEBHOOK_KEYS), base),
        temporal_rules=_temporal_rules(top),
    )
    metrics = _metrics(top)
    routing = _routing(top)
    callflows = _callflows(top, base, directory, routing)
    return Config(switches=switches, directory=directory, callflows=callflows,
                  log_level=log_level, shutdown_grace=shutdown_grace, source=source, metrics=metrics,
                  state_dir=_state_dir(top, base), hooks=_hooks(top, directory),
                  routing=routing, cluster=_cluster(top))


# --- reading files ----------------------------------------------------------


def _read_text(filename, source, limit=MAX_FILE_BYTES):
    try:
        data = _read_regular_file(filename, limit)
    except _Unreadable as exc:
        raise ConfigError("cannot read: %s" % exc, source) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError("not UTF-8 text (byte %d)" % exc.start, source) from None


class _Unreadable(Exception):
    """Why a file was not read (``No such file or directory``, ``not a regular file (a FIFO)``)."""


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _check_regular(mode):
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a file")
        raise _Unreadable("not a regular file (%s)" % kind)


def _read_regular_file(filename, limit=MAX_FILE_BYTES):
    """The bytes of ``filename``, a regular file of at most ``limit`` bytes.

    A FIFO would block ``open()`` until a writer came, and ``/dev/zero`` would
    never end: ``stat()`` first so such files are never opened; then open
    non-blocking and check again, in case one was put there in between.
    """
    try:
        _check_regular(os.stat(filename).st_mode)
        fd = os.open(filename, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _Unreadable(exc.strerror or exc) from None
    with os.fdopen(fd, "rb") as stream:
        try:
            _check_regular(os.fstat(fd).st_mode)
            data = stream.read(limit + 1)
        except OSError as exc:
            raise _Unreadable(exc.strerror or exc) from None
    if len(data) > limit:
        raise _Unreadable("larger than %d bytes" % limit)
    return data


class _YamlLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1's surprises: see the module docstring."""


# Dates stay strings: a copy of the resolvers without the timestamp one.
_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_PLAIN_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")


def _compose_node(loader, parent, index):
    """Refuse aliases before they are resolved: see the module docstring."""
    if loader.check_event(yaml.AliasEvent):
        event = loader.peek_event()
        raise yaml.composer.ComposerError(
            None, None, "YAML aliases (*%s) are not allowed; write the value out" % _one_line(event.anchor)[:40],
            event.start_mark)
    return yaml.composer.Composer.compose_node(loader, parent, index)


def _construct_int(loader, node):
    text = loader.construct_scalar(node)
    if len(text) > MAX_DIGITS + 1:  # before int(): 4,300 digits raise, hex and octal have no limit
        raise yaml.constructor.ConstructorError(
            None, None, "a number with more than %d digits" % MAX_DIGITS, node.start_mark)
    if not _PLAIN_INT.fullmatch(text):
        raise yaml.constructor.ConstructorError(
            None, None, "%s is not a plain decimal number (YAML would read it as %s); "
            "quote it if it is text" % (text, yaml.SafeLoader.construct_yaml_int(loader, node)),
            node.start_mark)
    return int(text)


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:
            continue  # an unhashable key: SafeLoader reports it
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, "duplicate key %r" % (key,), key_node.start_mark)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_YamlLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_YamlLoader.construct_mapping = _construct_mapping
_YamlLoader.compose_node = _compose_node


def _parse_yaml(text, source):
    try:
        return yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "not valid YAML"
        if mark is None:
            raise ConfigError("invalid YAML: %s" % problem, source) from None
        raise ConfigError("invalid YAML at line %d column %d: %s" % (
            mark.line + 1, mark.column + 1, problem), source) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow; no mark, a position
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        raise ConfigError("invalid YAML at line %d column %d: unacceptable character #x%04x: %s" % (
            line, column, exc.character, exc.reason), source) from None
    except yaml.YAMLError as exc:
        raise ConfigError("invalid YAML: %s" % _one_line(str(exc)), source) from None
    except RecursionError:
        raise ConfigError("invalid YAML: nested too deeply", source) from None


class _DuplicateKey(Exception):
    pass


def _json_object(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _json_constant(name):
    raise ValueError("%s is not valid JSON" % name)


def _json_int(text):
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError("a number with more than %d digits" % MAX_DIGITS)
    return int(text)


def _parse_json(text, source):
    try:
        return json.loads(text, object_pairs_hook=_json_object, parse_constant=_json_constant,
                          parse_int=_json_int)
    except json.JSONDecodeError as exc:
        raise ConfigError("invalid JSON at line %d column %d: %s" % (
            exc.lineno, exc.colno, exc.msg), source) from None
    except _DuplicateKey as exc:
        raise ConfigError("invalid JSON: duplicate key %r" % exc.args[0], source) from None
    except ValueError as exc:
        raise ConfigError("invalid JSON: %s" % exc, source) from None
    except RecursionError:
        raise ConfigError("invalid JSON: nested too deeply", source) from None


# --- typed access to one mapping ---------------------------------------------


_MAX_KEY_SHOWN = 60


def _join(path, key):
    """``path.key`` for an error message: escaped to one printable line, a long key cut short."""
    key = str(key)
    if not key.isprintable():
        key = key.encode("unicode_escape").decode("ascii")
    if len(key) > _MAX_KEY_SHOWN:
        key = key[:_MAX_KEY_SHOWN] + "..."
    return "%s.%s" % (path, key) if path else key


def _kind(value):
    if value is None:
        return "null"
    return {bool: "true/false", int: "a number", float: "a number", str: "text",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


class _Section:
    """One mapping of the YAML file, with the path its errors should name."""

    def __init__(self, raw, source, path, known, describe="a mapping"):
        self.source = source
        self.path = path
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self.fail_here("must be %s, not %s" % (describe, _kind(raw)))
        unknown = [key for key in raw if key not in known]
        if unknown:
            self.fail_here("%s %s (known: %s)" % (
                "unknown key" if len(unknown) == 1 else "unknown keys",
                ", ".join(repr(key) for key in unknown), ", ".join(known)))
        self.raw = raw

    def fail_here(self, message):
        raise ConfigError(message, self.source, self.path or None)

    def fail(self, key, message):
        raise ConfigError(message, self.source, _join(self.path, key))

    def given(self, key):
        return self.raw.get(key) is not None

    def value(self, key, default):
        value = self.raw.get(key)
        if value is None:
            if default is _REQUIRED:
                self.fail(key, "is required")
            return default
        return value

    def string(self, key, default=_REQUIRED, spaces=True):
        if default is not _REQUIRED and not self.given(key):
            return default
        value = self.value(key, default)
        if not isinstance(value, str):
            self.fail(key, "must be a string, not %s" % _kind(value))
        if not value.strip():
            self.fail(key, "must not be empty")
        if not spaces and _WHITESPACE.search(value):
            self.fail(key, "must not contain whitespace")
        if "\n" in value or "\r" in value:
            self.fail(key, "must be one line")
        return value

    def integer(self, key, default, low, high):
        value = self.value(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, "must be an integer")
        if not low <= value <= high:
            self.fail(key, "must be between %d and %d" % (low, high))
        return value

    def seconds(self, key, default):
        """A positive, finite number (int or float): a timeout or a back-off."""
        value = self.value(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, "must be a number")
        if not (math.isfinite(value) and value > 0):
            self.fail(key, "must be a number greater than 0")
        if value > MAX_SECONDS:
            self.fail(key, "must be at most %d seconds" % MAX_SECONDS)
        return float(value)

    def choice(self, key, choices, default):
        value = self.value(key, default)
        if not isinstance(value, str) or value.lower() not in choices:
            self.fail(key, "must be one of %s" % ", ".join(choices))
        return value.lower()

    def section(self, key, known, required=False):
        """The mapping under ``key``, allowed only the ``known`` keys."""
        if required and not self.given(key):
            self.fail(key, "is required")
        return _Section(self.raw.get(key), self.source, _join(self.path, key), known)

    def entries(self, key, known):
        """``(id, section)`` for each entry of a table of ids such as ``devices:``."""
        raw = self.raw.get(key)
        table = _Section(raw, self.source, _join(self.path, key), raw if isinstance(raw, dict) else ())
        for entry_id, entry in table.raw.items():
            if not isinstance(entry_id, str) or not entry_id.strip():
                table.fail_here("id %r must be a non-empty string (quote it)" % (entry_id,))
            yield entry_id, _Section(entry, self.source, _join(table.path, entry_id), known)


# --- the settings ------------------------------------------------------------


def _switches(top, base):
    """``freeswitch:`` (one node) or ``switches:`` (a list of named nodes), not both."""
    if top.given("freeswitch") and top.given("switches"):
        top.fail("switches", "give freeswitch (one node) or switches (a list), not both")
    if not top.given("switches"):
        return (_freeswitch(top.section("freeswitch", _FREESWITCH_KEYS, required=True), base),)
    raw = top.raw["switches"]
    if not isinstance(raw, list) or not raw:
        top.fail("switches", "must be a non-empty list of switches%s"
                 % ("" if isinstance(raw, list) else ", not %s" % _kind(raw)))
    switches, names, places = [], set(), set()
    for index, entry in enumerate(raw):
        section = _Section(entry, top.source, "switches[%d]" % index, _FREESWITCH_KEYS)
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
            password = _read_regular_file(filename).decode("utf-8").strip()
        except _Unreadable as exc:
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


def _devices(top):
    devices = {}
    for device_id, section in top.entries("devices", _DEVICE_KEYS):
        devices[device_id] = Device(
            id=device_id,
            dial_string=section.string("dial_string", spaces=False),
            timeout=section.integer("timeout", Device.timeout, 1, 3600),
        )
    return MappingProxyType(devices)


def _voicemail_boxes(top):
    boxes = {}
    for box_id, section in top.entries("voicemail_boxes", _BOX_KEYS):
        # The three are joined by spaces into the voicemail application's argument.
        profile = section.string("profile", spaces=False)
        domain = section.string("domain", spaces=False)
        mailbox = section.value("mailbox", _REQUIRED)
        if isinstance(mailbox, int) and not isinstance(mailbox, bool) and mailbox >= 0:
            mailbox = str(mailbox)
        else:
            mailbox = section.string("mailbox", spaces=False)
        boxes[box_id] = VoicemailBox(id=box_id, profile=profile, domain=domain, mailbox=mailbox)
    return MappingProxyType(boxes)


def _webhooks(section, base):
    defaults = WebhookSettings()
    outbox = section.section("outbox", _OUTBOX_KEYS)
    breaker = section.section("breaker", _BREAKER_KEYS)
    breaker_defaults = BreakerSettings()
    concurrency = section.integer("concurrency", defaults.concurrency, 1, 100000)
    per_endpoint = section.integer("concurrency_per_endpoint",
                                   min(defaults.concurrency_per_endpoint, concurrency), 1, concurrency)
    proxy = section.string("proxy", None, spaces=False)
    if proxy is not None and not proxy.startswith(("http://", "https://")):
        section.fail("proxy", "must be an http:// or https:// URI")
    return WebhookSettings(
        timeout=section.seconds("timeout", defaults.timeout),
        retries=section.integer("retries", defaults.retries, 0, webhook.MAX_RETRIES),
        backoff_factor=section.seconds("backoff_factor", defaults.backoff_factor),
        backoff_max=section.seconds("backoff_max", defaults.backoff_max),
        retry_after_max=section.seconds("retry_after_max", defaults.retry_after_max),
        format=section.choice("format", FORMATS, defaults.format),
        concurrency=concurrency,
        concurrency_per_endpoint=per_endpoint,
        outbox_max=outbox.integer("max", defaults.outbox_max, 1, 100000000),
        synchronous=outbox.choice("synchronous", SYNCHRONOUS, defaults.synchronous),
        breaker=BreakerSettings(
            failures=breaker.integer("failures", breaker_defaults.failures, 1, 1000),
            pause=breaker.seconds("pause", breaker_defaults.pause),
            pause_max=breaker.seconds("pause_max", breaker_defaults.pause_max),
        ),
        proxy=proxy,
        secrets=_secrets(section, base),
        process=_flag(section, "process", defaults.process),
    )


def _temporal_rules(top):
    """``temporal_rules:``, a table of Kazoo temporal rules by id (flow/temporal.py)."""
    rules = {}
    for rule_id, section in top.entries("temporal_rules", temporal.RULE_KEYS):
        if rule_id == "_":  # a temporal_route's child key: "no rule holds"
            section.fail_here("_ is the default branch, not a rule id: name the rule")
        try:
            rules[rule_id] = temporal.parse_rule(rule_id, section.raw)
        except InvalidData as exc:
            if exc.key:
                section.fail(exc.key, exc.message)
            section.fail_here(exc.message)
    return MappingProxyType(rules)


def _metrics(top):
    """Off unless the section is there; then ``port`` is required (0: any free port, for tests)."""
    if not top.given("metrics"):
        return MetricsSettings()
    section = top.section("metrics", _METRICS_KEYS)
    return MetricsSettings(host=section.string("host", MetricsSettings.host, spaces=False),
                           port=section.integer("port", _REQUIRED, 0, 65535))


def _cluster(top):
    """``cluster:``: nothing to set for a daemon alone; ``name`` when two share a host."""
    section = top.section("cluster", _CLUSTER_KEYS)
    name = None
    if section.given("name"):
        name = section.string("name", spaces=False)
        if not re.match(r"^[A-Za-z0-9._-]{1,64}$", name):
            section.fail("name", "must be 1 to 64 letters, digits, '.', '_' or '-'")
    lease = section.seconds("lease", ClusterSettings.lease)
    if not MIN_LEASE_SECONDS <= lease <= MAX_LEASE_SECONDS:
        section.fail("lease", "must be between %g and %g seconds" % (MIN_LEASE_SECONDS, MAX_LEASE_SECONDS))
    return ClusterSettings(claims=_flag(section, "claims", ClusterSettings.claims), name=name, lease=lease)


def _flag(section, key, default):
    value = section.value(key, default)
    if not isinstance(value, bool):
        section.fail(key, "must be true or false")
    return value


def _secrets(section, base):
    """Signing secrets: ``secret`` or ``secret_file`` (the global one), ``secrets`` by name."""
    secrets = {}
    if section.given("secret") and section.given("secret_file"):
        section.fail_here("give at most one of secret, secret_file")
    if section.given("secret"):
        secrets[""] = section.string("secret", spaces=False)
    elif section.given("secret_file"):
        filename = os.path.join(base, section.string("secret_file"))
        try:  # a regular file only, bounded: a FIFO here must not hang the loader
            secret = _read_regular_file(filename, MAX_FILE_BYTES).decode("utf-8").strip()
        except (_Unreadable, UnicodeDecodeError) as exc:
            section.fail("secret_file", "cannot read %s: %s" % (filename, exc))
        if not secret or _WHITESPACE.search(secret):
            section.fail("secret_file", "%s must hold one secret, without spaces" % filename)
        secrets[""] = secret
    named = section.value("secrets", {})
    if not isinstance(named, dict):
        section.fail("secrets", "must be a mapping of names to secrets")
    table = _Section(named, section.source, _join(section.path, "secrets"), named)
    for name in named:
        if not isinstance(name, str) or not name.strip():
            table.fail_here("name %r must be a non-empty string" % (name,))
        secrets[name] = table.string(name, spaces=False)
    return MappingProxyType(secrets)


def _state_dir(top, base):
    """``state_dir``, else systemd's ``$STATE_DIRECTORY`` (``StateDirectory=``), else the default."""
    if top.given("state_dir"):
        return os.path.join(base, top.string("state_dir"))
    return os.environ.get("STATE_DIRECTORY", "").split(":")[0] or DEFAULT_STATE_DIR


def _hooks(top, directory):
    raw = top.value("hooks", [])
    if not isinstance(raw, list):
        top.fail("hooks", "must be a list of hooks")
    settings = directory.webhooks
    hooks = []
    for index, entry in enumerate(raw):
        section = _Section(entry, top.source, "hooks[%d]" % index, _HOOK_KEYS)
        events = section.value("events", _REQUIRED)
        if isinstance(events, str):
            events = [events]
        if not isinstance(events, list) or not events:
            section.fail("events", "must be a list of: %s" % ", ".join(HOOK_EVENTS))
        for position, event in enumerate(events):
            if event not in HOOK_EVENTS:
                section.fail("events[%d]" % position, "must be one of %s" % ", ".join(HOOK_EVENTS))
        uri = section.string("uri", spaces=False)
        try:
            webhook.check_uri(uri)
        except InvalidData as exc:
            section.fail("uri", exc.message)
        direction = section.value("direction", None)
        if direction is not None and direction not in ("inbound", "outbound"):
            section.fail("direction", "must be inbound or outbound")
        hooks.append(Hook(
            events=frozenset(events), uri=uri,
            http_verb=section.choice("http_verb", webhook.VERBS, "post"),
            format=section.choice("format", FORMATS, settings.format),
            secret=_secret_name(section, settings),
            retry=webhook.retry_policy(section.integer("retries", settings.retries, 0, webhook.MAX_RETRIES),
                                       settings),
            callflow_ids=tuple(_string_list(section.raw, "callflow_ids", section.fail)),
            direction=direction,
            numbers=tuple(_string_list(section.raw, "numbers", section.fail)),
        ))
    return tuple(hooks)


def _secret_name(section, settings):
    if not section.given("secret"):
        return ""
    name = section.string("secret", spaces=False)
    if name not in settings.secrets:
        section.fail("secret", "no secret named %r in webhooks.secrets" % name)
    return name


def _routing(top):
    """``routing:``: the E.164 rules (replacing Kazoo's defaults when given) and the jump cap."""
    section = top.section("routing", _ROUTING_KEYS)
    defaults = RoutingSettings()
    jumps = section.integer("max_callflow_jumps", defaults.max_callflow_jumps, 0, MAX_CALLFLOW_JUMPS)
    if not section.given("e164_converters"):
        return RoutingSettings(max_callflow_jumps=jumps)
    raw = section.raw["e164_converters"]
    if not isinstance(raw, list):
        section.fail("e164_converters", "must be a list of {regex, prefix, suffix}, not %s" % _kind(raw))
    converters = []
    for index, entry in enumerate(raw):
        rule = _Section(entry, top.source, "%s[%d]" % (_join(section.path, "e164_converters"), index),
                        _CONVERTER_KEYS)
        regex = rule.string("regex")
        try:
            compile_pattern(regex)
        except PatternError as exc:
            rule.fail("regex", "invalid or unsafe regular expression: %s" % exc)
        converters.append(Converter(regex=regex, prefix=_affix(rule, "prefix"), suffix=_affix(rule, "suffix")))
    return RoutingSettings(converters=tuple(converters), max_callflow_jumps=jumps)


def _affix(rule, key):
    value = rule.value(key, "")
    if not isinstance(value, str) or _WHITESPACE.search(value):
        rule.fail(key, "must be a string without whitespace")
    return value


# --- callflow documents --------------------------------------------------------


def _callflows(top, base, directory, routing=RoutingSettings()):
    """Inline ``callflows:`` first, then ``callflows_dir``'s ``*.json`` files by name."""
    documents = []  # (raw document, source, path prefix for errors, fallback id)
    inline = top.value("callflows", [])
    if not isinstance(inline, list):
        top.fail("callflows", "must be a list of callflow documents, not %s" % _kind(inline))
    for index, raw in enumerate(inline):
        prefix = "callflows[%d]" % index
        _check_json_shaped(raw, top.source, prefix, 0)
        documents.append((raw, top.source, prefix, prefix))
    if top.given("callflows_dir"):
        documents.extend(_directory_documents(top, base))

    callflows = []
    by_id = {}
    by_number = {}
    normalize = Normalizer(routing.converters)
    for raw, source, prefix, fallback_id in documents:
        raw, prefix = _unwrap(raw, prefix)
        callflow = _callflow(raw, source, prefix, fallback_id, directory)
        if callflow.id in by_id:
            where = _join(prefix, "id") if raw.get("id") is not None else prefix or None
            raise ConfigError("callflow id %r is already used in %s" % (
                callflow.id, by_id[callflow.id].source), source, where)
        by_id[callflow.id] = callflow
        for index, number in enumerate(callflow.numbers):
            # two spellings of one number (4155552671, +14155552671) are one number once normalised
            key = number if number == "no_match" else normalize(number)
            other, spelled = by_number.get(key, (None, None))
            if other is not None:
                raise ConfigError("number %r is already claimed by callflow %r (%s)%s" % (
                    number, other.id, other.source, "" if spelled == number else " as %r" % spelled),
                    source, "%s[%d]" % (_join(prefix, "numbers"), index))
            by_number[key] = (callflow, number)
        callflows.append(callflow)
    if not callflows:
        top.fail_here("no callflows: give callflows, or callflows_dir holding *.json documents")
    _check_jumps(callflows, by_id)
    return tuple(callflows)


def _unwrap(raw, prefix):
    """Kazoo's API envelope ``{"data": {...callflow...}}``: the callflow inside, and its path.

    Only when the outer object is no callflow itself (no ``flow``, ``numbers`` or
    ``patterns``), so a callflow's own keys are never mistaken for an envelope.
    """
    if (isinstance(raw, dict) and isinstance(raw.get("data"), dict)
            and not any(key in raw for key in ("flow", "numbers", "patterns"))):
        return raw["data"], _join(prefix, "data")
    return raw, prefix


def _check_jumps(callflows, by_id):
    """Every ``callflow`` node must name a callflow that exists (checked once all are read)."""
    for callflow in callflows:
        pending = [callflow.flow]
        while pending:
            node = pending.pop()
            target = getattr(node.data, "callflow_id", None) if node.module == "callflow" else None
            if target is not None and target not in by_id:
                raise ConfigError("unknown callflow %r (known: %s)" % (target, ", ".join(sorted(by_id))),
                                  callflow.source, _join(callflow.prefix, node.path + ".data.id"))
            pending.extend(node.children.values())


def _directory_documents(top, base):
    written = top.string("callflows_dir")
    folder = os.path.join(base, written)
    try:
        names = sorted(name for name in os.listdir(folder)
                       if name.endswith(".json") and not name.startswith("."))
    except OSError as exc:
        top.fail("callflows_dir", "cannot read directory %s: %s" % (folder, exc.strerror or exc))
    total = 0
    for name in names:
        source = os.path.normpath(os.path.join(written, name))
        text = _read_text(os.path.join(folder, name), source)
        total += len(text)
        if total > MAX_TOTAL_BYTES:
            top.fail("callflows_dir", "more than %d bytes of callflow documents in %s" % (MAX_TOTAL_BYTES, folder))
        raw = _parse_json(text, source)
        yield raw, source, "", name[: -len(".json")]


def _check_json_shaped(value, source, path, depth):
    """Inline YAML documents must be what the JSON would be: string keys, JSON values."""
    if depth > _MAX_NESTING:
        raise ConfigError("nested too deeply", source, path)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError("key %r must be a string (quote it)" % (key,), source, path)
            _check_json_shaped(item, source, _join(path, key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json_shaped(item, source, "%s[%d]" % (path, index), depth + 1)
    elif not (value is None or isinstance(value, (str, int, float, bool))):
        raise ConfigError("%s is not a JSON value" % type(value).__name__, source, path)


def _callflow(raw, source, prefix, fallback_id, directory):
    def fail(key, message):
        raise ConfigError(message, source, _join(prefix, key) if key else prefix or None)

    if not isinstance(raw, dict):
        fail(None, "must be an object (a callflow document), not %s" % _kind(raw))
    doc_id = raw.get("id")
    if doc_id is None:
        doc_id = fallback_id
    elif not isinstance(doc_id, str) or not doc_id.strip():
        fail("id", "must be a non-empty string")
    numbers = _string_list(raw, "numbers", fail)
    for index, number in enumerate(numbers):
        if _WHITESPACE.search(number):
            fail("numbers[%d]" % index, "must not contain whitespace")
        if number in numbers[:index]:
            fail("numbers[%d]" % index, "%r is listed twice" % number)
    patterns = _string_list(raw, "patterns", fail)
    for index, pattern in enumerate(patterns):
        try:
            compile_pattern(pattern)
        except PatternError as exc:
            fail("patterns[%d]" % index, "invalid or unsafe regular expression: %s" % exc)
    if not numbers and not patterns:
        fail(None, "needs at least one number or pattern")
    if raw.get("flow") is None:
        fail("flow", "is required")
    flow = _node(raw["flow"], "flow", source, prefix, directory, 1, [0])
    return Callflow(id=doc_id, numbers=tuple(numbers), patterns=tuple(patterns),
                    flow=flow, source=source, prefix=prefix)


def _string_list(raw, key, fail):
    values = raw.get(key)
    if values is None:
        return []
    if not isinstance(values, list):
        fail(key, "must be a list of strings")
    for index, value in enumerate(values):
        if not isinstance(value, str):
            fail("%s[%d]" % (key, index), "must be a string, not %s (quote it)" % _kind(value))
        if not value:
            fail("%s[%d]" % (key, index), "must not be empty")
    return list(values)


def _node(raw, node_path, source, prefix, directory, depth, count):
    """One node and, recursively, its children; ``node_path`` is relative to the document.

    ``count`` is a one-item list: the nodes of this flow built so far.
    """
    where = _join(prefix, node_path)

    def fail(key, message):
        raise ConfigError(message, source, _join(where, key) if key else where)

    if depth > MAX_FLOW_DEPTH:
        fail(None, "the flow is more than %d nodes deep" % MAX_FLOW_DEPTH)
    count[0] += 1
    if count[0] > MAX_FLOW_NODES:
        fail(None, "the flow has more than %d nodes" % MAX_FLOW_NODES)
    if not isinstance(raw, dict):
        fail(None, "must be an object, not %s" % _kind(raw))
    unknown = [key for key in raw if key not in _NODE_KEYS]
    if unknown:
        fail(None, "unknown key%s %s (known: %s)" % (
            "s" if len(unknown) > 1 else "", ", ".join(repr(k) for k in unknown), ", ".join(_NODE_KEYS)))

    module = raw.get("module")
    if module is None:
        fail("module", "is required")
    if not isinstance(module, str):
        fail("module", "must be a string")
    action = REGISTRY.get(module)
    if action is None:
        fail("module", "unknown module %r (known: %s)" % (module, ", ".join(sorted(REGISTRY))))

    data = raw.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        fail("data", "must be an object")
    skip = data.get("skip_module")
    if skip is None:
        skip = False
    if not isinstance(skip, bool):
        fail("data.skip_module", "must be true or false")
    rest = {key: value for key, value in data.items() if key != "skip_module"}
    try:
        parsed = action.Data.parse(rest, directory)
    except InvalidData as exc:
        fail(_join("data", exc.key) if exc.key else "data", exc.message)
    except (ValueError, TypeError) as exc:
        # Data.parse should raise InvalidData for every bad input; this is the safety net.
        fail("data", "invalid data: %s" % _one_line(str(exc)))

    children_raw = raw.get("children")
    if children_raw is None:
        children_raw = {}
    if not isinstance(children_raw, dict):
        fail("children", "must be an object")
    children = {}
    for key, child in children_raw.items():
        if not isinstance(key, str) or not key:
            fail("children", "key %r must be a non-empty string" % (key,))
        children[key] = _node(child, "%s.children.%s" % (node_path, key), source, prefix,
                              directory, depth + 1, count)
    with_branch_keys = getattr(action, "with_branch_keys", None)  # actions that branch on names they know
    if with_branch_keys is not None:
        try:
            parsed = with_branch_keys(parsed, tuple(children), directory)
        except InvalidData as exc:
            fail(exc.key, exc.message)
    return Node(module=module, data=parsed, children=MappingProxyType(children), skip=skip,
                path=node_path)


def parse_flow(raw, directory, source):
    """One flow node and its children, checked exactly as a callflow document's ``flow``.

    For flows that arrive while running (a ``pivot`` response): ``directory`` is
    the running config's, ``source`` names where the flow came from in errors
    (``pivot http://...: flow.children._.data.id: unknown device 'x'``). Paths
    start at ``flow``. Raises ConfigError.
    """
    if raw is None:
        raise ConfigError("is required", source, "flow")
    _check_json_shaped(raw, source, "flow", 0)
    return _node(raw, "flow", source, "", directory, 1, [0])


def parse_flow_json(text, directory, source):
    """``parse_flow`` of a JSON text, read as strictly as a callflow document (no duplicate
    keys, no NaN, bounded numbers). A ``{"flow": {...}}`` wrapper is accepted."""
    raw = _parse_json(text, source)
    if isinstance(raw, dict) and "module" not in raw and "flow" in raw:
        raw = raw["flow"]
    return parse_flow(raw, directory, source)


def _one_line(text):
    return " ".join(text.split())
