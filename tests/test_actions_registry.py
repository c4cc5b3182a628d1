"""The action registry: every action module registered, with the facts it declares kept true.

Each action module says which FreeSWITCH applications it runs (``APPLICATIONS``) and which
of them get a recovery mark while they run (``LONG_APPLICATIONS``); the simulator has to
support every one of them, or a flow would work on a real switch and not in ``demo``.
"""

import ast
import inspect
import pathlib

import pytest

from callflowd import actions
from callflowd.actions import LONG_APPLICATIONS, REGISTRY
from callflowd.simulator import applications as simulated

pytestmark = pytest.mark.timeout(10)

# Call methods that run one application whose name is fixed (calls/call.py).
_FIXED = {"answer": "answer", "set_variable": "set"}
# Call methods whose first argument names the application.
_NAMED = ("execute", "queue")


def test_every_action_module_is_registered_under_its_file_name():
    folder = pathlib.Path(actions.__file__).parent
    helpers = {"__init__"} | set(actions.HELPERS)
    files = {p.stem for p in folder.glob("*.py")} - helpers
    assert files == set(REGISTRY)
    for name, module in REGISTRY.items():
        assert module.__name__ == "callflowd.actions.%s" % name
        assert callable(module.handle) and hasattr(module.Data, "parse")
        assert module.__doc__.lstrip().startswith("``%s``" % name)


def applications_run_by(module):
    """The applications ``module``'s code runs on the call, read from its source and from the
    sources of the action helpers it uses (``actions.endpoints`` rings for ``device``)."""
    found = set()
    tree = ast.parse(inspect.getsource(module))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "callflowd.actions":
            for alias in node.names:
                if alias.name in actions.HELPERS and alias.name != module.__name__.rpartition(".")[2]:
                    found |= applications_run_by(getattr(actions, alias.name))
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method = node.func.attr
        if method in _FIXED:
            found.add(_FIXED[method])
        elif method in _NAMED and node.args and isinstance(node.args[0], ast.Constant):
            found.add(node.args[0].value)
    return found


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_an_action_declares_every_application_it_runs(name):
    module = REGISTRY[name]
    declared = module.APPLICATIONS
    assert isinstance(declared, tuple) and all(isinstance(app, str) for app in declared)
    assert applications_run_by(module) <= set(declared)
    assert set(getattr(module, "LONG_APPLICATIONS", ())) <= set(declared)


def test_the_source_check_finds_the_applications_an_action_runs():
    assert applications_run_by(REGISTRY["device"]) == {"set", "bridge"}
    assert applications_run_by(REGISTRY["menu"]) == {"answer", "play_and_get_digits", "playback"}


def test_the_registry_hands_the_calls_every_long_application_an_action_declares():
    declared = {app for module in REGISTRY.values() for app in getattr(module, "LONG_APPLICATIONS", ())}
    assert LONG_APPLICATIONS == declared
    assert {"bridge", "voicemail", "playback", "play_and_get_digits"} <= LONG_APPLICATIONS


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_the_simulator_runs_every_application_an_action_runs(name):
    missing = set(REGISTRY[name].APPLICATIONS) - set(simulated.REGISTRY)
    assert not missing, "%s runs %s, which the simulator does not support" % (name, sorted(missing))
