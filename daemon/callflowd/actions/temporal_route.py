"""``temporal_route``: branch on the time of day, the weekday, the date (Kazoo's time of day routing).

data (Kazoo 4.3 ``callflows.temporal_route``):
  ``rules``        list of rule ids from the config's ``temporal_rules:`` (default: none)
  ``timezone``     IANA zone the rules are read in; absent or ``inherit``: the account
                   document's ``timezone`` (Kazoo's ``kzd_accounts:timezone``), else ``UTC``
  ``action``       only Kazoo's default (route) is supported; ``menu``, ``enable``,
                   ``disable`` and ``reset`` (a PIN menu and rule overrides kept in Kazoo's
                   database) are accepted with a warning from ``check`` and route as usual
  ``rule_set``     not supported (accepted, ``check`` warns): the rules listed are tried
  ``skip_module``  true: skip this node and go on to ``_`` (handled by the executor)

The rules tried are ``rules`` then the node's children keys (Kazoo's branch keys:
Kazoo's UI keys the children by rule id and leaves ``rules`` empty), in that
order, each once; every one must be a configured rule.

Branches: the id of the first rule that holds now -> the child with that key;
none holds -> ``_``. Nothing is sent to the switch.

"Now" is ``call.clock()`` (the service's clock: the real one, or the one
``callflowd simulate --at`` and tests inject), read once per node.
"""

import dataclasses

from callflowd.actions.outcome import DEFAULT
from callflowd.config import fields, temporal
from callflowd.config.model import Reference
from callflowd.errors import InvalidData

DEFAULT_TIMEZONE = "UTC"
SUPPORTED = ("rules", "timezone")
NOT_SUPPORTED = ("action", "rule_set", "interdigit_timeout")


@dataclasses.dataclass(frozen=True)
class Data:
    rules: tuple  # of callflowd.config.temporal.Rule, in the order they are tried
    timezone: object  # a zoneinfo.ZoneInfo

    @classmethod
    def parse(cls, raw, directory):
        ids = fields.optional(raw, "rules", list, [], "a list of temporal rule ids")
        rules = []
        for index, rule_id in enumerate(ids):
            key = "rules[%d]" % index
            if not isinstance(rule_id, str) or not rule_id:
                raise InvalidData(key, "must be a temporal rule id (a string)")
            rule = directory.temporal_rules.get(rule_id)
            if rule is None:
                raise InvalidData(key, "unknown temporal rule %r (configured: %s)" % (
                    rule_id, ", ".join(sorted(directory.temporal_rules)) or "none"),
                    reference=("temporal rule", rule_id))
            if rule not in rules:
                rules.append(rule)
        account = directory.account
        inherited = account.timezone if account is not None and account.timezone else DEFAULT_TIMEZONE
        name = fields.optional(raw, "timezone", str, inherited, "an IANA time zone name")
        zone = temporal.zone_named(inherited if name in ("", "inherit") else name)
        fields.optional(raw, "action", str, "", "a string")
        return cls(rules=tuple(rules), timezone=zone)


def with_branch_keys(data, keys, directory):
    """``data`` with the node's children keys (other than ``_``) added to its rules.

    Called by the parser once the children are known; raises InvalidData naming
    ``children.<key>`` for a key that is not a configured rule.
    """
    rules = list(data.rules)
    for key in keys:
        if key == DEFAULT:
            continue
        rule = directory.temporal_rules.get(key)
        if rule is None:
            raise InvalidData("children.%s" % key, "is not a configured temporal rule (a temporal_route "
                              "branches on rule ids, or _)", reference=("temporal rule", key))
        if rule not in rules:
            rules.append(rule)
    return dataclasses.replace(data, rules=tuple(rules))


def references(data):
    return tuple(Reference("temporal rule", rule.id, "rules") for rule in data.rules)


# The FreeSWITCH applications it runs (actions/__init__.py).
APPLICATIONS = ()


def handle(call, data):
    local = temporal.local_now(data.timezone, call.clock())
    rule = temporal.first_match(data.rules, local)
    if rule is None:
        call.log.info("no temporal rule holds at %s %s; taking _", local, data.timezone.key)
        return DEFAULT
    call.log.info("temporal rule %s holds at %s %s", rule.id, local, data.timezone.key)
    return rule.id
