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
- ``APPLICATIONS``: every FreeSWITCH application ``handle`` runs on the channel
  (``call.execute``, ``call.answer`` -> ``answer``, ``call.set_variable`` -> ``set``);
  the built-in simulator must support each (tests/test_actions_registry.py).
- optionally ``LONG_APPLICATIONS``: those of them that run for long (a bridge, a
  prompt): each gets a recovery mark naming it while it runs, so a daemon restarted
  meanwhile waits for it or reads its outcome (calls/resume.py). The registry hands
  the union to the calls (``LONG_APPLICATIONS`` below, injected by the service).
- optionally ``FIRST_EFFECT_IS_A_COMMAND = True``: the action does nothing
  (no request, no webhook) before its first command on the channel, so the
  step's recovery mark can go out ahead of that command in the same write
  instead of in a round trip of its own (``Call.mark_step``).

The JSON ``"module"`` word, the file name and the docs/actions.md section share one name.
Adding an action: its module, one line in ``REGISTRY`` below (and the import above it),
its section in docs/actions.md; tests/test_actions_registry.py checks that every module
here is registered and that its declarations hold.
"""

from callflowd.actions import (
    answer,
    callflow,
    device,
    hangup,
    menu,
    offnet,
    pivot,
    play,
    record_call,
    resources,
    response,
    ring_group,
    set_variables,
    sleep,
    temporal_route,
    user,
    voicemail,
    webhook,
)

REGISTRY = {
    "answer": answer,
    "callflow": callflow,
    "device": device,
    "hangup": hangup,
    "menu": menu,
    "offnet": offnet,
    "pivot": pivot,
    "play": play,
    "record_call": record_call,
    "resources": resources,
    "response": response,
    "ring_group": ring_group,
    "set_variables": set_variables,
    "sleep": sleep,
    "temporal_route": temporal_route,
    "user": user,
    "voicemail": voicemail,
    "webhook": webhook,
}

# Helper modules of the actions, not actions themselves.
HELPERS = ("endpoints", "media", "outcome", "responses")

# The long-running applications of all actions (see LONG_APPLICATIONS above).
LONG_APPLICATIONS = frozenset(app for action in REGISTRY.values()
                              for app in getattr(action, "LONG_APPLICATIONS", ()))
