"""One switch's link: keep an event socket to one FreeSWITCH node up, for ever.

A SwitchLink owns the succession of EslConnections to one node: it connects,
subscribes, and when the connection is lost (EOF, a refused frame, silence,
a stalled write) makes a new one after a back-off (``Retry``). Calls on that
node send their commands through it, so a reconnect is invisible to them
except as a wait (``wait_up``). Each node has its own link and greenlet: a
node that is down or flapping costs the others nothing.

Hooks, in order, on every (re)connect once subscribed: ``on_connected(link)``
callbacks (the place to list live channels and take back ours), then the
hangups that could not be sent before (``hangup_later``). State changes go to
``on_state(link, state, reason)``.

What a command that fails means, and what is safe (errors.py names the cases):
- ``auth``, ``event ...`` (at connect): any failure fails the connect; the
  next attempt starts over on a new connection after the back-off.
- ``sendmsg execute``: calls/call.py (``_send_execute``): not sent -> sent
  again once up; sent without reply -> never sent twice, wait for a sign.
- ``sendmsg hangup``: idempotent, so kept here and sent again after each
  reconnect until FreeSWITCH confirms it or says the channel is gone.
- ``api`` (for on_connected hooks): no reply within its timeout -> the
  caller's CommandTimeout; the connection's watchdog decides about the link.
- ``exit`` (close): best effort, bounded; the socket is closed anyway.
"""

import contextlib
import functools
import logging
import time

import gevent
import gevent.event
import gevent.pool

from callflowd import metrics
from callflowd.errors import AuthenticationFailed, EslError, NotConnected
from callflowd.esl import names
from callflowd.esl.connection import EslConnection
from callflowd.retry import RetriesExhausted

log = logging.getLogger(__name__)

CONNECTING, UP, DOWN, STOPPED = "connecting", "up", "down", "stopped"
_NOTICE_SECONDS = 0.02


class SwitchLink:
    """The event socket to one FreeSWITCH node; its commands are stable across reconnects.

    ``on_event(event, link=self)`` gets every event of every connection in turn.
    """

    def __init__(self, settings, *, on_event, connection_factory=EslConnection,
                 on_state=(), on_connected=(), on_lost=(), on_gave_up=None):
        self.settings = settings  # a config.model.FreeswitchSettings
        self.name = settings.name
        self.state = DOWN
        self.reason = "not started"
        self.connection = None
        # Connected, and the on_connected hooks (recovery) are still running: calls wait for
        # them, but the switch is not down.
        self.taking_back = False
        self.on_state = list(on_state)
        self.on_connected = list(on_connected)
        self.on_lost = list(on_lost)
        self._on_event = on_event
        self._on_gave_up = on_gave_up
        self._factory = connection_factory
        self._up = gevent.event.Event()
        self._stopping = gevent.event.Event()
        self._hangups = {}  # uuid -> cause, to send once connected
        self._group = gevent.pool.Group()

    def __repr__(self):
        return "<SwitchLink %s %s>" % (self.name, self.state)

    # -- lifecycle -------------------------------------------------------------------

    def start(self):
        greenlet = self._group.spawn(self._maintain)
        greenlet.link_exception(lambda g: log.error("switch %s: link died", self.name,
                                                    exc_info=g.exc_info))

    def stop(self):
        self._stopping.set()
        self._group.kill(block=True, timeout=5)
        connection, self.connection = self.connection, None
        self._up.clear()
        if connection is not None:
            connection.close()
        self._set_state(STOPPED, "callflowd is stopping")

    @property
    def connected(self):
        """Up, subscribed, hooks run, and the connection not lost meanwhile."""
        connection = self.connection
        return self._up.is_set() and connection is not None and connection.connected

    def wait_up(self, timeout=None):
        """True once connected and subscribed (at once if already), False after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.connected:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            if self._up.is_set():
                # lost, and the link learns it only after the events queued before the loss
                # were delivered (esl.connection); that is a moment away
                gevent.sleep(_NOTICE_SECONDS if remaining is None else min(_NOTICE_SECONDS, remaining))
            else:
                self._up.wait(remaining)
        return True

    # -- commands for calls ------------------------------------------------------------

    def execute(self, uuid, app, arg=None, event_uuid=None, before=()):
        """sendmsg ``app``, with ``before`` it in the same write ``api`` commands and
        applications not waited for (their replies are returned; esl/connection.py says
        why they run first). Each application counts as a command, with the write's result."""
        queued = [item[0] for item in before if item.__class__ is tuple]
        if not queued:
            with metrics.command(self.name, app):
                return self._current().execute(uuid, app, arg, event_uuid=event_uuid, before=before)
        with contextlib.ExitStack() as counted:
            for name in queued:
                counted.enter_context(metrics.command(self.name, name))
            counted.enter_context(metrics.command(self.name, app))
            return self._current().execute(uuid, app, arg, event_uuid=event_uuid, before=before)

    def hangup(self, uuid, cause=names.NORMAL_CLEARING):
        with metrics.command(self.name, "hangup"):
            self._current().hangup(uuid, cause)

    def api(self, command, timeout=None):
        return self._current().api(command, timeout=timeout)

    def api_all(self, commands, timeout=None):
        """Several ``api`` commands in one write and one wait (EslConnection.api_all)."""
        return self._current().api_all(commands, timeout=timeout)

    def hangup_later(self, uuid, cause=names.NORMAL_CLEARING):
        """Send this hangup as soon as possible: now if connected, else after reconnecting.

        Safe to repeat: a channel already gone answers ``-ERR invalid session id``.
        """
        self._hangups[uuid] = cause
        if self.connected:
            self._group.spawn(self._send_hangups)

    def _current(self):
        # set before the on_connected hooks run, so they can send commands
        connection = self.connection
        if connection is None or not connection.connected:
            raise NotConnected("switch %s is not connected (%s)" % (self.name, self.reason))
        return connection

    # -- the loop ----------------------------------------------------------------------

    def _maintain(self):
        settings = self.settings
        retry = settings.reconnect
        where = "%s:%d" % (settings.host, settings.port)
        while not self._stopping.is_set():
            lost = gevent.event.AsyncResult()
            connection = self._factory(
                settings.host, settings.port, settings.password,
                connect_timeout=settings.connect_timeout, command_timeout=settings.command_timeout,
                idle_timeout=settings.idle_timeout, limits=settings.limits, name=self.name,
                on_event=functools.partial(self._on_event, link=self), on_disconnect=lost.set,
            )
            self._set_state(CONNECTING, "connecting to %s" % where)
            if self._connect(connection, where):
                retry = retry.reset()
                reason = lost.get()
                if self._stopping.is_set():
                    return
                self._up.clear()
                self.connection = None
                self._set_state(DOWN, reason)
                log.warning("switch %s: lost the event socket to %s (%s); its calls stay parked "
                            "there and wait for the link", self.name, where, reason)
                self._notify(self.on_lost, "on_lost")
                connection.close()
            try:
                retry = retry.increment()
            except RetriesExhausted:
                log.error("switch %s: giving up on FreeSWITCH at %s", self.name, where)
                if self._on_gave_up is not None:
                    self._on_gave_up(self)
                return
            delay = retry.backoff()
            log.info("switch %s: reconnecting to %s in %.1fs", self.name, where, delay)
            self._stopping.wait(delay)

    def _connect(self, connection, where):
        try:
            connection.connect()
            connection.subscribe(names.SUBSCRIBED_EVENTS)
        except AuthenticationFailed:
            reason = "FreeSWITCH at %s refused the event-socket password" % where
            log.error("switch %s: %s", self.name, reason)
        except EslError as exc:
            reason = "could not connect to FreeSWITCH at %s: %s" % (where, exc)
            log.warning("switch %s: %s", self.name, reason)
        else:
            self.connection = connection
            log.info("switch %s: connected to FreeSWITCH at %s; subscribed to %d events",
                     self.name, where, len(names.SUBSCRIBED_EVENTS))
            self.taking_back = True
            try:
                self._notify(self.on_connected, "on_connected")
            finally:
                self.taking_back = False
            self._up.set()
            self._set_state(UP, "connected to %s" % where)
            self._send_hangups()
            return True
        connection.close()
        self._set_state(DOWN, reason)
        return False

    def _send_hangups(self):
        for uuid, cause in list(self._hangups.items()):
            try:
                self.hangup(uuid, cause)
            except EslError as exc:
                if names.ERR_NO_SUCH_CHANNEL not in str(exc):
                    log.warning("call %s: hangup (%s) on switch %s still not confirmed: %s",
                                uuid, cause, self.name, exc)
                    continue
                log.info("call %s: channel already gone from switch %s", uuid, self.name)
            else:
                log.info("call %s: hung up on switch %s after reconnecting: %s", uuid, self.name, cause)
            self._hangups.pop(uuid, None)

    # -- reporting ---------------------------------------------------------------------

    def _set_state(self, state, reason):
        if (state, reason) == (self.state, self.reason):
            return
        self.state, self.reason = state, reason
        log.info("switch %s: link %s (%s)", self.name, state, reason)
        for callback in self.on_state:
            try:
                callback(self, state, reason)
            except Exception:  # a listener's bug must not stop the link: log, go on
                log.exception("switch %s: on_state listener failed", self.name)

    def _notify(self, callbacks, what):
        for callback in callbacks:
            try:
                callback(self)
            except Exception:  # a hook's bug must not keep the link down: log, go on
                log.exception("switch %s: %s hook failed; going on", self.name, what)
