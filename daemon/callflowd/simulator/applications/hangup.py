"""``hangup [cause]`` (mod_dptools): the switch hangs the caller up with ``cause`` (a cause
name FreeSWITCH knows, else NORMAL_CLEARING)."""

from callflowd.simulator.causes import known_cause


def run(call, data):
    call.hangup(known_cause(data), "local")
