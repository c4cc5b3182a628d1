"""``set_variables``: set channel variables on the caller's channel.

data:
  ``variables`` (required)  object: variable name -> value (string, number or true/false)
  ``export``                true: also give them to legs bridged later (FreeSWITCH ``export``),
                            default false (``set``)

Branches: ``_``.

Names are letters, digits, ``_``, ``-`` and ``.`` (they go into an application argument
``name=value``); values are one line.
"""

import dataclasses
import re

from callflowd.actions.outcome import DEFAULT
from callflowd.config import fields
from callflowd.errors import InvalidData

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}")
MAX_VARIABLES = 100


@dataclasses.dataclass(frozen=True)
class Data:
    variables: tuple  # of (name, value) in the order written
    export: bool

    @classmethod
    def parse(cls, raw, directory):
        table = fields.some(raw, "variables", dict, "an object", MAX_VARIABLES,
                            "must name at least one variable", "variables")
        pairs = []
        for name, value in table.items():
            where = "variables.%s" % name
            if not _NAME.fullmatch(name):
                raise InvalidData(where, "a variable name is letters, digits, _ - and .")
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, int):
                value = str(value)
            elif not isinstance(value, str):
                raise InvalidData(where, "must be a string, a number or true/false")
            if not value.isprintable():
                raise InvalidData(where, "must be one line without control characters")
            pairs.append((name, value))
        return cls(variables=tuple(pairs), export=fields.boolean(raw, "export", False))


# The FreeSWITCH applications it runs (actions/__init__.py).
APPLICATIONS = ("set", "export")


def handle(call, data):
    app = "export" if data.export else "set"
    for name, value in data.variables:
        call.execute(app, "%s=%s" % (name, value), timeout=call.command_timeout)
    return DEFAULT
