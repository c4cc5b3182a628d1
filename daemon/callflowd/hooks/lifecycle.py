"""Lifecycle hooks: tell a web server when channels are created, answered, bridged and destroyed.

Like Kazoo's webhooks app and Twilio's status callbacks, but through the same
durable outbox as the ``webhook`` action (signed, retried, never lost). Each
hook in the config (``hooks:``) names the events it wants and may filter on
the callflow id, the direction and the caller or destination number.

``observe()`` runs on the event socket's reader greenlet for every event
(from the router): it only builds fields and calls ``submit()``, which never
blocks. ``channel_destroy`` carries how the call went: ``hangup_cause``,
``hangup_code`` (Q.850), ``duration_seconds`` (created to hangup),
``ringing_seconds`` (created to answer, or to hangup if never answered),
``billing_seconds`` (answer to hangup), computed from the channel's
``Caller-Channel-*-Time`` headers (microseconds, on every channel event), and
``flow_path``, the actions the callflow ran. A flow ends on
HANGUP_COMPLETE but its greenlet may finish after CHANNEL_DESTROY is read, so
for a channel with a flow the destroy hook waits for ``call_finished()``.

Several daemons on one switch (``cluster:``) each see every channel; each hook event goes out
from one. A call a flow drives is sent by its driver: an inbound channel whose number has a
callflow is held from its CHANNEL_CREATE (at most ``MAX_HELD`` events) until the router says
how its claim went, at CHANNEL_PARK: ``driving()`` (won, taken over, taken back: sent, in
order), ``left_to_another()`` (lost: dropped), ``driven_by_none()`` (no flow takes it here or
elsewhere: as below). Any other channel, and a held one destroyed before it parked, goes to the
daemon its uuid picks among the live ones (hooks/senders.py).
"""

import json
import logging

from callflowd.esl import names
from callflowd.hooks.senders import Senders
from callflowd.logfmt import safe
from callflowd.webhooks.request import WebhookRequest

log = logging.getLogger(__name__)

EVENTS = {
    names.CHANNEL_CREATE: "channel_create",
    names.CHANNEL_ANSWER: "channel_answer",
    names.CHANNEL_BRIDGE: "channel_bridge",
    names.CHANNEL_DESTROY: "channel_destroy",
}
CREATED_TIME = names.CALLER_CHANNEL_CREATED_TIME
ANSWERED_TIME = names.CALLER_CHANNEL_ANSWERED_TIME
HANGUP_TIME = names.CALLER_CHANNEL_HANGUP_TIME
HANGUP_CODE = names.VAR_HANGUP_CAUSE_Q850
OTHER_LEG = names.OTHER_LEG_UNIQUE_ID
# Channels watched at most: one whose CHANNEL_DESTROY never comes (the socket was cut at the
# wrong moment) must not stay for ever; the oldest is forgotten first.
MAX_CHANNELS = 100000
EVENT_TIMESTAMP = names.EVENT_DATE_TIMESTAMP
# Events held per channel while its claim is decided (create, answer, bridges, destroy): past
# that, the claim is taking too long and the channel is sent as one no flow drives.
MAX_HELD = 8

# Who sends a channel's hooks, in a cluster.
WAITING = "waiting for its claim"  # held: a flow here or elsewhere may drive it
OURS = "ours"  # a flow of this daemon drives it
THEIRS = "theirs"  # another daemon's flow drives it
SHARED = "no flow"  # no flow drives it: its uuid picks the sender, at each event


class _Channel:
    __slots__ = ("callflow_id", "destroy", "path", "has_flow", "switch", "sender", "held")

    def __init__(self, callflow_id, switch):
        self.callflow_id = callflow_id
        self.destroy = None  # the CHANNEL_DESTROY event, while its flow is still finishing
        self.path = None  # the flow's steps, once it finished
        self.has_flow = False
        self.switch = switch  # the name of the switch it is on
        self.sender = SHARED
        self.held = []  # its events while WAITING


class LifecycleHooks:
    """The configured hooks, the channels they are watching, and the webhooks they submit."""

    def __init__(self, hooks, router, webhooks, senders=None):
        self.hooks = tuple(hooks)
        self._router = router  # its route table is read each time: a reload swaps it
        self._webhooks = webhooks
        self._senders = senders if senders is not None else Senders()
        self._channels = {}  # uuid -> _Channel
        wanted = set()
        for hook in self.hooks:
            wanted |= hook.events
        self._wanted = frozenset(name for name, hook_event in EVENTS.items() if hook_event in wanted)

    @property
    def subscriptions(self):
        """Event-socket events the hooks need beyond the flows' own. Every channel's end, hook
        or not: a channel is watched from its first event and forgotten at its CHANNEL_DESTROY.
        In a cluster, its birth too: whether a channel is held for its claim is decided at its
        first event, and a held one destroyed before it parked is let go at its end."""
        wanted = set(self._wanted)
        if self.hooks:
            wanted.add(names.CHANNEL_DESTROY)
        if self.hooks and self._senders.cluster:
            wanted.add(names.CHANNEL_CREATE)
        return tuple(sorted(wanted - set(names.SUBSCRIBED_EVENTS)))

    def __bool__(self):
        return bool(self.hooks)

    def observe(self, event, call=None, switch=None):
        """One event from the switch named ``switch``; ``call`` is the flow running on its
        channel, if any."""
        if not self.hooks or event.name not in EVENTS:
            return
        channel = self._channels.get(event.uuid)
        if channel is None:
            channel = self._watch(event.uuid, self._callflow_id(event), switch)
            channel.sender = self._first_sender(event, channel, call)
        if call is not None:
            channel.has_flow = True
            channel.callflow_id = call.callflow_id
        if channel.sender is WAITING:
            self._hold(event, channel, call)
        else:
            self._pass(event, channel, call)

    def call_finished(self, call):
        """The flow on ``call`` is over: its path is known; send a destroy that waited for it."""
        channel = self._channels.get(call.uuid)
        if channel is None:
            return
        channel.path = [{"module": step.module, "outcome": step.outcome} for step in call.history]
        if channel.destroy is not None:
            self._channels.pop(call.uuid, None)
            self._send(channel.destroy, channel)

    # -- who sends: what the router learnt of the call's claim -------------------------------

    def driving(self, call):
        """A flow of this daemon drives ``call`` from now on (its claim won, or the call taken
        over or back): its hooks are ours, the held ones first, in order."""
        if not self.hooks:
            return
        channel = self._channels.get(call.uuid)
        if channel is None:
            channel = self._watch(call.uuid, call.callflow_id, call.switch.name)
        channel.has_flow = True
        channel.callflow_id = call.callflow_id
        self._decide(channel, OURS, call)

    def left_to_another(self, uuid):
        """Another daemon drives the call on ``uuid`` (it won the claim, or took the call over
        from us): its hooks are that daemon's, a destroy waiting for our flow's path too."""
        channel = self._channels.get(uuid) if self.hooks else None
        if channel is None:
            return  # first seen later, it is taken for another's (_first_sender)
        if channel.held:
            log.debug("call %s: another daemon drives it; its %d held hooks are that daemon's to send",
                      uuid, len(channel.held))
        if channel.destroy is not None:
            self._channels.pop(uuid, None)
        self._decide(channel, THEIRS, None)

    def driven_by_none(self, event, switch):
        """The call parked on ``event`` is taken by no flow (no callflow for its number, refused,
        or every daemon stopping): its hooks go as for any channel no flow drives."""
        if not self.hooks:
            return
        channel = self._channels.get(event.uuid)
        if channel is None:
            channel = self._watch(event.uuid, self._callflow_id(event), switch)
        elif channel.sender in (OURS, SHARED):
            return
        self._decide(channel, SHARED, None)

    def _first_sender(self, event, channel, call):
        if not channel.callflow_id or not self._senders.clustered(channel.switch):
            return SHARED
        if event.name == names.CHANNEL_CREATE or call is not None:
            return WAITING  # claimed at its CHANNEL_PARK (or being claimed now)
        return THEIRS  # we came up after it parked: its driver sends it (ours if we take it over)

    def _hold(self, event, channel, call):
        channel.held.append(event)
        if event.name == names.CHANNEL_DESTROY and call is None:
            self._decide(channel, SHARED, None)  # gone before it parked: no flow drives it
        elif len(channel.held) >= MAX_HELD:
            log.warning("call %s: %d hook events held and its claim still not decided; sent as "
                        "for a channel no flow drives", event.uuid, len(channel.held))
            self._decide(channel, SHARED, None)

    def _decide(self, channel, sender, call):
        channel.sender = sender
        held, channel.held = channel.held, []
        for event in held:
            self._pass(event, channel, call)

    def _pass(self, event, channel, call):
        """Send ``event``'s hooks if they are ours; forget the channel at its end."""
        if channel.sender is OURS:
            ours = self._senders.live(channel.switch)
        else:
            ours = channel.sender is SHARED and self._senders.mine(event.uuid, channel.switch)
        if event.name == names.CHANNEL_DESTROY:
            if ours and call is not None and channel.path is None:
                channel.destroy = event  # sent by call_finished(), with the path
                return
            self._channels.pop(event.uuid, None)
            if ours:
                self._send(event, channel)
        elif ours and event.name in self._wanted:
            self._send(event, channel)

    def _watch(self, uuid, callflow_id, switch):
        if len(self._channels) >= MAX_CHANNELS:
            forgotten = next(iter(self._channels))
            del self._channels[forgotten]
            log.warning("call %s: forgotten by the lifecycle hooks (%d channels watched); "
                        "its channel_destroy hook will not be sent", forgotten, MAX_CHANNELS)
        channel = self._channels[uuid] = _Channel(callflow_id, switch)
        return channel

    def _callflow_id(self, event):
        if event.get(names.CALL_DIRECTION) != names.DIRECTION_INBOUND:
            return ""
        callflow = self._router.routes.lookup(event.get(names.CALLER_DESTINATION_NUMBER, ""))
        return callflow.id if callflow is not None else ""

    def _send(self, event, channel):
        hook_event = EVENTS[event.name]
        fields = None
        for hook in self.hooks:
            if hook_event not in hook.events or not _matches(hook, event, channel):
                continue
            if fields is None:
                fields = event_fields(hook_event, event, channel.callflow_id, channel.path)
            request = WebhookRequest(call_id=event.uuid, uri=hook.uri, method=hook.http_verb,
                                     fields=fields, retry=hook.retry, format=hook.format,
                                     secret=hook.secret, event=hook_event)
            if self._webhooks.submit(request):
                log.debug("call %s: %s hook queued: %s (delivery %s)", safe(event.uuid), hook_event,
                          request.describe(), request.delivery_id)


def _matches(hook, event, channel):
    if hook.direction and event.get(names.CALL_DIRECTION) != hook.direction:
        return False
    if hook.callflow_ids and channel.callflow_id not in hook.callflow_ids:
        return False
    if hook.numbers:
        numbers = (event.get(names.CALLER_DESTINATION_NUMBER), event.get(names.CALLER_CALLER_ID_NUMBER))
        if not any(number in hook.numbers for number in numbers):
            return False
    return True


def event_fields(hook_event, event, callflow_id, path):
    """The webhook's fields for one channel event, as ``(name, text)`` pairs."""
    get = event.get
    values = [
        ("event", hook_event),
        ("call_id", event.uuid),
        ("call_direction", get(names.CALL_DIRECTION, "")),
        ("caller_id_name", get(names.CALLER_CALLER_ID_NAME, "")),
        ("caller_id_number", get(names.CALLER_CALLER_ID_NUMBER, "")),
        ("destination_number", get(names.CALLER_DESTINATION_NUMBER, "")),
        ("callflow_id", callflow_id),
        ("timestamp", _seconds_text(_micros(get(EVENT_TIMESTAMP)))),
        ("switch_hostname", get(names.HOSTNAME, "")),
    ]
    if hook_event == "channel_bridge":
        values.append(("other_leg_call_id", get(OTHER_LEG, "")))
    if hook_event == "channel_destroy":
        created = _micros(get(CREATED_TIME))
        answered = _micros(get(ANSWERED_TIME))
        hangup = _micros(get(HANGUP_TIME)) or _micros(get(EVENT_TIMESTAMP))
        values += [
            ("hangup_cause", get(names.HANGUP_CAUSE, "")),
            ("hangup_code", get(HANGUP_CODE, "")),
            ("duration_seconds", _span(created, hangup)),
            ("ringing_seconds", _span(created, answered or hangup)),
            ("billing_seconds", _span(answered, hangup) if answered else "0"),
            ("flow_path", json.dumps(path or [], separators=(",", ":"))),
        ]
    return tuple(values)


def _micros(text):
    """A FreeSWITCH time header (microseconds since the epoch; "0" for never) as an int, or 0."""
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _span(start, end):
    if not start or not end or end < start:
        return "0"
    return _seconds_text(end - start)


def _seconds_text(micros):
    return "%.3f" % (micros / 1e6) if micros else ""
