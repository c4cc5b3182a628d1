"""A pivot server on 127.0.0.1:0: the webhook receiver, answering scripted bodies per path."""

import json

from callflowd.demo.receiver import HOLD_LIMIT, WebhookReceiver, _status_line


class PivotServer(WebhookReceiver):
    """``answer(path, body)`` sets what ``path`` answers; other paths answer as the receiver does.

    Requests are recorded as the receiver records them; ``hold()`` makes every
    answer wait for ``release()`` (a server that hangs past the pivot's timeout).
    """

    def __init__(self):
        super().__init__()
        self._answers = {}

    def answer(self, path, body, status=200, content_type="application/json"):
        if not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode("utf-8")
        self._answers[path] = (status, content_type, body)

    def _app(self, environ, start_response):
        scripted = self._answers.get(environ.get("PATH_INFO", ""))
        if scripted is None:
            return super()._app(environ, start_response)
        self._record(environ)
        self._released.wait(HOLD_LIMIT)
        status, content_type, body = scripted
        start_response(_status_line(status), [("Content-Type", content_type),
                                              ("Content-Length", str(len(body)))])
        return [body]
