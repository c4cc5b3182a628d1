"""Which callflow answers a dialled number: Kazoo 4.3's lookup order (cf_flow.erl).

1. The number is normalised to E.164 by the first matching converter (``routing.
   e164_converters``; Kazoo's defaults in ``config.model.DEFAULT_CONVERTERS``); a
   number starting with ``+`` and a feature code starting with ``*`` are never changed.
2. Exact match in the callflows' ``numbers`` (the normalised number, then as dialled).
3. ``patterns``: the one whose match is longest wins (the first listed on a tie); its
   capture groups go to the call (``call.captures``) for the actions.
4. The callflow whose ``numbers`` holds ``no_match``, only for all-digit numbers
   (a leading ``+`` aside), so ``*97`` or ``alice`` never land there.

A callflow whose ``numbers`` holds ``no_match`` (however it was found: Kazoo's
``contains_no_match``) answers only a call that may use it (cf_route_req.erl's
``allow_no_match``): one the switch authenticated as one of ours, ``variable_sip_authorized:
true`` on its CHANNEL_PARK (sofia's digest check against the directory, or an auth ACL). A
call from outside (the ``external`` profile, no authentication) is refused it, so it cannot
dial out through a ``no_match`` -> ``offnet`` callflow's carriers; ``routing.
no_match_from_outside: true`` lets every call use it.

Every regex is RE2 (``config.patterns``): matching time is linear in the number's length,
and the number is chosen by the caller.
"""

import dataclasses
import functools

from callflowd.config.model import RoutingSettings
from callflowd.config.patterns import compile_pattern
from callflowd.esl import names

NO_MATCH = "no_match"
FEATURE_CODE = "*"


@dataclasses.dataclass(frozen=True)
class Route:
    """A lookup's answer: the callflow, the number as normalised, the pattern's captures."""

    callflow: object
    number: str
    captures: tuple = ()
    how: str = "number"  # number | pattern | no_match
    no_match: bool = False  # the callflow's numbers hold no_match: for authenticated calls only


class Normalizer:
    """E.164 conversion with a list of ``Converter`` rules, compiled once."""

    def __init__(self, converters):
        self._rules = [(compile_pattern(rule.regex), rule.prefix, rule.suffix) for rule in converters]

    def __call__(self, number):
        if not number or number.startswith(("+", FEATURE_CODE)):
            return number
        for regex, prefix, suffix in self._rules:
            found = regex.search(number)
            if found is None:
                continue
            groups = [group for group in found.groups() if group]
            return prefix + (groups[-1] if groups else found.group(0)) + suffix
        return number


@functools.lru_cache(maxsize=None)
def _default_normalizer():
    return Normalizer(RoutingSettings().converters)


def normalize(number):
    """``number`` under Kazoo's default converters (``4155552671`` -> ``+14155552671``)."""
    return _default_normalizer()(number)


def all_digits(number):
    """Kazoo's no_match test: ASCII digits only, a leading ``+`` aside."""
    digits = number[1:] if number.startswith("+") else number
    return bool(digits) and digits.isascii() and digits.isdigit()


def authenticated(channel):
    """Did the switch authenticate the caller of this CHANNEL_PARK (or ``uuid_dump``)?
    ``variable_sip_authorized`` is set by sofia only, never from anything the caller sends."""
    return channel.get(names.SIP_AUTHORIZED) == "true"


def _holds_no_match(callflow):
    return NO_MATCH in callflow.numbers


class RouteTable:
    """Built once from the validated callflows; lookups are a dict hit or a few regexes."""

    def __init__(self, callflows, routing=None):
        routing = routing or RoutingSettings()
        self.normalize = Normalizer(routing.converters)
        self.max_callflow_jumps = routing.max_callflow_jumps
        self.no_match_from_outside = routing.no_match_from_outside
        self._by_number = {}
        self._patterns = []
        self._no_match = None
        self.by_id = {callflow.id: callflow for callflow in callflows}
        for callflow in callflows:
            for number in callflow.numbers:
                if number == NO_MATCH:
                    self._no_match = callflow
                else:
                    self._by_number[number] = callflow
            for pattern in callflow.patterns:
                self._patterns.append((compile_pattern(pattern), callflow))

    def route(self, number):
        """The Route for a dialled ``number``, or None when nothing answers it."""
        if not number:
            return None
        normalized = self.normalize(number)
        candidates = (normalized,) if normalized == number else (normalized, number)
        for candidate in candidates:
            callflow = self._by_number.get(candidate)
            if callflow is not None:
                return Route(callflow, normalized, no_match=_holds_no_match(callflow))
        best = None
        for candidate in candidates:
            for regex, callflow in self._patterns:
                found = regex.search(candidate)
                if found is None:
                    continue
                length = found.end() - found.start()
                if best is None or length > best[0]:
                    best = (length, callflow, tuple(group or "" for group in found.groups()))
            if best is not None:
                return Route(best[1], normalized, best[2], "pattern", _holds_no_match(best[1]))
        if self._no_match is not None and all_digits(normalized):
            return Route(self._no_match, normalized, (), NO_MATCH, True)
        return None

    def refuses(self, route, channel):
        """True when ``route``'s callflow is a no_match one the parked ``channel`` may not use:
        the switch did not authenticate the caller (Kazoo's ``allow_no_match``)."""
        return route.no_match and not self.no_match_from_outside and not authenticated(channel)

    def lookup(self, number):
        """The callflow for ``number``, or None (``route()`` without the details)."""
        found = self.route(number)
        return found.callflow if found is not None else None

    def __len__(self):
        return len(self._by_number)
