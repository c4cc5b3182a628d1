"""The ``webhooks:`` section (delivery defaults, outbox, breaker, signing secrets) and ``hooks:``.

Part of the settings schema (``config.settings``), apart because it is the largest part.
"""

import math
from types import MappingProxyType

from callflowd.config import fields, files
from callflowd.config.destinations import Destinations, InvalidRule, Rules
from callflowd.config.fields import REQUIRED, Section, check_uri, join
from callflowd.config.model import (
    MAX_WEBHOOK_AGE,
    MAX_WEBHOOK_ATTEMPTS,
    MIN_WEBHOOK_ATTEMPTS,
    RETRY_MODES,
    SYNCHRONOUS,
    WEBHOOK_FORMATS,
    WEBHOOK_VERBS,
    BreakerSettings,
    Hook,
    WebhookSettings,
)
from callflowd.config.uri import InvalidURI, parse_proxy
from callflowd.errors import InvalidData

WEBHOOK_KEYS = ("timeout", "retries", "backoff_factor", "backoff_max", "retry_after_max", "format",
                "concurrency", "concurrency_per_endpoint", "outbox", "breaker", "proxy",
                "secret", "secret_file", "secrets", "process", "allow", "deny", "max_age", "retry_mode")
_OUTBOX_KEYS = ("max", "synchronous")
_BREAKER_KEYS = ("failures", "pause", "pause_max")
HOOK_KEYS = ("events", "uri", "http_verb", "format", "secret", "retries", "callflow_ids",
             "direction", "numbers")
HOOK_EVENTS = ("channel_create", "channel_answer", "channel_bridge", "channel_destroy")


def read_webhooks(top, base):
    """``webhooks:``: the defaults of the ``webhook`` action and hooks, and how the outbox delivers."""
    section = top.section("webhooks", WEBHOOK_KEYS)
    defaults = WebhookSettings()
    outbox = section.section("outbox", _OUTBOX_KEYS)
    breaker = section.section("breaker", _BREAKER_KEYS)
    breaker_defaults = BreakerSettings()
    concurrency = section.integer("concurrency", defaults.concurrency, 1, 100000)
    per_endpoint = section.integer("concurrency_per_endpoint",
                                   min(defaults.concurrency_per_endpoint, concurrency), 1, concurrency)
    proxy = section.string("proxy", None, spaces=False)
    if proxy is not None:
        try:
            parse_proxy(proxy)
        except InvalidURI as exc:
            section.fail("proxy", str(exc))
    return WebhookSettings(
        timeout=section.seconds("timeout", defaults.timeout),
        retries=section.integer("retries", defaults.retries, MIN_WEBHOOK_ATTEMPTS, MAX_WEBHOOK_ATTEMPTS),
        backoff_factor=section.seconds("backoff_factor", defaults.backoff_factor),
        backoff_max=section.seconds("backoff_max", defaults.backoff_max),
        retry_after_max=section.seconds("retry_after_max", defaults.retry_after_max),
        format=section.choice("format", WEBHOOK_FORMATS, defaults.format),
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
        destinations=_destinations(section),
        secrets=_secrets(section, base),
        process=section.flag("process", defaults.process),
        max_age=section.apply(_max_age, "max_age", defaults.max_age),
        retry_mode=section.choice("retry_mode", RETRY_MODES, defaults.retry_mode),
    )


def _max_age(raw, key, default):
    """How long a webhook may wait for a receiver that isn't available: seconds (the one rule for
    numbers, as ``fields.seconds``), up to a week rather than an hour."""
    value = fields.optional(raw, key, object, default)
    if isinstance(value, str):
        value = fields.integer_value(value, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidData(key, "must be a number")
    if not (math.isfinite(value) and value > 0):
        raise InvalidData(key, "must be a number greater than 0")
    if value > MAX_WEBHOOK_AGE:
        raise InvalidData(key, "must be at most %d seconds (a week)" % MAX_WEBHOOK_AGE)
    return float(value)


def _destinations(section):
    """``webhooks.allow`` / ``webhooks.deny``: lists of networks and host patterns."""
    lists = {}
    for key in ("allow", "deny"):
        entries = section.value(key, [])
        if isinstance(entries, str):
            entries = [entries]
        if not isinstance(entries, list):
            section.fail(key, "must be a list of networks (10.0.0.0/8) or host patterns (*.example.com)")
        for index, entry in enumerate(entries):
            try:
                Rules.parse([entry])
            except InvalidRule as exc:
                section.fail("%s[%d]" % (key, index), str(exc))
        lists[key] = entries
    return Destinations.parse(**lists)


def _secrets(section, base):
    """Signing secrets: ``secret`` or ``secret_file`` (the global one), ``secrets`` by name."""
    secrets = {}
    if section.given("secret") and section.given("secret_file"):
        section.fail_here("give at most one of secret, secret_file")
    if section.given("secret"):
        secrets[""] = section.string("secret", spaces=False)
    elif section.given("secret_file"):
        secrets[""] = files.one_value_from_file(section, "secret_file", base, "one secret")
    named = section.value("secrets", {})
    if not isinstance(named, dict):
        section.fail("secrets", "must be a mapping of names to secrets")
    table = Section(named, section.source, join(section.path, "secrets"), named)
    for name in named:
        if not isinstance(name, str) or not name.strip():
            table.fail_here("name %r must be a non-empty string" % (name,))
        secrets[name] = table.string(name, spaces=False)
    return MappingProxyType(secrets)


def read_hooks(top, settings):
    """``hooks:``: lifecycle hooks, checked against the ``webhooks:`` settings."""
    raw = top.value("hooks", [])
    if not isinstance(raw, list):
        top.fail("hooks", "must be a list of hooks")
    hooks = []
    for index, entry in enumerate(raw):
        section = Section(entry, top.source, "hooks[%d]" % index, HOOK_KEYS)
        events = section.value("events", REQUIRED)
        if isinstance(events, str):
            events = [events]
        if not isinstance(events, list) or not events:
            section.fail("events", "must be a list of: %s" % ", ".join(HOOK_EVENTS))
        for position, event in enumerate(events):
            if event not in HOOK_EVENTS:
                section.fail("events[%d]" % position, "must be one of %s" % ", ".join(HOOK_EVENTS))
        uri = section.string("uri", spaces=False)
        try:
            check_uri(uri)
        except InvalidData as exc:
            section.fail("uri", exc.message)
        direction = section.value("direction", None)
        if direction is not None and direction not in ("inbound", "outbound"):
            section.fail("direction", "must be inbound or outbound")
        hooks.append(Hook(
            events=frozenset(events), uri=uri,
            http_verb=section.choice("http_verb", WEBHOOK_VERBS, "post"),
            format=section.choice("format", WEBHOOK_FORMATS, settings.format),
            secret=_secret_name(section, settings),
            retry=settings.retry_policy(section.integer("retries", settings.retries, MIN_WEBHOOK_ATTEMPTS,
                                                        MAX_WEBHOOK_ATTEMPTS)),
            callflow_ids=tuple(section.strings("callflow_ids")),
            direction=direction,
            numbers=tuple(section.strings("numbers")),
        ))
    return tuple(hooks)


def _secret_name(section, settings):
    if not section.given("secret"):
        return ""
    name = section.string("secret", spaces=False)
    if name not in settings.secrets:
        section.fail("secret", "no secret named %r in webhooks.secrets" % name)
    return name
