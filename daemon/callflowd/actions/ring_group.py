"""``ring_group``: ring several configured devices, together or one after another.

data (Kazoo 4.3 ``callflows.ring_group``):
  ``endpoints`` (required)  list of ``{"id": <device id>, "delay": s, "timeout": s}``:
                            a device configured under ``devices:``; ``delay`` (default 0) before
                            it starts ringing, ``timeout`` (default 20) how long it rings;
                            ``endpoint_type`` may say ``device`` (the only kind supported)
  ``strategy``              ``simultaneous`` (default: all ring at once) or ``single`` (in turn)
  ``timeout``               seconds the whole group rings, 1-3600 (default 20; simultaneous)
  ``repeats``               times the group is rung before giving up, 1-10 (default 1)

Branches: an endpoint answered and the call then ended -> the flow stops. Failed -> the
child keyed by the cause (``USER_BUSY``, ``NO_ANSWER``...) if the node has one, else
``sip:<code>``, else ``_`` (as ``device``).

FreeSWITCH facts (mod_dptools bridge, switch_ivr_originate.c): endpoints joined by ``,``
ring at once and the first to answer wins; joined by ``|`` they are tried in turn.
``[leg_delay_start=N,leg_timeout=N]`` in front of an endpoint delays and limits that leg;
``{originate_timeout=N}`` limits the whole attempt. A device's own ``{...}`` variables
become that leg's ``[...]`` ones. ``continue_on_fail=true`` keeps the caller when all
fail (the busy-device captures in tests/fixtures, with and without it); the outcome is ``variable_originate_disposition``.
"""

import dataclasses

from callflowd.actions.device import ANSWERED
from callflowd.actions.outcome import DEFAULT, STOP
from callflowd.config import fields
from callflowd.config.model import Reference
from callflowd.errors import InvalidData
from callflowd.esl import names

STRATEGIES = ("simultaneous", "single")
MAX_ENDPOINTS = 50
# Ringing ends on FreeSWITCH's side; we wait this much longer before giving up on the event.
_BRIDGE_GRACE_SECONDS = 15
_ENDPOINT_KEYS = ("id", "delay", "timeout", "endpoint_type")


@dataclasses.dataclass(frozen=True)
class Endpoint:
    device: object  # config.model.Device
    delay: int
    timeout: int

    def leg(self, strategy):
        """``[leg vars]dial`` for this endpoint, the device's own ``{vars}`` moved inside."""
        variables = ["leg_timeout=%d" % self.timeout]
        if strategy == "simultaneous" and self.delay:
            variables.insert(0, "leg_delay_start=%d" % self.delay)
        target = self.device.dial_string
        if target.startswith("{") and "}" in target:
            end = target.index("}")
            own = target[1:end]
            if own:
                variables.append(own)
            target = target[end + 1:]
        return "[%s]%s" % (",".join(variables), target)


@dataclasses.dataclass(frozen=True)
class Data:
    endpoints: tuple
    strategy: str
    timeout: int
    repeats: int

    @classmethod
    def parse(cls, raw, directory):
        listed = fields.some(raw, "endpoints", list, "a list of endpoints", MAX_ENDPOINTS,
                             "must list at least one endpoint", "endpoints")
        endpoints = []
        for index, entry in enumerate(listed):
            where = "endpoints[%d]" % index
            if not isinstance(entry, dict):
                raise InvalidData(where, "must be an object with an id")
            unknown = sorted(key for key in entry if key not in _ENDPOINT_KEYS)
            if unknown:
                raise InvalidData(where, "unknown key %s (known: %s)" % (
                    ", ".join(repr(k) for k in unknown), ", ".join(_ENDPOINT_KEYS)))
            try:
                fields.one_of(entry, "endpoint_type", ("device",), "device")  # users, groups: not yet
                device = fields.known_id(entry, "id", directory.devices, "device")
                delay = fields.integer_in(entry, "delay", 0, 0, 3600)
                timeout = fields.integer_in(entry, "timeout", 20, 1, 3600)
            except InvalidData as exc:
                raise InvalidData("%s.%s" % (where, exc.key), exc.message) from None
            endpoints.append(Endpoint(device=device, delay=delay, timeout=timeout))
        return cls(
            endpoints=tuple(endpoints),
            strategy=fields.one_of(raw, "strategy", STRATEGIES, "simultaneous"),
            timeout=fields.integer_in(raw, "timeout", 20, 1, 3600),
            repeats=fields.integer_in(raw, "repeats", 1, 1, 10),
        )

    def dial_string(self):
        if self.strategy == "single":
            return "|".join(endpoint.leg(self.strategy) for endpoint in self.endpoints)
        legs = ",".join(endpoint.leg(self.strategy) for endpoint in self.endpoints)
        return "{originate_timeout=%d}%s" % (self.timeout, legs)

    def ring_seconds(self):
        """The longest the switch may ring for one round."""
        if self.strategy == "single":
            return sum(endpoint.timeout for endpoint in self.endpoints)
        return self.timeout + max(endpoint.delay for endpoint in self.endpoints)


def references(data):
    return tuple(Reference("device", endpoint.device.id, "endpoints[%d].id" % index)
                 for index, endpoint in enumerate(data.endpoints))


# Its first effect is ``set continue_on_fail``: the step's recovery mark rides ahead of it (actions/__init__.py).
FIRST_EFFECT_IS_A_COMMAND = True


# The FreeSWITCH applications it runs, and those a recovery mark names while they run (actions/__init__.py).
APPLICATIONS = ("set", "bridge")
LONG_APPLICATIONS = ("bridge",)


def handle(call, data):
    # not waited for: it goes out with the bridge, ahead of it (Call.set_variable)
    call.set_variable("continue_on_fail", "true", ahead=True)
    dial = data.dial_string()
    keys = (DEFAULT,)
    for round_number in range(1, data.repeats + 1):
        result = call.execute("bridge", dial, timeout=data.ring_seconds() + _BRIDGE_GRACE_SECONDS)
        disposition = result.get(names.VAR_ORIGINATE_DISPOSITION) or "UNKNOWN"
        if disposition == ANSWERED:
            call.log.info("ring group answered; bridge ended")
            return STOP
        sip_cause = result.get(names.VAR_LAST_BRIDGE_PROTO_CAUSE)
        call.log.info("ring group failed (round %d of %d): %s%s", round_number, data.repeats,
                      disposition, " (%s)" % sip_cause if sip_cause else "")
        keys = (disposition,) + ((sip_cause,) if sip_cause else ()) + (DEFAULT,)
    return keys
