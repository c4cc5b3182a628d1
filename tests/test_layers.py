"""The package imports downward only, and nothing imports in a circle.

The import graph of ``daemon/callflowd`` is read from the source (``ast``), every
``import`` counted wherever it stands, also inside a function: a function-level
import is still a dependency, only a later one. Each package (and top-level
module) sits on a layer; it may import its own layer and those below, never one
above, and no two packages may import each other, even through others.
"""

import ast
import pathlib

import pytest

SOURCE = pathlib.Path(__file__).resolve().parent.parent / "daemon"
ROOT = "callflowd"

# Lowest first. A package, or a top-level module (``callflowd`` itself is its __init__).
LAYERS = {
    # 1 base: no callflowd imports but each other
    "callflowd": 1, "errors": 1, "logfmt": 1, "logsetup": 1, "retry": 1, "metrics": 1, "systemd": 1,
    "esl": 2,  # the event socket: wire protocol, connection
    "config": 3,  # file reading, validation rules, settings and their values
    "webhooks": 4, "hooks": 4,  # the outbox and its delivery; lifecycle hooks
    "calls": 5,  # one call's commands, marks, resume, recovery, facts; routing a number
    "actions": 6,  # one module per callflow action
    "flow": 7,  # the callflow model, parser and executor; load_config
    "service": 8, "cli": 8, "demo": 8, "__main__": 8,  # wiring
}
# The simulator is a fake FreeSWITCH: an island that only the wiring (``callflowd simulate``)
# uses, and that uses only the event socket's wire protocol and the base.
ISLAND = "simulator"
ISLAND_MAY_IMPORT = {"esl"} | {name for name, layer in LAYERS.items() if layer == 1}
ISLAND_USED_BY = {"demo"}

# Known upward edges (importer module, imported module), each with who removes it.
# Empty this list; never add to it.
KNOWN_UPWARD = set()


def _modules():
    """``{module name: path}`` for every module of the package."""
    modules = {}
    for path in sorted((SOURCE / ROOT).rglob("*.py")):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _imports(module, path):
    """``(imported module, line)`` for each callflowd import in ``path``, at any depth."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # ``from callflowd.config import fields`` imports the module callflowd.config.fields
            names = ["%s.%s" % (base, alias.name) if "%s.%s" % (base, alias.name) in MODULES else base
                     for alias in node.names]
        else:
            continue
        for name in names:
            if name == ROOT or name.startswith(ROOT + "."):
                while name not in MODULES:  # ``import callflowd.x.y`` of a name inside a module
                    name = name.rpartition(".")[0]
                found.append((name, node.lineno))
    return found


EDGES = sorted({(module, imported, line) for module, path in MODULES.items()
                for imported, line in _imports(module, path) if imported != module})


def unit(module):
    """The package or top-level module ``module`` belongs to (``callflowd.calls.router`` -> ``calls``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _where(module, imported, line):
    return "%s:%d imports %s" % (MODULES[module].relative_to(SOURCE.parent), line, imported)


def test_every_package_has_a_layer():
    missing = sorted({unit(module) for module in MODULES} - set(LAYERS) - {ISLAND})
    assert not missing, "add these to LAYERS (and to docs/architecture.md): %s" % ", ".join(missing)


def test_no_package_imports_from_a_layer_above_its_own():
    upward = [_where(module, imported, line) for module, imported, line in EDGES
              if unit(module) in LAYERS and unit(imported) in LAYERS
              and LAYERS[unit(imported)] > LAYERS[unit(module)]
              and (module, imported) not in KNOWN_UPWARD]
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_the_known_upward_imports_are_still_there():
    """An entry of KNOWN_UPWARD that is gone is taken off the list, so it cannot come back."""
    present = {(module, imported) for module, imported, _ in EDGES}
    assert KNOWN_UPWARD <= present, "remove from KNOWN_UPWARD: %s" % sorted(KNOWN_UPWARD - present)


def test_the_simulator_is_an_island():
    wrong = [_where(module, imported, line) for module, imported, line in EDGES
             if (unit(module) == ISLAND and unit(imported) not in ISLAND_MAY_IMPORT | {ISLAND})
             or (unit(imported) == ISLAND and unit(module) not in ISLAND_USED_BY | {ISLAND})]
    assert not wrong, "\n".join(wrong)


def _cycles(edges):
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    graph = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
        graph.setdefault(target, set())
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_two_packages_import_each_other():
    edges = {(unit(module), unit(imported)) for module, imported, _ in EDGES
             if unit(module) != unit(imported) and (module, imported) not in KNOWN_UPWARD}
    circles = _cycles(edges)
    assert not circles, "packages importing each other: %s" % circles


def test_no_two_modules_import_each_other():
    edges = {(module, imported) for module, imported, _ in EDGES if (module, imported) not in KNOWN_UPWARD}
    circles = _cycles(edges)
    assert not circles, "modules importing each other: %s" % circles


@pytest.mark.parametrize("edges, cycles", [
    ({("a", "b"), ("b", "c")}, []),
    ({("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}, [["a", "b", "c"]]),
])
def test_the_cycle_finder_finds_circles_and_only_circles(edges, cycles):
    assert _cycles(edges) == cycles


def test_function_level_imports_are_counted():
    """The circle this test was written for went through a function-level import."""
    edges = {(module, imported) for module, imported, _ in EDGES}
    assert ("callflowd.flow.executor", "callflowd.flow.parser") in edges  # module level
    assert ("callflowd.cli", "callflowd.flow.load") in edges  # inside a function
