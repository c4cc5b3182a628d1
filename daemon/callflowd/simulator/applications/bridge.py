"""``bridge <dial string>`` (mod_dptools): ring the phones the dial string names, connect the
caller to the one that answers, and stay until one side hangs up.

What each phone does is ``Scenario.phone(user)``; which endpoint decides the outcome, and
when, is ``dialstring.plan``; the phone's channel is replayed from the capture with the same
outcome (``bleg``). Outcomes: answered (CHANNEL_BRIDGE, then the caller hangs up
``talk_seconds`` later), busy (USER_BUSY), rang out (NO_ANSWER at the ring limit), the caller
cancelled while it rang (ORIGINATOR_CANCEL), nobody registered (USER_NOT_REGISTERED, no
B-leg). A failed bridge hangs the caller up unless ``continue_on_fail`` allows the cause.
"""

from callflowd.simulator import bleg, dialstring


def run(call, data):
    device, dial, ring_seconds, limit = dialstring.plan(
        call.scenario, data, call.leg.get_var("call_timeout"))
    with call.lock:
        if device == "unregistered":
            bleg.failed(call, "USER_NOT_REGISTERED", dial=dial)
            return None
        b_uuid = bleg.start(call, dial, device)
        rings = device != "busy" or ring_seconds > 0
        if rings:
            bleg.ring(call, device)
    if device == "no_answer" or ring_seconds >= limit:
        wait, outcome = limit, "NO_ANSWER"
    else:
        wait, outcome = ring_seconds, device
    if rings:
        call.wait(wait)
    with call.lock:
        if call.hung_up:
            # the caller went away while the phone rang
            bleg.gone_unanswered(call, "ORIGINATOR_CANCEL", b_uuid)
            return None
        if outcome == "NO_ANSWER":
            bleg.gone_unanswered(call, "NO_ANSWER", b_uuid)
            return None
        if outcome == "busy":
            bleg.busy(call, b_uuid, rings)
            return None
        bleg.answered(call)
    call.wait(None)
    with call.lock:
        bleg.hangup_bridged(call)
    return None
