"""The variables FreeSWITCH sets on a channel as it hangs up: timestamps, durations, cause.

switch_channel_set_timestamps() and the hangup variables, as CHANNEL_HANGUP_COMPLETE carries
them in every capture with a caller leg (answered, busy-then-voicemail, busy-ends-call,
phone-rings-out: see ``captures``).
"""

from callflowd.simulator import captures, templates
from callflowd.simulator.causes import q850

# The RTP statistics sofia adds at hangup once the channel had media, values as captured.
_RTP_PREFIXES = ("variable_rtp_audio_in_", "variable_rtp_audio_out_", "variable_rtp_audio_rtcp_")
_DURATIONS = ("duration", "bill", "progress", "answer", "wait", "progress_media", "flow_bill")
_DURATION_NAMES = {"sec": "duration", "msec": "mduration", "usec": "uduration"}


def set_hangup_variables(call):
    """Set the hangup variables on ``call``'s caller leg (under its lock, before the event)."""
    leg = call.leg
    m = leg.moments
    cause = call.hangup_cause
    leg.set_var("hangup_cause", cause)
    leg.set_var("hangup_cause_q850", q850(cause))
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
    app, arg = call.last_app
    leg.set_var("last_app", app)
    if arg:
        leg.set_var("last_arg", arg)
    leg.set_var("caller_id", '"%s" <%s>' % (call.caller_id_name, call.caller_id_number))
    spans = templates.durations(
        start=m["created"], profile_start=m["created"], answer=m["answered"], bridge=m["bridged"],
        progress=m["progress"], progress_media=m["progress_media"], end=m["hangup"])
    for unit in ("sec", "msec", "usec"):
        for what in _DURATIONS:
            name = _DURATION_NAMES[unit] if what == "duration" else what + unit
            leg.set_var(name, spans["variable_" + name])
    if call.hangup_origin == "local":
        leg.set_var("sip_hangup_disposition", "send_bye" if m["answered"] else "send_refuse")
    if leg.media:
        source = templates.load(captures.PHONE_BUSY_THEN_VOICEMAIL)
        final = source.find("caller", "CHANNEL_HANGUP_COMPLETE")
        for name, value in final.variables():
            if name.startswith(_RTP_PREFIXES):
                leg.set_var(name, value)
