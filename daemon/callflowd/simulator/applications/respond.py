"""``respond <code> [<reason>]`` (mod_sofia): a final SIP response to the unanswered INVITE.

A 3xx-6xx ends the channel with the cause sofia maps the code to
(sofia_glue_sip_cause_to_freeswitch); after answer, or for a 1xx/2xx, it does nothing.
``call.responded`` keeps ``(code, reason)`` for tests (no SIP is simulated).
"""

from callflowd.simulator.causes import SIP_TO_CAUSE


def run(call, data):
    code_text, _, reason = (data or "").partition(" ")
    try:
        code = int(code_text)
    except ValueError:
        code = 488  # mod_sofia: no code given
    with call.lock:
        answered = bool(call.leg.moments["answered"])
    if answered or code < 300:
        return None
    call.responded = (code, reason or None)
    call.hangup(SIP_TO_CAUSE.get(code, "NORMAL_UNSPECIFIED"), "local")
    return None
