"""Callflow actions, one module each, listed explicitly.

Every action module has the same small interface:

- a module docstring naming its ``data`` keys and the branches it can take;
- ``Data``: a frozen dataclass with ``Data.parse(raw, directory)`` that
  validates the node's ``data`` object at load time with the rules of
  ``callflowd.config.fields`` (raising ``callflowd.errors.InvalidData``) and may
  resolve ids against the ``callflowd.config.model.Directory``;
- ``handle(call, data)``: runs the action on a live ``callflowd.calls.call.Call``
  and returns where to go next (see ``callflowd.actions.outcome``).
- optionally ``references(data)``: the ``config.model.Reference`` values (kind, id,
  key) of everything the node names by id (a device, a voicemail box, another
  callflow...); the callflow parser checks each against the table of its kind
  once every document is read, so the parser knows no action by name.
- optionally ``with_branch_keys(data, keys, directory)``: for an action that
  branches on names it knows (``temporal_route``'s rule ids), the parser hands
  it the node's children keys once they are parsed.
- optionally ``FIRST_EFFECT_IS_A_COMMAND = True``: the action does nothing
  (no request, no webhook) before its first command on the channel, so the
  step's recovery mark can go out ahead of that command in the same write
  instead of in a round trip of its own (``Call.mark_step``).

The JSON ``"module"`` word, the file name and the README section share one name.
"""

from callflowd.actions import (
    answer,
    callflow,
    device,
    hangup,
    menu,
    pivot,
    play,
    response,
    ring_group,
    set_variables,
    sleep,
    temporal_route,
    voicemail,
    webhook,
)

REGISTRY = {
    "answer": answer,
    "callflow": callflow,
    "device": device,
    "hangup": hangup,
    "menu": menu,
    "pivot": pivot,
    "play": play,
    "response": response,
    "ring_group": ring_group,
    "set_variables": set_variables,
    "sleep": sleep,
    "temporal_route": temporal_route,
    "voicemail": voicemail,
    "webhook": webhook,
}

# Helper modules of the actions, not actions themselves.
HELPERS = ("media", "outcome")
