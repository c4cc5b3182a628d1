"""Hand each event to the call it belongs to; start a call's flow on CHANNEL_PARK.

``route()`` runs on the event socket's dispatcher greenlet, so it only looks
up and queues: no flow logic, no I/O. Each call belongs to the switch link
whose connection parked it and sends its commands there; losing one switch
touches only its own calls. Routing reads ``Unique-ID`` and the
destination number from headers the parser decoded one by one, so nothing a
caller puts in caller ID or SIP headers can steer it.

The router starts flows but does not know how to run one: the service hands it
the executor (``run_flow``, flow/executor.py's ``run_callflow``), so calls/ never
imports flow/. Every call becomes ours in one place, ``_start`` (or, raced for, on winning its
claim), and the lifecycle hooks are told there, as they are when another daemon won it or no
flow takes it: a daemon sends the hooks of the calls it drives (hooks/lifecycle.py).
"""

import logging

import gevent
from gevent.pool import Group

from callflowd import metrics
from callflowd.calls.call import OUTAGE_LIMIT_SECONDS, Call
from callflowd.calls.facts import call_facts
from callflowd.calls.marker import Marker
from callflowd.config.temporal import utc_now
from callflowd.esl import names
from callflowd.logfmt import safe

log = logging.getLogger(__name__)

# How a parked call becomes ours when claims are on (calls/ownership.py): raced for at its
# CHANNEL_PARK, taken from whoever claimed it (found parked by recovery), or already held.
_CLAIM, _TAKE, _HELD = "claim", "take", "held"
_LOST = object()  # what a flow greenlet returns when another daemon won the call


class CallRouter:
    """Owns the live calls: one greenlet per call in ``self.calls_group``.

    ``run_flow(call, callflow, start, callflows, max_jumps, returns)`` runs a call's flow
    to its end (flow/executor.py, ``run_callflow``). ``long_applications``: the
    applications worth a recovery mark while they run (actions/__init__.py).
    ``clock``: every call's "now", an aware UTC datetime (``call.clock``).
    """

    def __init__(self, routes, webhooks, run_flow, on_call_finished=(),
                 outage_limit=OUTAGE_LIMIT_SECONDS, owner=None, long_applications=frozenset(),
                 clock=utc_now, account_id=None):
        self.routes = routes  # a callflowd.calls.routes.RouteTable
        self.clock = clock  # every call's "now" (an aware UTC datetime)
        self.account_id = account_id  # the config's account_id: a Kazoo field of every call
        self.owner = owner  # written on every channel we drive (calls/marker.py)
        self._run_flow = run_flow
        self._long_applications = frozenset(long_applications)
        self.calls = {}  # uuid -> Call
        self._greenlets = {}  # uuid -> the Greenlet running its flow
        self.calls_group = Group()
        self._outage_limit = outage_limit
        self._webhooks = webhooks
        self._on_call_finished = list(on_call_finished)
        self._hooks = None  # callflowd.hooks.lifecycle.LifecycleHooks (add_hooks)
        # calls.ownership.Ownership when several daemons may share the switch (attach()
        # sets it): a parked call is claimed on the switch before its flow starts.
        self.ownership = None
        self.accepting = True

    def route(self, event, link):
        """Queue ``event``, which came from switch ``link``, to its call (or start one)."""
        uuid = event.uuid
        if not uuid:
            return
        call = self.calls.get(uuid)
        if self._hooks:
            self._hooks.observe(event, call, link.name)
        if call is not None:
            call.deliver(event)
        elif event.name == names.CHANNEL_PARK:
            self._park(event, link)

    def add_hooks(self, hooks):
        """Show every event to the lifecycle ``hooks`` first, and tell them when a flow ends."""
        self._hooks = hooks
        self._on_call_finished.insert(0, hooks.call_finished)

    def park_found(self, channel, link):
        """A parked call seen by listing the switch (its CHANNEL_PARK came while we were away)."""
        if channel.uuid not in self.calls:
            self._park(channel, link, claim=_TAKE)

    def take_over(self, channel, link, owner):
        """Drive a call whose claim we just won from ``owner`` (dead, or us before a restart),
        from where the switch says it is. True if its flow runs here now."""
        uuid = channel.uuid
        record = Marker.from_channel(channel)
        if record is not None:
            self.adopt(channel, record, link, claimed=True)
        elif channel.get("variable_current_application") == "park":  # claimed, never driven
            self._park(channel, link, claim=_HELD)
        else:
            log.warning("call %s: taken over from %s but it has no mark and is not parked; leaving it",
                        uuid, safe(owner))
        return uuid in self.calls

    def adopt(self, channel, record, link, claimed=False):
        """Take back a call this daemon drove before it was restarted.

        ``channel`` is its ``uuid_dump``; ``record`` the Marker found on it. The Call is
        registered before its greenlet starts, so no event of it is dropped from here on.
        ``claimed``: its claim is already ours (a takeover); else it is won first, if
        claims are on (we may have lost it to another daemon while we were away).
        """
        uuid = channel.uuid
        if uuid in self.calls:
            return
        if not claimed and self.ownership is not None:
            if not self.ownership.take(uuid, link):
                log.info("call %s: another daemon drives it now; leaving it", uuid)
                return
            if uuid in self.calls:  # taken back meanwhile by the claims' own sweep
                return
        callflow = self.routes.by_id.get(record.callflow_id)
        node = callflow.node_at(record.node_path) if callflow is not None else None
        if node is None:
            log.warning("call %s: was at %s of callflow %s, which the config no longer has; hanging up",
                        uuid, safe(record.node_path), safe(record.callflow_id))
            link.hangup_later(uuid, names.NORMAL_CLEARING)
            return
        call = self._call(uuid, self._facts(channel, link), callflow, link, resuming=record)
        call.log.info("taking the call back on switch %s at %s of callflow %s%s", link.name, node.path,
                      callflow.id, " (was waiting for %s)" % record.waiting_app if record.waiting_app else "")
        self._start(call, callflow, node, self._returns(call, record))

    def _park(self, event, link, claim=_CLAIM):
        uuid = event.uuid
        direction = event.get(names.CALL_DIRECTION)
        if direction != names.DIRECTION_INBOUND:
            return
        number = event.get(names.CALLER_DESTINATION_NUMBER, "")
        route = self.routes.route(number)
        if route is None:
            log.info("call %s: no callflow for number %s on switch %s; leaving the call alone",
                     uuid, safe(number), link.name)
            self._driven_by_none(event, link)
            return
        if self.routes.refuses(route, event):
            log.warning("call %s: number %s on switch %s goes to callflow %s, a no_match one, and no_match is "
                        "for authenticated callers (this call is not: variable_sip_authorized is not true); "
                        "leaving the call alone", uuid, safe(number), link.name, route.callflow.id)
            self._driven_by_none(event, link)
            return
        if not self.accepting:
            if self.ownership is not None and self.ownership.peers_up((link,)):
                log.info("call %s: not taking new calls (stopping); leaving it to the other daemons", uuid)
                if self._hooks:
                    self._hooks.left_to_another(uuid)
            else:
                log.warning("call %s: not taking new calls (stopping); leaving it parked", uuid)
                self._driven_by_none(event, link)
            return
        callflow = route.callflow
        call = self._call(uuid, self._facts(event, link, (number, route.number)), callflow, link)
        call.captures = route.captures
        if self.ownership is not None and claim is not _HELD:
            self._start_claimed(call, callflow, number, route, claim)
            return
        self._parked(call, callflow, number, route)
        self._start(call, callflow)

    def _driven_by_none(self, event, link):
        if self._hooks:
            self._hooks.driven_by_none(event, link.name)

    def _parked(self, call, callflow, number, route):
        call.log.info("parked call to %s from %s <%s> on switch %s matches callflow %s (by %s)",
                      safe(number), safe(call.facts.get("caller_id_name", "")),
                      safe(call.facts.get("caller_id_number", "")), call.switch.name, callflow.id, route.how)

    def _start_claimed(self, call, callflow, number, route, claim):
        """Register the call (its events queue from now on), win its claim on the switch on
        the call's own greenlet (route() must not wait), then run its flow; lost: forget it."""
        self.calls[call.uuid] = call
        call.fence = self.ownership.fence
        routes = self.routes

        def claim_then_run():
            try:
                won = (self.ownership.claim(call) if claim is _CLAIM
                       else self.ownership.take(call.uuid, call.switch))
            except gevent.GreenletExit:  # stopped while racing: never ours as far as we know
                return _LOST
            if not won:
                return _LOST
            if self._hooks:
                self._hooks.driving(call)
            self._parked(call, callflow, number, route)
            metrics.call_started(callflow.id)
            return self._run_flow(call, callflow, None, routes.by_id, routes.max_callflow_jumps, ())

        greenlet = gevent.Greenlet(claim_then_run)
        self._greenlets[call.uuid] = greenlet
        greenlet.link(lambda g, call=call: self._finished(call, g))
        self.calls_group.start(greenlet)

    def _facts(self, channel, link, routed=None):
        """The call's Kazoo fields (calls/facts.py): from the channel, the config, the switch's.
        ``routed``: (number, as normalised for routing), so the usual request user isn't
        normalised twice."""
        normalize = getattr(self.routes, "normalize", None)
        if routed is not None and normalize is not None:
            dialled, normalised = routed
            plain = normalize
            normalize = lambda number: normalised if number == dialled else plain(number)  # noqa: E731
        return call_facts(channel, self.account_id, getattr(link.settings, "switch_nodename", None), normalize)

    def _call(self, uuid, facts, callflow, link, resuming=None):
        return Call(uuid, facts, callflow.id, link, self._webhooks,
                    command_timeout=link.settings.command_timeout, outage_limit=self._outage_limit,
                    owner=self.owner, resuming=resuming, long_applications=self._long_applications,
                    clock=self.clock)

    def _returns(self, call, record):
        """The marker's way back out of jumped-to callflows, as (Callflow, node or None) pairs."""
        returns = []
        for callflow_id, path in record.returns:
            callflow = self.routes.by_id.get(callflow_id)
            node = callflow.node_at(path) if callflow is not None and path else None
            if callflow is None or (path and node is None):
                call.log.warning("the way back to %s of callflow %s is gone from the config; "
                                 "the call ends where it is", safe(path), safe(callflow_id))
                return []
            returns.append((callflow, node))
        return returns

    def greenlet_of(self, call):
        return self._greenlets.get(call.uuid)

    def _start(self, call, callflow, node=None, returns=()):
        """The call is ours from here: registered, then its flow started (parked or taken back)."""
        self.calls[call.uuid] = call
        if self.ownership is not None:
            call.fence = self.ownership.fence
        if self._hooks:
            self._hooks.driving(call)
        routes = self.routes  # the call keeps the table it started with across a reload
        greenlet = gevent.Greenlet(self._run_flow, call, callflow, node, routes.by_id,
                                   routes.max_callflow_jumps, returns)
        self._greenlets[call.uuid] = greenlet
        greenlet.link(lambda g, call=call: self._finished(call, g))
        self.calls_group.start(greenlet)
        metrics.call_started(callflow.id)

    def _finished(self, call, greenlet):
        self.calls.pop(call.uuid, None)
        self._greenlets.pop(call.uuid, None)
        if greenlet.value is _LOST:  # another daemon drives it: it was never ours
            if self._hooks:
                self._hooks.left_to_another(call.uuid)
            return
        if self.ownership is not None:
            if isinstance(greenlet.value, gevent.GreenletExit):
                self.ownership.forget(call)  # killed at stop: the claim stays for a takeover
            elif not self.ownership.release(call) and self._hooks:
                self._hooks.left_to_another(call.uuid)  # taken over while our lease lapsed
        metrics.call_finished(call.callflow_id, metrics.call_outcome(call.history, not greenlet.successful()))
        if not greenlet.successful():
            # a bug, not the caller's doing: nobody drives the channel now, so hang it up
            # (from a greenlet of its own: this runs in the hub, where nothing may block)
            call.log.error("call greenlet died: %r; hanging up", greenlet.exception)
            gevent.spawn(call.hangup, names.NORMAL_TEMPORARY_FAILURE)
        for listener in self._on_call_finished:
            try:
                listener(call)
            except Exception:  # a listener's bug must not leak calls: log and go on
                log.exception("call-finished listener failed")

    def calls_on(self, link):
        """The live calls driven on switch ``link``."""
        return [call for call in self.calls.values() if call.switch is link]

    def connection_lost(self, link):
        """Switch ``link``'s socket is gone: its calls wait for it (FreeSWITCH keeps the channels)."""
        for call in self.calls_on(link):
            call.connection_lost()
