"""Frames cut from the real captures, and the rewriting that turns them into this call's frames.

Template files (``templates/*.txt``, written by ``extract.py``) are captured frames, byte for
byte, each under a ``##### <role> <label> (frame <n> of <capture>)`` line. Two uses:

- replay: a B-leg or system frame is re-emitted with this call's values (``Rewriter``): the
  capture's uuids, numbers, names and timestamps are swapped for the simulation's; everything
  else (header names, order, SIP details, Event-Calling-*) stays as FreeSWITCH wrote it;
- model: a caller frame gives the layout of an event (which headers come before and after the
  channel block, whether variables are included) and, diffed with the previous caller frame,
  the variables a step sets (``variable_patch``).
"""

import datetime
import functools
import pathlib
import re
import time
import uuid as uuidlib

from callflowd.esl import protocol

TEMPLATE_DIR = pathlib.Path(__file__).parent / "templates"

# The event header block every event starts with (switch_event_prep_for_delivery).
CORE_HEADERS = (
    "Event-Name", "Core-UUID", "FreeSWITCH-Hostname", "FreeSWITCH-Switchname", "FreeSWITCH-IPv4",
    "FreeSWITCH-IPv6", "Event-Date-Local", "Event-Date-GMT", "Event-Date-Timestamp",
    "Event-Calling-File", "Event-Calling-Function", "Event-Calling-Line-Number", "Event-Sequence",
)

# switch_channel_event_set_basic_data: the channel block (Hangup-Cause once the channel is
# hung up, the codec headers once media is up: frames 81-95 of the busy-then-voicemail capture).
CHANNEL_HEADERS = frozenset((
    "Channel-State", "Channel-Call-State", "Channel-State-Number", "Channel-Name", "Unique-ID",
    "Call-Direction", "Presence-Call-Direction", "Channel-HIT-Dialplan", "Channel-Presence-ID",
    "Channel-Call-UUID", "Answer-State", "Hangup-Cause", "Channel-Read-Codec-Name",
    "Channel-Read-Codec-Rate", "Channel-Read-Codec-Bit-Rate", "Channel-Write-Codec-Name",
    "Channel-Write-Codec-Rate", "Channel-Write-Codec-Bit-Rate",
))

# Variables the execute machinery itself maintains; left out of the per-step patches.
MACHINERY_VARIABLES = frozenset((
    "variable_current_application", "variable_current_application_data",
    "variable_current_application_response",
    "variable_current_loop", "variable_total_loops",
))

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# A microsecond timestamp between 2001 and 2033.
USEC_RE = re.compile(r"^1[0-9]{15}$")

# Headers whose whole value is the dialed user ("1000" in the captures) in B-leg frames.
DIALED_USER_HEADERS = frozenset((
    "Caller-Callee-ID-Number", "Caller-Destination-Number", "Other-Leg-Callee-ID-Number",
    "Other-Leg-Destination-Number", "Sent-Callee-ID-Number", "variable_accountcode",
    "variable_dialed_user", "variable_effective_caller_id_number",
    "variable_last_sent_callee_id_number", "variable_sip_contact_user", "variable_sip_to_user",
))

MOMENTS = ("created", "progress", "progress_media", "answered", "bridged", "hangup")
_PROFILE_MOMENT_HEADERS = {
    "Caller-Profile-Created-Time": "created",
    "Caller-Channel-Created-Time": "created",
    "Caller-Channel-Progress-Time": "progress",
    "Caller-Channel-Progress-Media-Time": "progress_media",
    "Caller-Channel-Answered-Time": "answered",
    "Caller-Channel-Bridged-Time": "bridged",
    "Caller-Channel-Hangup-Time": "hangup",
}


class Frame:
    """One captured event: its role in the call, a label, decoded (name, value) pairs, body."""

    __slots__ = ("role", "label", "origin", "pairs", "body")

    def __init__(self, role, label, origin, pairs, body):
        self.role = role
        self.label = label
        self.origin = origin
        self.pairs = tuple(pairs)
        self.body = body

    @property
    def name(self):
        return self.pairs[0][1]

    def get(self, name, default=None):
        for key, value in self.pairs:
            if key == name:
                return value
        return default

    def variables(self):
        return [(k, v) for k, v in self.pairs if k.startswith("variable_")]

    def __repr__(self):
        return "<Frame %s %s %s>" % (self.role, self.label, self.origin)


class Source:
    """The frames cut from one capture, with the capture's own values the rewriter replaces."""

    def __init__(self, name, frames):
        self.name = name
        self.frames = frames
        callers = [f for f in frames if f.role == "caller"]
        blegs = [f for f in frames if f.role == "bleg"]
        self.caller_uuid = callers[0].get("Unique-ID") if callers else None
        self.bleg_uuid = blegs[0].get("Unique-ID") if blegs else None
        self.core_uuid = frames[0].get("Core-UUID")
        self.hostname = frames[0].get("FreeSWITCH-Hostname")
        self.caller_number = callers[0].get("Caller-Caller-ID-Number") if callers else None
        self.caller_name = callers[0].get("Caller-Caller-ID-Name") if callers else None
        self.destination = callers[0].get("Caller-Destination-Number") if callers else None
        self.dialed_user = blegs[0].get("Caller-Destination-Number") if blegs else None
        self.rfc2822_date = None
        self.sip_call_id = None
        # the {vars} of the capture's bridge dial string: the B-leg carries them as variables
        self.dial_variables = ()
        for frame in callers:
            if frame.label == "CHANNEL_EXECUTE:bridge":
                match = re.match(r"\{([^}]*)\}", frame.get("Application-Data") or "")
                if match:
                    self.dial_variables = tuple(
                        "variable_" + item.split("=", 1)[0].strip() for item in match.group(1).split(","))
                break
        # capture instant (µs) -> which moment of the caller leg it was
        self.caller_moments = {}
        for frame in callers:
            for key, value in frame.pairs:
                moment = _PROFILE_MOMENT_HEADERS.get(key)
                if moment and value != "0":
                    self.caller_moments.setdefault(value, moment)
                if key == "variable_RFC2822_DATE":
                    self.rfc2822_date = value
                if key == "variable_sip_call_id":
                    self.sip_call_id = value

    def find(self, role, label, nth=0):
        """The nth frame with this role and label (labels as extract.label_of makes them)."""
        matches = [f for f in self.frames if f.role == role and f.label == label]
        if len(matches) <= nth:
            raise KeyError("no %s %s #%d in template %s" % (role, label, nth, self.name))
        return matches[nth]


@functools.lru_cache(maxsize=None)
def load(name):
    """Parse ``templates/<name>.txt`` once."""
    data = (TEMPLATE_DIR / (name + ".txt")).read_bytes()
    frames = []
    pos = 0
    while pos < len(data):
        eol = data.index(b"\n", pos)
        marker = data[pos:eol].decode("utf-8")
        if not marker.startswith("##### "):
            raise ValueError("template %s: expected a marker at byte %d" % (name, pos))
        role, label, origin = marker[6:].split(" ", 2)
        pos = eol + 1
        end = data.index(b"\n\n", pos)
        head = dict(line.split(": ", 1) for line in data[pos:end].decode("utf-8").split("\n"))
        stop = end + 2 + int(head["Content-Length"])
        pairs, body = protocol.plain_event_pairs(data[end + 2:stop])
        frames.append(Frame(role, label, origin.strip("()"), pairs, body))
        pos = stop
    return Source(name, frames)


def variable_patch(before, after):
    """What turned ``before``'s variables into ``after``'s: (names unset, (name, value) set in order).

    A FreeSWITCH channel variable set is delete + append (switch_channel_set_variable), so the
    new list is the untouched old variables in their old order followed by everything set, in
    the order it was set. The longest such untouched prefix gives the smallest patch.
    """
    old = before.variables()
    new = after.variables()
    new_names = [k for k, _ in new]
    new_set = set(new_names)
    unset = [k for k, _ in old if k not in new_set]
    cut = 0
    for k in range(len(new), -1, -1):
        tail = set(new_names[k:])
        expected = [(key, value) for key, value in old if key in new_set and key not in tail]
        if list(new[:k]) == expected:
            cut = k
            break
    sets = [(k, v) for k, v in new[cut:] if k not in MACHINERY_VARIABLES]
    unset = [k for k in unset if k not in MACHINERY_VARIABLES]
    return unset, sets


# --- time -----------------------------------------------------------------------------------

def now_usec():
    return int(time.time() * 1000000)


def local_stamp(usec):
    """``2026-11-27 06:25:16``: switch_strftime("%Y-%m-%d %T") in local time, like *_stamp."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(usec / 1000000))


def event_date_headers(usec):
    """Event-Date-Local, Event-Date-GMT, Event-Date-Timestamp values for an event fired now."""
    seconds = usec / 1000000
    local = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))
    gmt = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(seconds))
    return local, gmt, str(usec)


def rfc2822(usec):
    """``Fri, 27 Nov 2026 06:25:16 +0000`` as the dialplan's ``strftime(%a, %d %b %Y %T %z)``."""
    moment = datetime.datetime.fromtimestamp(usec / 1000000).astimezone()
    return moment.strftime("%a, %d %b %Y %H:%M:%S %z")


def new_uuid():
    return str(uuidlib.uuid4())


class Rewriter:
    """Turns a captured frame into this call's: uuids, numbers, names, dates, timestamps.

    ``tokens`` maps capture strings to simulation strings (longest first, one pass, so a
    replacement is never rewritten again). ``uuids`` maps capture uuids to this call's; any
    other uuid (an Application-UUID, a SIP tag that looks like one) gets a fresh one, the same
    every time it is seen in this call. Timestamps: an instant that was a moment of the caller
    leg in the capture becomes that moment of the simulated caller (``0`` if it never
    happened); any other instant becomes the time its frame is emitted, the first time it is
    seen (FreeSWITCH stamps a moment, then fires the event that shows it).
    """

    def __init__(self, caller_moment, core_uuid, hostname):
        self._caller_moment = caller_moment
        self._core_uuid = core_uuid
        self._hostname = hostname
        self.uuids = {}
        self.instants = {}
        self.dialed_user = None
        self.dial_variables = ()
        self.session_ids = {}
        self._tokens = {}
        self._token_re = None
        self._rewritten = {}

    def map_uuid(self, capture_uuid, sim_uuid):
        if capture_uuid and self.uuids.get(capture_uuid) != sim_uuid:
            self.uuids[capture_uuid] = sim_uuid
            self._rewritten.clear()

    def add_token(self, capture_value, sim_value):
        if capture_value and capture_value != sim_value and self._tokens.get(capture_value) != sim_value:
            self._tokens[capture_value] = sim_value
            self._token_re = None
            self._rewritten.clear()

    def _rewrite_tokens(self, value):
        if not self._tokens:
            return value
        if self._token_re is None:
            alternatives = sorted(self._tokens, key=len, reverse=True)
            # digit boundaries: a number never matches inside a longer number
            self._token_re = re.compile("|".join(
                r"(?<![0-9])%s(?![0-9])" % re.escape(t) if t[-1:].isdigit() else re.escape(t)
                for t in alternatives))
        return self._token_re.sub(lambda m: self._tokens[m.group(0)], value)

    def _rewrite_uuid(self, match):
        found = match.group(0)
        if found not in self.uuids:
            self.uuids[found] = new_uuid()
        return self.uuids[found]

    def instant(self, value, source, now):
        moment = source.caller_moments.get(value)
        if moment is not None:
            sim = self._caller_moment(moment)
            return str(sim) if sim else "0"
        if value not in self.instants:
            self.instants[value] = now
        return str(self.instants[value])

    def value(self, name, value, source, now):
        if name == "Core-UUID":
            return self._core_uuid
        if name in ("FreeSWITCH-Hostname", "FreeSWITCH-Switchname"):
            return self._hostname
        if USEC_RE.match(value):
            return self.instant(value, source, now)
        if (self.dialed_user and value == source.dialed_user and name in DIALED_USER_HEADERS):
            return self.dialed_user
        done = self._rewritten.get(value)
        if done is None:
            done = self._rewrite_tokens(UUID_RE.sub(self._rewrite_uuid, value))
            self._rewritten[value] = done
        return done

    def frame(self, frame, source, now, overrides=None):
        """(name, value) pairs of ``frame`` rewritten for this call; dates and CDR recomputed."""
        out = []
        overrides = overrides or {}
        replaced = frame.role != "bleg"
        for name, value in frame.pairs:
            if name in source.dial_variables:
                # the simulated dial string's {vars} where the capture's were
                if not replaced:
                    out.extend(("variable_" + k, v) for k, v in self.dial_variables)
                    replaced = True
                continue
            if name in overrides:
                value = overrides[name]
            elif name == "variable_session_id" and frame.role in self.session_ids:
                value = self.session_ids[frame.role]
            else:
                value = self.value(name, value, source, now)
            out.append((name, value))
        return fix_event_dates(fix_cdr(out), now)


def fix_event_dates(pairs, now):
    local, gmt, stamp = event_date_headers(now)
    fixed = {"Event-Date-Local": local, "Event-Date-GMT": gmt, "Event-Date-Timestamp": stamp}
    return [(k, fixed.get(k, v)) for k, v in pairs]


# switch_channel_set_timestamps(): the CDR variables of CHANNEL_HANGUP_COMPLETE.
_STAMPED = ("start", "profile_start", "answer", "bridge", "progress", "progress_media", "end",
            "last_hold", "resurrect")


def fix_cdr(pairs):
    """Recompute *_epoch, *_stamp and the duration variables from the (rewritten) *_uepoch ones."""
    values = dict(pairs)
    if "variable_end_uepoch" not in values:
        return list(pairs)
    uepoch = {}
    for what in _STAMPED:
        raw = values.get("variable_%s_uepoch" % what)
        if raw is not None:
            uepoch[what] = int(raw)
    derived = {}
    for what, usec in uepoch.items():
        derived["variable_%s_epoch" % what] = str(usec // 1000000)
        if usec:
            derived["variable_%s_stamp" % what] = local_stamp(usec)
    derived.update(durations(
        start=uepoch.get("start", 0), profile_start=uepoch.get("profile_start", 0),
        answer=uepoch.get("answer", 0), bridge=uepoch.get("bridge", 0),
        progress=uepoch.get("progress", 0), progress_media=uepoch.get("progress_media", 0),
        end=uepoch.get("end", 0)))
    return [(k, derived.get(k, v)) for k, v in pairs]


def durations(start, profile_start, answer, bridge, progress, progress_media, end):
    """The duration variables, whole seconds/ms from truncated clocks as FreeSWITCH does."""
    def span(later, earlier, unit):
        return str(later // unit - earlier // unit)

    def spans(prefix, later, earlier, when=True):
        if not when:
            return {prefix + "sec": "0", prefix + "msec": "0", prefix + "usec": "0"}
        return {prefix + "sec": span(later, earlier, 1000000), prefix + "msec": span(later, earlier, 1000),
                prefix + "usec": str(later - earlier)}

    out = {
        "duration": span(end, start, 1000000), "mduration": span(end, start, 1000),
        "uduration": str(end - start),
    }
    out.update(spans("bill", end, answer, bool(answer)))
    out.update(spans("progress", progress, start, bool(progress)))
    out.update(spans("answer", answer, start, bool(answer)))
    out.update(spans("wait", bridge, start, bridge > start))
    out.update(spans("progress_media", progress_media, start, bool(progress_media)))
    # flow_bill*: from the profile's start, and only once answered (the busy-ends-call and
    # rings-out captures: never answered, flow_bill 0)
    out.update(spans("flow_bill", end, profile_start or start, bool(answer)))
    return {"variable_" + k: v for k, v in out.items()}
