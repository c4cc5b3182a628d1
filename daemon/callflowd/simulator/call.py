"""One simulated call: the inbound leg's state machine, the applications, the bridged phone.

The caller leg arrives the way the captures show (context ``public``: ``set outside_call``,
``export RFC2822_DATE``, ``set esltest=true``, ``park``) and is then driven by ``sendmsg``.
Like a FreeSWITCH session thread, one greenlet per call runs the queued applications in order;
a hangup (the client's, a failed bridge's, or the simulated caller's) fires CHANNEL_HANGUP at
once, interrupts the running application, and the greenlet then winds the channel down.

Every change of the call's state happens under ``_lock`` and without yielding, so events
come out in one order for every client; the waits (ringing, talking, voicemail) happen
outside it. Durations are multiplied by the simulator's ``time_scale``.
"""

import dataclasses
import logging
import re

import gevent
import gevent.event
import gevent.lock
import gevent.queue

from callflowd.simulator import channel, templates

log = logging.getLogger(__name__)

B = channel.B
A = channel.A
C2 = channel.C2
B2 = "b2_device_busy_without_continue_on_fail"
F = channel.F

DEVICES = ("busy", "answer", "no_answer", "unregistered")

# Hangup causes and their numbers (hangup_cause_q850), from switch_types.h switch_call_cause_t
Q850 = {
    "UNALLOCATED_NUMBER": "1", "NO_ROUTE_DESTINATION": "3", "NORMAL_CLEARING": "16",
    "USER_BUSY": "17", "NO_USER_RESPONSE": "18", "NO_ANSWER": "19", "SUBSCRIBER_ABSENT": "20",
    "CALL_REJECTED": "21", "NUMBER_CHANGED": "22", "DESTINATION_OUT_OF_ORDER": "27",
    "INVALID_NUMBER_FORMAT": "28", "FACILITY_REJECTED": "29", "NORMAL_UNSPECIFIED": "31",
    "NORMAL_CIRCUIT_CONGESTION": "34", "NETWORK_OUT_OF_ORDER": "38",
    "NORMAL_TEMPORARY_FAILURE": "41", "SWITCH_CONGESTION": "42", "INCOMPATIBLE_DESTINATION": "88",
    "RECOVERY_ON_TIMER_EXPIRE": "102", "ORIGINATOR_CANCEL": "487", "LOSE_RACE": "502",
    "MANAGER_REQUEST": "503", "BLIND_TRANSFER": "600", "ATTENDED_TRANSFER": "601",
    "ALLOTTED_TIMEOUT": "602", "MEDIA_TIMEOUT": "604", "PICKED_OFF": "605",
    "USER_NOT_REGISTERED": "606", "PROGRESS_TIMEOUT": "607", "GATEWAY_DOWN": "609",
    "SYSTEM_SHUTDOWN": "701",
}


def known_cause(text, default="NORMAL_CLEARING"):
    """A hangup cause name as FreeSWITCH knows it; anything else becomes ``default``."""
    cause = (text or "").strip().upper()
    return cause if cause in Q850 else default

# sofia_glue_sip_cause_to_freeswitch(): the hangup cause for a SIP final response code
SIP_TO_CAUSE = {
    400: "NORMAL_TEMPORARY_FAILURE", 401: "CALL_REJECTED", 402: "CALL_REJECTED", 403: "CALL_REJECTED",
    404: "UNALLOCATED_NUMBER", 405: "SERVICE_UNAVAILABLE", 406: "SERVICE_NOT_IMPLEMENTED",
    408: "RECOVERY_ON_TIMER_EXPIRE", 410: "NUMBER_CHANGED", 480: "NO_USER_RESPONSE",
    484: "INVALID_NUMBER_FORMAT", 485: "NO_ROUTE_DESTINATION", 486: "USER_BUSY",
    487: "ORIGINATOR_CANCEL", 488: "INCOMPATIBLE_DESTINATION", 500: "NORMAL_TEMPORARY_FAILURE",
    501: "SERVICE_NOT_IMPLEMENTED", 502: "NETWORK_OUT_OF_ORDER", 503: "NORMAL_TEMPORARY_FAILURE",
    504: "RECOVERY_ON_TIMER_EXPIRE", 600: "USER_BUSY", 603: "CALL_REJECTED", 604: "NO_ROUTE_DESTINATION",
    606: "INCOMPATIBLE_DESTINATION",
}

# switch_ivr_originate.c: the DIALSTATUS a failed originate leaves on the caller.
DIALSTATUS = {"ORIGINATOR_CANCEL": "CANCEL", "USER_BUSY": "BUSY", "NO_ANSWER": "NOANSWER",
              "DESTINATION_OUT_OF_ORDER": "INVALIDARGS", "CALL_REJECTED": "DONTCALL"}

# switch_channel_handle_cause(): these never hang up the caller, continue_on_fail or not.
SURVIVABLE = frozenset(("NO_ANSWER", "NO_USER_RESPONSE", "ORIGINATOR_CANCEL"))

DEFAULT_RING_LIMIT = 60.0  # capture c: {call_timeout=5} in a dial string is ignored, 60 s

_WAKE = object()


@dataclasses.dataclass(frozen=True)
class Scenario:
    """What the simulated people do. Seconds are simulated seconds (times ``time_scale``).

    device: what the bridged phone does: ``answer`` after ``ring_seconds``; ``busy`` (486)
    after ``ring_seconds`` (0: at once, as in capture b); ``no_answer`` rings until the ring
    limit; ``unregistered``: no phone, USER_NOT_REGISTERED at once.
    talk_seconds: once bridged, the caller hangs up after this long.
    caller_hangup_after: if set, the caller hangs up this long after the last application
    started (whatever it is).
    voicemail_seconds: the caller hangs up this long into ``voicemail`` (unless
    caller_hangup_after is set).
    digits: what the caller keys in, one string per prompt of ``play_and_get_digits`` (each
    try of it takes the next one); ``""`` or none left: nothing, the try times out. Keys go
    out as DTMF events shaped like capture f; a terminator (``#``) ends the entry.
    phones: per dialled user, what that phone does (``{"1000": "busy"}``), for dial strings
    with several endpoints (ring groups); a user not named does what ``device`` says.
    """

    device: str = "answer"
    ring_seconds: float = 1.5
    talk_seconds: float = 4.0
    caller_hangup_after: float = None
    voicemail_seconds: float = 8.0
    digits: tuple = ()
    phones: tuple = ()  # of (user, behaviour); a dict is accepted and frozen

    def phone(self, user, endpoint=None):
        """What the phone of ``user`` does; a key naming the whole endpoint
        (``+14155550000@127.0.0.1:5099``, a carrier) wins over the user alone."""
        phones = dict(self.phones)
        if endpoint is not None:
            target = endpoint.split("/")[-1]
            if target in phones:
                return phones[target]
        return phones.get(user, self.device)

    def __post_init__(self):
        if self.device not in DEVICES:
            raise ValueError("scenario device must be one of %s, not %r" % (", ".join(DEVICES), self.device))
        for name in ("ring_seconds", "talk_seconds", "voicemail_seconds"):
            if getattr(self, name) < 0:
                raise ValueError("scenario %s must not be negative" % name)
        if self.caller_hangup_after is not None and self.caller_hangup_after < 0:
            raise ValueError("scenario caller_hangup_after must not be negative")
        if isinstance(self.phones, dict):
            object.__setattr__(self, "phones", tuple(sorted(self.phones.items())))
        for user, behaviour in self.phones:
            if behaviour not in DEVICES:
                raise ValueError("scenario phone %s must be one of %s, not %r"
                                 % (user, ", ".join(DEVICES), behaviour))
        if isinstance(self.digits, (list, str)):
            object.__setattr__(self, "digits", tuple([self.digits] if isinstance(self.digits, str)
                                                     else self.digits))


@dataclasses.dataclass(frozen=True)
class DialString:
    """The parts of a bridge argument the simulation needs (first endpoint only)."""

    variables: dict
    endpoint: str
    user: str
    domain: str

    @classmethod
    def parse(cls, data):
        variables = {}
        rest = data.strip()
        # {global vars} then [per-leg vars] in front of the first endpoint
        while rest[:1] in ("{", "["):
            close = "}" if rest[0] == "{" else "]"
            end = rest.find(close)
            if end < 0:
                break
            for item in re.split(r",(?![^']*'\s*$)", rest[1:end]):
                name, sep, value = item.partition("=")
                if sep:
                    variables[name.strip()] = value.strip().strip("'")
            rest = rest[end + 1:].lstrip()
        endpoint = re.split(r"[,|:]_:|[,|]", rest, maxsplit=1)[0]
        path = endpoint.split("/")
        target = path[-1] if path else endpoint
        user, _, domain = target.partition("@")
        return cls(variables, endpoint, user or "1000", domain)

    @classmethod
    def parse_all(cls, data):
        """Every endpoint: a list of groups (``|``: tried in turn) of endpoints (``,``: rung
        together), each with the ``{global}`` variables overlaid by its own ``[per-leg]`` ones."""
        rest = data.strip()
        shared = {}
        if rest.startswith("{") and "}" in rest:
            end = rest.index("}")
            shared = cls.parse(rest[:end + 1] + "x").variables
            rest = rest[end + 1:]
        groups = []
        for group_text in rest.split("|"):
            group = []
            for leg_text in _split_legs(group_text):
                leg = cls.parse(leg_text)
                group.append(cls(dict(shared, **leg.variables), leg.endpoint, leg.user, leg.domain))
            if group:
                groups.append(group)
        return groups or [cls.parse(data)]


def _split_legs(text):
    """Split ``[a=1,b=2]user/1000,[c=3]user/1001`` on the commas outside brackets."""
    legs, depth, current = [], 0, ""
    for char in text:
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        if char == "," and depth == 0:
            legs.append(current)
            current = ""
        else:
            current += char
    legs.append(current)
    return [leg.strip() for leg in legs if leg.strip()]


def _number(text, default):
    try:
        return float(text)
    except (TypeError, ValueError):
        return default


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
        self._server = server
        self._number = number
        self._leg = channel.CallerLeg(self.uuid)
        self._lock = gevent.lock.RLock()
        self._commands = gevent.queue.Queue()
        self._hungup = gevent.event.Event()
        self._ended = gevent.event.Event()
        self._caller_timer = None
        self._timers = []
        self._park_uuid = None
        self._last_app = ("park", None)
        self._current_app = None
        self._hangup_origin = None
        self._bridged = False
        self._worker = None
        self._after_complete = []
        self._digits = list(scenario.digits)  # what the caller will key in, prompt by prompt
        self.responded = None  # (code, reason) once ``respond`` sent a final response
        self._rewriter = templates.Rewriter(
            caller_moment=lambda moment: self._leg.moments.get(moment, 0),
            core_uuid=server.core_uuid, hostname=server.hostname)

    # -- what tests look at --------------------------------------------------------------------

    @property
    def variables(self):
        """The caller channel's variables now, without the ``variable_`` prefix."""
        with self._lock:
            return {k[9:]: v for k, v in self._leg.variables.items()}

    @property
    def ended(self):
        return self._ended.is_set()

    def wait_ended(self, timeout=5.0):
        """Block until the caller leg's CHANNEL_DESTROY has been sent; TimeoutError if not."""
        if not self._ended.wait(timeout):
            raise TimeoutError("call %s did not end within %s s" % (self.uuid, timeout))

    def set_variable(self, name, value):
        """uuid_setvar: no event of its own; shows in the next event with variables."""
        with self._lock:
            self._leg.set_var(name, value)

    def dump_pairs(self):
        """``uuid_dump``: the caller leg's channel block, caller profile and variables."""
        with self._lock:
            return [("Event-Name", "CHANNEL_DATA")] + self._leg.block(with_variables=True)

    def show_row(self, what):
        """This call's row of ``show channels as json`` or ``show calls as json``."""
        with self._lock:
            app, data = self._current_app or ("park", None)
            row = self._leg.show_row(self._server.hostname, app, data, self._leg.moments["created"])
        if what == "channels":
            return row
        keys = ("uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num",
                "ip_addr", "dest", "presence_id", "presence_data", "accountcode", "callstate",
                "callee_name", "callee_num", "callee_direction", "call_uuid", "hostname",
                "sent_callee_name", "sent_callee_num")
        out = {k: row[k] for k in keys}
        for key in ("uuid", "direction", "created", "created_epoch", "name", "state", "cid_name",
                    "cid_num", "ip_addr", "dest", "presence_id", "presence_data", "accountcode",
                    "callstate", "callee_name", "callee_num", "callee_direction", "sent_callee_name",
                    "sent_callee_num"):
            out["b_" + key] = ""
        out["call_created_epoch"] = ""
        return out

    def __repr__(self):
        return "<SimulatedCall %s %s>" % (self.uuid, "ended" if self.ended else "up")

    # -- arrival -------------------------------------------------------------------------------

    def arrive(self):
        """Emit the inbound leg's events up to CHANNEL_PARK (capture b, frames 4-18), start the
        call's greenlet. Does not yield: the events are queued for the clients on return."""
        source = templates.load(B)
        now = templates.now_usec()
        leg = self._leg
        leg.moments["created"] = now
        self._rewriter.session_ids["caller"] = self._server.next_session_id()
        for src_name in (A, B, C2, B2):
            src = templates.load(src_name)
            self._rewriter.map_uuid(src.caller_uuid, self.uuid)
            self._add_caller_tokens(src, now)
        park = source.find("caller", "CHANNEL_PARK")
        frames = source.frames[:source.frames.index(park) + 1]
        with self._lock:
            rendered = None
            for frame in frames:
                rendered = self._rewriter.frame(frame, source, now)
                self._server.emit(rendered, frame.body)
                if frame.label == "CHANNEL_EXECUTE:park":
                    self._park_uuid = dict(rendered)["Application-UUID"]
            # the parked channel as the model carries it on
            leg.channel_name = dict(rendered)["Channel-Name"]
            leg.profile = [(k, v) for k, v in rendered if k.startswith("Caller-")]
            leg.variables = {k: v for k, v in rendered if k.startswith("variable_")}
        self._worker = self._server.spawn(self._run)
        if self.scenario.caller_hangup_after is not None:
            self._arm_caller_hangup(self.scenario.caller_hangup_after)

    def _add_caller_tokens(self, source, now):
        rw = self._rewriter
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
        with self._lock:
            if self._hungup.is_set() or self._ended.is_set():
                return False
            leg = self._leg
            if origin == "remote" and not leg.moments["answered"]:
                cause = "ORIGINATOR_CANCEL"
            self.hangup_cause = cause
            self._hangup_origin = origin
            if origin == "remote" and leg.moments["answered"]:
                # capture a: the caller's BYE (200 OK sent back) before CHANNEL_HANGUP
                source, unset, sets = channel.patch("remote_hangup")
                sets = [(k, v) for k, v in sets if self._bridged or k != "variable_last_bridge_role"]
                leg.apply(unset, sets, self._rewrite_for(source))
            elif self._bridged:
                leg.set_var("last_bridge_role", "originator")
            leg.state_number = 10
            leg.answer_state = "hangup"
            leg.hangup_cause = cause
            self._emit("CHANNEL_HANGUP", {})
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
        handler = APPS.get(app)
        if handler is None:
            # switch_core_session_execute_application(): "Invalid Application", the channel is
            # hung up DESTINATION_OUT_OF_ORDER, no CHANNEL_EXECUTE at all.
            log.info("call %s: no such application %r", self.uuid, app)
            self.hangup("DESTINATION_OUT_OF_ORDER", "local")
            return
        app_uuid = event_uuid or templates.new_uuid()
        leg = self._leg
        with self._lock:
            if self._hungup.is_set():
                return
            # switch_ivr_parse_event: the loop variables, re-set for each sendmsg execute
            leg.set_var("current_loop", "1")
            leg.set_var("total_loops", "1")
            if event_uuid:
                leg.set_var("app_uuid", event_uuid)  # capture g
            if handler.media and not leg.media:
                # a media application on a channel without media pre-answers first (183),
                # before its CHANNEL_EXECUTE (capture g: playback)
                self._progress_media()
                source, _, sets = channel.patch("answer")
                leg.apply([], sets, self._rewrite_for(source))
            leg.set_var("app_uuid", None)
            # switch_core_session_exec: set, fire CHANNEL_EXECUTE, set again (capture b)
            leg.set_var("current_application", app)
            leg.set_var("current_application_data", arg)
            leg.set_var("current_application_response", None)
            self._current_app = (app, arg)
            self._last_app = (app, arg)
            self._emit("CHANNEL_EXECUTE", {
                "Application": app, "Application-Data": arg, "Application-UUID": app_uuid})
            leg.set_var("current_application_data", arg)
            leg.set_var("current_application", app)
            if self.scenario.caller_hangup_after is not None:
                self._arm_caller_hangup(self.scenario.caller_hangup_after)
        try:
            response = handler(self, arg)
        except Exception:
            log.exception("call %s: simulated application %s failed; hanging up", self.uuid, app)
            self.hangup("NORMAL_TEMPORARY_FAILURE", "local")
            response = None
        with self._lock:
            if response:
                leg.set_var("current_application_response", response)
            self._emit("CHANNEL_EXECUTE_COMPLETE", {
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
        """From CHANNEL_HANGUP to CHANNEL_DESTROY (capture b, frames 81-95)."""
        leg = self._leg
        with self._lock:
            if self._ended.is_set():
                return
            if not self._hungup.is_set():
                self.hangup("NORMAL_CLEARING", "local")
            self._cancel_timers()
            leg.set_var("current_loop", None)
            leg.set_var("total_loops", None)
            self._emit("CHANNEL_UNPARK", {})
            self._emit("CHANNEL_EXECUTE_COMPLETE", {
                "Application": "park", "Application-Data": None,
                "Application-Response": leg.get_var("current_application_response") or "_none_",
                "Application-UUID": self._park_uuid})
            leg.state = "CS_HANGUP"
            self._emit("CHANNEL_STATE", {})
            leg.moments["hangup"] = templates.now_usec()
            self._set_callstate("HANGUP")
            leg.state = "CS_REPORTING"
            leg.state_number = 11
            self._emit("CHANNEL_STATE", {})
            self._set_cdr_variables()
            self._emit("CHANNEL_HANGUP_COMPLETE", {"Hangup-Cause": self.hangup_cause})
            leg.state_number = 12
            self._emit("CHANNEL_DESTROY", {})
            leg.state = "CS_DESTROY"
            self._emit("CHANNEL_STATE", {})
            self._ended.set()
        self._server.call_ended(self)
        log.debug("call %s ended %s", self.uuid, self.hangup_cause)

    # -- helpers -------------------------------------------------------------------------------

    def _emit(self, event, fields):
        if self._server.skip_unwanted(event):
            return
        self._server.emit(self._leg.render(event, fields, self._rewriter, templates.now_usec()))

    def _replay(self, source, frame, overrides=None):
        if self._server.skip_unwanted(frame.name):
            return
        now = templates.now_usec()
        self._server.emit(self._rewriter.frame(frame, source, now, overrides), frame.body)

    def _rewrite_for(self, source):
        def rewrite(name, value):
            return self._rewriter.value(name, value, source, templates.now_usec())
        return rewrite

    def _apply_patch(self, name, overrides=None):
        source, unset, sets = channel.patch(name)
        if overrides:
            sets = [(k, overrides.get(k, v)) for k, v in sets]
        self._leg.apply(unset, sets, self._rewrite_for(source))

    def _set_callstate(self, callstate):
        old = self._leg.callstate
        self._leg.callstate = callstate
        self._emit("CHANNEL_CALLSTATE", {
            "Original-Channel-Call-State": old,
            "Channel-Call-State-Number": str(channel.CALLSTATE_NUMBERS[callstate])})

    def _progress_media(self):
        """183 with SDP: codecs, CHANNEL_PROGRESS_MEDIA, call state EARLY (capture b, answer)."""
        leg = self._leg
        leg.media = True
        self._emit("CODEC_READ", {})
        self._emit("CODEC_WRITE", {})
        leg.moments["progress_media"] = templates.now_usec()
        leg.answer_state = "early"
        self._apply_patch("answer_media")
        self._emit("CHANNEL_PROGRESS_MEDIA", {})
        self._set_callstate("EARLY")

    def _answer(self, patch_media, patch_answer):
        """200 OK: CHANNEL_ANSWER and call state ACTIVE, after early media if there was none."""
        leg = self._leg
        if leg.moments["answered"]:
            return
        if not leg.media:
            leg.media = True
            self._emit("CODEC_READ", {})
            self._emit("CODEC_WRITE", {})
            leg.moments["progress_media"] = templates.now_usec()
            leg.answer_state = "early"
            self._apply_patch(patch_media)
            self._emit("CHANNEL_PROGRESS_MEDIA", {})
            self._set_callstate("EARLY")
        leg.moments["answered"] = templates.now_usec()
        leg.answer_state = "answered"
        self._apply_patch(patch_answer)
        self._emit("CHANNEL_ANSWER", {})
        self._set_callstate("ACTIVE")

    def _wait(self, seconds):
        """Sleep ``seconds`` of simulated time; True as soon as the caller is hung up."""
        if seconds is None:
            self._hungup.wait()
            return True
        return self._hungup.wait(seconds * self._server.time_scale)

    def _arm_caller_hangup(self, seconds):
        if self._caller_timer is not None:
            self._caller_timer.kill(block=False)
        self._caller_timer = self._server.spawn_later(
            seconds * self._server.time_scale, self.hangup, "NORMAL_CLEARING", "remote")
        self._timers.append(self._caller_timer)

    def _after(self, seconds, func, *args):
        timer = self._server.spawn_later(seconds * self._server.time_scale, func, *args)
        self._timers.append(timer)
        return timer

    def _cancel_timers(self):
        current = gevent.getcurrent()
        for timer in self._timers:
            if timer is not current:
                timer.kill(block=False)
        self._timers = []

    def _set_cdr_variables(self):
        """switch_channel_set_timestamps() and the hangup variables (captures a, b, b2, c2)."""
        leg = self._leg
        m = leg.moments
        cause = self.hangup_cause
        leg.set_var("hangup_cause", cause)
        leg.set_var("hangup_cause_q850", Q850.get(cause, "16"))
        leg.set_var("digits_dialed", "none")
        stamps = (("start", m["created"]), ("profile_start", m["created"]), ("answer", m["answered"]),
                  ("bridge", m["bridged"]), ("progress", m["progress"]),
                  ("progress_media", m["progress_media"]), ("end", m["hangup"]))
        for what, usec in stamps:
            if usec:
                leg.set_var(what + "_stamp", templates.local_stamp(usec))
        for what, usec in (stamps[:4] + (("last_hold", 0),)):
            leg.set_var(what + "_epoch", str(usec // 1000000))
            leg.set_var(what + "_uepoch", str(usec))
            if what == "last_hold":
                leg.set_var("hold_accum_seconds", "0")
                leg.set_var("hold_accum_usec", "0")
                leg.set_var("hold_accum_ms", "0")
                leg.set_var("resurrect_epoch", "0")
                leg.set_var("resurrect_uepoch", "0")
        for what, usec in stamps[4:]:
            leg.set_var(what + "_epoch", str(usec // 1000000))
            leg.set_var(what + "_uepoch", str(usec))
        leg.set_var("last_app", self._last_app[0])
        if self._last_app[1]:
            leg.set_var("last_arg", self._last_app[1])
        leg.set_var("caller_id", '"%s" <%s>' % (self.caller_id_name, self.caller_id_number))
        spans = templates.durations(
            start=m["created"], profile_start=m["created"], answer=m["answered"], bridge=m["bridged"],
            progress=m["progress"], progress_media=m["progress_media"], end=m["hangup"])
        for unit in ("sec", "msec", "usec"):
            for what in ("duration", "bill", "progress", "answer", "wait", "progress_media", "flow_bill"):
                if what == "duration":
                    name = {"sec": "duration", "msec": "mduration", "usec": "uduration"}[unit]
                else:
                    name = what + unit
                leg.set_var(name, spans["variable_" + name])
        if self._hangup_origin == "local":
            leg.set_var("sip_hangup_disposition", "send_bye" if m["answered"] else "send_refuse")
        if leg.media:
            # the RTP statistics sofia adds at hangup (capture b); values as captured
            source = templates.load(B)
            final = source.find("caller", "CHANNEL_HANGUP_COMPLETE")
            for name, value in final.variables():
                if name.startswith(("variable_rtp_audio_in_", "variable_rtp_audio_out_",
                                    "variable_rtp_audio_rtcp_")):
                    leg.set_var(name, value)

    # -- bridge --------------------------------------------------------------------------------

    def _bleg_frames(self, source_name, first, last, nth=0):
        """The B-leg frames of a capture from label ``first`` to label ``last`` included."""
        source = templates.load(source_name)
        start = source.find("bleg", first, nth)
        frames = source.frames[source.frames.index(start):]
        out = []
        for frame in frames:
            if frame.role == "caller":
                continue
            out.append(frame)
            if frame.role == "bleg" and frame.label == last:
                break
        return source, out

    def _start_bleg(self, dial):
        b_uuid = templates.new_uuid()
        rw = self._rewriter
        for name in (A, B, C2):
            src = templates.load(name)
            rw.map_uuid(src.bleg_uuid, b_uuid)
            if src.dialed_user:
                # "sofia/internal/1000@...", "1000@127.0.0.1", "...;Outbound Call;1000"
                rw.add_token(src.dialed_user + "@", dial.user + "@")
                rw.add_token(";" + src.dialed_user, ";" + dial.user)
                rw.add_token("Extension " + src.dialed_user, "Extension " + dial.user)
        rw.instants.clear()
        rw.session_ids["bleg"] = self._server.next_session_id()
        rw.dialed_user = dial.user
        rw.dial_variables = tuple(dial.variables.items())
        return b_uuid

    def _ring(self, ring_source):
        """The phone rings: B-leg CHANNEL_PROGRESS, then the caller's (capture a)."""
        source, frames = self._bleg_frames(ring_source, "CHANNEL_PROGRESS", "CHANNEL_CALLSTATE:DOWN>RINGING")
        for frame in frames:
            self._replay(source, frame)
        leg = self._leg
        leg.callee = ("Outbound Call", self._rewriter.dialed_user)
        self._apply_patch("ring")
        if not leg.moments["answered"] and not leg.media and not leg.moments["progress"]:
            leg.moments["progress"] = templates.now_usec()
            self._emit("CHANNEL_PROGRESS", {})

    def _bridge_failed(self, cause, patch_name=None, b_uuid=None, dial=None):
        """The caller's side of a failed originate: variables, maybe the caller's hangup."""
        leg = self._leg
        if patch_name:
            overrides = {}
            if cause != {"busy": "USER_BUSY", "no_answer": "NO_ANSWER"}[patch_name]:
                overrides = {
                    "variable_last_bridge_hangup_cause": cause,
                    "variable_originate_disposition": cause,
                    "variable_DIALSTATUS": DIALSTATUS.get(cause, cause),
                    "variable_originate_failed_cause": cause,
                    "variable_originate_causes": "%s;%s" % (b_uuid, cause),
                }
            self._apply_patch(patch_name, overrides)
        else:
            # no B-leg at all (user/ with nobody registered): switch_ivr_originate.c sets these
            leg.set_var("dialed_user", dial.user)
            leg.set_var("dialed_domain", dial.domain)
            leg.set_var("originate_disposition", cause)
            leg.set_var("DIALSTATUS", DIALSTATUS.get(cause, cause))
            leg.set_var("originate_failed_cause", cause)
        if cause in SURVIVABLE or self._continue_on_fail(cause):
            return
        # capture b2: without continue_on_fail the bridge hangs the caller up itself
        self.hangup(cause, "local")

    def _continue_on_fail(self, cause):
        value = (self._leg.get_var("continue_on_fail") or "").strip()
        if value.lower() in ("true", "yes", "on", "1"):
            return True
        causes = {c.strip().upper() for c in value.split(",") if c.strip()}
        return cause in causes or Q850.get(cause) in causes

    def _ring_limit(self, dial):
        for name in ("leg_timeout", "originate_timeout"):
            if name in dial.variables:
                try:
                    return float(dial.variables[name])
                except ValueError:
                    pass
        try:
            return float(self._leg.get_var("call_timeout") or DEFAULT_RING_LIMIT)
        except ValueError:
            return DEFAULT_RING_LIMIT

    def _plan_bridge(self, data):
        """(behaviour, DialString, ring seconds, ring limit) of the endpoint that decides a bridge.

        One B-leg is simulated: with several endpoints (``a,b`` rung together, ``a|b`` one
        after the other, ``[leg_delay_start=N,leg_timeout=N]`` per leg) it is the first to
        answer, else the last group's failure (any endpoint ringing out -> NO_ANSWER, else
        any busy -> USER_BUSY, else USER_NOT_REGISTERED); earlier groups' time is added.
        """
        scenario = self.scenario
        groups = DialString.parse_all(data or "")
        elapsed = 0.0
        decision = None
        for group in groups:
            answered, ringing, busy, last = None, None, None, None
            for dial in group:
                behaviour = scenario.phone(dial.user, dial.endpoint)
                limit = self._ring_limit(dial)
                delay = _number(dial.variables.get("leg_delay_start"), 0.0)
                if behaviour == "answer" and delay + scenario.ring_seconds < limit:
                    at = delay + scenario.ring_seconds
                    if answered is None or at < answered[2]:
                        answered = ("answer", dial, at, limit)
                elif behaviour in ("answer", "no_answer"):  # rings out (an answer too late too)
                    if ringing is None or limit > ringing[3]:
                        ringing = (behaviour, dial, delay + scenario.ring_seconds, limit)
                elif behaviour == "busy":
                    busy = busy or ("busy", dial, delay + scenario.ring_seconds, limit)
                last = ("unregistered", dial, 0.0, limit)
            decision = answered or ringing or busy or last
            if answered:
                break
            if group is not groups[-1]:
                elapsed += decision[3] if decision is ringing else decision[2]
        behaviour, dial, ring, limit = decision
        return behaviour, dial, ring + elapsed, limit + elapsed

    def _app_bridge(self, data):
        device, dial, ring_seconds, limit = self._plan_bridge(data)
        with self._lock:
            if device == "unregistered":
                self._bridge_failed("USER_NOT_REGISTERED", dial=dial)
                return None
            b_uuid = self._start_bleg(dial)
            first = {"busy": B, "answer": A, "no_answer": C2}[device]
            # the dial-string lookup's API event, then the B-leg up to CS_CONSUME_MEDIA
            source = templates.load(first)
            if first == B:
                api = [f for f in source.frames if f.role == "system" and f.name == "API"][-1]
                self._replay(source, api)
            source, frames = self._bleg_frames(first, "CHANNEL_OUTGOING", "CHANNEL_STATE:CS_CONSUME_MEDIA")
            for frame in frames:
                self._replay(source, frame)
            rings = device != "busy" or ring_seconds > 0
            if rings:
                self._ring(C2 if device == "no_answer" else A)
        if device == "no_answer":
            wait, outcome = limit, "NO_ANSWER"
        elif ring_seconds >= limit:
            wait, outcome = limit, "NO_ANSWER"
        else:
            wait, outcome = ring_seconds, device
        if rings:
            self._wait(wait)
        with self._lock:
            if self._hungup.is_set():
                # the caller went away while the phone rang
                self._bleg_gone_unanswered("ORIGINATOR_CANCEL", b_uuid)
                return None
            if outcome == "NO_ANSWER":
                self._bleg_gone_unanswered("NO_ANSWER", b_uuid)
                return None
            if outcome == "busy":
                # capture b: 486 at once; after ringing the B-leg was RINGING, not DOWN
                source, frames = self._bleg_frames(B, "CHANNEL_HANGUP", "CHANNEL_STATE:CS_DESTROY")
                for frame in frames:
                    overrides = {}
                    if rings and frame.label in ("CHANNEL_HANGUP", "CHANNEL_STATE:CS_HANGUP"):
                        overrides = {"Channel-Call-State": "RINGING"}
                    elif rings and frame.label == "CHANNEL_CALLSTATE:DOWN>HANGUP":
                        overrides = {"Original-Channel-Call-State": "RINGING"}
                    self._replay(source, frame, overrides)
                self._bridge_failed("USER_BUSY", "busy", b_uuid)
                return None
            self._bridge_answered()
        self._wait(None)
        with self._lock:
            self._bleg_hangup_bridged()
        return None

    def _bleg_gone_unanswered(self, cause, b_uuid):
        """The ringing phone is given up on: NO_ANSWER at the ring limit (capture c2), or
        ORIGINATOR_CANCEL when the caller went away first (c2's frames, cause changed)."""
        overrides = {}
        if cause != "NO_ANSWER":
            overrides = {"Hangup-Cause": cause, "variable_hangup_cause": cause,
                         "variable_hangup_cause_q850": Q850.get(cause, "16")}
        source, frames = self._bleg_frames(C2, "CHANNEL_HANGUP", "CHANNEL_STATE:CS_DESTROY")
        split = [f.label for f in frames].index("CHANNEL_CALLSTATE:RINGING>HANGUP") + 1
        for frame in frames[:split]:
            self._replay(source, frame, overrides)
        self._bridge_failed(cause, "no_answer", b_uuid)

        # c2: the caller's EXECUTE_COMPLETE(bridge) comes before the rest of the B-leg's end
        def rest():
            for frame in frames[split:]:
                self._replay(source, frame, overrides)
        self._after_complete.append(rest)

    def _bridge_answered(self):
        """The phone answers: B-leg answer, the caller answered, CHANNEL_BRIDGE (capture a)."""
        leg = self._leg
        source, frames = self._bleg_frames(A, "CODEC", "CHANNEL_CALLSTATE:RINGING>ACTIVE")
        for frame in frames:
            self._replay(source, frame)
        self._answer("bridge_media", "bridge_answer")
        source, frames = self._bleg_frames(A, "CHANNEL_OUTGOING", "CALL_UPDATE", nth=1)
        for frame in frames:
            self._replay(source, frame)
            if frame.label == "CHANNEL_OUTGOING":
                leg.moments["bridged"] = templates.now_usec()
                self._bridged = True
                self._apply_patch("bridge")
                bridge = source.find("caller", "CHANNEL_BRIDGE")
                rewritten = self._rewriter.frame(bridge, source, templates.now_usec())
                leg.other = [(k, v) for k, v in rewritten if k == "Other-Type" or k.startswith("Other-Leg-")]
                self._emit("CHANNEL_BRIDGE", {})
            elif frame.label == "CHANNEL_STATE:CS_EXCHANGE_MEDIA":
                self._apply_patch("call_update")
                self._emit("CALL_UPDATE", {})
        self._after(self.scenario.talk_seconds, self.hangup, "NORMAL_CLEARING", "remote")

    def _bleg_hangup_bridged(self):
        """The caller hung up (or was hung up) while bridged: the phone follows (capture a)."""
        cause = self.hangup_cause
        overrides = {}
        if cause != "NORMAL_CLEARING":
            overrides = {"Hangup-Cause": cause, "variable_hangup_cause": cause,
                         "variable_hangup_cause_q850": Q850.get(cause, "16")}
        source, frames = self._bleg_frames(A, "CHANNEL_HANGUP", "CHANNEL_STATE:CS_DESTROY")
        for frame in frames:
            if frame.label == "CHANNEL_DESTROY":
                unbridge = {"variable_bridge_hangup_cause": cause}
                if self._hangup_origin == "local":
                    unbridge["variable_sip_hangup_disposition"] = "send_bye"
                self._apply_patch("unbridge", unbridge)
                self._emit("CHANNEL_UNBRIDGE", {})
            self._replay(source, frame, overrides)

    # -- the other applications ------------------------------------------------------------------

    def _app_set(self, data):
        name, sep, value = (data or "").partition("=")
        if name.strip():
            self._leg.set_var(name.strip(), value if sep and value != "" else None)

    def _app_multiset(self, data):
        data = data or ""
        delimiter = " "
        if data.startswith("^^") and len(data) > 2:
            delimiter, data = data[2], data[3:]
        for item in data.split(delimiter):
            if item:
                self._app_set(item)

    def _app_unset(self, data):
        if data:
            self._leg.set_var(data.strip(), None)

    def _app_export(self, data):
        name, sep, value = (data or "").partition("=")
        name = name.strip()
        if not name:
            return
        self._leg.set_var(name, value if sep else None)
        exported = [n for n in (self._leg.get_var("export_vars") or "").split(",") if n]
        if name not in exported:
            exported.append(name)
        self._leg.set_var("export_vars", ",".join(exported))

    def _app_answer(self, data):
        with self._lock:
            if not self._leg.moments["answered"]:
                self._answer("answer_media", "answer")
                self._apply_patch("answer_done")

    def _app_pre_answer(self, data):
        with self._lock:
            if not self._leg.media:
                self._progress_media()

    def _app_playback(self, data):
        with self._lock:
            self._emit("PLAYBACK_START", {"Playback-File-Path": data or ""})
        interrupted = self._wait(1.0)
        with self._lock:
            self._apply_patch("playback_done")
            self._emit("PLAYBACK_STOP", {"Playback-File-Path": data or "",
                                         "Playback-Status": "break" if interrupted else "done"})
        return None if interrupted else "FILE PLAYED"  # capture g

    def _app_sleep(self, data):
        try:
            milliseconds = float(data or 0)
        except ValueError:
            milliseconds = 0
        self._wait(milliseconds / 1000.0)

    def _app_voicemail(self, data):
        """Greeting, then "recording" until the caller hangs up (capture b); nothing is saved."""
        with self._lock:
            self._apply_patch("voicemail_greeting")
            source, frame = channel.layout("PLAYBACK_START")
            path = frame.get("Playback-File-Path")
            self._emit("PLAYBACK_START", {"Playback-File-Path": path})
            self._apply_patch("playback_done")
            self._emit("PLAYBACK_STOP", {"Playback-File-Path": path, "Playback-Status": "done"})
            # the beep, then recording (RECORD_START and its codec changes are not sent)
            self._apply_patch("voicemail_record")
            self._leg.read_codec = ("L16", "8000", "128000")  # recording: capture b
            if self.scenario.caller_hangup_after is None:
                self._after(self.scenario.voicemail_seconds, self.hangup, "NORMAL_CLEARING", "remote")
        self._wait(None)
        with self._lock:
            self._leg.read_codec = ("PCMU", "8000", "64000")
            self._apply_patch("voicemail_done")
        return None

    def _play_prompt(self, path):
        """One file played inside an application: PLAYBACK_START, a moment, PLAYBACK_STOP."""
        with self._lock:
            self._emit("PLAYBACK_START", {"Playback-File-Path": path})
        interrupted = self._wait(0.5)
        with self._lock:
            self._emit("PLAYBACK_STOP", {"Playback-File-Path": path,
                                         "Playback-Status": "break" if interrupted else "done"})
        return not interrupted

    def _app_play_and_get_digits(self, data):
        """``min max tries timeout terminators file invalid_file var_name regexp [digit_timeout]``
        (mod_dptools). Each try: the prompt, then the caller's next entry of
        ``scenario.digits`` as DTMF events (capture f), or nothing until ``timeout`` ms.
        Valid input (min..max keys matching regexp) sets ``var_name`` and ``read_result``
        ``success``; invalid input sets ``<var_name>_invalid`` and plays invalid_file; the
        tries used up leave ``var_name`` unset (switch_play_and_get_digits)."""
        args = (data or "").split(" ")
        if len(args) < 9:
            log.info("call %s: play_and_get_digits needs 9 arguments, got %r", self.uuid, data)
            return None
        try:
            min_digits, max_digits, tries, timeout = (int(a) for a in args[:4])
        except ValueError:
            return None
        terminators, prompt, invalid_file, var_name, regexp = args[4:9]
        with self._lock:
            self._leg.set_var(var_name, None)
            self._leg.set_var("read_result", None)
        for _ in range(max(1, tries)):
            if not self._play_prompt(prompt):
                return None
            entry = self._digits.pop(0) if self._digits else ""
            keys = ""
            for key in entry:
                with self._lock:
                    self._emit("DTMF", {"DTMF-Digit": key, "DTMF-Duration": "2240", "DTMF-Source": "RTP"})
                if key in terminators:
                    break
                keys += key
                if len(keys) >= max_digits:
                    break
            if not keys and self._wait(timeout / 1000.0):
                return None  # hung up while waiting for a key
            with self._lock:
                if not keys:
                    self._leg.set_var("read_result", "timeout")
                elif len(keys) >= min_digits and re.search(regexp, keys):
                    self._leg.set_var("read_result", "success")
                    self._leg.set_var(var_name, keys)
                    return None
                else:
                    self._leg.set_var("read_result", "success")
                    self._leg.set_var(var_name + "_invalid", keys)
            if invalid_file and not self._play_prompt(invalid_file):
                return None
        return None

    def _app_respond(self, data):
        """``respond <code> [<reason>]`` (mod_sofia): a final response to the unanswered INVITE
        ends the channel with the cause sofia maps the code to; after answer it does nothing."""
        code_text, _, reason = (data or "").partition(" ")
        try:
            code = int(code_text)
        except ValueError:
            code = 488  # mod_sofia: no code given
        with self._lock:
            answered = bool(self._leg.moments["answered"])
        if answered or code < 300:
            return None
        self.responded = (code, reason or None)
        self.hangup(SIP_TO_CAUSE.get(code, "NORMAL_UNSPECIFIED"), "local")
        return None

    def _app_hangup(self, data):
        self.hangup(known_cause(data), "local")

    def _app_park(self, data):
        self._wait(None)

    def _app_noop(self, data):
        return None


def _app(func, media=False):
    func.media = media
    return func


# application name -> handler; ``media``: needs media, so an unanswered channel pre-answers
APPS = {
    "set": _app(SimulatedCall._app_set),
    "multiset": _app(SimulatedCall._app_multiset),
    "unset": _app(SimulatedCall._app_unset),
    "export": _app(SimulatedCall._app_export),
    "answer": _app(SimulatedCall._app_answer),
    "pre_answer": _app(SimulatedCall._app_pre_answer),
    "bridge": _app(SimulatedCall._app_bridge),
    "playback": _app(SimulatedCall._app_playback, media=True),
    "voicemail": _app(SimulatedCall._app_voicemail, media=True),
    "sleep": _app(SimulatedCall._app_sleep),
    "hangup": _app(SimulatedCall._app_hangup),
    "play_and_get_digits": _app(SimulatedCall._app_play_and_get_digits, media=True),
    "respond": _app(SimulatedCall._app_respond),
    "park": _app(SimulatedCall._app_park),
    "log": _app(SimulatedCall._app_noop),
    # mod_dptools: a media bug in the background; the file itself is not simulated
    "record_session": _app(SimulatedCall._app_noop),
    "stop_record_session": _app(SimulatedCall._app_noop),
    "info": _app(SimulatedCall._app_noop),
}
