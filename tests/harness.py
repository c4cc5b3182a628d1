"""A whole daemon on loopback: simulator switch, real Service, real webhook receiver."""

import json

import yaml
from gevent.event import Event

from callflowd.config.temporal import utc_now
from callflowd.flow.load import load_config
from callflowd.service import Service

FRONT_DESK = "+10005559999"
WAIT = 10


def front_desk_flow(webhook_data, voicemail=True):
    """The spec's example: device -> webhook -> voicemail, with the webhook data given."""
    webhook = {"module": "webhook", "data": webhook_data}
    if voicemail:
        webhook["children"] = {"_": {"module": "voicemail", "data": {"id": "front_desk_voicemail_box_id"}}}
    return {"numbers": [FRONT_DESK],
            "flow": {"module": "device", "data": {"id": "front_desk_device_id"},
                     "children": {"_": webhook}}}


def write_config(tmp_path, switch, documents, webhooks=None, extra=None, **settings):
    """A config for ``switch``; ``extra`` (a dict) and ``settings`` are more top-level settings."""
    extra = dict(extra or {}, **settings)
    flows = tmp_path / "callflows.d"
    flows.mkdir(exist_ok=True)
    for name, document in documents.items():
        (flows / ("%s.json" % name)).write_text(json.dumps(document))
    config = {
        "freeswitch": {"host": switch.host, "port": switch.port, "password": "ClueCon",
                       "connect_timeout": 2, "command_timeout": 2,
                       "reconnect": {"backoff_factor": 0.05, "backoff_max": 0.2}},
        "devices": {"front_desk_device_id": {"dial_string": "user/1000@example.com", "timeout": 20}},
        "voicemail_boxes": {"front_desk_voicemail_box_id": {
            "profile": "default", "domain": "example.com", "mailbox": "1000"}},
        "webhooks": dict({"timeout": 1, "retries": 2, "backoff_factor": 0.05, "backoff_max": 0.2},
                         **(webhooks or {})),
        "callflows_dir": "callflows.d",
        "state_dir": str(tmp_path / "state"),
    }
    for key, value in (extra or {}).items():  # more top-level settings; tables are merged
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = dict(config[key], **value)
        else:
            config[key] = value
    path = tmp_path / "callflowd.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class Daemon:
    """The real Service, plus a way to wait for each call's flow to finish."""

    def __init__(self, config_path, clock=utc_now):
        self.finished = {}
        self._finished_event = Event()
        self.service = Service(load_config(str(config_path)), on_call_finished=[self._on_finished],
                               stop_grace=2, clock=clock)

    def _on_finished(self, call):
        self.finished[call.uuid] = call
        self._finished_event.set()

    def start(self):
        self.service.start()
        assert self.service.wait_ready(WAIT), "daemon did not connect to the switch"
        return self

    def wait_finished(self, uuid, timeout=WAIT):
        while uuid not in self.finished:
            self._finished_event.clear()
            if not self._finished_event.wait(timeout):
                raise TimeoutError("flow for call %s did not finish" % uuid)
        return self.finished[uuid]

    def stop(self):
        self.service.stop(grace=2)
