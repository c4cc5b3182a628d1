"""Prometheus metrics and ``/healthz``: what the daemon counts, and the optional listener serving it.

The rest of the code reports with one-line calls (``metrics.call_started(id)``,
``with metrics.command(switch, app): ...``); only this module knows about
prometheus_client. Everything goes into one registry of our own, so tests and
a reload see the same numbers and nothing of other libraries'.

The listener (``serve(settings)``, off unless ``metrics:`` is configured,
loopback by default) is a gevent WSGI server on the daemon's own loop:
``/metrics`` in Prometheus' text format, ``/healthz`` 200 only when every
configured switch is connected and the loop is turning. "Turning" is measured,
not assumed: a greenlet wakes every ``TICK`` seconds and notes how late it
woke; a loop held up by a blocking call shows as lag, and a lag over
``LAG_LIMIT`` (or a tick older than that) makes ``/healthz`` answer 503.

Labels hold only values we choose or the config names (callflow ids, switch
names, application names, outcomes), never caller data, so they stay few.
"""

import contextlib
import json
import logging
import time

import gevent
import gevent.pywsgi
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram,
                               ProcessCollector, generate_latest)

log = logging.getLogger(__name__)

TICK = 0.5  # seconds between the loop watch's wake-ups
LAG_LIMIT = 2.0  # seconds late (or since the last tick) beyond which the loop is not turning

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

_COMMAND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_DELIVERY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

CALLS_ACTIVE = Gauge("callflowd_calls_active", "Calls whose callflow is running", ["callflow"],
                     registry=REGISTRY)
CALLS_FINISHED = Counter("callflowd_calls_finished", "Calls whose callflow ended, by how it ended",
                         ["callflow", "outcome"], registry=REGISTRY)
EVENTS = Counter("callflowd_events_received", "Events received from FreeSWITCH", ["switch"],
                 registry=REGISTRY)
SWITCH_CONNECTED = Gauge("callflowd_switch_connected",
                         "1 while the event socket to the switch is authenticated and subscribed",
                         ["switch"], registry=REGISTRY)
COMMANDS = Counter("callflowd_commands_sent", "Commands sent to FreeSWITCH, by result",
                   ["switch", "command", "result"], registry=REGISTRY)
COMMAND_SECONDS = Histogram("callflowd_command_seconds", "Time for FreeSWITCH to answer a command",
                            ["switch"], buckets=_COMMAND_BUCKETS, registry=REGISTRY)
WEBHOOKS = Counter("callflowd_webhook_deliveries", "Webhook deliveries, by final result", ["result"],
                   registry=REGISTRY)
WEBHOOK_SECONDS = Histogram("callflowd_webhook_delivery_seconds",
                            "From a webhook's first attempt to its final result, retries included",
                            buckets=_DELIVERY_BUCKETS, registry=REGISTRY)
WEBHOOKS_DROPPED = Counter("callflowd_webhooks_dropped", "Webhooks refused at submit (queue full, stopping)",
                           registry=REGISTRY)
WEBHOOKS_EXPIRED = Counter("callflowd_webhooks_expired",
                           "Webhooks dropped because their receiver was not available for webhooks.max_age",
                           registry=REGISTRY)
OUTBOX_DEPTH = Gauge("callflowd_outbox_depth", "Webhooks waiting to be delivered", registry=REGISTRY)
OUTBOX_OLDEST = Gauge("callflowd_outbox_oldest_age_seconds", "Age of the oldest webhook waiting",
                      registry=REGISTRY)
OUTBOX_BACKEND_UP = Gauge("callflowd_outbox_backend_up",
                          "1 while the webhook outbox's store answers (a shared one can be away)",
                          ["backend"], registry=REGISTRY)
OUTBOX_SPILLED = Gauge("callflowd_outbox_spilled",
                       "Webhooks kept in the local outbox while the shared one is away", registry=REGISTRY)
OUTBOX_TAKEN_OVER = Counter("callflowd_outbox_taken_over",
                            "Webhooks claimed from a daemon whose lease ran out", registry=REGISTRY)
CLUSTER_CALLS_OWNED = Gauge("callflowd_cluster_calls_owned",
                            "Calls this daemon holds the claim of on their switch", registry=REGISTRY)
CLUSTER_LEASES_HELD = Gauge("callflowd_cluster_leases_held",
                            "Switches on which this daemon's lease is current", registry=REGISTRY)
CLUSTER_PEERS = Gauge("callflowd_cluster_peers", "Other daemons with a live lease on a switch we share",
                      registry=REGISTRY)
CLUSTER_TAKEN_OVER = Counter("callflowd_cluster_calls_taken_over",
                             "Calls taken over from a daemon that died or stopped", registry=REGISTRY)
CLUSTER_CLAIMS_LOST = Counter("callflowd_cluster_claims_lost",
                              "Parked calls another daemon claimed first (left to it)", registry=REGISTRY)
LOOP_LAG = Gauge("callflowd_loop_lag_seconds", "How late the loop watch last woke up", registry=REGISTRY)

_switches = {}  # switch name -> connected (bool): what /healthz checks
_outbox = {}  # the outbox's store, as /healthz shows it (set by outbox_backend)


# -- what the daemon reports ------------------------------------------------------------------


def call_started(callflow):
    CALLS_ACTIVE.labels(callflow).inc()


def call_finished(callflow, outcome):
    """``outcome``: see ``call_outcome``."""
    CALLS_ACTIVE.labels(callflow).dec()
    CALLS_FINISHED.labels(callflow, outcome).inc()


def call_outcome(history, crashed=False):
    """How a call's flow ended, from its steps: a handful of words, for a label."""
    if crashed:
        return "error"
    if not history:
        return "no_action"
    return {"stop": "stopped", "call ended": "caller_hung_up",
            "event socket error": "switch_lost"}.get(history[-1].outcome, "completed")


def counting_events(switch, handler):
    """``handler`` for the event socket, counting each event for ``switch`` first."""
    counter = EVENTS.labels(switch)

    def on_event(event, **context):  # the switch link passes link=... to the router
        counter.inc()
        return handler(event, **context)

    return on_event


def switch_connected(switch, connected):
    """Record the switch's link state; a switch reported here counts for ``/healthz``."""
    _switches[switch] = bool(connected)
    SWITCH_CONNECTED.labels(switch).set(1 if connected else 0)


def switch_removed(switch):
    """The switch is no longer configured (stop, or a reload without it): forget it."""
    _switches.pop(switch, None)
    with contextlib.suppress(KeyError):
        SWITCH_CONNECTED.remove(switch)


@contextlib.contextmanager
def command(switch, name):
    """Time one command (``execute`` of an application, ``hangup``...) and count its result."""
    started = time.monotonic()
    result = "ok"
    try:
        yield
    except Exception as exc:
        result = type(exc).__name__
        raise
    finally:
        COMMAND_SECONDS.labels(switch).observe(time.monotonic() - started)
        COMMANDS.labels(switch, name, result).inc()


def timed_delivery(deliver, *args):
    """``deliver(*args)`` (returning an ``AttemptResult``), timed and counted by outcome."""
    started = time.monotonic()
    try:
        result = deliver(*args)
    except Exception:
        WEBHOOKS.labels("crashed").inc()
        raise
    WEBHOOK_SECONDS.observe(time.monotonic() - started)
    WEBHOOKS.labels(result.outcome.name.lower()).inc()
    return result


def outbox_backend(kind, up, spilled):
    """The outbox's store: ``kind`` (sqlite, postgresql), whether it answers, rows spilled locally."""
    OUTBOX_BACKEND_UP.labels(kind).set(1 if up else 0)
    OUTBOX_SPILLED.set(spilled)
    _outbox["backend"] = kind
    _outbox["up"] = up
    _outbox["spilled"] = spilled


def outbox_taken_over(count):
    OUTBOX_TAKEN_OVER.inc(count)


def webhook_dropped():
    WEBHOOKS_DROPPED.inc()


def webhook_expired():
    WEBHOOKS_EXPIRED.inc()


# -- webhook delivery in a process of its own (webhooks.process) ----------------------------------
#
# The delivery process counts its attempts in its own registry (``timed_delivery``), which no
# listener serves. Every second or so it writes what changed (``delivery_report``) to the daemon
# over the pipe the daemon reads, and the daemon adds it to its own metrics (``add_delivery_report``):
# a scrape of the daemon's /metrics sees every attempt, whichever process made it.


def delivery_snapshot():
    """The delivery counters of this process, as plain numbers (cumulative since it started)."""
    attempts = {}
    buckets = []
    total = 0.0
    for family in WEBHOOKS.collect() + WEBHOOK_SECONDS.collect():
        for sample in family.samples:
            if sample.name == "callflowd_webhook_deliveries_total":
                attempts[sample.labels["result"]] = sample.value
            elif sample.name == "callflowd_webhook_delivery_seconds_bucket":
                buckets.append(sample.value)  # cumulative, in the order of the bounds (+Inf last)
            elif sample.name == "callflowd_webhook_delivery_seconds_sum":
                total = sample.value
    return {"attempts": attempts, "buckets": buckets, "sum": total,
            "expired": WEBHOOKS_EXPIRED._value.get()}


def delivery_report(before, now, oldest_accepted_at=None):
    """What changed between two ``delivery_snapshot()``s, as one JSON-able dict (None if nothing
    did, unless the age of the oldest waiting webhook is worth telling: ``oldest_accepted_at``,
    its Unix time, or None when nothing waits)."""
    attempts = {result: value - before["attempts"].get(result, 0.0)
                for result, value in now["attempts"].items()
                if value - before["attempts"].get(result, 0.0) > 0}
    old_buckets = before["buckets"] or [0.0] * len(now["buckets"])
    cumulative = [new - old for new, old in zip(now["buckets"], old_buckets)]
    buckets = [value - (cumulative[index - 1] if index else 0.0) for index, value in enumerate(cumulative)]
    return {"attempts": attempts, "buckets": buckets, "sum": now["sum"] - before["sum"],
            "expired": now.get("expired", 0.0) - before.get("expired", 0.0),
            "oldest_accepted_at": oldest_accepted_at}


_child_oldest = [None]  # the Unix time of the oldest webhook the delivery process has waiting


def add_delivery_report(report):
    """Add what a delivery process reported (``delivery_report``) to this process's metrics."""
    for result, count in report.get("attempts", {}).items():
        if count > 0:
            WEBHOOKS.labels(str(result)).inc(count)
    buckets = report.get("buckets", [])
    if len(buckets) == len(WEBHOOK_SECONDS._buckets):
        # prometheus_client keeps one non-cumulative count per bucket and the sum; a Histogram
        # has no public way to add another's counts (tests/test_metrics.py checks this holds).
        for value, count in zip(WEBHOOK_SECONDS._buckets, buckets):
            if count > 0:
                value.inc(count)
        WEBHOOK_SECONDS._sum.inc(max(0.0, float(report.get("sum", 0.0))))
    expired = report.get("expired", 0.0)
    if isinstance(expired, (int, float)) and expired > 0:
        WEBHOOKS_EXPIRED.inc(expired)
    _child_oldest[0] = report.get("oldest_accepted_at")


def watch_delivery_process():
    """``callflowd_outbox_oldest_age_seconds`` from what the delivery process last reported."""
    OUTBOX_OLDEST.set_function(
        lambda: 0.0 if _child_oldest[0] is None else max(0.0, time.time() - _child_oldest[0]))


def watch_outbox(depth, oldest_age=None):
    """Read the outbox at each scrape: ``depth()`` webhooks waiting, the oldest ``oldest_age()`` s old.

    The in-memory queue can only say its depth; the durable outbox gives both.
    """
    OUTBOX_DEPTH.set_function(depth)
    if oldest_age is not None:
        OUTBOX_OLDEST.set_function(oldest_age)


def watch_cluster(ownership):
    """Read the cluster gauges (and /healthz's ``cluster``) from ``ownership`` at each scrape."""
    _cluster[0] = ownership
    CLUSTER_CALLS_OWNED.set_function(lambda: ownership.calls_owned)
    CLUSTER_LEASES_HELD.set_function(ownership.leases_held)
    CLUSTER_PEERS.set_function(lambda: len(ownership.details()["peers"]))


def call_taken_over():
    CLUSTER_TAKEN_OVER.inc()


def claim_lost():
    CLUSTER_CLAIMS_LOST.inc()


_cluster = [None]  # the daemon's calls.ownership.Ownership, when claims are on


# -- health -------------------------------------------------------------------------------------


class LoopWatch:
    """A greenlet that wakes every TICK seconds and notes how late it woke."""

    def __init__(self):
        self.last_tick = time.monotonic()
        self.lag = 0.0
        self._greenlet = None

    def start(self):
        self._greenlet = gevent.spawn(self._run)
        return self

    def stop(self):
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    def turning(self):
        return self.lag < LAG_LIMIT and time.monotonic() - self.last_tick < TICK + LAG_LIMIT

    def _run(self):
        while True:
            planned = time.monotonic() + TICK
            gevent.sleep(TICK)
            now = time.monotonic()
            self.lag = max(0.0, now - planned)
            self.last_tick = now
            LOOP_LAG.set(self.lag)


def health(loop):
    """(healthy, details): every switch connected (at least one known) and the loop turning."""
    switches = dict(_switches)
    healthy = bool(switches) and all(switches.values()) and loop.turning()
    details = {"status": "ok" if healthy else "unhealthy",
               "switches": {name: "connected" if up else "disconnected" for name, up in sorted(switches.items())},
               "loop_lag_seconds": round(loop.lag, 3), "loop_turning": loop.turning()}
    if _outbox:  # reported, not judged: calls go on while a shared outbox is away (webhooks.spill)
        details["outbox"] = {"backend": _outbox["backend"], "spilled": _outbox["spilled"],
                             "state": "up" if _outbox["up"] else "away, spilling to the local outbox"}
    if _cluster[0] is not None:
        details["cluster"] = _cluster[0].details()
    return healthy, details


# -- the listener -----------------------------------------------------------------------------


class Listener:
    """``/metrics`` and ``/healthz`` on ``host:port`` (port 0: a free one, set in ``.port``)."""

    def __init__(self, host, port):
        self.host = host
        self.port = port
        self.loop = LoopWatch()
        self._server = gevent.pywsgi.WSGIServer((host, port), self._app, log=None, error_log=log)

    def start(self):
        self._server.start()
        self.port = self._server.server_port
        self.loop.start()
        log.info("metrics on http://%s:%d/metrics, health on /healthz", self.host, self.port)
        return self

    def stop(self):
        self.loop.stop()
        self._server.stop(timeout=1)

    def _app(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _answer(start_response, "405 Method Not Allowed", b"GET only\n")
        if path == "/metrics":
            return _answer(start_response, "200 OK", generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
        if path == "/healthz":
            healthy, details = health(self.loop)
            body = (json.dumps(details, sort_keys=True) + "\n").encode()
            return _answer(start_response, "200 OK" if healthy else "503 Service Unavailable", body,
                           "application/json")
        return _answer(start_response, "404 Not Found", b"try /metrics or /healthz\n")


def _answer(start_response, status, body, content_type="text/plain; charset=utf-8"):
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def close(listener):
    """Stop ``listener`` (what ``serve`` returned, maybe None)."""
    if listener is not None:
        listener.stop()


def serve(settings):
    """Start the listener ``settings`` (a ``MetricsSettings``) asks for; None when it is off or fails.

    A port already taken is logged, and the daemon runs on without metrics:
    calls matter more than their counts.
    """
    if settings is None or settings.port is None:
        return None
    try:
        return Listener(settings.host, settings.port).start()
    except OSError as exc:
        log.error("metrics listener on %s:%d failed: %s; running without metrics",
                  settings.host, settings.port, exc.strerror or exc)
        return None
