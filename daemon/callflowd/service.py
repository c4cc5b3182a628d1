"""The daemon's lifecycle as a few named verbs: start, run, reload, stop, halt.

``start()`` starts the webhook workers, the event-socket link and the systemd
watchdog; the link connects, subscribes and re-connects with back-off
(``Retry``) when the switch goes away. ``run()`` serves requests that signal
handlers only queue (after gunicorn's arbiter):

- SIGHUP: ``reload()`` builds the new config and route table first and swaps
  them in only if both are whole; calls in progress keep the flow they started
  with (their greenlet holds it), new calls get the new one; a bad config is
  refused, the old one kept, and the reason logged and shown in ``STATUS=``.
- SIGTERM/SIGINT: ``stop()``: no new calls; calls in progress get
  ``shutdown_grace`` seconds, then are left parked in FreeSWITCH for whoever
  picks them up (never hung up by us); then the webhook dispatcher stops.
- a second SIGTERM/SIGINT while stopping: halt, i.e. stop waiting for calls
  at once.

Webhooks not delivered within the drain time stay in the durable outbox for
the next start (``webhooks.dispatcher``); nothing accepted is thrown away.

States are logged and mirrored to systemd: ``READY=1`` only once the socket is
authenticated and subscribed, ``RELOADING=1`` then ``READY=1`` around a
reload, ``STOPPING=1``, and ``STATUS=`` on every change.
"""

import enum
import logging
import signal

import gevent
from gevent.event import Event
from gevent.queue import Queue

from callflowd import systemd
from callflowd.calls.marker import default_owner
from callflowd.calls.recovery import recover_calls
from callflowd.calls.router import CallRouter
from callflowd.calls.routes import RouteTable
from callflowd.config.loader import load_config
from callflowd.errors import AuthenticationFailed, ConfigError, EslError, NotConnected
from callflowd.esl import names
from callflowd.esl.connection import EslConnection
from callflowd import logfmt
from callflowd.hooks.lifecycle import LifecycleHooks
from callflowd.retry import RetriesExhausted
from callflowd.webhooks.dispatcher import WebhookDispatcher
from callflowd.webhooks.process import OutboxFeeder
from callflowd.webhooks.store import OutboxError

log = logging.getLogger(__name__)

# How long queued webhooks may still be delivered once the calls are done (TimeoutStopSec counts it).
WEBHOOK_DRAIN_SECONDS = 10.0
_RELOAD, _STOP = "reload", "stop"


class State(enum.Enum):
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    RELOADING = "reloading"
    STOPPING = "stopping"
    STOPPED = "stopped"


_ALLOWED = {
    State.NEW: {State.STARTING},
    State.STARTING: {State.RUNNING, State.STOPPING},
    State.RUNNING: {State.RELOADING, State.STOPPING},
    State.RELOADING: {State.RUNNING},
    State.STOPPING: {State.STOPPED},
    State.STOPPED: set(),
}


class Service:
    """One daemon: one FreeSWITCH link, its calls, and the webhook dispatcher."""

    def __init__(self, config, *, dispatcher=None, connection_factory=EslConnection,
                 on_call_finished=(), stop_grace=None, loader=load_config, pin_log_level=False):
        _hide_secrets(config)
        self.config = config
        self.state = State.NEW
        self._grace_override = stop_grace
        self.webhooks = dispatcher or _webhook_dispatcher(config)
        self.router = CallRouter(RouteTable(config.callflows), self, self.webhooks,
                                 command_timeout=config.freeswitch.command_timeout,
                                 on_call_finished=on_call_finished, owner=default_owner())
        # Lifecycle hooks see every event before the call does, and each flow's end (for its path).
        self.hooks = LifecycleHooks(config.hooks, self.router, self.webhooks)
        self.router.add_hooks(self.hooks)
        self._connection_factory = connection_factory
        self._connection = None
        self._loader = loader
        self._pin_log_level = pin_log_level  # --log-level given: a reload doesn't change it
        self._ready = Event()
        self._stop_requested = Event()
        self._halt = Event()
        self._requests = Queue()
        self._link = None
        self._watchdog = None

    @property
    def stop_grace(self):
        return self.config.shutdown_grace if self._grace_override is None else self._grace_override

    # -- lifecycle -----------------------------------------------------------------

    def start(self):
        self._transition(State.STARTING)
        self.webhooks.start()
        self._link = gevent.spawn(self._maintain_link)
        self._link.link_exception(lambda g: log.error("event-socket link died: %r", g.exception))
        period = systemd.watchdog_period()
        if period:
            self._watchdog = systemd.Watchdog(period).start()

    def run(self):
        """Start, serve reload and stop requests, then stop. Returns the exit status."""
        gevent.signal_handler(signal.SIGTERM, self.request_stop)
        gevent.signal_handler(signal.SIGINT, self.request_stop)
        gevent.signal_handler(signal.SIGHUP, self.request_reload)
        try:
            self.start()
        except OutboxError as exc:
            log.error("cannot start: %s", exc)
            return 1
        while True:
            request = self._requests.get()
            if request == _STOP:
                break
            if request == _RELOAD and not self._stop_requested.is_set():
                self.reload()
        self.stop()
        return 0

    def request_stop(self):
        """Safe from a signal handler: only records the request. A second one means halt."""
        if self._stop_requested.is_set():
            self._halt.set()
            return
        self._stop_requested.set()
        self._requests.put(_STOP)

    def request_reload(self):
        """Safe from a signal handler: only queues the request."""
        self._requests.put(_RELOAD)

    def wait_ready(self, timeout=None):
        return self._ready.wait(timeout)

    def reload(self):
        """Re-read the config file and callflows; swap them in only if all of it is valid.

        Returns True if the new config is in use. Calls in progress are not touched: each
        call's greenlet holds the callflow it started with.
        """
        source = self.config.source
        announce = self.state is State.RUNNING  # before READY=1, systemd is not told
        if announce:
            self._transition(State.RELOADING)
        log.info("reloading %s", source)
        try:
            new = self._loader(source)
            routes = RouteTable(new.callflows)
        except ConfigError as exc:
            return self._reload_refused(announce, str(exc))
        except Exception as exc:  # a loader bug must not take the running service down: keep the old
            log.exception("reload crashed; keeping the running config")
            return self._reload_refused(announce, "%s: %s" % (type(exc).__name__, exc))
        old = self.config
        _hide_secrets(new)
        self.config = new
        self.router.routes = routes
        if new.log_level != old.log_level and not self._pin_log_level:
            logging.getLogger().setLevel(new.log_level)
        for what in ("freeswitch", "directory.webhooks", "hooks"):
            if _dotted(new, what) != _dotted(old, what):
                log.warning("reload: %s settings changed; they take effect at the next restart", what)
        detail = "config reloaded: %d callflows" % len(new.callflows)
        log.info("reload done: %d callflows (was %d); %d calls in progress keep their callflow",
                 len(new.callflows), len(old.callflows), len(self.router.calls))
        if announce:
            self._transition(State.RUNNING, detail)
        else:
            systemd.notify("STATUS=%s" % _status(self.state.value, detail))
        return True

    def _reload_refused(self, announce, reason):
        log.error("reload refused, still running the previous config: %s", reason)
        detail = "reload refused, previous config kept: %s" % reason
        if announce:
            self._transition(State.RUNNING, detail)
        else:
            systemd.notify("STATUS=%s" % _status(self.state.value, detail))
        return False

    def stop(self, grace=None):
        """Stop taking calls, give live ones ``grace`` seconds, leave the rest parked, close."""
        if self.state in (State.STOPPING, State.STOPPED):
            return
        grace = self.stop_grace if grace is None else grace
        self._transition(State.STOPPING)
        self._stop_requested.set()
        self.router.accepting = False
        self._drain_calls(grace)
        if self._link is not None:
            self._link.kill(block=True, timeout=5)
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        # What isn't delivered in time stays in the outbox for the next start (and is logged).
        self.webhooks.stop(timeout=0 if self._halt.is_set() else min(grace, WEBHOOK_DRAIN_SECONDS))
        if self._watchdog is not None:
            self._watchdog.stop()
        self._transition(State.STOPPED)

    def halt(self):
        """Stop without waiting for calls (they stay parked in FreeSWITCH)."""
        self._halt.set()
        self.stop()

    def _drain_calls(self, grace):
        live = len(self.router.calls)
        if not live:
            return
        if not self._halt.is_set():
            log.info("waiting up to %gs for %d calls in progress to finish "
                     "(send SIGTERM again to stop at once)", grace, live)
            finished = gevent.spawn(self.router.calls_group.join)
            gevent.wait([finished, self._halt], timeout=grace, count=1)
            finished.kill(block=False)
        left = list(self.router.calls.values())
        if not left:
            log.info("all calls in progress finished")
            return
        why = "at a second stop request" if self._halt.is_set() else "after %gs" % grace
        for call in left:
            call.log.warning("still in callflow %s %s; leaving it parked in FreeSWITCH for recovery "
                             "(not hung up)", call.callflow_id, why)
        # Killing a flow's greenlet sends nothing to FreeSWITCH: the channel stays where it is.
        self.router.calls_group.kill(block=True, timeout=5)
        log.warning("%d calls left parked in FreeSWITCH %s", len(left), why)

    def _transition(self, new, detail=None):
        if new not in _ALLOWED[self.state]:
            raise RuntimeError("cannot go from %s to %s" % (self.state.value, new.value))
        log.info("service %s", new.value)
        self.state = new
        status = "STATUS=%s" % _status(new.value, detail)
        if new is State.RUNNING:
            systemd.notify("READY=1", status)
        elif new is State.RELOADING:
            systemd.reloading(status)
        elif new is State.STOPPING:
            systemd.notify("STOPPING=1", status)
        else:
            systemd.notify(status)

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
                on_event=self.router.route, on_disconnect=lambda reason, lost=lost: lost.set(),
            )
            if self._connect(connection, where):
                retry = retry.reset()
                lost.wait()
                if self._stop_requested.is_set():
                    return
                log.warning("lost the event socket to %s; %d live calls will be taken back on reconnect",
                            where, len(self.router.calls))
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
            connection.subscribe(names.SUBSCRIBED_EVENTS + self.hooks.subscriptions)
        except AuthenticationFailed:
            log.error("FreeSWITCH at %s refused the event-socket password", where)
        except EslError as exc:
            log.warning("could not connect to FreeSWITCH at %s: %s", where, exc)
        else:
            self._connection = connection
            log.info("connected to FreeSWITCH at %s; subscribed to %d events",
                     where, len(names.SUBSCRIBED_EVENTS + self.hooks.subscriptions))
            if self.state is State.STARTING:
                self._transition(State.RUNNING)
            self._ready.set()
            recovery = gevent.spawn(recover_calls, self.api, self.router, self.router.owner)
            recovery.link_exception(lambda g: log.error("call recovery failed", exc_info=g.exc_info))
            return True
        connection.close()
        return False

    # -- commands for calls (stable across reconnects) --------------------------------

    def execute(self, uuid, app, arg=None, event_uuid=None):
        self._current_connection().execute(uuid, app, arg, event_uuid=event_uuid)

    def api(self, command):
        return self._current_connection().api(command)

    def hangup(self, uuid, cause="NORMAL_CLEARING"):
        self._current_connection().hangup(uuid, cause)

    def _current_connection(self):
        if self._connection is None:
            raise NotConnected("not connected to FreeSWITCH")
        return self._connection


def _webhook_dispatcher(config):
    """Deliver in this process, or (``webhooks.process``) commit here and deliver from a child."""
    settings = config.directory.webhooks
    if settings.process:
        return OutboxFeeder(settings, config.state_dir, config.source, log_level=config.log_level,
                            drain=WEBHOOK_DRAIN_SECONDS)
    return WebhookDispatcher(settings, config.state_dir)


def _dotted(value, path):
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _status(state, detail=None):
    """One ``STATUS=`` value: the state, then the detail, escaped and without secrets."""
    if detail is None:
        return state
    return "%s; %s" % (state, logfmt.escape(logfmt.redact(detail), max_length=400))


def _hide_secrets(config):
    """Whatever the config holds that must never be logged (logfmt.redact masks it)."""
    logfmt.hide(config.freeswitch.password, *config.directory.webhooks.secrets.values())
