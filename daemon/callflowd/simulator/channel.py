"""The caller leg as FreeSWITCH sees it, rendered into events laid out like the captures.

An event of a channel is: the core headers, maybe some headers of its own, the channel block
(switch_channel_event_set_data: channel data, the caller profile, the other leg's profile once
bridged, then, for most events, every channel variable), maybe more headers of its own. Which
of these an event has, in which order, and its Event-Calling-* come from one captured frame of
that event (``LAYOUTS``); the channel block comes from this model.
"""

import functools

from callflowd.simulator import captures, templates

# The captures by what they show (see ``captures``), short for the tables below.
ANSWERED = captures.PHONE_ANSWERS
BUSY = captures.PHONE_BUSY_THEN_VOICEMAIL
RANG_OUT = captures.PHONE_RINGS_OUT
DIGITS = captures.DIGITS_ENTERED

# event -> (template, label, nth): the captured frame whose layout the simulated event copies
LAYOUTS = {
    "CHANNEL_EXECUTE": (BUSY, "CHANNEL_EXECUTE:set", 2),
    "CHANNEL_EXECUTE_COMPLETE": (BUSY, "CHANNEL_EXECUTE_COMPLETE:set", 2),
    "CHANNEL_PROGRESS": (ANSWERED, "CHANNEL_PROGRESS", 0),
    "CODEC_READ": (BUSY, "CODEC", 0),
    "CODEC_WRITE": (BUSY, "CODEC", 1),
    "CHANNEL_PROGRESS_MEDIA": (BUSY, "CHANNEL_PROGRESS_MEDIA", 0),
    "CHANNEL_CALLSTATE": (BUSY, "CHANNEL_CALLSTATE:RINGING>EARLY", 0),
    "CHANNEL_ANSWER": (BUSY, "CHANNEL_ANSWER", 0),
    "CHANNEL_BRIDGE": (ANSWERED, "CHANNEL_BRIDGE", 0),
    "CALL_UPDATE": (ANSWERED, "CALL_UPDATE", 0),
    "CHANNEL_UNBRIDGE": (ANSWERED, "CHANNEL_UNBRIDGE", 0),
    "CHANNEL_HANGUP": (BUSY, "CHANNEL_HANGUP", 0),
    "CHANNEL_UNPARK": (BUSY, "CHANNEL_UNPARK", 0),
    "CHANNEL_STATE": (BUSY, "CHANNEL_STATE:CS_HANGUP", 0),
    "CHANNEL_HANGUP_COMPLETE": (BUSY, "CHANNEL_HANGUP_COMPLETE", 0),
    "CHANNEL_DESTROY": (BUSY, "CHANNEL_DESTROY", 0),
    "PLAYBACK_START": (BUSY, "PLAYBACK_START", 0),
    "PLAYBACK_STOP": (BUSY, "PLAYBACK_STOP", 0),
    "DTMF": (DIGITS, "DTMF", 0),
}

# name -> (template, (label, nth) before, (label, nth) after): the variables a step sets on the
# caller, as the difference of two consecutive caller frames of a capture.
PATCHES = {
    # the phone rings (CHANNEL_PROGRESS), answers, is bridged; the caller hangs up
    "ring": (ANSWERED, ("CHANNEL_EXECUTE:bridge", 0), ("CHANNEL_PROGRESS", 0)),
    "bridge_media": (ANSWERED, ("CHANNEL_PROGRESS", 0), ("CHANNEL_PROGRESS_MEDIA", 0)),
    "bridge_answer": (ANSWERED, ("CHANNEL_PROGRESS_MEDIA", 0), ("CHANNEL_ANSWER", 0)),
    "bridge": (ANSWERED, ("CHANNEL_ANSWER", 0), ("CHANNEL_BRIDGE", 0)),
    "call_update": (ANSWERED, ("CHANNEL_BRIDGE", 0), ("CALL_UPDATE", 0)),
    "remote_hangup": (ANSWERED, ("CALL_UPDATE", 0), ("CHANNEL_HANGUP", 0)),
    "unbridge": (ANSWERED, ("CHANNEL_HANGUP", 0), ("CHANNEL_UNBRIDGE", 0)),
    # the bridge fails USER_BUSY; answer; voicemail
    "busy": (BUSY, ("CHANNEL_EXECUTE:bridge", 0), ("CHANNEL_EXECUTE_COMPLETE:bridge", 0)),
    "answer_media": (BUSY, ("CHANNEL_EXECUTE:answer", 0), ("CHANNEL_PROGRESS_MEDIA", 0)),
    "answer": (BUSY, ("CHANNEL_PROGRESS_MEDIA", 0), ("CHANNEL_ANSWER", 0)),
    "answer_done": (BUSY, ("CHANNEL_ANSWER", 0), ("CHANNEL_EXECUTE_COMPLETE:answer", 0)),
    "voicemail_greeting": (BUSY, ("CHANNEL_EXECUTE:voicemail", 0), ("PLAYBACK_START", 0)),
    "playback_done": (BUSY, ("PLAYBACK_START", 0), ("PLAYBACK_STOP", 0)),
    "voicemail_record": (BUSY, ("PLAYBACK_STOP", 0), ("CHANNEL_HANGUP", 0)),
    "voicemail_done": (BUSY, ("CHANNEL_HANGUP", 0), ("CHANNEL_EXECUTE_COMPLETE:voicemail", 0)),
    # the phone rings until originate_timeout: NO_ANSWER
    "no_answer": (RANG_OUT, ("CHANNEL_PROGRESS", 0), ("CHANNEL_EXECUTE_COMPLETE:bridge", 0)),
}

_PROFILE_TIMES = {
    "Caller-Profile-Created-Time": "created",
    "Caller-Channel-Created-Time": "created",
    "Caller-Channel-Answered-Time": "answered",
    "Caller-Channel-Progress-Time": "progress",
    "Caller-Channel-Progress-Media-Time": "progress_media",
    "Caller-Channel-Hangup-Time": "hangup",
    "Caller-Channel-Bridged-Time": "bridged",
}

CALLSTATE_NUMBERS = {"DOWN": 0, "DIALING": 1, "RINGING": 2, "EARLY": 3, "ACTIVE": 4, "HELD": 5,
                     "RING_WAIT": 6, "HANGUP": 7, "UNHELD": 8}

CODEC_HEADERS = (
    ("Channel-Read-Codec-Name", "PCMU"), ("Channel-Read-Codec-Rate", "8000"),
    ("Channel-Read-Codec-Bit-Rate", "64000"), ("Channel-Write-Codec-Name", "PCMU"),
    ("Channel-Write-Codec-Rate", "8000"), ("Channel-Write-Codec-Bit-Rate", "64000"),
)


def layout(event):
    name, label, nth = LAYOUTS[event]
    return templates.load(name), templates.load(name).find("caller", label, nth)


@functools.lru_cache(maxsize=None)
def patch(name):
    """(source, names unset, (name, value) set) for one step, computed once."""
    source_name, (before, i), (after, j) = PATCHES[name]
    source = templates.load(source_name)
    unset, sets = templates.variable_patch(
        source.find("caller", before, i), source.find("caller", after, j))
    return source, unset, sets


def _section(name):
    if name in templates.CHANNEL_HEADERS:
        return 0
    if name.startswith("Caller-"):
        return 1
    if name == "Other-Type" or name.startswith("Other-Leg-"):
        return 2
    if name.startswith("variable_"):
        return 3
    return None


class CallerLeg:
    """The inbound leg: channel data, caller profile, other leg, variables, moments (µs)."""

    def __init__(self, uuid):
        self.uuid = uuid
        self.channel_name = ""
        self.state = "CS_EXECUTE"
        self.state_number = 4
        self.callstate = "RINGING"
        self.answer_state = "ringing"
        self.hangup_cause = None
        self.media = False
        self.read_codec = ("PCMU", "8000", "64000")
        self.moments = dict.fromkeys(templates.MOMENTS, 0)
        self.profile = []
        self.callee = None
        self.other = None
        self.variables = {}

    # -- variables: a set is delete + append (switch_channel_set_variable) ---------------------

    def set_var(self, name, value):
        key = name if name.startswith("variable_") else "variable_" + name
        self.variables.pop(key, None)
        if value is not None:
            self.variables[key] = value

    def get_var(self, name, default=None):
        return self.variables.get("variable_" + name, default)

    def apply(self, unset, sets, rewrite):
        for name in unset:
            self.variables.pop(name, None)
        for name, value in sets:
            self.set_var(name, rewrite(name, value))

    # -- the channel block -------------------------------------------------------------------

    def channel_pairs(self):
        pairs = [
            ("Channel-State", self.state),
            ("Channel-Call-State", self.callstate),
            ("Channel-State-Number", str(self.state_number)),
            ("Channel-Name", self.channel_name),
            ("Unique-ID", self.uuid),
            ("Call-Direction", "inbound"),
            ("Presence-Call-Direction", "inbound"),
            ("Channel-HIT-Dialplan", "true"),
            ("Channel-Call-UUID", self.uuid),
            ("Answer-State", self.answer_state),
        ]
        if self.hangup_cause:
            pairs.append(("Hangup-Cause", self.hangup_cause))
        if self.media:
            pairs.extend(CODEC_HEADERS)
            if self.read_codec[0] != "PCMU":
                pairs[-6:-3] = [("Channel-Read-Codec-Name", self.read_codec[0]),
                                ("Channel-Read-Codec-Rate", self.read_codec[1]),
                                ("Channel-Read-Codec-Bit-Rate", self.read_codec[2])]
        return pairs

    def profile_pairs(self):
        pairs = []
        for name, value in self.profile:
            moment = _PROFILE_TIMES.get(name)
            if moment is not None:
                value = str(self.moments[moment])
            pairs.append((name, value))
            # the callee id comes after the original caller id (CHANNEL_PROGRESS, answered capture)
            if name == "Caller-Orig-Caller-ID-Number" and self.callee:
                pairs.append(("Caller-Callee-ID-Name", self.callee[0]))
                pairs.append(("Caller-Callee-ID-Number", self.callee[1]))
        return pairs

    def block(self, with_variables):
        pairs = self.channel_pairs() + self.profile_pairs()
        if self.other:
            pairs.extend(self.other)
        if with_variables:
            pairs.extend(self.variables.items())
        return pairs

    def render(self, event, fields, rewriter, now):
        """The (name, value) pairs of ``event`` for this leg, laid out like the capture.

        ``fields`` gives the event's own headers (None leaves one out); the others keep the
        captured value, rewritten for this call. Event-Sequence is filled in when emitted.
        """
        source, frame = layout(event)
        with_variables = bool(frame.variables())
        out = []
        block = "before"
        section = 0
        for name, value in frame.pairs:
            if block == "before" and name == "Channel-State":
                block = "inside"
                out.extend(self.block(with_variables))
                continue
            if block == "inside":
                # channel data, Caller-*, Other-*, variable_*: in that order, once (a CODEC
                # event repeats some Channel-*-Codec-* headers after the block: busy capture)
                found = _section(name)
                if found is not None and found >= section:
                    section = found
                    continue
                block = "after"
            if name in fields:
                if fields[name] is not None:
                    out.append((name, fields[name]))
            else:
                out.append((name, rewriter.value(name, value, source, now)))
        return templates.fix_event_dates(out, now)

    def show_row(self, hostname, application, application_data, created_usec):
        """One row of ``show channels as json`` (the api_replies_during_call capture)."""
        profile = dict(self.profile)
        return {
            "uuid": self.uuid, "direction": "inbound",
            "created": templates.local_stamp(created_usec), "created_epoch": str(created_usec // 1000000),
            "name": self.channel_name, "state": self.state,
            "cid_name": profile.get("Caller-Caller-ID-Name", ""),
            "cid_num": profile.get("Caller-Caller-ID-Number", ""),
            "ip_addr": profile.get("Caller-Network-Addr", ""),
            "dest": profile.get("Caller-Destination-Number", ""),
            "application": application or "", "application_data": application_data or "",
            "dialplan": profile.get("Caller-Dialplan", ""), "context": profile.get("Caller-Context", ""),
            "read_codec": "PCMU" if self.media else "", "read_rate": "8000" if self.media else "",
            "read_bit_rate": "64000" if self.media else "",
            "write_codec": "PCMU" if self.media else "", "write_rate": "8000" if self.media else "",
            "write_bit_rate": "64000" if self.media else "",
            "secure": "", "hostname": hostname, "presence_id": "", "presence_data": "", "accountcode": "",
            "callstate": self.callstate,
            "callee_name": self.callee[0] if self.callee else "",
            "callee_num": self.callee[1] if self.callee else "",
            "callee_direction": "SEND" if self.other else "",
            "call_uuid": self.uuid if self.other else "",
            "sent_callee_name": self.callee[0] if self.other else "",
            "sent_callee_num": self.callee[1] if self.other else "",
            "initial_cid_name": profile.get("Caller-Caller-ID-Name", ""),
            "initial_cid_num": profile.get("Caller-Caller-ID-Number", ""),
            "initial_ip_addr": profile.get("Caller-Network-Addr", ""),
            "initial_dest": profile.get("Caller-Destination-Number", ""),
            "initial_dialplan": profile.get("Caller-Dialplan", ""),
            "initial_context": profile.get("Caller-Context", ""),
        }


# What a CHANNEL_PARK of a call from registered user 1000 on the internal profile (digest
# answered) carries that the captures' call from the external profile lacks, as FreeSWITCH
# 1.10.12 sent it (tests/realswitch/test_no_match_on_real_switch.py checks the real one).
REALM = "127.0.0.1"


def authenticated(pairs, user):
    """An event's headers as for a call from directory ``user``, authenticated by the switch."""
    changed = {"Caller-Context": "default", "variable_sofia_profile_name": "internal"}
    added = [("variable_sip_authorized", "true"), ("variable_sip_auth_username", user),
             ("variable_sip_auth_realm", REALM), ("variable_requested_user_name", user),
             ("variable_user_context", "default"), ("variable_user_name", user),
             ("variable_domain_name", REALM)]
    out = [(key, changed.get(key, value)) for key, value in pairs]
    if any(key.startswith("variable_") for key, _ in out):
        out.extend(added)
    return out
