"""``voicemail <profile> <domain> <box>`` (mod_voicemail): the greeting, then "recording" until
the caller hangs up (``Scenario.voicemail_seconds`` in, unless ``caller_hangup_after`` is set).

Laid out like the busy-then-voicemail capture: the greeting's PLAYBACK_START/STOP pair, the
beep, the read codec switched to L16 while recording. Nothing is saved; RECORD_START/STOP, the
codec-change events and all but the first greeting's PLAYBACK pair are not sent.
"""

from callflowd.simulator import channel


def run(call, data):
    with call.lock:
        call.apply_patch("voicemail_greeting")
        source, frame = channel.layout("PLAYBACK_START")
        path = frame.get("Playback-File-Path")
        call.emit("PLAYBACK_START", {"Playback-File-Path": path})
        call.apply_patch("playback_done")
        call.emit("PLAYBACK_STOP", {"Playback-File-Path": path, "Playback-Status": "done"})
        # the beep, then recording (RECORD_START and its codec changes are not sent)
        call.apply_patch("voicemail_record")
        call.leg.read_codec = ("L16", "8000", "128000")  # recording
        if call.scenario.caller_hangup_after is None:
            call.after(call.scenario.voicemail_seconds, call.hangup, "NORMAL_CLEARING", "remote")
    call.wait(None)
    with call.lock:
        call.leg.read_codec = ("PCMU", "8000", "64000")
        call.apply_patch("voicemail_done")
    return None
