"""``callflowd simulate``: try the operator's own callflow on one simulated call, before a real one.

The real daemon (``Service``), built from the operator's validated config,
connects to the built-in FreeSWITCH simulator instead of the configured switch;
one call to ``--number`` arrives and the phone does what ``--device`` says. We
print the path the flow took, every command FreeSWITCH received on the event
socket for the call, and every webhook: recorded and shown, not sent, unless
``--webhook-to`` names a server to send them to (their own host is replaced,
so nothing reaches production by accident).

Only the switch's address and the webhook hosts differ from a real run (and
there is no metrics listener): the callflows, devices, boxes and webhook
settings are the config's own.
"""

import dataclasses
import tempfile
import urllib.parse

from gevent.event import Event

from callflowd.calls.routes import RouteTable
from callflowd.config.temporal import utc_now
from callflowd.config.model import ClusterSettings, MetricsSettings
from callflowd.logfmt import escape, redact_uri
from callflowd.service import Service
from callflowd.simulator import FreeswitchSimulator, Scenario
from callflowd.webhooks import querystring, wire
from callflowd.webhooks.dispatcher import DispatcherStats, WebhookDispatcher

# --device words, and the simulator's names for them.
DEVICES = {"answer": "answer", "busy": "busy", "no_answer": "no_answer", "not_registered": "unregistered"}
CALLER = "+15551230000"
TIME_SCALE = 0.01  # simulated seconds run 100 times faster: 20 s of ringing take 0.2 s
WAIT_SECONDS = 30  # for the daemon to connect, and for the call's flow to end
DELIVERY_SECONDS = 120  # for --webhook-to deliveries, with their retries

# no_match answers only calls the switch authenticated (calls/routes.py): one to it comes from
# this registered user, as a desk phone of the account's would
_AUTHENTICATED = "1000"

EXIT_OK = 0
EXIT_FAILED = 1


def simulate(config, number, device, *, webhook_to=None, caller=CALLER, digits=(), at=None, out):
    """Run one simulated call through ``config``'s callflows; print what happened. Returns the exit status.

    ``digits``: what the caller keys in, one string per menu prompt; ``at``: an aware datetime
    the call happens at (temporal routes read it), else now.
    """
    route = RouteTable(config.callflows, config.routing).route(number)
    callflow = route.callflow if route is not None else None
    if callflow is None:
        _say(out, "no callflow answers %s: a real call would be left parked" % number)
        return EXIT_FAILED
    simulator = FreeswitchSimulator(time_scale=TIME_SCALE).start()
    webhooks = (_RedirectingDispatcher(config.directory.webhooks, webhook_to) if webhook_to
                else _RecordingDispatcher())
    finished = []
    done = Event()
    clock = utc_now if at is None else (lambda: at)  # "now" for temporal routes
    service = Service(_pointed_at(config, simulator), dispatcher=webhooks, clock=clock,
                      on_call_finished=[lambda call: (finished.append(call), done.set())])
    try:
        service.start()
        if not service.wait_ready(WAIT_SECONDS):
            _say(out, "the daemon did not connect to the simulator")
            return EXIT_FAILED
        first_command = len(simulator.received)
        sim_call = simulator.place_call(number, caller_id_number=caller,
                                        scenario=Scenario(device=DEVICES[device], digits=tuple(digits),
                                                          authenticated_as=_AUTHENTICATED if route.no_match else None))
        _say(out, "call %s from %s to %s: callflow %s (%s), the phone %s" % (
            sim_call.uuid, caller, number, callflow.id, callflow.source, _PHONE[device]))
        if not done.wait(WAIT_SECONDS):
            _say(out, "the callflow did not finish within %ds" % WAIT_SECONDS)
            return EXIT_FAILED
        sim_call.wait_ended(WAIT_SECONDS)
        if webhook_to:
            webhooks.stop(timeout=DELIVERY_SECONDS)
        _print_path(out, finished[0])
        _print_commands(out, simulator.received[first_command:])
        _print_webhooks(out, webhooks, webhook_to)
        _say(out, "")
        _say(out, "hangup cause: %s" % (sim_call.hangup_cause or "none (the call is still up)"))
        return EXIT_OK
    finally:
        service.stop(grace=5)
        simulator.stop()


_PHONE = {"answer": "answers", "busy": "is busy", "no_answer": "does not answer",
          "not_registered": "is not registered"}


def _pointed_at(config, simulator):
    """``config`` with one switch, the simulator, no metrics listener and no claims.

    The running daemon may hold the metrics port; a simulation has nothing to report, and
    no other daemon to race for its one call (the claim would only be noise in its output).
    """
    switch = dataclasses.replace(config.freeswitch, host=simulator.host, port=simulator.port,
                                 password=simulator.password)
    return dataclasses.replace(config, switches=(switch,), metrics=MetricsSettings(),
                               cluster=ClusterSettings(claims=False))


# -- webhooks: recorded, or sent elsewhere ------------------------------------------------------


class _RecordingDispatcher:
    """Takes the webhooks a call submits and keeps them: nothing is sent."""

    def __init__(self):
        self.requests = []

    def start(self):
        pass

    def stop(self, timeout=None, hurry=None):
        return 0

    def submit(self, request):
        self.requests.append(request)
        return True

    submit_committed = submit

    @property
    def stats(self):
        return DispatcherStats(accepted=len(self.requests))


class _RedirectingDispatcher(WebhookDispatcher):
    """The real dispatcher, sending each webhook to ``--webhook-to`` and keeping each result.

    A bare ``http://host:port`` keeps the webhook's own path and query; a URL
    with a path of its own is used as it is.
    """

    def __init__(self, settings, target):
        # A simulation never touches the daemon's outbox: its own, thrown away at stop().
        self._state_dir = tempfile.TemporaryDirectory(prefix="callflowd-simulate-")
        super().__init__(settings, self._state_dir.name, on_attempt=[self._attempted])
        self.target = urllib.parse.urlsplit(target)
        self.requests = []
        self.results = {}  # delivery id -> the last AttemptResult

    def _add(self, request):
        request = dataclasses.replace(request, uri=self.redirect(request.uri))
        self.requests.append(request)
        return super()._add(request)

    def redirect(self, uri):
        if self.target.path not in ("", "/"):
            return urllib.parse.urlunsplit(self.target)
        own = urllib.parse.urlsplit(uri)
        return urllib.parse.urlunsplit((self.target.scheme, self.target.netloc, own.path, own.query, ""))

    def _attempted(self, request, result):
        self.results[request.delivery_id] = result

    def stop(self, timeout=10.0, hurry=None):
        try:
            return super().stop(timeout, hurry)
        finally:
            self._state_dir.cleanup()


# -- the report ---------------------------------------------------------------------------------


def _print_path(out, call):
    _say(out, "")
    _say(out, "path taken:")
    for number, step in enumerate(call.history, 1):
        _say(out, "  %d. %-9s at %-28s -> %s" % (number, step.module, step.path, step.outcome))
    if not call.history:
        _say(out, "  (no action ran)")


# What the daemon writes on the channel before each step so it can take the call back after a
# restart (calls/marker.py): bookkeeping, not the flow, and it names this host.
_RECOVERY_MARKER = "uuid_setvar_multi"


def _print_commands(out, commands):
    _say(out, "")
    _say(out, "commands FreeSWITCH received:")
    markers = [command for command in commands if _RECOVERY_MARKER in command.split("\n", 1)[0]]
    commands = [command for command in commands if command not in markers]
    for number, command in enumerate(commands, 1):
        first, *headers = command.split("\n")
        _say(out, "  %d. %s" % (number, first))
        for header in headers:
            _say(out, "       %s" % header)
    if not commands:
        _say(out, "  (none)")
    if markers:
        _say(out, "  (and %d recovery records: api uuid_setvar_multi <uuid> callflowd_...=...)" % len(markers))


def _print_webhooks(out, webhooks, webhook_to):
    _say(out, "")
    if webhook_to:
        _say(out, "webhooks sent to %s:" % webhook_to)
    else:
        _say(out, "webhooks that would be sent (not sent; --webhook-to URL sends them):")
    for request in webhooks.requests:
        if request.method == "post":
            _say(out, "  POST %s" % redact_uri(request.uri))
            _say(out, "    Content-Type: %s" % (wire.JSON_CONTENT_TYPE if request.format == "json"
                                              else wire.FORM_CONTENT_TYPE))
        else:
            _say(out, "  GET %s  (the fields below in its query string)" % redact_uri(request.uri))
        # as the receiver parses them: nested custom_data as crm[account] = ACME
        for name, value in urllib.parse.parse_qsl(querystring.encode(request.fields), keep_blank_values=True):
            _say(out, "    %s = %s" % (escape(name), escape(value)))
        if webhook_to:
            result = webhooks.results.get(request.delivery_id)
            _say(out, "    -> %s" % ("not delivered in time" if result is None else
                                    "%s: %s" % (result.outcome.value, result.reason)))
    if not webhooks.requests:
        _say(out, "  (none)")


def _say(out, line):
    print(line, file=out, flush=True)
