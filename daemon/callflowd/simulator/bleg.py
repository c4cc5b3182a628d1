"""The B-leg of a bridge (the phone's channel), replayed from the captures, and what each
outcome does to the caller leg.

The phone's frames are the B-leg frames of the capture with the same outcome (see
``captures``): it answers (``PHONE_ANSWERS``), it is busy (``PHONE_BUSY_THEN_VOICEMAIL``), it
rings out (``PHONE_RINGS_OUT``). Each function here runs under the call's lock and does not
yield; the waiting between them is the bridge application's (``applications/bridge.py``).
"""

from callflowd.simulator import captures, templates
from callflowd.simulator.causes import DIALSTATUS, Q850, SURVIVABLE, q850

# what the phone does -> the capture whose B-leg does it
CAPTURE_OF = {"busy": captures.PHONE_BUSY_THEN_VOICEMAIL, "answer": captures.PHONE_ANSWERS,
              "no_answer": captures.PHONE_RINGS_OUT}


def frames(capture, first, last, nth=0):
    """(source, B-leg frames of ``capture`` from label ``first`` to label ``last`` included)."""
    source = templates.load(capture)
    start = source.find("bleg", first, nth)
    out = []
    for frame in source.frames[source.frames.index(start):]:
        if frame.role == "caller":
            continue
        out.append(frame)
        if frame.role == "bleg" and frame.label == last:
            break
    return source, out


def replay(call, capture, first, last, nth=0, overrides=None):
    source, found = frames(capture, first, last, nth)
    for frame in found:
        call.replay(source, frame, overrides)


def start(call, dial, device):
    """A new B-leg for ``dial``: the dial-string lookup's API event (busy), then the B-leg up to
    CS_CONSUME_MEDIA. Returns its uuid."""
    b_uuid = templates.new_uuid()
    rw = call.rewriter
    for name in captures.WITH_BLEG:
        capture = templates.load(name)
        rw.map_uuid(capture.bleg_uuid, b_uuid)
        if capture.dialed_user:
            # "sofia/internal/1000@...", "1000@127.0.0.1", "...;Outbound Call;1000"
            rw.add_token(capture.dialed_user + "@", dial.user + "@")
            rw.add_token(";" + capture.dialed_user, ";" + dial.user)
            rw.add_token("Extension " + capture.dialed_user, "Extension " + dial.user)
    rw.instants.clear()
    rw.session_ids["bleg"] = call.server.next_session_id()
    rw.dialed_user = dial.user
    rw.dial_variables = tuple(dial.variables.items())
    first = CAPTURE_OF[device]
    if first == captures.PHONE_BUSY_THEN_VOICEMAIL:
        source = templates.load(first)
        api = [f for f in source.frames if f.role == "system" and f.name == "API"][-1]
        call.replay(source, api)
    replay(call, first, "CHANNEL_OUTGOING", "CHANNEL_STATE:CS_CONSUME_MEDIA")
    return b_uuid


def ring(call, device):
    """The phone rings: B-leg CHANNEL_PROGRESS, then the caller's (answered capture)."""
    capture = captures.PHONE_RINGS_OUT if device == "no_answer" else captures.PHONE_ANSWERS
    replay(call, capture, "CHANNEL_PROGRESS", "CHANNEL_CALLSTATE:DOWN>RINGING")
    leg = call.leg
    leg.callee = ("Outbound Call", call.rewriter.dialed_user)
    call.apply_patch("ring")
    if not leg.moments["answered"] and not leg.media and not leg.moments["progress"]:
        leg.moments["progress"] = templates.now_usec()
        call.emit("CHANNEL_PROGRESS", {})


def busy(call, b_uuid, rang):
    """The phone answers 486: at once (busy capture), or after ringing, when the B-leg was
    RINGING, not DOWN."""
    source, found = frames(captures.PHONE_BUSY_THEN_VOICEMAIL, "CHANNEL_HANGUP", "CHANNEL_STATE:CS_DESTROY")
    for frame in found:
        overrides = {}
        if rang and frame.label in ("CHANNEL_HANGUP", "CHANNEL_STATE:CS_HANGUP"):
            overrides = {"Channel-Call-State": "RINGING"}
        elif rang and frame.label == "CHANNEL_CALLSTATE:DOWN>HANGUP":
            overrides = {"Original-Channel-Call-State": "RINGING"}
        call.replay(source, frame, overrides)
    failed(call, "USER_BUSY", "busy", b_uuid)


def gone_unanswered(call, cause, b_uuid):
    """The ringing phone is given up on: NO_ANSWER at the ring limit (rings-out capture), or
    ORIGINATOR_CANCEL when the caller went away first (the same frames, cause changed)."""
    overrides = {}
    if cause != "NO_ANSWER":
        overrides = {"Hangup-Cause": cause, "variable_hangup_cause": cause,
                     "variable_hangup_cause_q850": q850(cause)}
    source, found = frames(captures.PHONE_RINGS_OUT, "CHANNEL_HANGUP", "CHANNEL_STATE:CS_DESTROY")
    split = [f.label for f in found].index("CHANNEL_CALLSTATE:RINGING>HANGUP") + 1
    for frame in found[:split]:
        call.replay(source, frame, overrides)
    failed(call, cause, "no_answer", b_uuid)

    # the caller's EXECUTE_COMPLETE(bridge) comes before the rest of the B-leg's end
    def rest():
        for frame in found[split:]:
            call.replay(source, frame, overrides)
    call.after_complete(rest)


def answered(call):
    """The phone answers: B-leg answer, the caller answered, CHANNEL_BRIDGE (answered capture)."""
    leg = call.leg
    replay(call, captures.PHONE_ANSWERS, "CODEC", "CHANNEL_CALLSTATE:RINGING>ACTIVE")
    call.answer("bridge_media", "bridge_answer")
    source, found = frames(captures.PHONE_ANSWERS, "CHANNEL_OUTGOING", "CALL_UPDATE", nth=1)
    for frame in found:
        call.replay(source, frame)
        if frame.label == "CHANNEL_OUTGOING":
            leg.moments["bridged"] = templates.now_usec()
            call.bridged = True
            call.apply_patch("bridge")
            bridge = source.find("caller", "CHANNEL_BRIDGE")
            rewritten = call.rewriter.frame(bridge, source, templates.now_usec())
            leg.other = [(k, v) for k, v in rewritten if k == "Other-Type" or k.startswith("Other-Leg-")]
            call.emit("CHANNEL_BRIDGE", {})
        elif frame.label == "CHANNEL_STATE:CS_EXCHANGE_MEDIA":
            call.apply_patch("call_update")
            call.emit("CALL_UPDATE", {})
    call.after(call.scenario.talk_seconds, call.hangup, "NORMAL_CLEARING", "remote")


def hangup_bridged(call):
    """The caller hung up (or was hung up) while bridged: the phone follows (answered capture)."""
    cause = call.hangup_cause
    overrides = {}
    if cause != "NORMAL_CLEARING":
        overrides = {"Hangup-Cause": cause, "variable_hangup_cause": cause,
                     "variable_hangup_cause_q850": q850(cause)}
    source, found = frames(captures.PHONE_ANSWERS, "CHANNEL_HANGUP", "CHANNEL_STATE:CS_DESTROY")
    for frame in found:
        if frame.label == "CHANNEL_DESTROY":
            unbridge = {"variable_bridge_hangup_cause": cause}
            if call.hangup_origin == "local":
                unbridge["variable_sip_hangup_disposition"] = "send_bye"
            call.apply_patch("unbridge", unbridge)
            call.emit("CHANNEL_UNBRIDGE", {})
        call.replay(source, frame, overrides)


def failed(call, cause, patch_name=None, b_uuid=None, dial=None):
    """The caller's side of a failed originate: variables, maybe the caller's hangup."""
    leg = call.leg
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
        call.apply_patch(patch_name, overrides)
    else:
        # no B-leg at all (user/ with nobody registered): switch_ivr_originate.c sets these
        leg.set_var("dialed_user", dial.user)
        leg.set_var("dialed_domain", dial.domain)
        leg.set_var("originate_disposition", cause)
        leg.set_var("DIALSTATUS", DIALSTATUS.get(cause, cause))
        leg.set_var("originate_failed_cause", cause)
    if cause in SURVIVABLE or _continue_on_fail(leg, cause):
        return
    # without continue_on_fail the bridge hangs the caller up itself (busy-ends-call capture)
    call.hangup(cause, "local")


def _continue_on_fail(leg, cause):
    value = (leg.get_var("continue_on_fail") or "").strip()
    if value.lower() in ("true", "yes", "on", "1"):
        return True
    causes = {c.strip().upper() for c in value.split(",") if c.strip()}
    return cause in causes or Q850.get(cause) in causes
