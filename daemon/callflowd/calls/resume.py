"""Where an application stands, read from the switch after the daemon was away.

The event socket does not replay what happened while it was down, so a call taken
back is judged from ``uuid_dump``. Facts checked on FreeSWITCH 1.10.12 (see
tests/realswitch/test_recovery_on_real_switch.py):

- ``bridge``: ``originate_disposition`` is ``failure`` while the phone rings,
  ``SUCCESS`` once answered, and the cause (``USER_BUSY``, ``NO_ANSWER``...) once
  failed. ``bridge_to`` is set only while the two legs are connected. We unset
  ``originate_disposition`` together with the waiting marker, so an empty one means
  the bridge never started.
- any other application: ``current_application`` names the last one started. While
  it is ours the app may still run, or may have ended with the caller still parked:
  the switch does not say which, so we wait for its end with the action's own bound.
- a ``sendmsg`` queued while a bridge rings runs at once, not after the bridge (the
  originate loop parses the caller's messages), so a "done" marker queued behind the
  app can't tell us either.
"""

NOT_STARTED = "not started"
RUNNING = "running"
FINISHED = "finished"

# Applications worth a recovery record, with the variables cleared when one starts.
LONG_APPLICATIONS = {
    "bridge": (("originate_disposition", ""),),
    "voicemail": (),
    "playback": (),
    "play_and_get_digits": (),
}


def application_state(app, channel):
    """NOT_STARTED, RUNNING or FINISHED for ``app`` on ``channel`` (a uuid_dump Event)."""
    if app == "bridge":
        disposition = channel.get("variable_originate_disposition")
        if not disposition or disposition == "_undef_":
            return NOT_STARTED
        if disposition == "failure":
            return RUNNING
        if disposition == "SUCCESS" and channel.get("variable_bridge_to"):
            return RUNNING
        return FINISHED
    if channel.get("variable_current_application") == app:
        return RUNNING
    return NOT_STARTED
