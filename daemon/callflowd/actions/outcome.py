"""What an action returns: the branch to take next, or STOP.

An action returns one key (``"_"``, ``"USER_BUSY"``, a digit...) or a tuple of
keys in order of preference (``("USER_BUSY", "sip:486")``): the executor takes
the first key the node has a child for, else ``"_"``. ``STOP`` ends the flow
(Kazoo's ``cf_exe:stop``). ``Jump(id)`` asks the executor to run another
callflow and come back to this node's ``_`` child when it ends (the
``callflow`` action). Actions never walk the tree themselves.

``Branch(flow)`` (Kazoo's ``cf_exe:branch``) is how an action that fetched a
flow (``pivot``) hands it over: the executor continues with ``flow`` instead of
a child of this node.
"""

import dataclasses

STOP = None
DEFAULT = "_"


@dataclasses.dataclass(frozen=True)
class Jump:
    """Run callflow ``callflow_id`` next; resume at the calling node's ``_`` child after it.

    ``back=False``: do not come back (Kazoo's ``cf_exe:branch`` to another callflow, a
    menu's hunt): the jumped-to callflow's end is the flow's end.
    """

    callflow_id: str
    back: bool = True


@dataclasses.dataclass(frozen=True)
class Branch:
    """Continue with ``flow`` (a validated ``callflowd.flow.model.Node``), not a child."""

    flow: object


def keys_of(outcome):
    """The outcome as a tuple of keys in order of preference."""
    if outcome is STOP or isinstance(outcome, Branch):
        return ()
    if isinstance(outcome, str):
        return (outcome,)
    return tuple(outcome)
