"""The daemon's lifecycle: start, run, stop, as a few named states.

``start()`` starts the webhook workers and the event-socket link; the link
connects, subscribes and re-connects with back-off (``Retry``) when the switch
goes away. ``run()`` waits for SIGTERM/SIGINT, whose handlers only queue the
request; ``stop()`` stops taking calls, lets live calls finish for a bounded
grace period, drains webhooks, and closes the socket. States are mirrored to
systemd (``READY=1`` only once the socket is authenticated and subscribed).
"""

import enum
import logging
import signal

import gevent
from gevent.event import Event

from callflowd import metrics, systemd
from callflowd.calls.router import CallRouter
from callflowd.calls.routes import RouteTable
from callflowd.errors import AuthenticationFailed, EslError, NotConnected
from callflowd.esl import names
from callflowd.esl.connection import EslConnection
from callflowd.retry import RetriesExhausted
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
    """One daemon: one FreeSWITCH link, its calls, and the webhook dispatcher."""

    def __init__(self, config, *, dispatcher=None, connection_factory=EslConnection,
                 on_call_finished=(), stop_grace=30.0):
        self.config = config
        self.state = State.NEW
        self.stop_grace = stop_grace
        self.webhooks = dispatcher or WebhookDispatcher(config.directory.webhooks)
        self.router = CallRouter(RouteTable(config.callflows), self, self.webhooks,
                                 command_timeout=config.freeswitch.command_timeout,
                                 on_call_finished=on_call_finished)
        self._connection_factory = connection_factory
        self._connection = None
        self._ready = Event()
        self._stop_requested = Event()
        self._link = None
        self.switch = "%s:%d" % (config.freeswitch.host, config.freeswitch.port)  # for metrics
        self.metrics_listener = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self):
        self._transition(State.STARTING)
        metrics.switch_connected(self.switch, False)
        self.metrics_listener = metrics.serve(self.config.metrics)
        self.webhooks.start()
        self._link = gevent.spawn(self._maintain_link)
        self._link.link_exception(lambda g: log.error("event-socket link died: %r", g.exception))

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
        if self._link is not None:
            self._link.kill(block=True, timeout=5)
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self.webhooks.stop(timeout=min(grace, 10.0))  # logs what it had to abandon
        metrics.switch_removed(self.switch)
        metrics.close(self.metrics_listener)
        self._transition(State.STOPPED)

    def _transition(self, new):
        if new not in _ALLOWED[self.state]:
            raise RuntimeError("cannot go from %s to %s" % (self.state.value, new.value))
        log.info("service %s", new.value)
        self.state = new
        systemd.notify("STATUS=%s" % new.value)
        if new is State.RUNNING:
            systemd.notify("READY=1")
        elif new is State.STOPPING:
            systemd.notify("STOPPING=1")

    # -- the event-socket link -------------------------------------------------------

    def _maintain_link(self):
        settings = self.config.freeswitch
        retry = settings.reconnect
        where = "%s:%d" % (settings.host, settings.port)
        while not self._stop_requested.is_set():
            lost = Event()
            connection = self._connection_factory(
                settings.host, settings.port, settings.password,
                connect_timeout=settings.connect_timeout, command_timeout=settings.command_timeout,
                on_event=metrics.counting_events(where, self.router.route),
                on_disconnect=lambda reason, lost=lost: lost.set(),
            )
            if self._connect(connection, where):
                retry = retry.reset()
                lost.wait()
                if self._stop_requested.is_set():
                    return
                log.warning("lost the event socket to %s; live calls are left to FreeSWITCH", where)
                metrics.switch_connected(where, False)
                self._connection = None
                self.router.connection_lost()
                connection.close()
            try:
                retry = retry.increment()
            except RetriesExhausted:
                log.error("giving up on FreeSWITCH at %s", where)
                self.request_stop()
                return
            delay = retry.backoff()
            log.info("reconnecting to %s in %.1fs", where, delay)
            self._stop_requested.wait(delay)

    def _connect(self, connection, where):
        try:
            connection.connect()
            connection.subscribe(names.SUBSCRIBED_EVENTS)
        except AuthenticationFailed:
            log.error("FreeSWITCH at %s refused the event-socket password", where)
        except EslError as exc:
            log.warning("could not connect to FreeSWITCH at %s: %s", where, exc)
        else:
            self._connection = connection
            metrics.switch_connected(where, True)
            log.info("connected to FreeSWITCH at %s; subscribed to %d events",
                     where, len(names.SUBSCRIBED_EVENTS))
            if self.state is State.STARTING:
                self._transition(State.RUNNING)
            self._ready.set()
            return True
        connection.close()
        return False

    # -- commands for calls (stable across reconnects) --------------------------------

    def execute(self, uuid, app, arg=None, event_uuid=None):
        with metrics.command(self.switch, app):
            self._current_connection().execute(uuid, app, arg, event_uuid=event_uuid)

    def hangup(self, uuid, cause="NORMAL_CLEARING"):
        with metrics.command(self.switch, "hangup"):
            self._current_connection().hangup(uuid, cause)

    def _current_connection(self):
        if self._connection is None:
            raise NotConnected("not connected to FreeSWITCH")
        return self._connection
