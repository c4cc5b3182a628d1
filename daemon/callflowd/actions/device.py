"""``device``: ring one configured device and connect the caller to it.

data (Kazoo 4.3 ``callflows.device``):
  ``id`` (required)        a device: under ``devices:`` or a Kazoo device document
  ``timeout``              seconds to ring, 1-3600 (default: the device's ``timeout``, else 20)
  ``delay``                seconds before it starts ringing (default 0)
  ``can_call_self``        true: ring it even for a call it made (default false: a call from
                           this device goes on at ``_``, Kazoo's ``endpoint_called_self``)
  ``custom_sip_headers``   {name: value}: SIP headers added to the INVITE to the device
  ``fail_on_single_reject`` passed to FreeSWITCH (``fail_on_single_reject``)
  ``suppress_clid``        accepted: callflowd never rewrites the caller ID (Kazoo's
                           suppress_clid skips its caller-ID rewriting)
  not supported (accepted, ``check`` warns): ``static_invite``, ``dial_strategy``,
  ``can_text_self``

Branches: answered and then ended -> the flow stops. Failed -> the child keyed
by the cause (``USER_BUSY``, ``NO_ANSWER``, ``USER_NOT_REGISTERED``...) if the
node has one, else ``sip:<code>`` (``sip:486``), else ``_``. A disabled device, or
the caller's own: ``_`` without ringing.

FreeSWITCH facts (tests/fixtures: the busy-device captures with and without
``continue_on_fail``, and the no-answer captures with each timeout variable): a failed bridge
hangs the caller up unless ``continue_on_fail=true`` is set on the caller's
channel first; ``{call_timeout=N}`` in a dial string does not limit ringing,
``{originate_timeout=N}`` does. The outcome is not in Application-Response
(``_none_``) but in ``variable_originate_disposition`` on the caller's
EXECUTE_COMPLETE(bridge). See actions/endpoints.py.
"""

import dataclasses

from callflowd.actions import endpoints
from callflowd.actions.endpoints import ANSWERED  # noqa: F401 - ring_group and others read it here
from callflowd.actions.outcome import DEFAULT, STOP
from callflowd.calls import facts
from callflowd.config import fields
from callflowd.config.kazoo_documents import sip_headers
from callflowd.config.model import Device, Reference

SUPPORTED = ("id", "timeout", "delay", "can_call_self", "custom_sip_headers", "fail_on_single_reject",
             "suppress_clid")
NOT_SUPPORTED = ("static_invite", "dial_strategy", "can_text_self")


@dataclasses.dataclass(frozen=True)
class Data:
    device: Device
    timeout: int
    delay: int = 0
    can_call_self: bool = False
    headers: tuple = ()
    fail_on_single_reject: object = None
    devices: object = None  # every configured device: which one is calling (can_call_self)

    @classmethod
    def parse(cls, raw, directory):
        device = fields.known_id(raw, "id", directory.devices, "device")
        timeout = fields.integer_in(raw, "timeout", device.timeout, 1, 3600)
        reject = raw.get("fail_on_single_reject")
        headers = sip_headers(raw)
        return cls(device=device, timeout=timeout, delay=fields.integer_in(raw, "delay", 0, 0, 3600),
                   can_call_self=fields.boolean(raw, "can_call_self", False), headers=headers,
                   fail_on_single_reject=None if reject is None else fields.boolean(
                       raw, "fail_on_single_reject", False),
                   devices=directory.devices)


def references(data):
    return (Reference("device", data.device.id),)


def dial_string(device, timeout, delay=0, headers=()):
    """The device's dial string with a ring limit FreeSWITCH honours (originate_timeout)."""
    target = device.dial_string
    limit = ",".join(["originate_timeout=%d" % timeout]
                     + ["sip_h_%s=%s" % pair for pair in device.sip_headers + headers])
    if delay:
        target = "[leg_delay_start=%d]%s" % (delay, target) if not target.startswith("{") else target
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
    leg = endpoints.Leg(data.device, data.delay, data.timeout, data.headers)
    if not endpoints.usable(call, [leg], data.devices or {}, data.can_call_self):
        return DEFAULT
    disposition, sip_cause = endpoints.bridge(
        call, dial_string(data.device, data.timeout, data.delay, data.headers), data.timeout + data.delay,
        fail_on_single_reject=data.fail_on_single_reject)
    if disposition == ANSWERED:
        call.log.info("device %s answered; bridge ended", data.device.id)
        return STOP
    endpoints.log_failure(call, "bridge", disposition, sip_cause)
    return endpoints.failure_keys(disposition, sip_cause)
