"""Catching up with the switch after the daemon was away: a call taken back, a link back up.

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

Which applications get a waiting marker at all is the actions' to say (their
``LONG_APPLICATIONS``, collected in actions/__init__.py); the call is handed that set.
"""

from callflowd.calls import marker
from callflowd.esl import names
from callflowd.esl.event import Event

NOT_STARTED = "not started"
RUNNING = "running"
FINISHED = "finished"

# Unset together with the waiting marker when the application is sent, so that what the
# channel says afterwards belongs to this run of it.
_CLEARED_AT_START = {
    "bridge": (names.ORIGINATE_DISPOSITION,),
}


def waiting_variables(app, event_uuid):
    """The ``uuid_setvar_multi`` argument written ahead of long application ``app``."""
    return marker.waiting_variables(app, event_uuid, tuple((name, "") for name in _CLEARED_AT_START.get(app, ())))


def application_state(app, channel):
    """NOT_STARTED, RUNNING or FINISHED for ``app`` on ``channel`` (a uuid_dump Event)."""
    if app == "bridge":
        disposition = channel.get(names.VAR_ORIGINATE_DISPOSITION)
        if not disposition or disposition == names.UNDEFINED:
            return NOT_STARTED
        if disposition == "failure":
            return RUNNING
        if disposition == "SUCCESS" and channel.get(names.VAR_BRIDGE_TO):
            return RUNNING
        return FINISHED
    if channel.get(names.VAR_CURRENT_APPLICATION) == app:
        return RUNNING
    return NOT_STARTED


def completion_on(channel, app, event_uuid):
    """After a reconnect: ``app``'s EXECUTE_COMPLETE read from ``channel`` (its uuid_dump) if it
    ended while the link was down, else None (still running: its own event will come)."""
    if application_state(app, channel) is not FINISHED:
        return None
    headers = dict(channel.headers)
    headers.update({names.EVENT_NAME: names.CHANNEL_EXECUTE_COMPLETE, names.APPLICATION: app,
                    names.APPLICATION_UUID: event_uuid})
    return Event(headers)


class Resumption:
    """A call taken back after a restart, until its flow has caught up with the switch.

    ``record`` is the calls.marker.Marker found on the channel. The executor runs the
    marked node again; its applications that ran before the restart are skipped, the
    one that was running is waited for or has its outcome read from the channel, and
    from there on the call runs as any other. Each method ends the resumption
    (``call.resuming = None``) once the flow has caught up.
    """

    __slots__ = ("record",)

    def __init__(self, record):
        self.record = record

    @property
    def waiting_app(self):
        """The application the switch was running for us, or None (parked between steps)."""
        return self.record.waiting_app

    def ran_before(self, call, app):
        """For a quick application not waited for: True if it ran before the restart."""
        if self.record.waiting_app is not None:  # the node got as far as its long application
            call.log.debug("resuming: %s already ran", app)
            return True
        call.resuming = None  # parked between steps: the node runs afresh
        return False

    def execute(self, call, app, timeout):
        """For an application the node runs: None to run it, or the Event that stands for it."""
        record = self.record
        if record.waiting_app is None:  # parked between steps: the node runs afresh
            call.resuming = None
            return None
        if app != record.waiting_app:  # ran before the restart (set continue_on_fail, answer...)
            call.log.debug("resuming: %s already ran", app)
            return Event({})
        call.resuming = None
        channel = call.channel_state()
        state = application_state(app, channel)
        if state is NOT_STARTED:
            call.log.info("resuming: %s had not started; running it", app)
            return None
        if state is FINISHED:
            call.log.info("resuming: %s ended while we were away", app)
            return channel
        call.log.info("resuming: waiting for %s, still running", app)
        call.waiting = (app, record.waiting_event_uuid)
        try:
            return call.await_completion(app, record.waiting_event_uuid, timeout)
        finally:
            call.waiting = None
