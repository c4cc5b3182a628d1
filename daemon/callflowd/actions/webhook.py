"""``webhook``: tell a web server where the caller is, without holding the call up.

data (Kazoo 4.3 ``callflows.webhook`` schema):
  ``uri`` (required)  http:// or https:// URI to send the request to
  ``http_verb``       ``post`` (default; form-encoded body) or ``get`` (query string)
  ``retries``         extra attempts when the host isn't available, 0-4 (default 2,
                      or ``webhooks.retries`` from the config)
  ``custom_data``     object whose keys are added to the fields, overwriting call keys
  ``skip_module``     true: skip this node and go on to ``_`` (handled by the executor)

Branches: always ``_``, at once. Delivery (with retries) happens in the
webhook dispatcher's workers, never on the call's greenlet.
"""

import dataclasses
import json
import urllib.parse
from types import MappingProxyType

from callflowd.actions import fields
from callflowd.actions.outcome import DEFAULT
from callflowd.errors import InvalidData
from callflowd.retry import Retry
from callflowd.webhooks.request import WebhookRequest

VERBS = ("get", "post")
MAX_RETRIES = 4


@dataclasses.dataclass(frozen=True)
class Data:
    uri: str
    http_verb: str
    retry: Retry
    custom_data: MappingProxyType

    @classmethod
    def parse(cls, raw, directory):
        uri = fields.required(raw, "uri", str, "a string")
        if not uri.isprintable() or " " in uri:
            raise InvalidData("uri", "must not contain spaces or control characters")
        try:
            parsed = urllib.parse.urlsplit(uri)
        except ValueError as exc:
            raise InvalidData("uri", "is not a valid URI: %s" % exc) from None
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InvalidData("uri", "must be an http:// or https:// URI")
        http_verb = fields.one_of(raw, "http_verb", VERBS, "post")
        settings = directory.webhooks
        retries = fields.integer_in(raw, "retries", settings.retries, 0, MAX_RETRIES)
        custom_data = fields.optional(raw, "custom_data", dict, {}, "an object")
        retry = Retry(total=retries, backoff_factor=settings.backoff_factor,
                      backoff_max=settings.backoff_max, jitter=0.1)
        return cls(uri=uri, http_verb=http_verb, retry=retry,
                   custom_data=MappingProxyType(dict(custom_data)))


def request_fields(call, custom_data):
    """The call's facts plus where it has been, then ``custom_data`` on top (it wins)."""
    values = dict(call.facts)
    values["callflow_id"] = call.callflow_id
    previous = call.previous_step
    if previous is not None:
        values["previous_action"] = previous.module
        values["previous_outcome"] = previous.outcome
    for key, value in custom_data.items():
        values[str(key)] = value
    return tuple((key, _as_text(value)) for key, value in values.items())


def _as_text(value):
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def handle(call, data):
    request = WebhookRequest(
        call_id=call.uuid, uri=data.uri, method=data.http_verb,
        fields=request_fields(call, data.custom_data), retry=data.retry,
    )
    if call.webhooks.submit(request):
        call.log.info("webhook queued: %s", request.describe())
    return DEFAULT
