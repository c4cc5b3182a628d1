"""``set_variables``: set Kazoo custom application variables (or channel variables) on the call.

data (Kazoo 4.3 ``callflows.set_variables``):
  ``custom_application_vars``  object: name -> value. Each is set on the caller's channel as
                               ``cav_<name>`` (ecallmgr's ``?APPLICATION_VAR_PREFIX``), the way
                               Kazoo keeps them, and goes in later webhooks'
                               ``custom_application_vars``
  ``export``                   true: also give them to legs bridged later (FreeSWITCH
                               ``export``), default false (``set``)
Our extension: ``variables``   object: plain channel variable name -> value, set as they are.
One of the two is required.

Branches: ``_``.

Names are letters, digits, ``_``, ``-`` and ``.`` (they go into an application argument
``name=value``); values are strings, numbers or true/false, one line.
"""

import dataclasses
import re

from callflowd.actions.outcome import DEFAULT
from callflowd.config import fields
from callflowd.errors import InvalidData

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}")
_CAV_NAME = re.compile(r"[A-Za-z0-9\-_]{1,128}")  # the schema's patternProperties
MAX_VARIABLES = 100
CAV_PREFIX = "cav_"
SUPPORTED = ("custom_application_vars", "export", "variables")
NOT_SUPPORTED = ()


@dataclasses.dataclass(frozen=True)
class Data:
    variables: tuple  # of (channel variable name, value) in the order written
    export: bool
    application_vars: tuple = ()  # of (name without cav_, value)

    @classmethod
    def parse(cls, raw, directory):
        if raw.get("variables") is None and raw.get("custom_application_vars") is None:
            raise InvalidData("custom_application_vars", "is required (or variables)")
        pairs = _pairs(raw, "variables", _NAME) if raw.get("variables") is not None else []
        cavs = _pairs(raw, "custom_application_vars", _CAV_NAME, allow_empty=True) \
            if raw.get("custom_application_vars") is not None else []
        return cls(variables=tuple(pairs) + tuple((CAV_PREFIX + name, value) for name, value in cavs),
                   export=fields.boolean(raw, "export", False), application_vars=tuple(cavs))


def _pairs(raw, key, pattern, allow_empty=False):
    if allow_empty:
        table = fields.optional(raw, key, dict, {}, "an object")
        if len(table) > MAX_VARIABLES:
            raise InvalidData(key, "at most %d variables" % MAX_VARIABLES)
    else:
        table = fields.some(raw, key, dict, "an object", MAX_VARIABLES, "must name at least one variable",
                            "variables")
    pairs = []
    for name, value in table.items():
        where = "%s.%s" % (key, name)
        if not pattern.fullmatch(name):
            raise InvalidData(where, "a variable name is letters, digits, _ - and .")
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = str(value)
        elif not isinstance(value, str):
            raise InvalidData(where, "must be a string, a number or true/false")
        if not value.isprintable():
            raise InvalidData(where, "must be one line without control characters")
        pairs.append((name, value))
    return pairs


# The FreeSWITCH applications it runs (actions/__init__.py).
APPLICATIONS = ("set", "export")


def handle(call, data):
    app = "export" if data.export else "set"
    for name, value in data.variables:
        call.execute(app, "%s=%s" % (name, value), timeout=call.command_timeout)
    if data.application_vars:
        # what later webhooks send as custom_application_vars (calls/facts.py reads cav_* at park)
        facts = getattr(call, "facts", None)
        if isinstance(facts, dict):
            current = dict(facts.get("custom_application_vars") or {})
            current.update(data.application_vars)
            facts["custom_application_vars"] = current
    return DEFAULT
