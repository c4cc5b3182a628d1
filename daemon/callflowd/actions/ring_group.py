"""``ring_group``: ring several devices, users or groups, together or one after another.

data (Kazoo 4.3 ``callflows.ring_group``):
  ``endpoints`` (required)  list of ``{"id", "endpoint_type", "delay", "timeout", "weight"}``:
                            ``endpoint_type`` ``device`` (default; ``devices:``), ``user`` (all
                            the user's devices) or ``group`` (a group document's members);
                            ``delay`` (default 0) before it rings, ``timeout`` (default 20) how
                            long it rings; ``weight`` 1-100 (default 20) for ``weighted_random``
  ``strategy``              ``simultaneous`` (default: all at once), ``single`` (in turn) or
                            ``weighted_random`` (in turn, in a random order drawn per round
                            with chances in proportion to ``weight``)
  ``timeout``               seconds the whole group rings, 1-3600 (default 20; simultaneous)
  ``repeats``               rounds, 1-10 (default 1)
  ``ringback``              what the caller hears while it rings (a media id, file or tone)
  ``fail_on_single_reject`` true: the first endpoint that rejects ends the round
  not supported (accepted, ``check`` warns): ``ignore_forward`` (callflowd has no call
  forwarding), ``ringtones``

How Kazoo resolves the members (cf_ring_group.erl), kept here: a user member rings each
device the user owns, a group member each of its members (a group's member ``weight``/
``delay``/``timeout`` win over the ring group entry's); a device already listed with the same
delay and timeout is not rung twice; the caller's own device is never rung; disabled devices
are left out; with ``simultaneous`` the legs are ordered by delay; with ``single`` a group's
members are ordered by their weight and those without one are left out.

Branches: an endpoint answered and the call then ended -> the flow stops. A round failed:
the child keyed by the cause (``USER_BUSY``, ``NO_ANSWER``...) or by ``sip:<code>``, if the
node has one, is taken at once; else the next round rings. After the last round -> ``_``.
No endpoint to ring -> ``_``.

FreeSWITCH facts: see actions/endpoints.py (the busy-device captures in tests/fixtures show
``continue_on_fail=true`` keeping the caller).
"""

import dataclasses
import random

from callflowd.actions import endpoints
from callflowd.config import fields
from callflowd.actions.endpoints import ANSWERED
from callflowd.actions.outcome import DEFAULT, STOP
from callflowd.config.model import Reference
from callflowd.errors import InvalidData

STRATEGIES = ("simultaneous", "single", "weighted_random")
TYPES = ("device", "user", "group")
MAX_ENDPOINTS = 50
DEFAULT_WEIGHT = 20  # cf_ring_group ``group_weight(Member, 20)``
SUPPORTED = ("endpoints", "strategy", "timeout", "repeats", "ringback", "fail_on_single_reject")
NOT_SUPPORTED = ("ignore_forward", "ringtones")
ENDPOINT_KEYS = ("id", "endpoint_type", "delay", "timeout", "weight")


@dataclasses.dataclass(frozen=True)
class Member:
    leg: endpoints.Leg
    weight: int


@dataclasses.dataclass(frozen=True)
class Data:
    members: tuple  # of Member, resolved at load time
    strategy: str
    timeout: int
    repeats: int
    ringback: str | None = None
    fail_on_single_reject: object = None
    devices: object = None  # every configured device: which one is calling
    named: tuple = ()  # (kind, id, key) of each endpoint entry, for ``references``

    @classmethod
    def parse(cls, raw, directory):
        listed = fields.some(raw, "endpoints", list, "a list of endpoints", MAX_ENDPOINTS,
                             "must list at least one endpoint", "endpoints")
        strategy = fields.one_of(raw, "strategy", STRATEGIES, "simultaneous")
        members = []
        named = []
        for index, entry in enumerate(listed):
            where = "endpoints[%d]" % index
            if not isinstance(entry, dict):
                raise InvalidData(where, "must be an object with an id")
            try:
                members.extend(_resolve(entry, strategy, directory, members))
                named.append((fields.one_of(entry, "endpoint_type", TYPES, "device"), entry["id"], where + ".id"))
            except InvalidData as exc:
                raise InvalidData("%s.%s" % (where, exc.key), exc.message, exc.reference) from None
        if strategy == "simultaneous":
            members.sort(key=lambda member: member.leg.delay)
        reject = raw.get("fail_on_single_reject")
        ringback = fields.text(raw, "ringback")
        return cls(
            members=tuple(members), strategy=strategy,
            timeout=fields.integer_in(raw, "timeout", 20, 1, 3600),
            repeats=fields.integer_in(raw, "repeats", 1, 1, 10),
            ringback=directory.media_path(ringback),
            fail_on_single_reject=None if reject is None else fields.boolean(raw, "fail_on_single_reject", False),
            devices=directory.devices,
            named=tuple(named),
        )


    def dial_string(self):
        """One round's dial string, members in their configured order."""
        together = "simultaneous" if self.strategy == "simultaneous" else "single"
        return endpoints.dial_string([member.leg for member in self.members], together, self.timeout)


def references(data):
    return tuple(Reference(kind, entry_id, key) for kind, entry_id, key in data.named)


def _resolve(entry, strategy, directory, resolved):
    """The members one ``endpoints`` entry stands for (Kazoo ``resolve_endpoint_id``)."""
    kind = fields.one_of(entry, "endpoint_type", TYPES, "device")
    delay = fields.integer_in(entry, "delay", 0, 0, 3600)
    timeout = fields.integer_in(entry, "timeout", 20, 1, 3600)
    weight = _weight(entry, DEFAULT_WEIGHT)
    if kind == "device":
        devices = (fields.known_id(entry, "id", directory.devices, "device"),)
    elif kind == "user":
        devices = directory.devices_of(fields.known_id(entry, "id", directory.users, "user").id)
    else:
        group = fields.known_id(entry, "id", directory.groups, "group")
        out = []
        members = group.members
        if strategy == "single":  # ordered by weight; members without one are dropped
            members = sorted((m for m in members if m.weight is not None), key=lambda m: m.weight)
        for member in members:
            member_delay = delay if member.delay is None else member.delay
            member_timeout = timeout if member.timeout is None else member.timeout
            if member.type == "user":
                owned = directory.devices_of(member.id) if member.id in directory.users else ()
            else:
                owned = (directory.devices[member.id],) if member.id in directory.devices else ()
            out.extend(_members(owned, member_delay, member_timeout, weight, resolved + out))
        return out
    return _members(devices, delay, timeout, weight, resolved)


def _members(devices, delay, timeout, weight, resolved):
    out = []
    for device in devices:
        if any(m.leg.device.id == device.id and m.leg.delay == delay and m.leg.timeout == timeout
               for m in resolved + out):
            continue  # Kazoo ``is_endpoint_resolved``: the same device, delay and timeout once
        out.append(Member(endpoints.Leg(device, delay, timeout), weight))
    return out


def _weight(entry, default):
    """Kazoo ``group_weight``: an integer clamped to 1-100."""
    value = fields.optional(entry, "weight", int, None)
    if value is None:
        return default
    return max(1, min(100, value))


def weighted_random_order(members, rand=random):
    """Members in a random order, each next one drawn with a chance in proportion to its
    weight (Kazoo ``weighted_random_sort``)."""
    pool = list(members)
    order = []
    while pool:
        pick = rand.uniform(0, sum(member.weight for member in pool))
        for member in pool:
            pick -= member.weight
            if pick <= 0:
                break
        pool.remove(member)
        order.append(member)
    return order


# The FreeSWITCH applications it runs, and those a recovery mark names while they run (actions/__init__.py).
APPLICATIONS = ("set", "bridge")
LONG_APPLICATIONS = ("bridge",)


def handle(call, data):
    members = list(data.members)
    caller_legs = endpoints.usable(call, [member.leg for member in members], data.devices or {})
    members = [member for member in members if member.leg in caller_legs]
    if not members:
        call.log.info("ring group has no endpoints to ring; continuing at %s", DEFAULT)
        return DEFAULT
    dial_strategy = "simultaneous" if data.strategy == "simultaneous" else "single"
    for round_number in range(1, data.repeats + 1):
        ordered = weighted_random_order(members) if data.strategy == "weighted_random" else members
        legs = [member.leg for member in ordered]
        disposition, sip_cause = endpoints.bridge(
            call, endpoints.dial_string(legs, dial_strategy, data.timeout),
            endpoints.ring_seconds(legs, dial_strategy, data.timeout),
            ringback=data.ringback, fail_on_single_reject=data.fail_on_single_reject, first=round_number == 1)
        if disposition == ANSWERED:
            call.log.info("ring group answered; bridge ended")
            return STOP
        endpoints.log_failure(call, "ring group (round %d of %d)" % (round_number, data.repeats),
                              disposition, sip_cause)
        if any(key and key in call.position.branches for key in (disposition, sip_cause)):
            return endpoints.failure_keys(disposition, sip_cause)  # Kazoo: a failure child ends the repeats
    return endpoints.failure_keys(disposition, sip_cause)
