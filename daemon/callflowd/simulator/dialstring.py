"""A bridge's dial string, and which of its endpoints decides the bridge's outcome.

One B-leg is simulated: with several endpoints (``a,b`` rung together, ``a|b`` one after the
other, ``[leg_delay_start=N,leg_timeout=N]`` per leg) it is the first to answer, else the last
group's failure.
"""

import dataclasses
import re

# {call_timeout=5} in a dial string is ignored: the bridge rings 60 s (the capture
# c_device_no_answer_call_timeout_in_braces; see ``captures``).
DEFAULT_RING_LIMIT = 60.0


@dataclasses.dataclass(frozen=True)
class DialString:
    """The parts of a bridge argument the simulation needs (first endpoint only)."""

    variables: dict
    endpoint: str
    user: str
    domain: str

    @classmethod
    def parse(cls, data):
        variables = {}
        rest = data.strip()
        # {global vars} then [per-leg vars] in front of the first endpoint
        while rest[:1] in ("{", "["):
            close = "}" if rest[0] == "{" else "]"
            end = rest.find(close)
            if end < 0:
                break
            for item in re.split(r",(?![^']*'\s*$)", rest[1:end]):
                name, sep, value = item.partition("=")
                if sep:
                    variables[name.strip()] = value.strip().strip("'")
            rest = rest[end + 1:].lstrip()
        endpoint = re.split(r"[,|:]_:|[,|]", rest, maxsplit=1)[0]
        path = endpoint.split("/")
        target = path[-1] if path else endpoint
        user, _, domain = target.partition("@")
        return cls(variables, endpoint, user or "1000", domain)

    @classmethod
    def parse_all(cls, data):
        """Every endpoint: a list of groups (``|``: tried in turn) of endpoints (``,``: rung
        together), each with the ``{global}`` variables overlaid by its own ``[per-leg]`` ones."""
        rest = data.strip()
        shared = {}
        if rest.startswith("{") and "}" in rest:
            end = rest.index("}")
            shared = cls.parse(rest[:end + 1] + "x").variables
            rest = rest[end + 1:]
        groups = []
        for group_text in rest.split("|"):
            group = []
            for leg_text in _split_legs(group_text):
                leg = cls.parse(leg_text)
                group.append(cls(dict(shared, **leg.variables), leg.endpoint, leg.user, leg.domain))
            if group:
                groups.append(group)
        return groups or [cls.parse(data)]


def _split_legs(text):
    """Split ``[a=1,b=2]user/1000,[c=3]user/1001`` on the commas outside brackets."""
    legs, depth, current = [], 0, ""
    for char in text:
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        if char == "," and depth == 0:
            legs.append(current)
            current = ""
        else:
            current += char
    legs.append(current)
    return [leg.strip() for leg in legs if leg.strip()]


def _number(text, default):
    try:
        return float(text)
    except (TypeError, ValueError):
        return default


def ring_limit(dial, call_timeout):
    """How long ``dial`` may ring: its leg_timeout or originate_timeout, else the caller's
    ``call_timeout`` variable, else 60 s."""
    for name in ("leg_timeout", "originate_timeout"):
        if name in dial.variables:
            try:
                return float(dial.variables[name])
            except ValueError:
                pass
    try:
        return float(call_timeout or DEFAULT_RING_LIMIT)
    except ValueError:
        return DEFAULT_RING_LIMIT


def plan(scenario, data, call_timeout):
    """(behaviour, DialString, ring seconds, ring limit) of the endpoint that decides a bridge.

    The first endpoint to answer, else the last group's failure (any endpoint ringing out ->
    NO_ANSWER, else any busy -> USER_BUSY, else USER_NOT_REGISTERED); earlier groups' time is
    added. ``call_timeout`` is the caller's variable of that name (or None).
    """
    groups = DialString.parse_all(data or "")
    elapsed = 0.0
    decision = None
    for group in groups:
        answered, ringing, busy, last = None, None, None, None
        for dial in group:
            behaviour = scenario.phone(dial.user, dial.endpoint)
            limit = ring_limit(dial, call_timeout)
            delay = _number(dial.variables.get("leg_delay_start"), 0.0)
            if behaviour == "answer" and delay + scenario.ring_seconds < limit:
                at = delay + scenario.ring_seconds
                if answered is None or at < answered[2]:
                    answered = ("answer", dial, at, limit)
            elif behaviour in ("answer", "no_answer"):  # rings out (an answer too late too)
                if ringing is None or limit > ringing[3]:
                    ringing = (behaviour, dial, delay + scenario.ring_seconds, limit)
            elif behaviour == "busy":
                busy = busy or ("busy", dial, delay + scenario.ring_seconds, limit)
            last = ("unregistered", dial, 0.0, limit)
        decision = answered or ringing or busy or last
        if answered:
            break
        if group is not groups[-1]:
            elapsed += decision[3] if decision is ringing else decision[2]
    behaviour, dial, ring, limit = decision
    return behaviour, dial, ring + elapsed, limit + elapsed
