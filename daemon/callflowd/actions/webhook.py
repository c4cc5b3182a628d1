"""``webhook``: tell a web server where the caller is, as Kazoo 4.3's ``cf_webhook`` does.

data (Kazoo 4.3 ``callflows.webhook`` schema):
  ``uri`` (required)  http:// or https:// URI to send the request to
  ``http_verb``       ``get`` (Kazoo's default: the fields in the query string) or ``post``
                      (the same string as an ``application/x-www-form-urlencoded`` body)
  ``retries``         attempts in all, as Kazoo reads it (``kzd_webhook:retries/1``): any
                      integer, clamped to 1-5; default 3 (or ``webhooks.retries``). Only
                      attempts that reached the receiver count (see docs/webhooks.md; with
                      ``webhooks.retry_mode: kazoo`` every failed attempt counts, 2 s apart)
  ``custom_data``     object whose keys are added to the fields, overwriting the call's
                      (Kazoo's ``kz_json:merge_jobjs``; ``null`` removes a call field);
                      nested values go as ``crm[account]=ACME&crm[tags][]=vip``
  ``skip_module``     true: skip this node and go on to ``_`` (handled by the executor)
Our extensions of the Kazoo schema:
  ``format``          ``form`` (Kazoo's; the default, or ``webhooks.format``) or ``json``:
                      how a POST body is encoded (a GET always sends a query string)
  ``secret``          the *name* of a signing secret in the config's ``webhooks.secrets``
                      (default: the global ``webhooks.secret``, if any); the secret itself
                      never goes in a callflow document

The fields are the call's, as ``kapps_call:to_proplist/1`` names them (calls/facts.py),
then ours (``callflow_id``, ``recording_file`` while one records, ``previous_action``,
``previous_outcome``), then ``custom_data``.

Branches: always ``_``, once the webhook is committed to the durable outbox (the call
waits for that commit, a few milliseconds, never for the receiver): a daemon killed at
any moment either has the webhook in its outbox or runs this step again after it is
restarted (same delivery id). Delivery, retries and signing happen in
``webhooks.dispatcher``, never on the call's greenlet.
"""

import calendar
import dataclasses
import time
from types import MappingProxyType

from callflowd.actions.outcome import DEFAULT, in_fetched_flow
from callflowd.calls.facts import kazoo_fields
from callflowd.config import fields
from callflowd.config.fields import check_uri
from callflowd.config.model import MAX_WEBHOOK_ATTEMPTS as MAX_ATTEMPTS, MIN_WEBHOOK_ATTEMPTS as MIN_ATTEMPTS, \
    WEBHOOK_FORMATS as FORMATS, WEBHOOK_VERBS as VERBS
from callflowd.errors import InvalidData
from callflowd.retry import Retry
from callflowd.webhooks import querystring
from callflowd.webhooks.request import WebhookRequest, step_delivery_id

DEFAULT_VERB = "get"  # kzd_webhook:verb/1


# The data keys it honours, and the keys of Kazoo's schema it accepts without doing them:
# ``check`` warns about each of those, and about any other key (flow/parser.py).
SUPPORTED = ("uri", "http_verb", "retries", "custom_data", "format", "secret")
NOT_SUPPORTED = ()


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
        http_verb = fields.one_of(raw, "http_verb", VERBS, DEFAULT_VERB)
        settings = directory.webhooks
        attempts = clamp_attempts(fields.optional(raw, "retries", int, settings.retries))
        custom_data = fields.optional(raw, "custom_data", dict, {}, "an object")
        body_format = fields.one_of(raw, "format", FORMATS, settings.format)
        if http_verb == "get" or body_format == "form":
            try:
                for value in custom_data.values():  # a null at the top removes a call field
                    querystring.check(value)
            except querystring.Unencodable as exc:
                raise InvalidData("custom_data", "can't be sent as a query string (Kazoo's encoding "
                                  "has no form for %s); use format: json with http_verb: post" % exc) from None
        secret = fields.optional(raw, "secret", str, "", "the name of a secret in the config")
        if secret and secret not in settings.secrets:
            raise InvalidData("secret", "no secret named %r in the config's webhooks.secrets" % secret)
        return cls(uri=uri, http_verb=http_verb, retry=settings.retry_policy(attempts),
                   custom_data=MappingProxyType(dict(custom_data)), format=body_format, secret=secret)


def clamp_attempts(retries):
    """Kazoo's ``kzd_webhook:constrain_retries/1``: below 1 is 1, above 5 is 5."""
    return min(MAX_ATTEMPTS, max(MIN_ATTEMPTS, retries))


def request_fields(call, custom_data):
    """Kazoo's call fields in Kazoo's order, ours after them, then ``custom_data`` merged in.

    The merge is ``kz_json:merge_jobjs(CustomData, Call)``: a key the call has is replaced
    where it stands, a ``null`` removes it, a new key is added at the end (Kazoo folds from
    the right, so new keys come last first).
    """
    values = dict(kazoo_fields(call.facts))
    values["callflow_id"] = call.callflow_id
    if call.facts.get("recording_file"):  # ours: where record_call is recording (actions/record_call.py)
        values["recording_file"] = call.facts["recording_file"]
    previous = call.previous_step
    if previous is not None:
        values["previous_action"] = previous.module
        values["previous_outcome"] = previous.outcome
    for key, value in reversed(list(custom_data.items())):
        key = str(key)
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return tuple(values.items())


# The FreeSWITCH applications it runs (actions/__init__.py).
APPLICATIONS = ()


# calendar:datetime_to_gregorian_seconds({{1970,1,1},{0,0,0}}): Erlang counts from year 0.
_GREGORIAN_EPOCH = 62167219200


def kazoo_headers(facts, now=None):
    """Kazoo's ``?HTTP_REQ_HEADERS(Hook)`` (webhooks_util.erl): ``X-Hook-ID``, the hook's ``_id``
    that ``cf_webhook:set_hook/2`` makes of the server's local time in gregorian seconds, and
    ``X-Account-ID`` (only when the config has an ``account_id``: Kazoo would write ``undefined``)."""
    local = time.localtime(time.time() if now is None else now)
    headers = [("X-Hook-ID", str(_GREGORIAN_EPOCH + calendar.timegm(local)))]
    if facts.get("account_id"):
        headers.append(("X-Account-ID", facts["account_id"]))
    return tuple(headers)


def handle(call, data):
    request = WebhookRequest(
        call_id=call.uuid, uri=data.uri, method=data.http_verb,
        fields=request_fields(call, data.custom_data), retry=data.retry,
        format=data.format, secret=data.secret, fetched=in_fetched_flow(call),
        headers=kazoo_headers(call.facts),
        delivery_id=step_delivery_id(call.uuid, "%s:%s" % (call.position.callflow_id, call.position.node_path),
                                     call.position.visit),
    )
    # Waits for the outbox commit (group commit: milliseconds); only then may the flow's
    # marker move on. False: refused (outbox full) or lost (commit failed), logged and counted.
    if call.webhooks.submit_committed(request):
        call.log.info("webhook accepted: %s (delivery %s)", request.describe(), request.delivery_id)
    return DEFAULT
