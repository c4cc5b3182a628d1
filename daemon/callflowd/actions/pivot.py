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
import json
import urllib.parse

import gevent
import requests

from callflowd.actions import webhook
from callflowd.actions.outcome import DEFAULT, Branch
from callflowd.config import fields
from callflowd.errors import InvalidData
from callflowd.logfmt import redact
from callflowd.webhooks import delivery, wire

METHODS = ("get", "post")
BODY_FORMATS = ("form", "json")
REQUEST_FORMATS = ("kazoo",)
DEFAULT_TIMEOUT = 5  # seconds; cf_pivot's documented req_timeout default
MAX_TIMEOUT = 30
# A flow is a few KB; the loader allows 1 MiB per document, a caller's wait allows less.
MAX_RESPONSE_BYTES = 256 * 1024


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
        if not voice_url.isprintable() or " " in voice_url:
            raise InvalidData("voice_url", "must not contain spaces or control characters")
        try:
            parsed = urllib.parse.urlsplit(voice_url)
        except ValueError as exc:
            raise InvalidData("voice_url", "is not a valid URI: %s" % exc) from None
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InvalidData("voice_url", "must be an http:// or https:// URI")
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


def fetch(data, request_fields):
    """The body of the server's 2xx answer, as text; PivotFailed saying why not."""
    headers = {"User-Agent": wire.USER_AGENT, "Accept": "application/json"}
    url, body = data.voice_url, None
    if data.method == "get":
        url = wire.with_query(url, urllib.parse.urlencode(request_fields))
    elif data.body_format == "json":
        headers["Content-Type"] = "application/json"
        body = json.dumps(dict(request_fields), separators=(",", ":")).encode("utf-8")
    else:
        headers["Content-Type"] = wire.FORM_CONTENT_TYPE
        body = urllib.parse.urlencode(request_fields).encode("ascii")
    # requests' timeouts bound each connect and read; this bounds the whole exchange
    # (DNS, a body trickled in byte by byte): the caller is waiting.
    deadline = gevent.Timeout(data.timeout)
    deadline.start()
    try:
        response = requests.request(data.method.upper(), url, data=body, headers=headers,
                                    timeout=(data.timeout, data.timeout), allow_redirects=False,
                                    stream=True)
        try:
            if not 200 <= response.status_code < 300:
                raise PivotFailed("%d %s%s" % (response.status_code, (response.reason or "").lower(),
                                               " (redirect not followed)" if 300 <= response.status_code < 400
                                               else ""))
            content = _read_capped(response)
        finally:
            response.close()
    except gevent.Timeout as exc:
        if exc is not deadline:
            raise
        raise PivotFailed("no answer within %ds" % data.timeout) from None
    except requests.RequestException as exc:
        raise PivotFailed(delivery.classify_error(exc).reason) from None
    finally:
        deadline.close()
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PivotFailed("the answer is not UTF-8 text (byte %d)" % exc.start) from None


def _read_capped(response):
    chunks, size = [], 0
    for chunk in response.iter_content(chunk_size=16384):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise PivotFailed("the answer is larger than %d bytes" % MAX_RESPONSE_BYTES)
        chunks.append(chunk)
    return b"".join(chunks)


def handle(call, data):
    where = redact(data.voice_url)
    call.log.info("pivot: %s %s", data.method.upper(), where)
    try:
        text = fetch(data, webhook.request_fields(call, {}))
    except PivotFailed as exc:
        call.log.warning("pivot to %s failed: %s; continuing at %s", where, exc, DEFAULT)
        return DEFAULT
    # The executor parses it with the callflow parser, against the running config's directory.
    return Branch(text, data.directory, origin="pivot to %s" % where, source="answer")
