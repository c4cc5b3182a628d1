"""``sleep <milliseconds>`` (mod_dptools): wait, unless the caller hangs up first (no event;
a number that does not parse sleeps 0)."""


def run(call, data):
    try:
        milliseconds = float(data or 0)
    except ValueError:
        milliseconds = 0
    call.wait(milliseconds / 1000.0)
