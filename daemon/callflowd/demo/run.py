"""``callflowd demo``: the spec's example callflow, end to end, with no FreeSWITCH installed.

It starts the built-in FreeSWITCH simulator (real event-socket protocol on
loopback), a local webhook receiver, and the real daemon configured with the
spec's example (``front-desk.json``, its webhook uri pointed at the receiver);
then places one call and prints the path it took and the webhook request as
the receiver got it.
"""

import json
import pathlib
import shutil
import tempfile
import urllib.parse

import yaml
from gevent.event import Event

from callflowd.demo.receiver import WebhookReceiver
from callflowd.flow.load import load_config
from callflowd.service import Service
from callflowd.simulator import FreeswitchSimulator, Scenario

EXAMPLE = pathlib.Path(__file__).with_name("front-desk.json")
DESTINATION = "+10005559999"
TIME_SCALE = 0.25  # the simulated call runs four times faster than life
WAIT_SECONDS = 30


def run_demo(scenario="busy", out=None):
    """Run one simulated call through the example; return 0 if it took the expected path."""
    simulator = FreeswitchSimulator(time_scale=TIME_SCALE)
    receiver = WebhookReceiver()
    simulator.start()
    receiver.start()
    service = None
    workdir = tempfile.mkdtemp(prefix="callflowd-demo-")  # the config, and the outbox's state_dir
    try:
        config = load_config(_write_config(pathlib.Path(workdir), simulator, receiver))
        finished = []
        done = Event()
        service = Service(config, on_call_finished=[lambda call: (finished.append(call), done.set())])
        _say(out, "callflowd demo: the spec's example callflow, front desk %s" % _PHONE[scenario])
        _say(out, "  FreeSWITCH simulator: event socket on %s:%d" % (simulator.host, simulator.port))
        _say(out, "  webhook receiver:     %s" % receiver.url("/"))
        service.start()
        if not service.wait_ready(WAIT_SECONDS):
            _say(out, "the daemon did not connect to the simulator")
            return 1
        sim_call = simulator.place_call(DESTINATION, scenario=Scenario(device=scenario))
        sim_call.wait_ended(WAIT_SECONDS)
        done.wait(WAIT_SECONDS)
        expect_webhook = scenario != "answer"
        requests = receiver.wait_for(1, WAIT_SECONDS) if expect_webhook else []
        _report(out, sim_call, finished, requests)
        ok = _as_expected(scenario, sim_call, finished, requests)
        _say(out, "")
        _say(out, "result: %s" % (_EXPECTED[scenario] if ok else "NOT the expected path (%s)" % _EXPECTED[scenario]))
        return 0 if ok else 1
    finally:
        if service is not None:
            service.stop(grace=5)
        receiver.stop()
        simulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)


_PHONE = {"busy": "busy", "no_answer": "not answering", "answer": "answering"}
_EXPECTED = {
    "busy": "the busy call reached the webhook receiver, then voicemail",
    "no_answer": "the unanswered call reached the webhook receiver, then voicemail",
    "answer": "the front desk answered; no webhook, no voicemail",
}


def _write_config(workdir, simulator, receiver):
    flows = workdir / "callflows.d"
    flows.mkdir()
    document = json.loads(EXAMPLE.read_text())
    webhook = document["flow"]["children"]["_"]
    webhook["data"]["uri"] = receiver.url(urllib.parse.urlsplit(webhook["data"]["uri"]).path)
    (flows / "front-desk.json").write_text(json.dumps(document))
    config = {
        "freeswitch": {"host": simulator.host, "port": simulator.port, "password": "ClueCon"},
        "log_level": "info",
        "devices": {"front_desk_device_id": {"dial_string": "user/1000@example.com", "timeout": 20}},
        "voicemail_boxes": {"front_desk_voicemail_box_id": {
            "profile": "default", "domain": "example.com", "mailbox": "1000"}},
        "webhooks": {"timeout": 2, "retries": 2},
        "callflows_dir": "callflows.d",
        "state_dir": "state",
    }
    path = workdir / "callflowd.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def _report(out, sim_call, finished, requests):
    _say(out, "")
    _say(out, "call %s to %s" % (sim_call.uuid, DESTINATION))
    _say(out, "path taken:")
    for number, step in enumerate(finished[0].history if finished else (), 1):
        _say(out, "  %d. %-9s at %-28s -> %s" % (number, step.module, step.path, step.outcome))
    _say(out, "applications the daemon ran on the channel:")
    for app, arg in sim_call.applications:
        _say(out, "  %s" % " ".join(part for part in (app, arg) if part))
    _say(out, "hangup cause: %s" % sim_call.hangup_cause)
    for request in requests:
        _say(out, "webhook request received:")
        _say(out, "  %s %s" % (request.method, request.path))
        if request.header("Content-Type"):  # a GET (Kazoo's default) has no body, so none
            _say(out, "  Content-Type: %s" % request.header("Content-Type"))
        fields = request.form if request.method == "POST" else request.query
        for name, values in fields.items():
            for value in values:
                _say(out, "    %s = %s" % (name, value))


def _as_expected(scenario, sim_call, finished, requests):
    ran = [app for app, _ in sim_call.applications]
    if scenario == "answer":
        return bool(finished) and "voicemail" not in ran and not requests
    return bool(finished) and bool(requests) and ran[-1:] == ["voicemail"]


def _say(out, line):
    if out is not None:
        print(line, file=out, flush=True)
