"""One live call, as the actions see it: commands that look blocking.

``call.execute("bridge", ...)`` sends the application with a fresh
``Event-UUID`` and yields until the CHANNEL_EXECUTE_COMPLETE carrying that id
as ``Application-UUID`` arrives: correlated by it, not by app name, as the
capture of two playbacks shows (tests/fixtures/g_event_uuid_playback_bgapi.json.txt).
A hangup seen meanwhile raises ``CallEnded``; every wait has a timeout.
Events reach the call through ``deliver()``, from the router, never the other way.

A call lives on one switch; ``commands`` is that switch's link
(esl/link.py). When the link drops, the call does not end: the channel is
still parked on the switch, so the flow waits (bounded) for the link to come
back and goes on; what is safe to do about a command whose fate is unknown
is written at ``_send_execute`` and ``hangup``. No path ends here with the
caller parked and nobody to drive it: the flow takes a next step, or a hangup
is sent, now or once the switch is back.

Why one file: markers, resume and the call log are already their own modules; what is left is
one call's event queue and the commands that wait on it, which share that queue and its
outage handling and read best in one place.
"""

import dataclasses
import logging
import uuid as uuidlib

import gevent
from gevent.queue import Empty, Queue

from callflowd.calls import marker, resume
from callflowd.calls.log import call_log
from callflowd.config.temporal import utc_now
from callflowd.errors import ActionTimeout, CallEnded, CommandTimeout, EslError, NotConnected
from callflowd.esl import names, protocol
from callflowd.esl.event import Event

log = logging.getLogger(__name__)

_HANGUP_EVENTS = frozenset((names.CHANNEL_HANGUP, names.CHANNEL_HANGUP_COMPLETE, names.CHANNEL_DESTROY))
# put in the queue when the event socket goes away; an Event without a name
_CONNECTION_LOST = Event({}, content_type="callflowd/connection-lost")
# How long a call waits for its switch to come back before it gives up on the
# flow (and leaves a hangup queued on the link for when the switch is back).
OUTAGE_LIMIT_SECONDS = 300.0
# FreeSWITCH sends the running app's EXECUTE_COMPLETE right after CHANNEL_HANGUP, 1 ms later in
# the capture of a busy device (tests/fixtures/b_device_busy_voicemail.plain.txt).
_COMPLETION_AFTER_HANGUP_SECONDS = 5.0


class _LateReply:
    """Queued when a timed-out command's reply (or its connection's end) finally comes."""

    __slots__ = ("result",)

    def __init__(self, result):
        self.result = result


@dataclasses.dataclass(frozen=True)
class Step:
    """One action the flow ran, and how it came out (``USER_BUSY``, ``_``, ``skipped``...)."""

    module: str
    outcome: str
    path: str
    callflow: str = ""  # the callflow the node belongs to (a jump leaves the routed one)


class Call:
    """A parked inbound channel driven by one callflow."""

    # Thousands may sit ringing at once, so the memory per call counts: no __dict__.
    __slots__ = ("uuid", "facts", "callflow_id", "webhooks", "history", "hangup_cause", "log",
                 "_commands", "_command_timeout", "_outage_limit", "_events", "_ended", "owner",
                 "resuming", "waiting", "position", "captures", "_long_applications",
                 "_hangup_sent", "_ahead", "clock", "fence")

    def __init__(self, uuid, facts, callflow_id, commands, webhooks, command_timeout=10.0,
                 outage_limit=OUTAGE_LIMIT_SECONDS, owner=None, resuming=None,
                 long_applications=frozenset(), clock=utc_now):
        self.uuid = uuid
        self.clock = clock  # now, as an aware UTC datetime (temporal_route reads it)
        self.facts = facts
        self.callflow_id = callflow_id
        self.webhooks = webhooks
        self.history = []  # Steps, in order
        self.hangup_cause = None
        self.log = call_log(log, uuid)
        self._commands = commands  # the event socket: execute(...) and hangup(...)
        self._command_timeout = command_timeout
        self._outage_limit = outage_limit
        self._events = Queue()
        self._ended = False
        self.owner = owner or marker.default_owner()
        # A resume.Resumption when the daemon takes the call back after a restart (the
        # switch's record of where it was); None once the flow has caught up.
        self.resuming = resume.Resumption(resuming) if resuming is not None else None
        self.waiting = None  # (app, Event-UUID) while an application runs
        # Where the flow is: the executor's Position of the step running now (``mark_step``).
        self.position = None
        # The capture groups of the pattern that routed the call (calls/routes.py).
        self.captures = ()
        # The applications worth a recovery mark while they run (the actions' registry
        # says which: actions/__init__.py).
        self._long_applications = long_applications
        self._hangup_sent = False
        # What goes out in the same write as the next application, ahead of it, in order:
        # recovery marks (``uuid_setvar_multi`` arguments, see ``mark_step``) and quick
        # applications not waited for, as (app, arg) (``set_variable(..., ahead=True)``).
        self._ahead = []
        # Several daemons on the switch (calls/ownership.py): ``fence(call)`` before each mark
        # and command returns if the call is still ours, raises CallLost if another daemon
        # took it over, EslError if the switch could not be asked. None: nobody else drives.
        self.fence = None

    # -- fed by the router ---------------------------------------------------------

    def deliver(self, event):
        """Queue one of this channel's events; never blocks the event socket's reader."""
        self._events.put_nowait(event)

    def connection_lost(self):
        self._events.put_nowait(_CONNECTION_LOST)

    # -- what actions use ------------------------------------------------------------

    @property
    def switch(self):
        """The switch link the channel lives on (its commands go there)."""
        return self._commands

    @property
    def command_timeout(self):
        """How long a quick application (set, answer, respond) may take to complete."""
        return self._command_timeout

    @property
    def ended(self):
        return self._ended

    @property
    def previous_step(self):
        return self.history[-1] if self.history else None

    def execute(self, app, arg=None, timeout=60.0):
        """Run a dialplan application on the channel; return its EXECUTE_COMPLETE event."""
        self._drain_pending()
        if self._ended:
            raise CallEnded(self.hangup_reason())
        if self.resuming is not None:
            caught_up = self.resuming.execute(self, app, timeout)
            if caught_up is not None:
                return caught_up
        event_uuid = str(uuidlib.uuid4())
        if app in self._long_applications:
            # Written before the app is sent (ahead of it, in the same write): a recovery
            # finds either the marker and no app (it runs it) or both (it waits for the
            # app or reads its outcome).
            self._ahead.append(resume.waiting_variables(app, event_uuid))
        self.waiting = (app, event_uuid)
        ahead, self._ahead = self._ahead, []
        try:
            unanswered = self._send_execute(app, arg, event_uuid, ahead)
            # said once sent: what went ahead of it (its marks) is on the switch by now
            self.log.debug("executing %s %s", app, arg or "")
            if unanswered is not None:
                completion = self._wait_for_start(app, event_uuid, unanswered)
                if completion is not None:
                    return completion
            return self.await_completion(app, event_uuid, timeout)
        finally:
            self.waiting = None

    def mark_step(self, position, with_first_command=False):
        """Tell the switch where this call is (the executor's Position), before the step runs.

        ``with_first_command``: the step's first effect is a command on the channel
        (an action's ``FIRST_EFFECT_IS_A_COMMAND``), so the mark goes out ahead of that
        command, in the same write and the same wait: FreeSWITCH sets the variables
        before it reads the command (esl/connection.py, ``execute``), so the switch
        still has the mark before the step does anything. Otherwise (a webhook, a
        fetch) it is written now, on its own (calls/marker.py says what is written).
        """
        self.position = position
        record = self.resuming.record if self.resuming is not None else None
        waiting = (record.waiting_app, record.waiting_event_uuid or "") if record and record.waiting_app else None
        self._ahead.append(marker.step_variables(self.owner, position.callflow_id, position.node_path,
                                                 position.returns, waiting))
        if not with_first_command:
            self.write_marks()

    def write_marks(self):
        """Send, now and in order, what still waits to go ahead of an application: each mark
        on its own ``api``, each application queued ahead on its own sendmsg (not waited for)."""
        ahead, self._ahead = self._ahead, []
        for item in ahead:
            if item.__class__ is tuple:
                self._send_execute(item[0], item[1], str(uuidlib.uuid4()), ())
            else:
                self._mark(item)

    def clear_variables(self, *variable_names):
        """Unset channel variables at once (``uuid_setvar_multi``: no application, no event)."""
        self.write_marks()
        self._await_switch()
        while not self._still_ours():
            self._await_switch()
        reply = self._commands.api("uuid_setvar_multi %s %s" % (
            self.uuid, ";".join("%s=" % name for name in variable_names)))
        if reply.startswith(names.ERR):
            self._raise_if_gone(EslError(reply.strip()))
            self.log.warning("could not clear %s: %s", ", ".join(variable_names), reply.strip())

    def channel_state(self):
        """The channel as the switch has it now (``uuid_dump``: headers and variables)."""
        self.write_marks()
        text = self._commands.api("uuid_dump %s" % self.uuid)
        if text.startswith(names.ERR):
            self._ended = True
            raise CallEnded("the channel is gone (%s)" % text.strip())
        return protocol.parse_plain_event(text)

    def catch_up(self, channel):
        """After a reconnect: the switch's view of this channel (a uuid_dump Event).

        Events are not replayed, so an app that ended while the link was down would
        be waited for in vain; its outcome is read from the channel instead and handed
        to the waiting flow as its completion.
        """
        if self.waiting is None:
            return
        completion = resume.completion_on(channel, *self.waiting)
        if completion is not None:
            self.log.info("%s ended while the switch was unreachable; reading its outcome", self.waiting[0])
            self.deliver(completion)

    def _send_execute(self, app, arg, event_uuid, ahead=()):
        """Send ``sendmsg execute`` once; return None, or the CommandTimeout if unanswered.

        What is safe depends on what we know (errors.py):
        - NotConnected: never (fully) sent, so FreeSWITCH cannot run it: wait
          for the switch (bounded by the outage limit) and send it again.
        - CommandTimeout / ReplyLost: sent, no answer: the app may be queued on
          the channel, and a second send could ring a phone twice. Don't send
          it again: see _wait_for_start.
        - ``-ERR invalid session id`` (names.ERR_NO_SUCH_CHANNEL): the channel is gone: the call ended.
        - any other ``-ERR``: refused: an EslError (the executor hangs up).

        ``ahead`` (marks, and quick applications not waited for) goes out in the
        same write, before it; written exactly when the app is (sent again with it
        after NotConnected).
        """
        before = tuple("uuid_setvar_multi %s %s" % (self.uuid, item) if item.__class__ is str
                       else (item[0], item[1], str(uuidlib.uuid4())) for item in ahead)
        while True:
            self._await_switch()
            if not self._still_ours():
                continue
            try:
                replies = self._commands.execute(self.uuid, app, arg, event_uuid=event_uuid, before=before)
            except NotConnected as exc:
                self.log.warning("%s not sent (%s); sending it once the switch is back", app, exc)
                self._drain_pending()
                continue
            except CommandTimeout as exc:
                self.log.warning("%s sent, no answer (%s); waiting for a sign FreeSWITCH took it",
                                 app, exc)
                return exc
            except EslError as exc:
                self._drain_pending()  # a hangup may explain the refusal
                self._raise_if_gone(exc)
                raise
            for item, reply in zip(ahead, replies or ()):
                if item.__class__ is str:
                    self._marked(reply)
                elif reply.startswith(names.ERR):  # the app after it was taken: go on, but say so
                    self.log.warning("%s %s refused: %s", item[0], item[1], reply.strip())
            return None

    def _wait_for_start(self, app, event_uuid, unanswered):
        """After a sendmsg without reply: did FreeSWITCH take the app?

        Yes if its CHANNEL_EXECUTE or EXECUTE_COMPLETE (Application-UUID = our
        Event-UUID) or a late ``+OK`` comes within command_timeout of the
        switch being up (a lost link restarts the count once it is back): then
        the usual completion wait follows (the completion itself is returned if
        it came first). A late ``-ERR`` means no. No sign at all: ActionTimeout,
        so the executor takes the next step rather than risk running it twice.
        """
        if unanswered.late_reply is not None:
            unanswered.late_reply.rawlink(lambda result: self._events.put_nowait(_LateReply(result)))
        loop = gevent.get_hub().loop
        while True:
            self._await_switch()
            deadline = loop.now() + self._command_timeout
            while True:
                event = self._next_event(deadline)
                if event is None:
                    self.log.warning("%s was sent without a reply and FreeSWITCH showed no sign of "
                                     "running it within %ss; not sending it twice",
                                     app, self._command_timeout)
                    raise ActionTimeout("%s: no sign FreeSWITCH ran it" % app)
                if event is _CONNECTION_LOST:
                    self._note(event)
                    break  # wait for the switch, then count again
                if event.__class__ is _LateReply:
                    if self._late_reply(app, event.result):
                        return None
                    continue
                self._note(event)
                if event.get(names.APPLICATION_UUID) == event_uuid:
                    if event.name == names.CHANNEL_EXECUTE_COMPLETE:
                        return event
                    if event.name == names.CHANNEL_EXECUTE:
                        self.log.info("%s is running after all", app)
                        return None

    def _raise_if_gone(self, exc):
        if names.ERR_NO_SUCH_CHANNEL in str(exc):
            self._ended = True
            raise CallEnded("the channel is gone (%s)" % exc) from None

    def _await_switch(self):
        """Return once the call's switch is connected; CallEnded after the outage limit."""
        if self._commands.connected:
            return
        if getattr(self._commands, "taking_back", False):
            # Just reconnected: the link is taking back its calls before it lets any flow on.
            self.log.info("switch %s is back and taking back its calls; the flow waits for that",
                          self._commands.name)
        else:
            self.log.warning("switch %s is down; the flow waits up to %ss for it",
                             self._commands.name, self._outage_limit)
        if not self._commands.wait_up(self._outage_limit):
            self._commands.hangup_later(self.uuid, names.NORMAL_TEMPORARY_FAILURE)
            raise CallEnded("switch %s down for %ss; the caller is hung up once it is back"
                            % (self._commands.name, self._outage_limit))
        self.log.info("switch %s is back; the flow goes on", self._commands.name)

    def set_variable(self, name, value, ahead=False):
        """``set name=value`` on the channel, waiting for it to complete (``ahead``: see ``queue``)."""
        arg = "%s=%s" % (name, value)
        if ahead:
            return self.queue("set", arg)
        return self.execute("set", arg, timeout=self._command_timeout)

    def answer(self, ahead=False):
        """Answer the channel, waiting for it to complete (``ahead``: see ``queue``)."""
        if ahead:
            return self.queue("answer")
        return self.execute("answer", timeout=self._command_timeout)

    def queue(self, app, arg=None):
        """Run a quick application without waiting for it: it goes out in the same write as
        the next application, before it, and its completion is not awaited (one round trip
        and one wake-up fewer). FreeSWITCH runs a channel's queued applications one after
        the other, in the order they came (switch_ivr_parse_all_events), so it has run
        before that application starts. Only for an app whose outcome nobody reads
        (``set``, ``answer``); a call that ends first still raises CallEnded here or there.
        """
        self._drain_pending()
        if self._ended:
            raise CallEnded(self.hangup_reason())
        if self.resuming is not None and self.resuming.ran_before(self, app):
            return None
        self.log.debug("queueing %s %s", app, arg or "")
        self._ahead.append((app, arg))
        return None

    def hangup(self, cause=names.NORMAL_CLEARING):
        """Hang the caller up, unless the channel is already gone. Never raises EslError.

        ``sendmsg hangup`` is idempotent (a second one gets ``-ERR invalid
        session id``), so whatever goes wrong -- not sent, no reply, connection
        lost -- the link is told to send it again, now or after reconnecting.
        """
        try:
            self._drain_pending()
        except CallEnded:
            return
        if self._ended or self._hangup_sent:
            return
        try:
            if self.fence is not None:
                self.fence(self)
        except CallEnded:  # another daemon drives it: not ours to hang up
            return
        except EslError as exc:
            self.log.warning("hangup (%s): could not check the call is still ours (%s); "
                             "not sending it", cause, exc)
            return
        try:
            self._commands.hangup(self.uuid, cause)
        except EslError as exc:
            if names.ERR_NO_SUCH_CHANNEL in str(exc):
                self._ended = True
                return
            self.log.warning("hangup (%s) not confirmed: %s; switch %s sends it again",
                             cause, exc, self._commands.name)
            self._commands.hangup_later(self.uuid, cause)
            return
        self._hangup_sent = True
        self.log.info("hung up: %s", cause)

    # -- internals -----------------------------------------------------------------

    def _still_ours(self):
        """True if no other daemon drives the call (CallLost if one does); False if the switch
        could not be asked (the caller waits for the switch and asks again)."""
        if self.fence is None:
            return True
        try:
            self.fence(self)
        except CallEnded:
            self._ended = True
            raise
        except EslError as exc:
            self.log.warning("could not check the call is still ours: %s; asking again", exc)
            return False
        return True

    def _mark(self, variables):
        try:
            self._await_switch()
            while not self._still_ours():
                self._await_switch()
            reply = self._commands.api("uuid_setvar_multi %s %s" % (self.uuid, variables))
        except EslError as exc:  # the record lags one step; the flow itself goes on
            self.log.warning("could not mark the channel for recovery: %s", exc)
            return
        self._marked(reply)

    def _marked(self, reply):
        if not reply.startswith(names.OK):
            self.log.debug("could not mark the channel: %s", reply.strip())

    def await_completion(self, app, event_uuid, timeout):
        """The app's EXECUTE_COMPLETE. After CHANNEL_HANGUP it still comes, with the app's
        result (a bridge's SUCCESS arrives after the hangup in the captures of an answered
        and of a busy device: tests/fixtures/a_*, b_*), so we wait
        a little longer for it; HANGUP_COMPLETE without it means the app never ran.
        A lost switch does not end the wait: after a reconnect the completion still
        comes if the app is still running (events go to whoever is subscribed)."""
        loop = gevent.get_hub().loop
        deadline = loop.now() + timeout
        while True:
            event = self._next_event(deadline)
            if event is None:
                if self._ended:
                    raise CallEnded(self.hangup_reason())
                raise ActionTimeout("%s did not complete within %ss" % (app, timeout))
            if event.__class__ is _LateReply:
                self._late_reply(app, event.result)
                continue
            was_up = not self._ended
            self._note(event)
            if event.name == names.CHANNEL_EXECUTE_COMPLETE and event.get(names.APPLICATION_UUID) == event_uuid:
                return event
            if was_up and self._ended:
                deadline = min(deadline, loop.now() + _COMPLETION_AFTER_HANGUP_SECONDS)

    def _next_event(self, deadline):
        """The next queued event, or None once ``deadline`` (the hub loop's clock) has passed."""
        remaining = deadline - gevent.get_hub().loop.now()
        if remaining <= 0:
            return None
        try:
            return self._events.get(timeout=remaining)
        except Empty:
            return None

    def _late_reply(self, app, result):
        """A reply that came after its command timed out: True for ``+OK`` (taken);
        raises for ``-ERR`` (never ran); False if the connection ended first (still unknown)."""
        if not result.successful():
            return False
        text = result.value.get(names.REPLY_TEXT, "")
        self.log.info("late reply to %s: %s", app, text)
        if text.startswith(names.ERR):
            exc = EslError("execute %s on %s: %s" % (app, self.uuid, text))
            self._raise_if_gone(exc)
            raise exc
        return True

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
            self.log.warning("lost the event socket to switch %s; the channel stays parked there",
                             self._commands.name)
            return
        if event.__class__ is _LateReply:
            return  # its command's wait has ended already
        if event.name in _HANGUP_EVENTS:
            self._ended = True
            self.hangup_cause = event.get(names.HANGUP_CAUSE) or self.hangup_cause
            if event.name != names.CHANNEL_HANGUP:
                raise CallEnded(self.hangup_reason())

    def hangup_reason(self):
        return "caller hung up (%s)" % (self.hangup_cause or "unknown cause")
