"""The validated configuration, as frozen values. Live objects never go in here."""

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from callflowd.config.destinations import Destinations
from callflowd.esl.limits import FrameLimits
from callflowd.retry import Retry

# The child key a callflow node falls back to when an action's keys match none (Kazoo's "_");
# a temporal rule may not take it as its id (config/settings.py). Actions know it as
# actions.outcome.DEFAULT.
DEFAULT_BRANCH = "_"

# What a webhook setting may say; the webhooks layer (above) reads these same tuples.
WEBHOOK_FORMATS = ("form", "json")  # how a POST body is encoded (webhooks.request)
WEBHOOK_VERBS = ("get", "post")
# A webhook's ``retries`` is Kazoo's (kzd_webhook:retries/1): attempts in all, default 3, 1-5.
DEFAULT_WEBHOOK_ATTEMPTS = 3
MIN_WEBHOOK_ATTEMPTS = 1
MAX_WEBHOOK_ATTEMPTS = 5
SYNCHRONOUS = ("normal", "full")  # the outbox's SQLite synchronous modes (webhooks.store)
# webhooks.retry_mode: "durable" holds a webhook through a receiver's outage (up to max_age);
# "kazoo" is Kazoo 4.3's webhooks_util:retry_hook/3 (see webhooks/dispatcher.py).
RETRY_MODES = ("durable", "kazoo")
MAX_WEBHOOK_AGE = 7 * 86400  # webhooks.max_age: a week in the outbox at most


@dataclasses.dataclass(frozen=True)
class FreeswitchSettings:
    """Where and how to reach one FreeSWITCH node's inbound event socket.

    ``name`` is how logs, STATUS= and calls refer to the node.
    ``idle_timeout``: no frame (FreeSWITCH sends HEARTBEAT every 20 s), or no
    reply to a command, for this long and the connection is declared dead.
    """

    name: str = "freeswitch"
    host: str = "127.0.0.1"
    port: int = 8021
    password: str = dataclasses.field(default="ClueCon", repr=False)
    connect_timeout: float = 5.0
    command_timeout: float = 10.0
    reconnect: Retry = Retry(total=None, backoff_factor=0.5, backoff_max=4.0, jitter=0.2)
    idle_timeout: float = 30.0
    limits: FrameLimits = FrameLimits()
    # Kazoo's Switch-Nodename (the switch's Erlang node name, e.g. freeswitch@fs1.example.com):
    # sent as switch_nodename in webhooks when set; plain FreeSWITCH has no such name.
    switch_nodename: str | None = None


@dataclasses.dataclass(frozen=True)
class Device:
    """A phone the ``device`` action can ring: a FreeSWITCH dial string and a ring time.

    From a Kazoo device document (config/kazoo_documents.py) also: the user who owns it
    (``owner_id``), whether it is ``enabled``, its SIP user name (how a call from it
    is recognised: ``can_call_self``) and its ``custom_sip_headers``.
    """

    id: str
    dial_string: str
    timeout: int = 20
    owner_id: str = ""
    enabled: bool = True
    sip_username: str = ""
    sip_headers: tuple = ()  # of (name, value)
    name: str = ""


@dataclasses.dataclass(frozen=True)
class VoicemailBox:
    """A mod_voicemail box: ``voicemail <profile> <domain> <mailbox>``."""

    id: str
    profile: str
    domain: str
    mailbox: str


@dataclasses.dataclass(frozen=True)
class BreakerSettings:
    """When a webhook endpoint's breaker opens and how long it pauses (webhooks.breaker)."""

    failures: int = 5  # consecutive failed attempts that open the breaker
    pause: float = 10.0  # seconds before the first probe
    pause_max: float = 300.0  # longest pause between probes


@dataclasses.dataclass(frozen=True)
class WebhookSettings:
    """Defaults for the ``webhook`` action and lifecycle hooks, and how the outbox delivers them."""

    timeout: float = 5.0  # seconds, per HTTP attempt (connect and read)
    retries: int = DEFAULT_WEBHOOK_ATTEMPTS  # attempts in all (Kazoo's ``retries``), for nodes that don't say
    backoff_factor: float = 1.0
    backoff_max: float = 30.0
    retry_after_max: float = 300.0  # a longer Retry-After is cut to this
    format: str = "form"  # or "json"
    # Requests in flight: enough for 100 webhooks/s to a receiver taking 1 s (x1.25).
    concurrency: int = 1000
    concurrency_per_endpoint: int = 125
    outbox_max: int = 100000  # webhooks the outbox may hold
    synchronous: str = "normal"  # SQLite synchronous: normal or full (see webhooks.store)
    breaker: BreakerSettings = BreakerSettings()
    proxy: str | None = None
    destinations: Destinations = Destinations()  # webhooks.allow / webhooks.deny
    process: bool = False  # deliver from a process of its own (webhooks.process)
    # How long a webhook whose receiver is not available (refused, DNS, connect timeout, breaker
    # open) waits in the outbox before it is dropped; such tries spend none of its ``retries``.
    max_age: float = 3600.0
    # "durable" (the above) or "kazoo": Kazoo 4.3's own rule, every failed attempt counts,
    # 2 s apart, an answer (any status) is final, dropped after the last attempt.
    retry_mode: str = "durable"
    # Signing secrets by name; "" is the global one. Never in a callflow document.
    secrets: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: MappingProxyType({}), repr=False)

    def retry_policy(self, attempts):
        """The ``Retry`` for ``attempts`` in all (Kazoo's ``retries``) under these settings' back-off."""
        return Retry(total=attempts - 1, backoff_factor=self.backoff_factor, backoff_max=self.backoff_max,
                     jitter=0.1, retry_after_max=self.retry_after_max)


@dataclasses.dataclass(frozen=True)
class Hook:
    """A lifecycle hook: channel events, filtered, sent as webhooks through the outbox."""

    events: frozenset  # of "channel_create", "channel_answer", "channel_bridge", "channel_destroy"
    uri: str
    http_verb: str = "post"
    format: str = "form"
    secret: str | None = ""  # a name in WebhookSettings.secrets; "" the global one
    retry: Retry = Retry()
    callflow_ids: tuple = ()  # empty: any (or none)
    direction: str | None = None  # "inbound" or "outbound"; None: both
    numbers: tuple = ()  # caller or destination number; empty: any


@dataclasses.dataclass(frozen=True)
class MetricsSettings:
    """The optional metrics and health listener; ``port`` None means off."""

    host: str = "127.0.0.1"
    port: int | None = None


@dataclasses.dataclass(frozen=True)
class Converter:
    """One E.164 rule: a number ``regex`` matches -> ``prefix`` + root + ``suffix``.

    The root is the last capture group that matched something, else the whole match
    (Kazoo's knm_converter_regex reads the last capture the same way).
    """

    regex: str
    prefix: str = ""
    suffix: str = ""


# Kazoo 4.3's default e164_converters (system_config number_manager).
DEFAULT_CONVERTERS = (
    Converter(r"^(\+?1)?([2-9][0-9]{2}[2-9][0-9]{6})$", prefix="+1"),
    Converter(r"^011(\d{5,})$|^00(\d{5,})$", prefix="+"),
    Converter(r"^[2-9]\d{7,}$", prefix="+"),
)


@dataclasses.dataclass(frozen=True)
class RoutingSettings:
    """How a dialled number finds its callflow, and how far a call may jump between callflows."""

    # number -> callflow id, every callflow's ``numbers`` (a menu's hunt); filled by the loader
    # once the callflows are read, never changed after the load
    callflow_numbers: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    prompts_dir: str = ""  # where Kazoo's prompts are (``prompts_dir:``); "" FreeSWITCH's stock sounds
    converters: tuple = DEFAULT_CONVERTERS
    max_callflow_jumps: int = 50  # Kazoo's cf_exe caps branches at 50
    # no_match for calls the switch did not authenticate too (Kazoo's allow_no_match says no)
    no_match_from_outside: bool = False


# The kind of a Reference to another callflow: its table is the callflows themselves,
# known once every document is read.
CALLFLOW = "callflow"


@dataclasses.dataclass(frozen=True)
class Reference:
    """An id a callflow node names: ``kind`` says in which table (``device``, ``callflow``...).

    ``key`` is where the id sits below the node's ``data`` (``endpoints[1].id``), for
    the error when nothing of that kind has that id. Actions declare theirs with
    ``references(data)`` (see ``callflowd.actions``); the callflow parser checks them.
    """

    kind: str
    id: str
    key: str = "id"


@dataclasses.dataclass(frozen=True)
class Directory:
    """What callflow nodes may refer to; handed to each action's ``Data.parse``.

    A new table of things nodes refer to (users, groups, media...) is a field here, a
    line in ``tables()`` and a section in ``config.settings``.
    """

    devices: Mapping[str, Device] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    voicemail_boxes: Mapping[str, VoicemailBox] = dataclasses.field(
        default_factory=lambda: MappingProxyType({}))
    webhooks: WebhookSettings = WebhookSettings()
    # id -> callflowd.config.temporal.Rule, from ``temporal_rules:``
    temporal_rules: Mapping[str, object] = dataclasses.field(
        default_factory=lambda: MappingProxyType({}))
    # Kazoo documents (config/kazoo_documents.py): id -> User, Group, Menu, media reference, Resource
    users: Mapping[str, object] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    groups: Mapping[str, object] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    menus: Mapping[str, object] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    media: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    resources: tuple = ()  # of kazoo_values.Resource, in the order they were read
    account: object = None  # kazoo_values.Account, or None: no account document given
    # number -> callflow id, every callflow's ``numbers`` (a menu's hunt); filled by the loader
    # once the callflows are read, never changed after the load
    callflow_numbers: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    prompts_dir: str = ""  # where Kazoo's prompts are (``prompts_dir:``); "" FreeSWITCH's stock sounds
    converters: tuple = DEFAULT_CONVERTERS  # routing.e164_converters: how offnet normalises a number
    recordings_dir: str = ""  # where record_call writes (``recordings_dir:``); "" none configured

    def devices_of(self, user_id):
        """The devices a user owns (Kazoo: devices whose ``owner_id`` is the user), in order."""
        return tuple(device for device in self.devices.values() if device.owner_id == user_id)

    def media_path(self, reference):
        """A media id of a ``media`` document -> its file or URL; anything else as it is."""
        if reference is None:
            return None
        return self.media.get(reference, reference)

    def tables(self):
        """Each table a ``Reference`` may name, by its ``kind``."""
        return {"device": self.devices, "voicemail box": self.voicemail_boxes,
                "temporal rule": self.temporal_rules, "user": self.users, "group": self.groups,
                "menu": self.menus}


@dataclasses.dataclass(frozen=True)
class ClusterSettings:
    """Several daemons on the same switches (calls/ownership.py).

    ``claims``: race for each parked call on the switch (mod_hash) so exactly one daemon
    drives it; ``name``: this daemon's name there and on its channels (None: the host's
    name); ``lease``: seconds after which a silent daemon's calls are taken over, and its
    webhooks too when ``outbox`` names the PostgreSQL server the daemons share
    (webhooks/pgstore.py; None: the local SQLite outbox).
    """

    claims: bool = True
    name: str | None = None
    lease: float = 5.0
    outbox: str | None = dataclasses.field(default=None, repr=False)  # holds a password


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything the daemon runs with, validated."""

    switches: tuple  # of FreeswitchSettings, names unique; one connection each
    directory: Directory
    callflows: tuple  # of callflowd.flow.model.Callflow
    log_level: str = "INFO"
    shutdown_grace: float = 30.0  # seconds calls in progress get to finish at SIGTERM
    source: str = ""
    state_dir: str = "/var/lib/callflowd"  # the webhook outbox lives here
    hooks: tuple = ()  # of Hook
    metrics: MetricsSettings = MetricsSettings()
    routing: RoutingSettings = RoutingSettings()
    # One line per thing accepted but not run as Kazoo would (flow/parser.py): ``check``
    # prints them, the service logs them at start and at each reload.
    warnings: tuple = ()
    account_id: str | None = None  # Kazoo's account id (32 hex digits), sent in webhooks when set
    cluster: ClusterSettings = ClusterSettings()

    @property
    def freeswitch(self):
        """The first (often the only) switch: what a single ``freeswitch:`` section gave."""
        return self.switches[0]
