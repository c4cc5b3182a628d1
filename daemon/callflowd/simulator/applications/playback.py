"""``playback <file>`` (mod_dptools): PLAYBACK_START, a simulated second, PLAYBACK_STOP.

The response is ``FILE PLAYED`` (the Event-UUID capture); a hangup cuts it short
(``Playback-Status: break``, no response). Keys pressed during it do not stop it.
"""


def run(call, data):
    with call.lock:
        call.emit("PLAYBACK_START", {"Playback-File-Path": data or ""})
    interrupted = call.wait(1.0)
    with call.lock:
        call.apply_patch("playback_done")
        call.emit("PLAYBACK_STOP", {"Playback-File-Path": data or "",
                                    "Playback-Status": "break" if interrupted else "done"})
    return None if interrupted else "FILE PLAYED"
