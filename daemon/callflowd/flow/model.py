"""A callflow as typed, frozen values, built once at load time."""

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from callflowd.actions.outcome import FETCHED  # noqa: F401 - where a fetched flow's paths are marked


@dataclasses.dataclass(frozen=True)
class Node:
    """One step of a flow: the action ``module``, its parsed ``data``, its children.

    ``data`` is the action's own frozen ``Data`` (see ``callflowd.actions``);
    ``skip`` is Kazoo's ``skip_module``; ``path`` says where the node stands in its
    document (``flow.children._``), for logs and errors.
    """

    module: str
    data: object
    children: Mapping[str, "Node"] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    skip: bool = False
    path: str = "flow"

    def child(self, key):
        return self.children.get(key)


@dataclasses.dataclass(frozen=True)
class Callflow:
    """A Kazoo callflow document: the numbers (and patterns) it answers, and its flow.

    ``id`` is the document's ``id`` when it has one, else its file name or its
    place in the YAML list; ``source`` names where it came from.
    """

    id: str
    numbers: tuple[str, ...]
    patterns: tuple[str, ...]
    flow: Node
    source: str = ""
    prefix: str = ""  # where the document sits in its source (``callflows[2]``, ``data``), for errors

    def node_at(self, path):
        """The node whose ``path`` is ``path`` (a recovery record), or None.

        A node of a fetched flow (a path holding ``FETCHED``) is answered with the
        configured node that fetched it: a call taken back after a restart runs the
        fetch (the pivot) again.
        """
        pending = [self.flow]
        while pending:
            node = pending.pop()
            if node.path == path:
                return node
            pending.extend(node.children.values())
        if FETCHED in path:
            return self.node_at(path.partition(FETCHED)[0])
        return None


def graft(node, under):
    """``node`` (a fetched flow) with every path placed under ``under``'s path (see FETCHED)."""
    prefix = under.path + FETCHED
    return _prefixed(node, prefix)


def _prefixed(node, prefix):
    children = {key: _prefixed(child, prefix) for key, child in node.children.items()}
    return dataclasses.replace(node, path=prefix + node.path, children=MappingProxyType(children))
