"""``load_config(path)``: the whole config, settings and callflows, as one frozen ``Config``.

The settings come first (``config.settings``), then the callflow documents they
name (``config.documents``), parsed against the settings' directory and routing
(``flow.parser``). Every problem is a ``ConfigError`` naming the file and the place
inside it. The core settings (the YAML, freeswitch, webhooks, hooks, routing...) stop
at their first problem, since the documents are read against them; past them every
Kazoo document and every callflow document is read, and their problems are raised
together (``ConfigErrors``, config/problems.py): one ``callflowd check`` lists them all.
A callflow naming a document that was refused says nothing more: that document's own
problem is the one shown. Nothing is kept from a failed load, so a reload can build the
new world first and keep the old one when this raises. Lives in the flow layer because
the callflows are parsed with the actions' own ``Data.parse``.
"""

import dataclasses
from types import MappingProxyType

from callflowd.config.documents import read_documents
from callflowd.config.problems import Problems
from callflowd.config.settings import base_dir, read_settings
from callflowd.errors import ConfigError
from callflowd.flow.parser import parse_callflows


def load_config(path):
    """The validated ``Config`` for the YAML file at ``path``; raises ConfigError.

    Relative paths inside the file (``callflows_dir``, ``password_file``) are
    taken from the file's own directory, wherever the daemon was started.
    """
    problems = Problems()  # of the documents; the core settings raise at once
    config, top = read_settings(path, problems)
    try:
        documents = read_documents(top, base_dir(config.source), problems)
    except ConfigError as exc:  # no callflows at all, callflows_dir unreadable: said after the others
        problems.add(exc)
        problems.raise_if_any()
    # Every callflow's numbers, for a menu's hunt (actions/menu.py): filled here once the
    # callflows are parsed, read-only to everyone else, never changed after this load.
    numbers = {}
    directory = dataclasses.replace(config.directory, callflow_numbers=MappingProxyType(numbers))
    warnings = []
    callflows = parse_callflows(documents, directory, config.routing, warnings, problems)  # raises them all
    for callflow in callflows:
        for number in callflow.numbers:
            numbers.setdefault(number, callflow.id)
    return dataclasses.replace(config, directory=directory, callflows=callflows, warnings=tuple(warnings))
