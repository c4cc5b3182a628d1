"""The daemon's lifecycle as a few named verbs: start, run, reload, stop, halt.

``start()`` starts the webhook outbox, the event-socket link and the systemd
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

Each switch has its own link (esl/link.py): it connects, subscribes and
re-connects with back-off (``Retry``) without disturbing the others. States are
logged and mirrored to systemd: ``READY=1`` once the first switch is
authenticated and subscribed, ``RELOADING=1`` then ``READY=1`` around a
reload, ``STOPPING=1``, and ``STATUS=`` on every change, with each switch's
link state (``running; fs1 up, fs2 down (...)``).

On every (re)connect of a switch the hooks in ``service.on_connected`` run
(``hook(link)``), after the subscription and before the calls waiting for the
link resume; the first is call recovery (calls/recovery.py).
"""

import enum
import logging
import signal

import gevent
from gevent.event import Event
from gevent.pool import Group
from gevent.queue import Queue

from callflowd import metrics, systemd
from callflowd import logfmt
from callflowd.actions import LONG_APPLICATIONS
from callflowd.calls.marker import default_owner
from callflowd.calls.ownership import Ownership
from callflowd.calls.recovery import Recovery
from callflowd.calls.router import CallRouter
from callflowd.calls.routes import RouteTable
from callflowd.config.temporal import utc_now
from callflowd.errors import ConfigError
from callflowd.esl import link as switch_link
from callflowd.esl.connection import EslConnection
from callflowd.flow.executor import run_callflow
from callflowd.flow.load import load_config
from callflowd.hooks.lifecycle import LifecycleHooks
from callflowd.hooks.senders import Senders
from callflowd.webhooks.dispatcher import WebhookDispatcher
from callflowd.webhooks.pgstore import PostgresStore
from callflowd.webhooks.spill import SpillingStore
from callflowd.webhooks.process import OutboxFeeder
from callflowd.webhooks.store import OutboxError, OutboxStore

log = logging.getLogger(__name__)

# How long queued webhooks may still be delivered once the calls are done (TimeoutStopSec counts it).
WEBHOOK_DRAIN_SECONDS = 10.0
_RELOAD, _STOP = "reload", "stop"
# How long a switch removed by a reload is kept for the calls still running on it.
RETIRE_LIMIT_SECONDS = 3600
STATUS_REFRESH_SECONDS = 5.0  # with claims on: how often STATUS= is brought up to date


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
    """One daemon: a link per FreeSWITCH node, their calls, and the webhook dispatcher."""

    def __init__(self, config, *, dispatcher=None, connection_factory=EslConnection,
                 on_call_finished=(), stop_grace=None, loader=load_config, pin_log_level=False,
                 outage_limit=None, owner=None, clock=utc_now):
        self.config = config
        self.state = State.NEW
        self._grace_override = stop_grace
        # --log-level (pinned) wins over the config's, for the delivery child too
        log_level = logging.getLevelName(logging.getLogger().level) if pin_log_level else config.log_level
        owner = owner or config.cluster.name or default_owner()
        self.webhooks = dispatcher or _webhook_dispatcher(config, log_level, owner)
        router_options = {} if outage_limit is None else {"outage_limit": outage_limit}
        # clock: "now" for the callflows (temporal_route), an aware UTC datetime
        self.router = CallRouter(RouteTable(config.callflows, config.routing), self.webhooks, run_callflow,
                                 on_call_finished=on_call_finished, owner=owner,
                                 long_applications=LONG_APPLICATIONS, clock=clock,
                                 account_id=config.account_id, **router_options)
        self.recovery = Recovery(self.router)
        self.on_connected = [self.recovery.on_connected]  # hook(link): see the module docstring
        # Claims (calls/ownership.py): each parked call raced for on the switch, so several
        # daemons may share it; our lease is renewed before recovery looks at the calls.
        self.ownership = None
        if config.cluster.claims:
            self.ownership = Ownership(owner, config.cluster.lease)
            self.ownership.attach(self.router)
            self.on_connected.insert(0, self.ownership.on_connected)
        self.on_connection_state = []   # callback(name, state, reason), on every link state change
        self.links = {}                 # switch name -> esl.link.SwitchLink, in config order
        # Lifecycle hooks see every event before the call does, and each flow's end (for its path).
        # In a cluster each hook goes out from one daemon: a call's from its driver, the rest
        # from the daemon the channel's uuid picks among the live ones (hooks/senders.py).
        senders = Senders(owner, self.ownership.live_names) if self.ownership is not None else None
        self.hooks = LifecycleHooks(config.hooks, self.router, self.webhooks, senders)
        self.router.add_hooks(self.hooks)
        if self.hooks.subscriptions:  # CHANNEL_DESTROY with any hook; CHANNEL_CREATE if wanted or in a cluster
            self.on_connected.insert(0, self._subscribe_hook_events)
        self._connection_factory = connection_factory
        self._retiring = Group()        # links removed by a reload, waiting for their calls
        for settings in config.switches:
            self._new_link(settings)
        self._loader = loader
        self._pin_log_level = pin_log_level  # --log-level given: a reload doesn't change it
        self._ready = Event()
        self._stop_requested = Event()
        self._halt = Event()
        self._requests = Queue()
        self._watchdog = None
        self._status_refresh = None
        self.metrics_listener = None
        for name in self.links:
            metrics.switch_connected(name, False)

    @property
    def stop_grace(self):
        return self.config.shutdown_grace if self._grace_override is None else self._grace_override

    # -- lifecycle -----------------------------------------------------------------

    def start(self):
        self._transition(State.STARTING)
        _log_warnings(self.config)
        self.webhooks.start()
        self.metrics_listener = metrics.serve(self.config.metrics)
        for link in self.links.values():
            link.start()
        period = systemd.watchdog_period()
        if period:
            self._watchdog = systemd.Watchdog(period).start()
        if self.ownership is not None:
            self._status_refresh = gevent.spawn(self._refresh_status)

    def _refresh_status(self):
        """STATUS= follows the calls owned and taken over (they change without a state change)."""
        shown = None
        while self.state is not State.STOPPED:
            gevent.sleep(STATUS_REFRESH_SECONDS)
            text = self.status_text()
            if text != shown and self.state in (State.RUNNING, State.STARTING):
                systemd.notify("STATUS=%s" % _status(text))
                shown = text

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
            routes = RouteTable(new.callflows, new.routing)
        except ConfigError as exc:
            return self._reload_refused(announce, str(exc))
        except Exception as exc:  # a loader bug must not take the running service down: keep the old
            log.exception("reload crashed; keeping the running config")
            return self._reload_refused(announce, "%s: %s" % (type(exc).__name__, exc))
        old = self.config
        self.config = new
        _log_warnings(new)
        self.router.routes = routes
        self.router.account_id = new.account_id
        if new.log_level != old.log_level and not self._pin_log_level:
            logging.getLogger().setLevel(new.log_level)
        self._reload_switches(old, new)
        for what, changed in (("webhooks", new.directory.webhooks != old.directory.webhooks),
                              ("hooks", new.hooks != old.hooks), ("state_dir", new.state_dir != old.state_dir),
                              ("cluster", new.cluster != old.cluster)):
            if changed:
                log.warning("reload: %s settings changed; they take effect at the next restart", what)
        detail = "config reloaded: %d callflows" % len(new.callflows)
        log.info("reload done: %d callflows (was %d); %d calls in progress keep their callflow",
                 len(new.callflows), len(old.callflows), len(self.router.calls))
        if announce:
            self._transition(State.RUNNING, detail)
        else:
            systemd.notify("STATUS=%s" % _status(self.status_text(), detail))
        return True

    def _reload_switches(self, old, new):
        """Switches added are connected, switches removed are let go once their calls end;
        a switch whose settings changed keeps its link until the next restart (its calls use it)."""
        old_settings = {settings.name: settings for settings in old.switches}
        for settings in new.switches:
            previous = old_settings.pop(settings.name, None)
            if previous is None:
                log.info("reload: switch %s added; connecting", settings.name)
                link = self._new_link(settings)
                metrics.switch_connected(settings.name, False)
                link.start()
            elif previous != settings:
                log.warning("reload: switch %s settings changed; they take effect at the next restart",
                            settings.name)
        for name in old_settings:
            link = self.links.pop(name)
            calls = self.router.calls_on(link)
            log.info("reload: switch %s removed; letting it go once its %d calls end", name, len(calls))
            self._retiring.spawn(self._retire, link, calls)

    def _retire(self, link, calls):
        greenlets = [self.router.greenlet_of(call) for call in calls]
        done = gevent.joinall([greenlet for greenlet in greenlets if greenlet], timeout=RETIRE_LIMIT_SECONDS)
        if len(done) < len(calls):
            log.warning("switch %s: %d calls still running after %ds; letting the switch go anyway",
                        link.name, len(calls) - len(done), RETIRE_LIMIT_SECONDS)
        link.stop()
        metrics.switch_removed(link.name)
        if self.state is not State.STOPPED:
            systemd.notify("STATUS=%s" % _status(self.status_text()))

    def _reload_refused(self, announce, reason):
        log.error("reload refused, still running the previous config: %s", reason)
        detail = "reload refused, previous config kept: %s" % reason
        if announce:
            self._transition(State.RUNNING, detail)
        else:
            systemd.notify("STATUS=%s" % _status(self.status_text(), detail))
        return False

    def stop(self, grace=None):
        """Stop taking calls, give live ones ``grace`` seconds, leave the rest parked, close."""
        if self.state in (State.STOPPING, State.STOPPED):
            return
        grace = self.stop_grace if grace is None else grace
        self._transition(State.STOPPING)
        self._stop_requested.set()
        self.router.accepting = False
        self._drain_calls(grace, handing_over=self._hand_over())
        if self.ownership is not None:
            self.ownership.stop()
        self.recovery.stop()
        self._retiring.kill(block=True, timeout=5)
        for link in self.links.values():
            link.stop()
        # What isn't delivered in time stays in the outbox for the next start (and is logged).
        self.webhooks.stop(timeout=0 if self._halt.is_set() else min(grace, WEBHOOK_DRAIN_SECONDS),
                           hurry=self._halt)
        if self._watchdog is not None:
            self._watchdog.stop()
        if self._status_refresh is not None:
            self._status_refresh.kill(block=False)
        for name in self.links:
            metrics.switch_removed(name)
        metrics.close(self.metrics_listener)
        self._transition(State.STOPPED)

    def _hand_over(self):
        """Rolling upgrade: with another daemon up on every switch our calls are on, they are
        handed over now (our lease says ``released``) instead of waiting out the grace."""
        if self.ownership is None:
            return False
        self.ownership.announce_leaving(settle=bool(self.router.calls))
        calls = list(self.router.calls.values())  # read after: some may have ended while it settled
        if not calls:
            return False
        links = {call.switch for call in calls}
        if not self.ownership.peers_up(links):
            return False
        log.info("handing %d calls over to the other daemons on %s", len(calls),
                 ", ".join(sorted(link.name for link in links)))
        return True

    def halt(self):
        """Stop without waiting for calls (they stay parked in FreeSWITCH)."""
        self._halt.set()
        self.stop()

    def _drain_calls(self, grace, handing_over=False):
        live = len(self.router.calls)
        if not live:
            return
        if handing_over:
            # Killing a flow's greenlet sends nothing to FreeSWITCH: the other daemons take
            # each call over at its node once our lease says released (ownership.stop()).
            self.router.calls_group.kill(block=True, timeout=5)
            log.info("%d calls handed over", live)
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
        status = "STATUS=%s" % _status(self.status_text(), detail)
        if new is State.RUNNING:
            systemd.notify("READY=1", status)
        elif new is State.RELOADING:
            systemd.reloading(status)
        elif new is State.STOPPING:
            systemd.notify("STOPPING=1", status)
        else:
            systemd.notify(status)

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
        text = "%s; %s" % (self.state.value, ", ".join(parts)) if parts else self.state.value
        cluster = self._cluster_status()
        return "%s; %s" % (text, cluster) if cluster else text

    def _cluster_status(self):
        """``cluster cf-a: 3 calls owned, leases 2/2, 1 taken over, peers cf-b``, once it is one:
        another daemon seen, a call taken over, or a lease not held on a switch that is up
        (a daemon alone shows what it always did)."""
        if self.ownership is None:
            return ""
        details = self.ownership.details()
        up = sum(1 for link in self.links.values() if link.state == switch_link.UP)
        if not (details["peers"] or details["taken_over"] or details["leases_held"] < up):
            return ""
        return "cluster %s: %d calls owned, leases %d/%d, %d taken over%s" % (
            details["name"], details["calls_owned"], details["leases_held"], len(self.links),
            details["taken_over"], ", peers " + " ".join(details["peers"]) if details["peers"] else "")

    def _new_link(self, settings):
        link = self.links[settings.name] = switch_link.SwitchLink(
            settings, on_event=metrics.counting_events(settings.name, self.router.route),
            connection_factory=self._connection_factory,
            on_state=[self._link_state], on_connected=[self._link_connected],
            on_lost=[self.router.connection_lost], on_gave_up=self._link_gave_up)
        return link

    def _all_up(self):
        """READY=1 waits for every configured switch: a start with one down is not a success
        (systemd times it out and restarts it), though the switches that are up already take calls."""
        return all(link.state == switch_link.UP for link in self.links.values())

    def _link_state(self, link, state, reason):
        metrics.switch_connected(link.name, state == switch_link.UP)
        if state == switch_link.UP and self.state is State.STARTING and self._all_up():
            self._transition(State.RUNNING)
            self._ready.set()
        elif self.state is not State.STOPPED:
            systemd.notify("STATUS=%s" % _status(self.status_text()))
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

    def _subscribe_hook_events(self, link):
        """Lifecycle hooks want CHANNEL_CREATE/DESTROY too: added to the link's subscription
        (FreeSWITCH adds each ``event`` command's names to what the connection already gets)."""
        link.connection.subscribe(self.hooks.subscriptions)
        log.info("switch %s: subscribed to %s for lifecycle hooks", link.name, " ".join(self.hooks.subscriptions))

    def _link_gave_up(self, link):
        if all(other.state in (switch_link.DOWN, switch_link.STOPPED) for other in self.links.values()):
            log.error("no switch left to serve; stopping")
            self.request_stop()


def _webhook_dispatcher(config, log_level, owner):
    """Deliver in this process, or (``webhooks.process``) commit here and deliver from a child.

    With ``cluster.outbox`` the outbox is the table the daemons share, leased under our
    ``owner`` name, with the local SQLite file behind it for when the server is away.
    """
    settings = config.directory.webhooks
    if settings.process:
        return OutboxFeeder(settings, config.state_dir, config.source, log_level=log_level,
                            drain=WEBHOOK_DRAIN_SECONDS)
    store = None
    if config.cluster.outbox:
        store = SpillingStore(PostgresStore(config.cluster.outbox, owner, config.cluster.lease),
                              OutboxStore(config.state_dir, settings.synchronous))
    return WebhookDispatcher(settings, config.state_dir, store=store)


def _status(state, detail=None):
    """One ``STATUS=`` value: the state, then the detail, escaped and without secrets."""
    if detail is None:
        return state
    return "%s; %s" % (state, logfmt.escape(logfmt.redact(detail), max_length=400))


def _log_warnings(config):
    """What the config asks that callflowd accepts but does not run as Kazoo would (flow/parser.py)."""
    for warning in config.warnings:
        log.warning("config: %s", logfmt.safe(warning))
