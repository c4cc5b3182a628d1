"""What the ringing actions (``device``, ``user``, ``ring_group``) share: legs and the bridge.

A ``Leg`` is one device to ring with its own delay, ring time and SIP headers; ``dial_string``
joins legs the way FreeSWITCH rings them (``,`` together, ``|`` in turn); ``bridge`` runs it
and reads the outcome. Kazoo's rules kept here (kz_endpoint.erl):

- a disabled device is not rung (``endpoint_disabled``);
- a device does not ring for a call it made, nor (``user`` module) for a call from another
  device of its owner, unless ``can_call_self`` (``maybe_endpoint_called_self``,
  ``maybe_owner_called_self``). Kazoo knows the calling device from authentication; on plain
  FreeSWITCH we take the user part of the caller's SIP From URI and look for the device
  whose ``sip.username`` it is.

FreeSWITCH facts (switch_ivr_originate.c, mod_sofia): ``[leg_delay_start=N,leg_timeout=N]`` in
front of an endpoint delays and limits that leg; ``sip_h_X-Name=value`` adds a SIP header to
that leg's INVITE; ``{originate_timeout=N}`` limits the whole attempt; ``ringback`` on the
caller's channel is what the caller hears while it rings; ``fail_on_single_reject=true``
ends the attempt at the first leg that rejects. ``continue_on_fail=true`` keeps the caller
when all fail (the busy-then-voicemail and busy-ends-call captures); the outcome is ``variable_originate_disposition`` and the
SIP cause ``variable_last_bridge_proto_specific_hangup_cause``.
"""

import dataclasses

from callflowd.actions.outcome import DEFAULT
from callflowd.calls import facts
from callflowd.esl import names

ANSWERED = "SUCCESS"
# Ringing ends on FreeSWITCH's side; we wait this much longer before giving up on the event.
BRIDGE_GRACE_SECONDS = 15


@dataclasses.dataclass(frozen=True)
class Leg:
    device: object  # config.model.Device
    delay: int = 0
    timeout: int = 20
    headers: tuple = ()  # (name, value): the node's custom_sip_headers, added to the device's

    def dial(self, together=True):
        """``[leg vars]dial`` for this leg, the device's own ``{vars}`` moved inside."""
        variables = ["leg_timeout=%d" % self.timeout]
        if together and self.delay:
            variables.insert(0, "leg_delay_start=%d" % self.delay)
        for name, value in self.device.sip_headers + self.headers:
            variables.append("sip_h_%s=%s" % (name, value))
        target = self.device.dial_string
        if target.startswith("{") and "}" in target:
            end = target.index("}")
            own = target[1:end]
            if own:
                variables.append(own)
            target = target[end + 1:]
        return "[%s]%s" % (",".join(variables), target)


def dial_string(legs, strategy, timeout):
    """All legs: ``simultaneous`` together within ``timeout`` seconds, else one after another."""
    if strategy == "simultaneous":
        return "{originate_timeout=%d}%s" % (timeout, ",".join(leg.dial(True) for leg in legs))
    return "|".join(leg.dial(False) for leg in legs)


def ring_seconds(legs, strategy, timeout):
    """The longest the switch may ring for one attempt."""
    if strategy == "simultaneous":
        return timeout + max(leg.delay for leg in legs)
    return sum(leg.timeout for leg in legs)


def calling_device(call, devices):
    """The configured device the call comes from (its From user is the device's SIP user), or None."""
    facts = getattr(call, "facts", None) or {}
    sender = (facts.get("from") or "").partition("@")[0]
    if sender.startswith("sip:"):
        sender = sender[4:]
    if not sender:
        return None
    for device in devices.values():
        if device.sip_username and device.sip_username == sender:
            return device
    return None


def usable(call, legs, devices, can_call_self=False, same_owner=False):
    """``legs`` without disabled devices and, unless ``can_call_self``, the caller's own device
    (and with ``same_owner``, every device of the caller's owner)."""
    caller = None if can_call_self else calling_device(call, devices)
    kept = []
    for leg in legs:
        device = leg.device
        if not device.enabled:
            call.log.info("device %s is disabled; not ringing it", device.id)
            continue
        if caller is not None and (device.id == caller.id or (
                same_owner and caller.owner_id and device.owner_id == caller.owner_id)):
            call.log.info("device %s is the caller's own; not ringing it (can_call_self)", device.id)
            continue
        kept.append(leg)
    return kept


def bridge(call, dial, seconds, ringback=None, fail_on_single_reject=None, first=True):
    """Bridge the caller to ``dial``: ``(disposition, sip cause or None)``. ``first``: the
    first bridge of this step (the variables are set once)."""
    # not waited for: they go out with the bridge, ahead of it (Call.set_variable)
    if first:
        call.set_variable("continue_on_fail", "true", ahead=True)
    if not first:
        ringback = fail_on_single_reject = None
    if ringback:
        call.set_variable("ringback", ringback, ahead=True)
    if fail_on_single_reject is not None:
        call.set_variable("fail_on_single_reject", "true" if fail_on_single_reject else "false", ahead=True)
    result = call.execute("bridge", dial, timeout=seconds + BRIDGE_GRACE_SECONDS)
    disposition = result.get(names.VAR_ORIGINATE_DISPOSITION) or "UNKNOWN"
    if disposition == ANSWERED and isinstance(getattr(call, "facts", None), dict):
        facts.note_bridge(call.facts, result)  # the webhook's call_bridged, other_leg_call_id
    return disposition, result.get(names.VAR_LAST_BRIDGE_PROTO_CAUSE)


def failure_keys(disposition, sip_cause):
    """Kazoo's ``cf_util:handle_bridge_failure``: the cause's child, else the SIP code's, else ``_``."""
    return (disposition,) + ((sip_cause,) if sip_cause else ()) + (DEFAULT,)


def log_failure(call, what, disposition, sip_cause):
    call.log.info("%s failed: %s%s", what, disposition, " (%s)" % sip_cause if sip_cause else "")
