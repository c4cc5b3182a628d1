"""``play_and_get_digits <min> <max> <tries> <timeout> <terminators> <file> <invalid_file>
<var_name> <regexp> [<digit_timeout>]`` (mod_dptools, switch_play_and_get_digits).

Each try: the prompt (a PLAYBACK_START/STOP pair), then the caller's next entry of
``Scenario.digits`` as DTMF events (laid out like the digits-entered capture), or nothing
until ``timeout`` ms. Valid input (min..max keys matching regexp) sets ``var_name`` and
``read_result`` ``success``; invalid input sets ``<var_name>_invalid`` and plays invalid_file;
the tries used up leave ``var_name`` unset. Fewer than 9 arguments: nothing happens.
"""

import logging
import re

log = logging.getLogger(__name__)


def run(call, data):
    args = (data or "").split(" ")
    if len(args) < 9:
        log.info("call %s: play_and_get_digits needs 9 arguments, got %r", call.uuid, data)
        return None
    try:
        min_digits, max_digits, tries, timeout = (int(a) for a in args[:4])
    except ValueError:
        return None
    terminators, prompt, invalid_file, var_name, regexp = args[4:9]
    leg = call.leg
    with call.lock:
        leg.set_var(var_name, None)
        leg.set_var("read_result", None)
    for _ in range(max(1, tries)):
        if not _play_prompt(call, prompt):
            return None
        keys = ""
        for key in call.next_digits():
            with call.lock:
                call.emit("DTMF", {"DTMF-Digit": key, "DTMF-Duration": "2240", "DTMF-Source": "RTP"})
            if key in terminators:
                break
            keys += key
            if len(keys) >= max_digits:
                break
        if not keys and call.wait(timeout / 1000.0):
            return None  # hung up while waiting for a key
        with call.lock:
            if not keys:
                leg.set_var("read_result", "timeout")
            elif len(keys) >= min_digits and re.search(regexp, keys):
                leg.set_var("read_result", "success")
                leg.set_var(var_name, keys)
                return None
            else:
                leg.set_var("read_result", "success")
                leg.set_var(var_name + "_invalid", keys)
        if invalid_file and not _play_prompt(call, invalid_file):
            return None
    return None


def _play_prompt(call, path):
    """One file played inside the application: PLAYBACK_START, a moment, PLAYBACK_STOP.
    False if the caller hung up meanwhile."""
    with call.lock:
        call.emit("PLAYBACK_START", {"Playback-File-Path": path})
    interrupted = call.wait(0.5)
    with call.lock:
        call.emit("PLAYBACK_STOP", {"Playback-File-Path": path,
                                    "Playback-Status": "break" if interrupted else "done"})
    return not interrupted
