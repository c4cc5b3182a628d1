"""One simulated call: the inbound leg's life from arrival to CHANNEL_DESTROY.

The caller leg arrives the way the captures show (context ``public``: ``set outside_call``,
``export RFC2822_DATE``, ``set esltest=true``, ``park``) and is then driven by ``sendmsg``.
Like a FreeSWITCH session thread, one greenlet per call runs the queued applications in order
(each one looked up in ``applications.REGISTRY``); a hangup (the client's, a failed bridge's,
or the simulated caller's) fires CHANNEL_HANGUP at once, interrupts the running application,
and the greenlet then winds the channel down.

Every change of the call's state happens under ``lock`` and without yielding, so events come
out in one order for every client; the waits (ringing, talking, voicemail) happen outside it.
Durations are multiplied by the simulator's ``time_scale``.

What applications use (see ``applications/__init__.py``): ``lock``, ``leg``, ``scenario``,
``emit``, ``replay``, ``apply_patch``, ``progress_media``, ``answer``, ``wait``, ``after``,
``after_complete``, ``hangup``.
"""

import logging

import gevent
import gevent.event
import gevent.lock
import gevent.queue

from callflowd.simulator import captures, cdr, channel, templates
from callflowd.simulator.applications import REGISTRY

log = logging.getLogger(__name__)

_WAKE = object()

_SHOW_CALLS_KEYS = (
    "uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num", "ip_addr",
    "dest", "presence_id", "presence_data", "accountcode", "callstate", "callee_name", "callee_num",
    "callee_direction", "call_uuid", "hostname", "sent_callee_name", "sent_callee_num")
_SHOW_CALLS_B_KEYS = tuple(k for k in _SHOW_CALLS_KEYS if k not in ("call_uuid", "hostname"))


class SimulatedCall:
    """A call placed on the simulator; the tests' and the demo's handle on it."""

    def __init__(self, server, number, destination, caller_id_number, caller_id_name, scenario):
        self.uuid = templates.new_uuid()
        self.destination = destination
        self.caller_id_number = caller_id_number
        self.caller_id_name = caller_id_name
        self.scenario = scenario
        self.applications = []
        self.hangup_cause = None
        self.hangup_origin = None  # "local" (the switch hung up) or "remote" (the caller did)
        self.bridged = False
        self.responded = None  # (code, reason) once ``respond`` sent a final response
        self.last_app = ("park", None)
        self.server = server
        self.leg = channel.CallerLeg(self.uuid)
        self.lock = gevent.lock.RLock()
        self.rewriter = templates.Rewriter(
            caller_moment=lambda moment: self.leg.moments.get(moment, 0),
            core_uuid=server.core_uuid, hostname=server.hostname)
        self._number = number
        self._commands = gevent.queue.Queue()
        self._hungup = gevent.event.Event()
        self._ended = gevent.event.Event()
        self._caller_timer = None
        self._timers = []
        self._park_uuid = None
        self._current_app = None
        self._worker = None
        self._after_complete = []
        self._digits = list(scenario.digits)  # what the caller will key in, prompt by prompt

    # -- what tests look at --------------------------------------------------------------------

    @property
    def variables(self):
        """The caller channel's variables now, without the ``variable_`` prefix."""
        with self.lock:
            return {k[9:]: v for k, v in self.leg.variables.items()}

    @property
    def ended(self):
        return self._ended.is_set()

    @property
    def hung_up(self):
        """True from the caller leg's CHANNEL_HANGUP on."""
        return self._hungup.is_set()

    def wait_ended(self, timeout=5.0):
        """Block until the caller leg's CHANNEL_DESTROY has been sent; TimeoutError if not."""
        if not self._ended.wait(timeout):
            raise TimeoutError("call %s did not end within %s s" % (self.uuid, timeout))

    def set_variable(self, name, value):
        """uuid_setvar: no event of its own; shows in the next event with variables."""
        with self.lock:
            self.leg.set_var(name, value)

    def dump_pairs(self):
        """``uuid_dump``: the caller leg's channel block, caller profile and variables."""
        with self.lock:
            return [("Event-Name", "CHANNEL_DATA")] + self.leg.block(with_variables=True)

    def show_row(self, what):
        """This call's row of ``show channels as json`` or ``show calls as json``."""
        with self.lock:
            app, data = self._current_app or ("park", None)
            row = self.leg.show_row(self.server.hostname, app, data, self.leg.moments["created"])
        if what == "channels":
            return row
        out = {k: row[k] for k in _SHOW_CALLS_KEYS}
        for key in _SHOW_CALLS_B_KEYS:
            out["b_" + key] = ""
        out["call_created_epoch"] = ""
        return out

    def __repr__(self):
        return "<SimulatedCall %s %s>" % (self.uuid, "ended" if self.ended else "up")

    # -- arrival -------------------------------------------------------------------------------

    def arrive(self):
        """Emit the inbound leg's events up to CHANNEL_PARK (frames 4-18 of the
        busy-then-voicemail capture), start the call's greenlet. Does not yield: the events are
        queued for the clients on return."""
        source = templates.load(captures.PHONE_BUSY_THEN_VOICEMAIL)
        now = templates.now_usec()
        leg = self.leg
        leg.moments["created"] = now
        self.rewriter.session_ids["caller"] = self.server.next_session_id()
        for name in captures.WITH_CALLER:
            capture = templates.load(name)
            self.rewriter.map_uuid(capture.caller_uuid, self.uuid)
            self._add_caller_tokens(capture, now)
        park = source.find("caller", "CHANNEL_PARK")
        frames = source.frames[:source.frames.index(park) + 1]
        with self.lock:
            rendered = None
            for frame in frames:
                rendered = self.rewriter.frame(frame, source, now)
                if self.scenario.authenticated_as:
                    rendered = channel.authenticated(rendered, self.scenario.authenticated_as)
                self.server.emit(rendered, frame.body)
                if frame.label == "CHANNEL_EXECUTE:park":
                    self._park_uuid = dict(rendered)["Application-UUID"]
            # the parked channel as the model carries it on
            leg.channel_name = dict(rendered)["Channel-Name"]
            leg.profile = [(k, v) for k, v in rendered if k.startswith("Caller-")]
            leg.variables = {k: v for k, v in rendered if k.startswith("variable_")}
        self._worker = self.server.spawn(self._run)
        if self.scenario.caller_hangup_after is not None:
            self._arm_caller_hangup(self.scenario.caller_hangup_after)

    def _add_caller_tokens(self, source, now):
        rw = self.rewriter
        if source.caller_number:
            rw.add_token(source.caller_number, self.caller_id_number)
            rw.add_token(source.caller_number.lstrip("+"), self.caller_id_number.lstrip("+"))
        rw.add_token(source.caller_name, self.caller_id_name)
        rw.add_token(source.destination, self.destination)
        rw.add_token(source.rfc2822_date, templates.rfc2822(now))
        if source.sip_call_id:
            # sipp's Call-ID "1-32225@127.0.0.1": keep the shape, one per call
            rw.add_token(source.sip_call_id, "%d-%s" % (self._number, source.sip_call_id.split("-", 1)[-1]))

    # -- commands from clients (connection greenlets) ----------------------------------------

    def execute(self, app, arg, event_uuid=None):
        """Queue an application (sendmsg call-command: execute); runs after the ones before."""
        self._commands.put(("execute", (app, arg, event_uuid)))

    def hangup(self, cause="NORMAL_CLEARING", origin="local"):
        """Hang the caller up: CHANNEL_HANGUP now, the rest from the call's greenlet.

        origin ``remote`` is the simulated caller hanging up (BYE, or CANCEL before answer),
        ``local`` the switch (a client's hangup or uuid_kill, a failed bridge).
        Returns False if the channel was already hanging up.
        """
        with self.lock:
            if self._hungup.is_set() or self._ended.is_set():
                return False
            leg = self.leg
            if origin == "remote" and not leg.moments["answered"]:
                cause = "ORIGINATOR_CANCEL"
            self.hangup_cause = cause
            self.hangup_origin = origin
            if origin == "remote" and leg.moments["answered"]:
                # the caller's BYE (200 OK sent back) before CHANNEL_HANGUP (answered capture)
                source, unset, sets = channel.patch("remote_hangup")
                sets = [(k, v) for k, v in sets if self.bridged or k != "variable_last_bridge_role"]
                leg.apply(unset, sets, self.rewrite_for(source))
            elif self.bridged:
                leg.set_var("last_bridge_role", "originator")
            leg.state_number = 10
            leg.answer_state = "hangup"
            leg.hangup_cause = cause
            self.emit("CHANNEL_HANGUP", {})
            if origin == "remote":
                leg.set_var("sip_hangup_disposition", "recv_bye" if leg.moments["answered"] else "recv_cancel")
            self._hungup.set()
            self._commands.put(_WAKE)
            log.debug("call %s hangup %s (%s)", self.uuid, cause, origin)
            return True

    # -- the call's greenlet -----------------------------------------------------------------

    def _run(self):
        try:
            while True:
                item = self._commands.get()
                if item is _WAKE or self._hungup.is_set():
                    break
                kind, payload = item
                if kind == "execute":
                    self._execute(*payload)
                if self._hungup.is_set():
                    break
        except gevent.GreenletExit:
            # the simulator is stopping: no more events for this call
            return
        except Exception:
            log.exception("call %s: the simulation failed; hanging the call up", self.uuid)
            self.hangup("NORMAL_TEMPORARY_FAILURE", "local")
        self._teardown()

    def _execute(self, app, arg, event_uuid):
        arg = arg if arg not in ("", None) else None
        self.applications.append((app, arg))
        application = REGISTRY.get(app)
        if application is None:
            # switch_core_session_execute_application(): "Invalid Application", the channel is
            # hung up DESTINATION_OUT_OF_ORDER, no CHANNEL_EXECUTE at all.
            log.info("call %s: no such application %r", self.uuid, app)
            self.hangup("DESTINATION_OUT_OF_ORDER", "local")
            return
        app_uuid = event_uuid or templates.new_uuid()
        leg = self.leg
        with self.lock:
            if self._hungup.is_set():
                return
            # switch_ivr_parse_event: the loop variables, re-set for each sendmsg execute
            leg.set_var("current_loop", "1")
            leg.set_var("total_loops", "1")
            if event_uuid:
                leg.set_var("app_uuid", event_uuid)  # the Event-UUID capture
            if application.media and not leg.media:
                # a media application on a channel without media pre-answers first (183),
                # before its CHANNEL_EXECUTE (playback in the Event-UUID capture)
                self.progress_media()
                source, _, sets = channel.patch("answer")
                leg.apply([], sets, self.rewrite_for(source))
            leg.set_var("app_uuid", None)
            # switch_core_session_exec: set, fire CHANNEL_EXECUTE, set again (busy capture)
            leg.set_var("current_application", app)
            leg.set_var("current_application_data", arg)
            leg.set_var("current_application_response", None)
            self._current_app = (app, arg)
            self.last_app = (app, arg)
            self.emit("CHANNEL_EXECUTE", {
                "Application": app, "Application-Data": arg, "Application-UUID": app_uuid})
            leg.set_var("current_application_data", arg)
            leg.set_var("current_application", app)
            if self.scenario.caller_hangup_after is not None:
                self._arm_caller_hangup(self.scenario.caller_hangup_after)
        try:
            response = application.run(self, arg)
        except Exception:
            log.exception("call %s: simulated application %s failed; hanging up", self.uuid, app)
            self.hangup("NORMAL_TEMPORARY_FAILURE", "local")
            response = None
        with self.lock:
            if response:
                leg.set_var("current_application_response", response)
            self.emit("CHANNEL_EXECUTE_COMPLETE", {
                "Application": app, "Application-Data": arg,
                "Application-Response": leg.get_var("current_application_response") or "_none_",
                "Application-UUID": app_uuid})
            leg.set_var("current_loop", None)
            leg.set_var("total_loops", None)
            self._current_app = None
            after, self._after_complete = self._after_complete, []
            for func in after:
                func()

    def _teardown(self):
        """From CHANNEL_HANGUP to CHANNEL_DESTROY (frames 81-95 of the busy-then-voicemail capture)."""
        leg = self.leg
        with self.lock:
            if self._ended.is_set():
                return
            if not self._hungup.is_set():
                self.hangup("NORMAL_CLEARING", "local")
            self._cancel_timers()
            leg.set_var("current_loop", None)
            leg.set_var("total_loops", None)
            self.emit("CHANNEL_UNPARK", {})
            self.emit("CHANNEL_EXECUTE_COMPLETE", {
                "Application": "park", "Application-Data": None,
                "Application-Response": leg.get_var("current_application_response") or "_none_",
                "Application-UUID": self._park_uuid})
            leg.state = "CS_HANGUP"
            self.emit("CHANNEL_STATE", {})
            leg.moments["hangup"] = templates.now_usec()
            self.set_callstate("HANGUP")
            leg.state = "CS_REPORTING"
            leg.state_number = 11
            self.emit("CHANNEL_STATE", {})
            cdr.set_hangup_variables(self)
            self.emit("CHANNEL_HANGUP_COMPLETE", {"Hangup-Cause": self.hangup_cause})
            leg.state_number = 12
            self.emit("CHANNEL_DESTROY", {})
            leg.state = "CS_DESTROY"
            self.emit("CHANNEL_STATE", {})
            self._ended.set()
        self.server.call_ended(self)
        log.debug("call %s ended %s", self.uuid, self.hangup_cause)

    # -- for the applications: events ----------------------------------------------------------

    def emit(self, event, fields):
        """Fire ``event`` of the caller leg, laid out like its capture (``channel.LAYOUTS``)."""
        if self.server.skip_unwanted(event):
            return
        self.server.emit(self.leg.render(event, fields, self.rewriter, templates.now_usec()))

    def replay(self, source, frame, overrides=None):
        """Fire a captured frame (a B-leg's, a system event) rewritten for this call."""
        if self.server.skip_unwanted(frame.name):
            return
        now = templates.now_usec()
        self.server.emit(self.rewriter.frame(frame, source, now, overrides), frame.body)

    def rewrite_for(self, source):
        def rewrite(name, value):
            return self.rewriter.value(name, value, source, templates.now_usec())
        return rewrite

    def apply_patch(self, name, overrides=None):
        """Set on the caller the variables a captured step set (``channel.PATCHES``)."""
        source, unset, sets = channel.patch(name)
        if overrides:
            sets = [(k, overrides.get(k, v)) for k, v in sets]
        self.leg.apply(unset, sets, self.rewrite_for(source))

    def set_callstate(self, callstate):
        old = self.leg.callstate
        self.leg.callstate = callstate
        self.emit("CHANNEL_CALLSTATE", {
            "Original-Channel-Call-State": old,
            "Channel-Call-State-Number": str(channel.CALLSTATE_NUMBERS[callstate])})

    def progress_media(self):
        """183 with SDP: codecs, CHANNEL_PROGRESS_MEDIA, call state EARLY (busy capture, answer)."""
        leg = self.leg
        leg.media = True
        self.emit("CODEC_READ", {})
        self.emit("CODEC_WRITE", {})
        leg.moments["progress_media"] = templates.now_usec()
        leg.answer_state = "early"
        self.apply_patch("answer_media")
        self.emit("CHANNEL_PROGRESS_MEDIA", {})
        self.set_callstate("EARLY")

    def answer(self, patch_media, patch_answer):
        """200 OK: CHANNEL_ANSWER and call state ACTIVE, after early media if there was none."""
        leg = self.leg
        if leg.moments["answered"]:
            return
        if not leg.media:
            leg.media = True
            self.emit("CODEC_READ", {})
            self.emit("CODEC_WRITE", {})
            leg.moments["progress_media"] = templates.now_usec()
            leg.answer_state = "early"
            self.apply_patch(patch_media)
            self.emit("CHANNEL_PROGRESS_MEDIA", {})
            self.set_callstate("EARLY")
        leg.moments["answered"] = templates.now_usec()
        leg.answer_state = "answered"
        self.apply_patch(patch_answer)
        self.emit("CHANNEL_ANSWER", {})
        self.set_callstate("ACTIVE")

    def after_complete(self, func):
        """Run ``func`` (under the lock) right after the running application's EXECUTE_COMPLETE."""
        self._after_complete.append(func)

    def next_digits(self):
        """What the caller keys in at the next prompt (``""``: nothing)."""
        return self._digits.pop(0) if self._digits else ""

    # -- for the applications: time ------------------------------------------------------------

    def wait(self, seconds):
        """Sleep ``seconds`` of simulated time (None: until hangup); True as soon as the caller
        is hung up."""
        if seconds is None:
            self._hungup.wait()
            return True
        return self._hungup.wait(seconds * self.server.time_scale)

    def after(self, seconds, func, *args):
        """Run ``func(*args)`` in ``seconds`` of simulated time, unless the call ends first."""
        timer = self.server.spawn_later(seconds * self.server.time_scale, func, *args)
        self._timers.append(timer)
        return timer

    def _arm_caller_hangup(self, seconds):
        if self._caller_timer is not None:
            self._caller_timer.kill(block=False)
        self._caller_timer = self.server.spawn_later(
            seconds * self.server.time_scale, self.hangup, "NORMAL_CLEARING", "remote")
        self._timers.append(self._caller_timer)

    def _cancel_timers(self):
        current = gevent.getcurrent()
        for timer in self._timers:
            if timer is not current:
                timer.kill(block=False)
        self._timers = []
