"""After every (re)connect: find the calls this daemon was driving and take them back.

The switch is the source of truth (calls/marker.py): ``show channels as json`` lists
the live channels, ``uuid_dump`` gives each one's variables. A channel whose marker
names this daemon is handed to the router at the node it had reached; an inbound
channel still in the dialplan's ``park`` with no marker arrived while we were away and
is routed as if its CHANNEL_PARK had just come. ``show channels`` lags the events by
about a second, and events from before the subscription are never replayed, so the
sweep runs once at once and once more after that lag; a call the router already has
is never taken twice.
"""

import json
import logging

import gevent

from callflowd.calls.marker import Marker
from callflowd.errors import EslError
from callflowd.esl import protocol

log = logging.getLogger(__name__)

SHOW_CHANNELS_LAG_SECONDS = 1.5
_GONE_STATES = frozenset(("CS_HANGUP", "CS_REPORTING", "CS_DESTROY"))


def recover_calls(api, router, owner, lag=SHOW_CHANNELS_LAG_SECONDS):
    """Two sweeps, ``lag`` apart; returns how many calls were taken back or picked up."""
    found = _sweep(api, router, owner)
    gevent.sleep(lag)  # let show channels catch up with the events (~1 s on 1.10.12)
    found += _sweep(api, router, owner)
    if found:
        log.info("recovery: %d calls taken back from the switch", found)
    return found


def _sweep(api, router, owner):
    try:
        listing = json.loads(api("show channels as json") or "{}")
    except (ValueError, EslError) as exc:
        log.warning("recovery: could not list the switch's channels: %s", exc)
        return 0
    found = 0
    for row in listing.get("rows") or ():
        uuid = row.get("uuid")
        if not uuid or row.get("direction") != "inbound" or uuid in router.calls:
            continue
        try:
            text = api("uuid_dump %s" % uuid)
        except EslError as exc:
            log.warning("recovery: call %s: could not read it: %s", uuid, exc)
            continue
        if text.startswith("-ERR"):
            continue  # gone since the listing
        channel = protocol.parse_plain_event(text)
        if channel.get("Channel-State") in _GONE_STATES or channel.get("Answer-State") == "hangup":
            continue
        if uuid in router.calls:  # its CHANNEL_PARK arrived while we were reading
            continue
        record = Marker.from_channel(channel)
        if record is None:
            if channel.get("variable_current_application") == "park":
                router.park_found(channel)
                found += uuid in router.calls
            continue
        if record.owner != owner:
            log.debug("recovery: call %s belongs to %s, not to us", uuid, record.owner)
            continue
        router.adopt(channel, record)
        found += uuid in router.calls
    return found
