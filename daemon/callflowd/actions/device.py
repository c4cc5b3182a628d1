"""``device``: ring one configured device and connect the caller to it.

data:
  ``id`` (required)  a device configured under ``devices:``
  ``timeout``        seconds to ring, 1-3600 (default: the device's ``timeout``, else 20)

Branches: answered and then ended -> the flow stops. Failed -> the child keyed
by the cause (``USER_BUSY``, ``NO_ANSWER``, ``USER_NOT_REGISTERED``...) if the
node has one, else ``sip:<code>`` (``sip:486``), else ``_``.

FreeSWITCH facts (tests/fixtures: the busy-device captures with and without
``continue_on_fail``, and the no-answer captures with each timeout variable): a failed bridge
hangs the caller up unless ``continue_on_fail=true`` is set on the caller's
channel first; ``{call_timeout=N}`` in a dial string does not limit ringing,
``{originate_timeout=N}`` does. The outcome is not in Application-Response
(``_none_``) but in ``variable_originate_disposition`` on the caller's
EXECUTE_COMPLETE(bridge).
"""

import dataclasses

from callflowd.actions.outcome import DEFAULT, STOP
from callflowd.calls import facts
from callflowd.config import fields
from callflowd.config.model import Device, Reference
from callflowd.esl import names

ANSWERED = "SUCCESS"
# Ringing ends on FreeSWITCH's side; we wait this much longer before giving up on the event.
_BRIDGE_GRACE_SECONDS = 15


@dataclasses.dataclass(frozen=True)
class Data:
    device: Device
    timeout: int

    @classmethod
    def parse(cls, raw, directory):
        device = fields.known_id(raw, "id", directory.devices, "device")
        timeout = fields.integer_in(raw, "timeout", device.timeout, 1, 3600)
        return cls(device=device, timeout=timeout)


def references(data):
    return (Reference("device", data.device.id),)


def dial_string(device, timeout):
    """The device's dial string with a ring limit FreeSWITCH honours (originate_timeout)."""
    target = device.dial_string
    limit = "originate_timeout=%d" % timeout
    if target.startswith("{}"):
        target = target[2:]
    elif target.startswith("{"):
        return "{" + limit + "," + target[1:]
    return "{" + limit + "}" + target


# Its first effect is ``set continue_on_fail``: the step's recovery mark rides ahead of it (actions/__init__.py).
FIRST_EFFECT_IS_A_COMMAND = True


# The FreeSWITCH applications it runs, and those a recovery mark names while they run (actions/__init__.py).
APPLICATIONS = ("set", "bridge")
LONG_APPLICATIONS = ("bridge",)


def handle(call, data):
    # The webhook fields Kazoo takes from the device that authorised the call (calls/facts.py).
    facts.note_device(call.facts, data.device.id, getattr(data.device, "owner_id", None))
    # not waited for: it goes out with the bridge, ahead of it (Call.set_variable)
    call.set_variable("continue_on_fail", "true", ahead=True)
    result = call.execute(
        "bridge", dial_string(data.device, data.timeout),
        timeout=data.timeout + _BRIDGE_GRACE_SECONDS,
    )
    disposition = result.get(names.VAR_ORIGINATE_DISPOSITION) or "UNKNOWN"
    if disposition == ANSWERED:
        facts.note_bridge(call.facts, result)
        call.log.info("device %s answered; bridge ended", data.device.id)
        return STOP
    sip_cause = result.get(names.VAR_LAST_BRIDGE_PROTO_CAUSE)
    call.log.info("bridge failed: %s%s", disposition, " (%s)" % sip_cause if sip_cause else "")
    keys = [disposition]
    if sip_cause:
        keys.append(sip_cause)
    keys.append(DEFAULT)
    return tuple(keys)
