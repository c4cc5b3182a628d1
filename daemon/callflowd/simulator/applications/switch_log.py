"""``log [level] message`` and ``info`` (mod_dptools): they write to the switch's log only; no
event, nothing on the channel."""


def log(call, data):
    return None


def info(call, data):
    return None
