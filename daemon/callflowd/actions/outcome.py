"""What an action returns: the branch to take next, or STOP.

An action returns one key (``"_"``, ``"USER_BUSY"``, a digit...) or a tuple of
keys in order of preference (``("USER_BUSY", "sip:486")``): the executor takes
the first key the node has a child for, else ``"_"``. ``STOP`` ends the flow
(Kazoo's ``cf_exe:stop``). ``Jump(id)`` asks the executor to run another
callflow and come back to this node's ``_`` child when it ends (the
``callflow`` action). Actions never walk the tree themselves.

``Branch(document, directory)`` (Kazoo's ``cf_exe:branch``) is how an action that
fetched a flow (``pivot``) hands it over: the executor parses ``document`` with the
callflow parser (``flow.parser``, a layer above the actions) and continues with it
instead of a child of this node, or at ``_`` if it does not validate. The
fetched flow's nodes have ``FETCHED`` in their path: ``in_fetched_flow(call)``
says whether the node running now came from a server rather than from the
operator (``config.destinations`` then refuses more).
"""

import dataclasses

from callflowd.config.model import DEFAULT_BRANCH

STOP = None
DEFAULT = DEFAULT_BRANCH
# Between the path of the node that fetched a flow (a pivot) and the fetched node's own
# path: ``flow.children._/pivot:flow.children.1``. Such a path is not in any configured
# callflow; ``flow.model.Callflow.node_at`` answers it with the fetching node (see ``graft``).
FETCHED = "/pivot:"


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
    """Continue with the flow in ``document`` (JSON text as fetched), not a child.

    ``directory`` is what the flow may refer to (the running config's); ``origin``
    says where it came from in log lines (``pivot to http://...``), ``source`` in
    the parser's errors.
    """

    document: str
    directory: object = dataclasses.field(repr=False)
    origin: str = "a fetched flow"
    source: str = "answer"


def keys_of(outcome):
    """The outcome as a tuple of keys in order of preference."""
    if outcome is STOP or isinstance(outcome, Branch):
        return ()
    if isinstance(outcome, str):
        return (outcome,)
    return tuple(outcome)


def in_fetched_flow(call):
    """True if the node ``call`` runs now belongs to a flow a ``pivot`` fetched."""
    position = call.position
    return position is not None and FETCHED in position.node_path
