"""One live call, as the actions see it: commands that look blocking.

``call.execute("bridge", ...)`` sends the application with a fresh
``Event-UUID`` and yields until the CHANNEL_EXECUTE_COMPLETE carrying that id
as ``Application-UUID`` arrives (capture g: correlate by it, not by app name).
A hangup seen meanwhile raises ``CallEnded``; every wait has a timeout.
Events reach the call through ``deliver()``, from the router, never the other way.
"""

import dataclasses
import logging
import uuid as uuidlib

import gevent
from gevent.queue import Empty, Queue

from callflowd.calls import marker, resume
from callflowd.calls.log import call_log
from callflowd.errors import ActionTimeout, CallEnded, EslError
from callflowd.esl import names, protocol

log = logging.getLogger(__name__)

_HANGUP_EVENTS = frozenset((names.CHANNEL_HANGUP, names.CHANNEL_HANGUP_COMPLETE, names.CHANNEL_DESTROY))
_CONNECTION_LOST = object()  # put in the queue when the event socket goes away
# FreeSWITCH sends the running app's EXECUTE_COMPLETE right after CHANNEL_HANGUP (capture b: 1 ms).
_COMPLETION_AFTER_HANGUP_SECONDS = 5.0
# sendmsg to a uuid FreeSWITCH no longer has (capture misc_protocol).
_CHANNEL_GONE = "-ERR invalid session id"


@dataclasses.dataclass(frozen=True)
class Step:
    """One action the flow ran, and how it came out (``USER_BUSY``, ``_``, ``skipped``...)."""

    module: str
    outcome: str
    path: str


class Call:
    """A parked inbound channel driven by one callflow."""

    def __init__(self, uuid, facts, callflow_id, commands, webhooks, command_timeout=10.0,
                 owner=None, resuming=None):
        self.uuid = uuid
        self.facts = facts
        self.callflow_id = callflow_id
        self.webhooks = webhooks
        self.history = []  # Steps, in order
        self.hangup_cause = None
        self.log = call_log(log, uuid)
        self._commands = commands  # the event socket: execute(...) and hangup(...)
        self._command_timeout = command_timeout
        self._events = Queue()
        self._ended = False
        self._lost = False
        self.owner = owner or marker.default_owner()
        # The switch's record of where this call was (a Marker) when the daemon takes it
        # back after a cut socket or a restart; cleared once the flow has caught up.
        self.resuming = resuming

    # -- fed by the router ---------------------------------------------------------

    def deliver(self, event):
        """Queue one of this channel's events; never blocks the event socket's reader."""
        self._events.put_nowait(event)

    def connection_lost(self):
        self._events.put_nowait(_CONNECTION_LOST)

    # -- what actions use ------------------------------------------------------------

    @property
    def ended(self):
        return self._ended

    @property
    def lost(self):
        """The event socket went away under this call (it may be taken back later)."""
        return self._lost

    @property
    def previous_step(self):
        return self.history[-1] if self.history else None

    def execute(self, app, arg=None, timeout=60.0):
        """Run a dialplan application on the channel; return its EXECUTE_COMPLETE event."""
        self._drain_pending()
        if self._ended or self._lost:
            raise CallEnded(self.hangup_reason() if self._ended else "lost the event socket")
        if self.resuming is not None:
            caught_up = self._resume(app, timeout)
            if caught_up is not None:
                return caught_up
        event_uuid = str(uuidlib.uuid4())
        if app in resume.LONG_APPLICATIONS:
            # Written before the app is sent: a recovery finds either the marker and no
            # app (it re-runs it) or both (it waits for the app or reads its outcome).
            self._mark(marker.waiting_variables(app, event_uuid, resume.LONG_APPLICATIONS[app]))
        self.log.debug("executing %s %s", app, arg or "")
        try:
            self._commands.execute(self.uuid, app, arg, event_uuid=event_uuid)
        except EslError as exc:
            self._drain_pending()  # a hangup may explain the refusal
            if _CHANNEL_GONE in str(exc):
                self._ended = True
                raise CallEnded("the channel is gone (%s)" % exc) from None
            raise
        return self._wait_for_completion(app, event_uuid, timeout)

    def set_variable(self, name, value):
        return self.execute("set", "%s=%s" % (name, value), timeout=self._command_timeout)

    def answer(self):
        return self.execute("answer", timeout=self._command_timeout)

    def hangup(self, cause="NORMAL_CLEARING"):
        """Hang the caller up, unless the channel is already gone."""
        self._drain_pending()
        if self._ended or self._lost:
            return
        self._commands.hangup(self.uuid, cause)
        self.log.info("hung up: %s", cause)

    def mark_step(self, node):
        """Tell the switch which node this call is at, before running it (see marker.py)."""
        self._mark(marker.step_variables(self.owner, self.callflow_id, node.path))

    def channel_state(self):
        """The channel as the switch has it now (``uuid_dump``: headers and variables)."""
        text = self._commands.api("uuid_dump %s" % self.uuid)
        if text.startswith("-ERR"):
            self._ended = True
            raise CallEnded("the channel is gone (%s)" % text.strip())
        return protocol.parse_plain_event(text)

    # -- internals -----------------------------------------------------------------

    def _mark(self, variables):
        reply = self._commands.api("uuid_setvar_multi %s %s" % (self.uuid, variables))
        if not reply.startswith("+OK"):
            self.log.debug("could not mark the channel: %s", reply.strip())

    def _resume(self, app, timeout):
        """Catch up with the switch after a takeover: skip what already ran, then wait
        for the app that was running, or read the outcome it left; None: run ``app``."""
        record = self.resuming
        if record.waiting_app is None:  # parked between steps: the node runs afresh
            self.resuming = None
            return None
        if app != record.waiting_app:  # ran before the cut (set continue_on_fail, answer...)
            self.log.debug("resuming: %s already ran", app)
            return protocol.parse_plain_event("")
        self.resuming = None
        channel = self.channel_state()
        state = resume.application_state(app, channel)
        if state is resume.NOT_STARTED:
            self.log.info("resuming: %s had not started; running it", app)
            return None
        if state is resume.FINISHED:
            self.log.info("resuming: %s ended while we were away", app)
            return channel
        self.log.info("resuming: waiting for %s, still running", app)
        return self._wait_for_completion(app, record.waiting_event_uuid, timeout)

    def _wait_for_completion(self, app, event_uuid, timeout):
        """The app's EXECUTE_COMPLETE. After CHANNEL_HANGUP it still comes, with the app's
        result (captures a and b: a bridge's SUCCESS arrives after the hangup), so we wait
        a little longer for it; HANGUP_COMPLETE without it means the app never ran."""
        loop = gevent.get_hub().loop
        deadline = loop.now() + timeout
        while True:
            remaining = deadline - loop.now()
            try:
                if remaining <= 0:
                    raise Empty
                event = self._events.get(timeout=remaining)
            except Empty:
                if self._ended:
                    raise CallEnded(self.hangup_reason()) from None
                raise ActionTimeout("%s did not complete within %ss" % (app, timeout)) from None
            was_up = not self._ended
            self._note(event)
            if event.name == names.CHANNEL_EXECUTE_COMPLETE and event.get(names.APPLICATION_UUID) == event_uuid:
                return event
            if was_up and self._ended:
                deadline = min(deadline, loop.now() + _COMPLETION_AFTER_HANGUP_SECONDS)

    def _drain_pending(self):
        """Look at what already arrived (a hangup between two commands must not go unseen)."""
        while True:
            try:
                event = self._events.get_nowait()
            except Empty:
                return
            self._note(event)

    def _note(self, event):
        if event is _CONNECTION_LOST:
            self._lost = True
            raise CallEnded("lost the event socket")
        if event.name in _HANGUP_EVENTS:
            self._ended = True
            self.hangup_cause = event.get(names.HANGUP_CAUSE) or self.hangup_cause
            if event.name != names.CHANNEL_HANGUP:
                raise CallEnded(self.hangup_reason())

    def hangup_reason(self):
        return "caller hung up (%s)" % (self.hangup_cause or "unknown cause")
