"""One webhook to deliver, as a value: everything a delivery worker needs, nothing live."""

import dataclasses

from callflowd.logfmt import redact
from callflowd.retry import Retry


@dataclasses.dataclass(frozen=True)
class WebhookRequest:
    """``fields`` are sent form-encoded (POST body) or as the query string (GET).

    ``fields`` is a tuple of ``(name, value)`` string pairs, in order.
    ``retry`` counts extra attempts made when the host isn't available.
    """

    call_id: str
    uri: str
    method: str  # "post" or "get"
    fields: tuple
    retry: Retry

    def describe(self):
        """For logs: the method and the URI without its credentials."""
        return "%s %s" % (self.method.upper(), redact(self.uri))
