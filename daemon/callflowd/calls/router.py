"""Hand each event to the call it belongs to; start a call's flow on CHANNEL_PARK.

``route()`` runs on the event socket's reader greenlet, so it only looks up
and queues: no flow logic, no I/O. Routing reads ``Unique-ID`` and the
destination number from headers the parser decoded one by one, so nothing a
caller puts in caller ID or SIP headers can steer it.
"""

import logging

import gevent
from gevent.pool import Group

from callflowd import metrics
from callflowd.calls.call import Call
from callflowd.calls.facts import call_facts
from callflowd.esl import names
from callflowd.flow.executor import run_callflow
from callflowd.logfmt import safe

log = logging.getLogger(__name__)


class CallRouter:
    """Owns the live calls: one greenlet per call in ``self.calls_group``."""

    def __init__(self, routes, commands, webhooks, command_timeout=10.0, on_call_finished=()):
        self.routes = routes  # a callflowd.calls.routes.RouteTable
        self.calls = {}  # uuid -> Call
        self.calls_group = Group()
        self._commands = commands
        self._webhooks = webhooks
        self._command_timeout = command_timeout
        self._on_call_finished = list(on_call_finished)
        self.accepting = True

    def route(self, event):
        uuid = event.uuid
        if not uuid:
            return
        call = self.calls.get(uuid)
        if call is not None:
            call.deliver(event)
        elif event.name == names.CHANNEL_PARK:
            self._park(event)

    def _park(self, event):
        uuid = event.uuid
        direction = event.get(names.CALL_DIRECTION)
        if direction != names.DIRECTION_INBOUND:
            return
        number = event.get(names.CALLER_DESTINATION_NUMBER, "")
        callflow = self.routes.lookup(number)
        if callflow is None:
            log.info("call %s: no callflow for number %s; leaving the call alone", uuid, safe(number))
            return
        if not self.accepting:
            log.warning("call %s: not taking new calls (stopping); leaving it parked", uuid)
            return
        call = Call(uuid, call_facts(event), callflow.id, self._commands, self._webhooks,
                    command_timeout=self._command_timeout)
        call.log.info("parked call to %s from %s <%s> matches callflow %s",
                      safe(number), safe(call.facts["caller_id_name"]),
                      safe(call.facts["caller_id_number"]), callflow.id)
        self.calls[uuid] = call
        greenlet = gevent.Greenlet(run_callflow, call, callflow)
        greenlet.link(lambda g, call=call: self._finished(call, g))
        self.calls_group.start(greenlet)
        metrics.call_started(callflow.id)

    def _finished(self, call, greenlet):
        self.calls.pop(call.uuid, None)
        metrics.call_finished(call.callflow_id, metrics.call_outcome(call.history, not greenlet.successful()))
        if not greenlet.successful():
            call.log.error("call greenlet died: %r", greenlet.exception)
        for listener in self._on_call_finished:
            try:
                listener(call)
            except Exception:  # a listener's bug must not leak calls: log and go on
                log.exception("call-finished listener failed")

    def connection_lost(self):
        """The event socket is gone: every live flow ends (FreeSWITCH keeps the channels)."""
        for call in list(self.calls.values()):
            call.connection_lost()
