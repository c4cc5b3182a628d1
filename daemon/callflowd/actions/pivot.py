"""``pivot``: ask a web server what the call does next, and continue with the flow it answers.

data (Kazoo 4.3 ``callflows.pivot``):
  ``voice_url`` (required)  http:// or https:// URI to request the flow from
  ``method``                ``get`` (default, fields in the query string) or ``post``
  ``req_body_format``       POST body: ``form`` (default, form-encoded) or ``json``
  ``req_format``            ``kazoo`` (default) only; ``twiml`` is refused at load
  ``debug``, ``cdr_url``    accepted for Kazoo documents, not used
  ``req_timeout``           our extension: seconds the whole request may take, 1-30 (default 5)
  ``skip_module``           true: skip this node and go on to ``_`` (handled by the executor)

The request carries the call's fields, as the ``webhook`` action sends them
(``call_id``, ``caller_id_number``, ``previous_action``...). The answer must be a
2xx whose body (at most ``MAX_RESPONSE_BYTES``, UTF-8 JSON) is a callflow ``flow``
node (``{"module": ..., "data": ..., "children": ...}``, or that inside
``{"flow": ...}``); it is validated exactly as a configured flow, against the
running config (devices, boxes, temporal rules).

Branches: a valid flow -> the call continues with it (``Branch``; the pivot node's
own children are not used). A timeout, a connection failure, a non-2xx status
(redirects are not followed), a body too large, not JSON, or a flow that does not
validate -> ``_``, with the reason logged.

The request runs on the call's greenlet: it is the call's next step, and the
caller hears whatever the channel was doing (silence, or hold music if set) until
it ends. ``req_timeout`` bounds connecting, sending and reading together.

After a daemon restart, a call that was in a fetched flow is taken back at this
pivot node, which asks the server again (see ``callflowd.flow.model.FETCHED``).
"""

import dataclasses

from callflowd.actions import webhook
from callflowd.actions.outcome import DEFAULT, Branch, in_fetched_flow
from callflowd.calls import facts
from callflowd.config import fields
from callflowd.logfmt import redact_uri
from callflowd.webhooks import delivery, wire

METHODS = ("get", "post")
BODY_FORMATS = ("form", "json")
REQUEST_FORMATS = ("kazoo",)
DEFAULT_TIMEOUT = 5  # seconds; cf_pivot's documented req_timeout default
MAX_TIMEOUT = 30
# A flow is a few KB; the loader allows 1 MiB per document, a caller's wait allows less.
MAX_RESPONSE_BYTES = 256 * 1024


# The data keys it honours, and the keys of Kazoo's schema it accepts without doing them:
# ``check`` warns about each of those, and about any other key (flow/parser.py).
SUPPORTED = ("voice_url", "method", "req_body_format", "req_format", "req_timeout")
NOT_SUPPORTED = ("req_timeout_ms", "debug", "cdr_url")


@dataclasses.dataclass(frozen=True)
class Data:
    voice_url: str
    method: str
    body_format: str
    timeout: int
    # the running config's directory: what a fetched flow may refer to
    directory: object = dataclasses.field(compare=False, repr=False)

    @classmethod
    def parse(cls, raw, directory):
        voice_url = fields.required(raw, "voice_url", str, "a string")
        fields.check_uri(voice_url, "voice_url")
        method = fields.one_of(raw, "method", METHODS, "get")
        body_format = fields.one_of(raw, "req_body_format", BODY_FORMATS, "form")
        fields.one_of(raw, "req_format", REQUEST_FORMATS, "kazoo")
        fields.boolean(raw, "debug", False)
        fields.optional(raw, "cdr_url", str, "", "a string")
        timeout = fields.integer_in(raw, "req_timeout", DEFAULT_TIMEOUT, 1, MAX_TIMEOUT)
        return cls(voice_url=voice_url, method=method, body_format=body_format, timeout=timeout,
                   directory=directory)


class PivotFailed(Exception):
    """The server gave no usable answer; the message is short and safe to log."""


def fetch(data, request_fields, fetched=False):
    """The body of the server's 2xx answer, as text; PivotFailed saying why not.

    Sent through the webhooks' HTTP path (``webhooks.delivery.fetch``): the same URI check,
    encoder, client, proxy and destination rules; ``req_timeout`` bounds the whole exchange
    (DNS, a body trickled in byte by byte): the caller is waiting."""
    settings = data.directory.webhooks
    try:
        out = wire.build(data.method, data.voice_url, request_fields, data.body_format,
                         headers={"Accept": "application/json"})
    except ValueError as exc:
        raise PivotFailed(delivery.classify_error(exc).reason) from None
    result, content = delivery.fetch(_client(settings), out, data.timeout, MAX_RESPONSE_BYTES, fetched)
    if content is None:
        raise PivotFailed(result.reason)
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PivotFailed("the answer is not UTF-8 text (byte %d)" % exc.start) from None


_clients = {}  # (proxy, destinations) -> the client pivots share: keep-alive to their servers


def _client(settings):
    key = (settings.proxy, settings.destinations)
    client = _clients.get(key)
    if client is None:
        _clients.clear()  # a reload changed the settings: the old client's connections go
        client = _clients[key] = delivery.make_client(8, proxy=settings.proxy, pools=16,
                                                      destinations=key[1])
    return client


# The FreeSWITCH applications it runs (actions/__init__.py).
APPLICATIONS = ()


def handle(call, data):
    where = redact_uri(data.voice_url)
    call.log.info("pivot: %s %s", data.method.upper(), where)
    try:
        text = fetch(data, webhook.request_fields(call, {}) + tuple(
            (name, call.facts[name]) for name in facts.PIVOT_EXTRAS if name in call.facts), in_fetched_flow(call))
    except PivotFailed as exc:
        call.log.warning("pivot to %s failed: %s; continuing at %s", where, exc, DEFAULT)
        return DEFAULT
    # The executor parses it with the callflow parser, against the running config's directory.
    return Branch(text, data.directory, origin="pivot to %s" % where, source="answer")
