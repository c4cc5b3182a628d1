"""After every (re)connect of a switch: catch up with the calls on it, and take back ours.

The switch is the source of truth (calls/marker.py); the event socket never replays
what happened while it was down. So on every connect:

- each call still in memory for that switch reads its channel (``uuid_dump``): gone
  means the caller hung up while we were away (the flow ends); an application that
  ended meanwhile has its outcome read from the channel and handed to the flow;
- ``show channels as json`` lists the live channels; one whose marker names this
  daemon and that no call in memory holds (the daemon was restarted, ``kill -9``
  included) is handed to the router at the node it had reached; an inbound channel
  still in the dialplan's ``park`` with no marker arrived while we were away and is
  routed as if its CHANNEL_PARK had just come (only channels created before the
  connection: a later one's CHANNEL_PARK reached us, routed or not).

``show channels`` lags the events by about a second, so the listing runs once at
once and once more after that lag; a call the router already has is never taken twice.
"""

import json
import logging
import time

import gevent
from gevent.pool import Group

from callflowd.calls.marker import Marker
from callflowd.errors import CallEnded, EslError
from callflowd.esl import names, protocol
from callflowd.esl.event import Event

log = logging.getLogger(__name__)

SHOW_CHANNELS_LAG_SECONDS = 1.5


class Recovery:
    """``on_connected(link)`` is a Service hook; later sweeps run in an owned Group."""

    def __init__(self, router, lag=SHOW_CHANNELS_LAG_SECONDS):
        self.router = router
        self.lag = lag
        self._later = Group()
        self._connected_at = {}  # switch name -> wall-clock second of its last connect

    def on_connected(self, link):
        self._connected_at[link.name] = time.time()
        for call in self.router.calls_on(link):
            self._catch_up(call, link)
        found = self._sweep(link)
        later = self._later.spawn(self._sweep_later, link, found)
        later.link_exception(lambda g: log.error("switch %s: call recovery failed", link.name,
                                                 exc_info=g.exc_info))

    def stop(self):
        self._later.kill(block=True, timeout=5)

    def _sweep_later(self, link, found):
        gevent.sleep(self.lag)  # let show channels catch up with the events (~1 s on 1.10.12)
        found += self._sweep(link)
        if found:
            log.info("switch %s: recovery took back %d calls", link.name, found)

    def _catch_up(self, call, link):
        try:
            channel = read_channel(link, call.uuid)
        except EslError as exc:
            call.log.warning("could not read the channel after reconnecting: %s", exc)
            return
        if channel is None:
            call.log.info("the channel ended while switch %s was unreachable", link.name)
            call.deliver(Event({names.EVENT_NAME: names.CHANNEL_HANGUP_COMPLETE, names.UNIQUE_ID: call.uuid,
                                names.HANGUP_CAUSE: names.NORMAL_CLEARING}))
            return
        try:
            call.catch_up(channel)
        except CallEnded:
            pass

    def _sweep(self, link):
        router = self.router
        try:
            listing = json.loads(link.api("show channels as json") or "{}")
        except (ValueError, EslError) as exc:
            log.warning("switch %s: recovery could not list the channels: %s", link.name, exc)
            return 0
        found = 0
        for row in listing.get(names.SHOW_ROWS) or ():
            uuid = row.get(names.COLUMN_UUID)
            if not uuid or row.get(names.COLUMN_DIRECTION) != names.DIRECTION_INBOUND or uuid in router.calls:
                continue
            try:
                channel = read_channel(link, uuid)
            except EslError as exc:
                log.warning("switch %s: recovery could not read call %s: %s", link.name, uuid, exc)
                continue
            if channel is None or uuid in router.calls:  # gone, or its CHANNEL_PARK came meanwhile
                continue
            record = Marker.from_channel(channel)
            if record is None:
                if (channel.get(names.VAR_CURRENT_APPLICATION) == "park"
                        and _created(row) < self._connected_at.get(link.name, 0)):
                    router.park_found(channel, link)
                    found += uuid in router.calls
                continue
            if record.owner != router.owner:
                log.debug("switch %s: call %s belongs to %s, not to us", link.name, uuid, record.owner)
                continue
            router.adopt(channel, record, link)
            found += uuid in router.calls
        return found


def read_channel(link, uuid):
    """The channel's ``uuid_dump`` as an Event, or None if it is gone or hanging up."""
    text = link.api("uuid_dump %s" % uuid)
    if text.startswith(names.ERR):
        return None
    channel = protocol.parse_plain_event(text)
    if (channel.get(names.CHANNEL_STATE) in names.ENDING_CHANNEL_STATES
            or channel.get(names.ANSWER_STATE) == names.ANSWER_STATE_HANGUP):
        return None
    return channel


def _created(row):
    try:
        return int(row.get(names.COLUMN_CREATED_EPOCH) or 0)
    except ValueError:
        return 0
