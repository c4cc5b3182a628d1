"""One webhook to deliver, as a value: everything a delivery needs, nothing live.

A request is written to the outbox as JSON (``to_json``/``from_json``) and
read back after a restart, so it carries names, never objects: the signing
secret by name (looked up in the config when it is sent), the retry policy by
its numbers.
"""

import dataclasses
import hashlib
import json
import urllib.parse
import uuid

from callflowd.config.model import WEBHOOK_FORMATS as FORMATS  # noqa: F401 - the body encodings
from callflowd.retry import Retry
from callflowd.logfmt import redact_uri

DEFAULT_SECRET = ""  # the name of the global ``webhooks.secret``


def new_delivery_id():
    """A fresh, unique delivery id (the ``X-Callflowd-Delivery`` header)."""
    return uuid.uuid4().hex


def step_delivery_id(call_uuid, node_path, occurrence):
    """The same id each time a call's flow reaches the same node the same time round: a flow
    taken back after a restart that runs a webhook step again sends nothing new (the outbox
    keeps one row per id), and a receiver that saw the id already can drop the request."""
    text = "%s|%s|%d" % (call_uuid, node_path, occurrence)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclasses.dataclass(frozen=True)
class WebhookRequest:
    """``fields`` are sent as Kazoo's query string (GET, or a form POST body) or as JSON.

    ``fields`` is a tuple of ``(name, value)`` pairs, in order; a value is a string, a
    boolean, a number, or (from a node's ``custom_data``) an object or list of them,
    encoded by ``webhooks.querystring`` the way Kazoo 4.3 encodes it.
    ``retry.total`` counts the attempts after the first that may be spent on a receiver
    that was reached and failed (a host that isn't available spends none; see
    ``dispatcher``). ``accepted_at`` (Unix time) is when the call handed it over: what
    ``webhooks.max_age`` counts from.
    ``secret`` names the signing secret: ``""`` the global one, ``None`` unsigned.
    """

    call_id: str
    uri: str
    method: str  # "post" or "get"
    fields: tuple
    retry: Retry
    format: str = "form"
    secret: str | None = DEFAULT_SECRET
    delivery_id: str = dataclasses.field(default_factory=new_delivery_id)
    event: str = "webhook"  # "webhook" (a callflow node) or a lifecycle hook's event name
    fetched: bool = False  # from a flow a pivot fetched: config.destinations' default refusals apply
    accepted_at: float = 0.0  # Unix time; 0: unknown (a row from before this field)
    headers: tuple = ()  # (name, value) pairs the sender adds (Kazoo's X-Hook-ID, X-Account-ID)

    def describe(self):
        """``POST https://***@host/path?***``: safe to log at any level."""
        return "%s %s" % (self.method.upper(), redact_uri(self.uri))

    @property
    def endpoint(self):
        """``scheme://host:port``: what the breaker and the concurrency limits count by."""
        parts = urllib.parse.urlsplit(self.uri)
        scheme = parts.scheme.lower()
        port = parts.port or (443 if scheme == "https" else 80)
        return "%s://%s:%d" % (scheme, (parts.hostname or "").lower(), port)

    def to_json(self):
        retry = self.retry
        return json.dumps({
            "call_id": self.call_id, "uri": self.uri, "method": self.method,
            "fields": [list(pair) for pair in self.fields], "format": self.format,
            "secret": self.secret, "event": self.event, "fetched": self.fetched,
            "accepted_at": self.accepted_at, "headers": [list(pair) for pair in self.headers],
            "retry": {"total": retry.total, "backoff_factor": retry.backoff_factor,
                      "backoff_max": retry.backoff_max, "jitter": retry.jitter,
                      "retry_after_max": retry.retry_after_max},
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, delivery_id, text):
        raw = json.loads(text)
        return cls(call_id=raw["call_id"], uri=raw["uri"], method=raw["method"],
                   fields=tuple((str(k), v) for k, v in raw["fields"]),
                   retry=Retry(**raw["retry"]), format=raw.get("format", "form"),
                   secret=raw.get("secret", DEFAULT_SECRET), delivery_id=delivery_id,
                   event=raw.get("event", "webhook"), fetched=raw.get("fetched", False),
                   accepted_at=float(raw.get("accepted_at", 0.0)),
                   headers=tuple((str(k), str(v)) for k, v in raw.get("headers", ())))
