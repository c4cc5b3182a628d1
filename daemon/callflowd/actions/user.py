"""``user``: ring every device of a user (Kazoo's ``cf_user``).

data (Kazoo 4.3 ``callflows.user``):
  ``id`` (required)         a user document (``users:`` or ``users/*.json``)
  ``timeout``               seconds to ring, 1-3600 (default 20)
  ``strategy``              ``simultaneous`` (default: all together) or ``single`` (in turn)
  ``delay``                 seconds each device waits before it rings (default 0)
  ``can_call_self``         true: ring the user's devices for a call from one of them
                            (default false: those are left out, Kazoo's ``owner_called_self``)
  ``custom_sip_headers``    {name: value}: SIP headers added to each device's INVITE
  ``fail_on_single_reject`` true: the first device that rejects ends the ringing
  ``suppress_clid``         accepted: callflowd never rewrites the caller ID
  not supported (accepted, ``check`` warns): ``static_invite``, ``can_text_self``

The user's devices are the devices whose ``owner_id`` is the user, enabled ones only, in the
order they were read. A user with none (or all left out) -> ``_`` without ringing (Kazoo:
"user has no endpoints", ``cf_exe:continue``).

Branches: answered and then ended -> the flow stops. Failed -> the child keyed by the cause,
else ``sip:<code>``, else ``_`` (``cf_util:handle_bridge_failure``, as ``device``).
"""

import dataclasses

from callflowd.actions import endpoints
from callflowd.config import fields
from callflowd.actions.endpoints import ANSWERED
from callflowd.actions.outcome import DEFAULT, STOP
from callflowd.calls import facts
from callflowd.config.kazoo_documents import sip_headers
from callflowd.config.model import Reference

STRATEGIES = ("simultaneous", "single")
SUPPORTED = ("id", "timeout", "strategy", "delay", "can_call_self", "custom_sip_headers",
             "fail_on_single_reject", "suppress_clid")
NOT_SUPPORTED = ("static_invite", "can_text_self")


@dataclasses.dataclass(frozen=True)
class Data:
    user: object  # config.documents.User
    legs: tuple
    strategy: str
    timeout: int
    can_call_self: bool
    fail_on_single_reject: object
    devices: object  # every configured device: which one is calling

    @classmethod
    def parse(cls, raw, directory):
        user = fields.known_id(raw, "id", directory.users, "user")
        timeout = fields.integer_in(raw, "timeout", 20, 1, 3600)
        delay = fields.integer_in(raw, "delay", 0, 0, 3600)
        headers = sip_headers(raw)
        legs = tuple(endpoints.Leg(device, delay, timeout, headers)
                     for device in directory.devices_of(user.id))
        reject = raw.get("fail_on_single_reject")
        return cls(user=user, legs=legs, strategy=fields.one_of(raw, "strategy", STRATEGIES, "simultaneous"),
                   timeout=timeout, can_call_self=fields.boolean(raw, "can_call_self", False),
                   fail_on_single_reject=None if reject is None else fields.boolean(
                       raw, "fail_on_single_reject", False),
                   devices=directory.devices)


def references(data):
    return (Reference("user", data.user.id),)


# The FreeSWITCH applications it runs, and those a recovery mark names while they run (actions/__init__.py).
APPLICATIONS = ("set", "bridge")
LONG_APPLICATIONS = ("bridge",)


def handle(call, data):
    # The webhook fields Kazoo takes from what authorised the call (calls/facts.py): this user.
    facts.note_device(call.facts, data.user.id, data.user.id, kind="user")
    legs = endpoints.usable(call, data.legs, data.devices, data.can_call_self, same_owner=True)
    if not legs:
        call.log.info("user %s has no device to ring; continuing at %s", data.user.id, DEFAULT)
        return DEFAULT
    call.log.info("ringing %d devices of user %s (%s)", len(legs), data.user.id, data.strategy)
    disposition, sip_cause = endpoints.bridge(
        call, endpoints.dial_string(legs, data.strategy, data.timeout),
        endpoints.ring_seconds(legs, data.strategy, data.timeout),
        fail_on_single_reject=data.fail_on_single_reject)
    if disposition == ANSWERED:
        call.log.info("user %s answered; bridge ended", data.user.id)
        return STOP
    endpoints.log_failure(call, "user %s" % data.user.id, disposition, sip_cause)
    return endpoints.failure_keys(disposition, sip_cause)
