"""``load_config(path)``: the whole config, settings and callflows, as one frozen ``Config``.

The settings come first (``config.settings``), then the callflow documents they
name (``config.documents``), parsed against the settings' directory and routing
(``flow.parser``). Any problem raises one ``ConfigError`` naming the file and the
place inside it; nothing is kept from a failed load, so a reload can build the new
world first and keep the old one when this raises. Lives in the flow layer because
the callflows are parsed with the actions' own ``Data.parse``.
"""

import dataclasses
from types import MappingProxyType

from callflowd.config.documents import read_documents
from callflowd.config.settings import base_dir, read_settings
from callflowd.flow.parser import parse_callflows


def load_config(path):
    """The validated ``Config`` for the YAML file at ``path``; raises ConfigError.

    Relative paths inside the file (``callflows_dir``, ``password_file``) are
    taken from the file's own directory, wherever the daemon was started.
    """
    config, top = read_settings(path)
    documents = read_documents(top, base_dir(config.source))
    # Every callflow's numbers, for a menu's hunt (actions/menu.py): filled here once the
    # callflows are parsed, read-only to everyone else, never changed after this load.
    numbers = {}
    directory = dataclasses.replace(config.directory, callflow_numbers=MappingProxyType(numbers))
    warnings = []
    callflows = parse_callflows(documents, directory, config.routing, warnings)
    for callflow in callflows:
        for number in callflow.numbers:
            numbers.setdefault(number, callflow.id)
    return dataclasses.replace(config, directory=directory, callflows=callflows, warnings=tuple(warnings))
