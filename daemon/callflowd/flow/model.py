"""A callflow as typed, frozen values, built once at load time."""

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

DEFAULT_BRANCH = "_"


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
        """The node whose ``path`` is ``path`` (a recovery record), or None."""
        pending = [self.flow]
        while pending:
            node = pending.pop()
            if node.path == path:
                return node
            pending.extend(node.children.values())
        return None
