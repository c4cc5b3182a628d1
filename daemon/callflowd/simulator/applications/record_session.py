"""``record_session <path> [+<seconds>]`` and ``stop_record_session <path>|all`` (mod_dptools).

FreeSWITCH starts (or stops) a media bug recording both directions into ``path`` and the
application returns at once; the flow goes on while it records. Not simulated: the file (nothing
is written) and RECORD_START/RECORD_STOP events (never sent, see the package docstring).
"""


def start(call, data):
    return None


def stop(call, data):
    return None
