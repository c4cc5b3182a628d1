"""The daemon's lifecycle: start, run, stop, as a few named states.

``start()`` starts the webhook workers and one event-socket link per switch
(esl/link.py); each link connects, subscribes and re-connects with back-off
(``Retry``) when its switch goes away, without disturbing the others.
``run()`` waits for SIGTERM/SIGINT, whose handlers only queue the request;
``stop()`` stops taking calls, lets live calls finish for a bounded grace
period, drains webhooks, and closes the sockets. States are mirrored to
systemd (``READY=1`` once the first switch is authenticated and subscribed),
and so is each switch's link state (``STATUS=running; fs1 up, fs2 down (...)``).

For whoever takes calls back after a (re)connect: append ``hook(link)`` to
``service.on_connected``; it runs on every (re)connect of that switch, after
the subscription and before the calls waiting for the link resume (and
before hangups queued during the outage are sent). ``link.api(...)`` works
there; ``service.router.calls_on(link)`` are the calls already in memory.
"""

import enum
import logging
import signal

import gevent
from gevent.event import Event

from callflowd import systemd
from callflowd.calls.router import CallRouter
from callflowd.calls.routes import RouteTable
from callflowd.esl import link as switch_link
from callflowd.esl.connection import EslConnection
from callflowd.webhooks.dispatcher import WebhookDispatcher

log = logging.getLogger(__name__)


class State(enum.Enum):
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


_ALLOWED = {
    State.NEW: {State.STARTING},
    State.STARTING: {State.RUNNING, State.STOPPING},
    State.RUNNING: {State.STOPPING},
    State.STOPPING: {State.STOPPED},
    State.STOPPED: set(),
}


class Service:
    """One daemon: a link per FreeSWITCH node, their calls, and the webhook dispatcher."""

    def __init__(self, config, *, dispatcher=None, connection_factory=EslConnection,
                 on_call_finished=(), stop_grace=30.0, outage_limit=None):
        self.config = config
        self.state = State.NEW
        self.stop_grace = stop_grace
        self.webhooks = dispatcher or WebhookDispatcher(config.directory.webhooks)
        router_options = {} if outage_limit is None else {"outage_limit": outage_limit}
        self.router = CallRouter(RouteTable(config.callflows), self.webhooks,
                                 on_call_finished=on_call_finished, **router_options)
        self.on_connected = []          # hook(link), on every (re)connect: see the module docstring
        self.on_connection_state = []   # callback(name, state, reason), on every link state change
        self.links = {}                 # switch name -> esl.link.SwitchLink, in config order
        for settings in config.switches:
            self.links[settings.name] = switch_link.SwitchLink(
                settings, on_event=self.router.route, connection_factory=connection_factory,
                on_state=[self._link_state], on_connected=[self._link_connected],
                on_lost=[self.router.connection_lost], on_gave_up=self._link_gave_up)
        self._ready = Event()
        self._stop_requested = Event()

    # -- lifecycle -----------------------------------------------------------------

    def start(self):
        self._transition(State.STARTING)
        self.webhooks.start()
        for link in self.links.values():
            link.start()

    def run(self):
        """Start, serve until SIGTERM/SIGINT, then stop. Returns the exit status."""
        gevent.signal_handler(signal.SIGTERM, self.request_stop)
        gevent.signal_handler(signal.SIGINT, self.request_stop)
        self.start()
        self._stop_requested.wait()
        self.stop()
        return 0

    def request_stop(self):
        """Safe from a signal handler: only records the request."""
        self._stop_requested.set()

    def wait_ready(self, timeout=None):
        return self._ready.wait(timeout)

    def stop(self, grace=None):
        if self.state in (State.STOPPING, State.STOPPED):
            return
        grace = self.stop_grace if grace is None else grace
        self._transition(State.STOPPING)
        self._stop_requested.set()
        self.router.accepting = False
        live = len(self.router.calls)
        if live:
            log.info("waiting up to %ss for %d live calls to finish", grace, live)
            self.router.calls_group.join(timeout=grace)
            left = len(self.router.calls)
            if left:
                log.warning("%d calls still running after %ss; leaving them to FreeSWITCH", left, grace)
                self.router.calls_group.kill(block=True, timeout=5)
        for link in self.links.values():
            link.stop()
        self.webhooks.stop(timeout=min(grace, 10.0))  # logs what it had to abandon
        self._transition(State.STOPPED)

    def _transition(self, new):
        if new not in _ALLOWED[self.state]:
            raise RuntimeError("cannot go from %s to %s" % (self.state.value, new.value))
        log.info("service %s", new.value)
        self.state = new
        systemd.notify("STATUS=%s" % self.status_text())
        if new is State.RUNNING:
            systemd.notify("READY=1")
        elif new is State.STOPPING:
            systemd.notify("STOPPING=1")

    # -- the switches ---------------------------------------------------------------

    @property
    def connection_states(self):
        """``{switch name: (state, reason)}``; states are esl.link's connecting/up/down/stopped."""
        return {name: (link.state, link.reason) for name, link in self.links.items()}

    def status_text(self):
        """One line for systemd's STATUS=: ``running; fs1 up, fs2 down (no frame for 30.0s ...)``."""
        parts = []
        for name, link in self.links.items():
            parts.append("%s %s" % (name, link.state) if link.state == switch_link.UP
                         else "%s %s (%s)" % (name, link.state, link.reason))
        return "%s; %s" % (self.state.value, ", ".join(parts)) if parts else self.state.value

    def _link_state(self, link, state, reason):
        if state == switch_link.UP and self.state is State.STARTING:
            self._transition(State.RUNNING)
            self._ready.set()
        elif self.state is not State.STOPPED:
            systemd.notify("STATUS=%s" % self.status_text())
        for callback in self.on_connection_state:
            try:
                callback(link.name, state, reason)
            except Exception:  # a listener's bug must not stop the link: log, go on
                log.exception("switch %s: on_connection_state listener failed", link.name)

    def _link_connected(self, link):
        for hook in list(self.on_connected):
            try:
                hook(link)
            except Exception:  # a recovery bug must not keep the switch down: log, go on
                log.exception("switch %s: on_connected hook %r failed; going on", link.name, hook)

    def _link_gave_up(self, link):
        if all(other.state in (switch_link.DOWN, switch_link.STOPPED) for other in self.links.values()):
            log.error("no switch left to serve; stopping")
            self.request_stop()
