"""``webhook``: tell a web server where the caller is, without holding the call up.

data (Kazoo 4.3 ``callflows.webhook`` schema):
  ``uri`` (required)  http:// or https:// URI to send the request to
  ``http_verb``       ``post`` (default; form-encoded body) or ``get`` (query string)
  ``retries``         extra attempts when the host isn't available, 0-4 (default 2,
                      or ``webhooks.retries`` from the config)
  ``custom_data``     object whose keys are added to the fields, overwriting call keys
  ``skip_module``     true: skip this node and go on to ``_`` (handled by the executor)
Our extensions of the Kazoo schema:
  ``format``          ``form`` (Kazoo's; the default, or ``webhooks.format``) or ``json``:
                      how a POST body is encoded (a GET always sends a query string)
  ``secret``          the *name* of a signing secret in the config's ``webhooks.secrets``
                      (default: the global ``webhooks.secret``, if any); the secret itself
                      never goes in a callflow document

Branches: always ``_``, at once. The request is handed to the durable outbox
(``webhooks.dispatcher``) without waiting; delivery, retries and signing happen
there, never on the call's greenlet.
"""

import dataclasses
import json
from types import MappingProxyType

from callflowd.actions.outcome import DEFAULT, in_fetched_flow
from callflowd.config import fields
from callflowd.config.fields import check_uri
from callflowd.config.model import MAX_WEBHOOK_RETRIES as MAX_RETRIES, WEBHOOK_FORMATS as FORMATS, \
    WEBHOOK_VERBS as VERBS
from callflowd.errors import InvalidData
from callflowd.retry import Retry
from callflowd.webhooks.request import WebhookRequest, step_delivery_id


@dataclasses.dataclass(frozen=True)
class Data:
    uri: str
    http_verb: str
    retry: Retry
    custom_data: MappingProxyType
    format: str = "form"
    secret: str = ""  # a name in webhooks.secrets; "" the global one

    @classmethod
    def parse(cls, raw, directory):
        uri = fields.required(raw, "uri", str, "a string")
        check_uri(uri)
        http_verb = fields.one_of(raw, "http_verb", VERBS, "post")
        settings = directory.webhooks
        retries = fields.integer_in(raw, "retries", settings.retries, 0, MAX_RETRIES)
        custom_data = fields.optional(raw, "custom_data", dict, {}, "an object")
        body_format = fields.one_of(raw, "format", FORMATS, settings.format)
        secret = fields.optional(raw, "secret", str, "", "the name of a secret in the config")
        if secret and secret not in settings.secrets:
            raise InvalidData("secret", "no secret named %r in the config's webhooks.secrets" % secret)
        return cls(uri=uri, http_verb=http_verb, retry=settings.retry_policy(retries),
                   custom_data=MappingProxyType(dict(custom_data)), format=body_format, secret=secret)


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


# The FreeSWITCH applications it runs (actions/__init__.py).
APPLICATIONS = ()


def handle(call, data):
    request = WebhookRequest(
        call_id=call.uuid, uri=data.uri, method=data.http_verb,
        fields=request_fields(call, data.custom_data), retry=data.retry,
        format=data.format, secret=data.secret, fetched=in_fetched_flow(call),
        delivery_id=step_delivery_id(call.uuid, "%s:%s" % (call.position.callflow_id, call.position.node_path),
                                     call.position.visit),
    )
    if call.webhooks.submit(request):
        call.log.info("webhook queued: %s (delivery %s)", request.describe(), request.delivery_id)
    return DEFAULT
